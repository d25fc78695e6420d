/* Test driver: `img_driver ARGS` == `minivmm img ARGS`. */
#include "vmm/img/img.h"

int main(int argc, char **argv)
{
	return img_main(argc, argv);
}
