/* `minivmm img ...`: the image tool (create, info, check, convert, bench). */
#ifndef MINIVMM_IMG_H
#define MINIVMM_IMG_H
int img_main(int argc, char **argv);
#endif
