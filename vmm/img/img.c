#include "vmm/img/img.h"

#include <stdio.h>

int img_main(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "minivmm img: not implemented yet\n");
	return 1;
}
