#ifndef MINIVMM_I8042_H
#define MINIVMM_I8042_H
struct vm;
int i8042_init(struct vm *vm);
void i8042_exit(struct vm *vm);
#endif
