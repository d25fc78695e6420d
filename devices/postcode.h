#ifndef MINIVMM_POSTCODE_H
#define MINIVMM_POSTCODE_H
struct vm;
int postcode_init(struct vm *vm);
void postcode_exit(struct vm *vm);
#endif
