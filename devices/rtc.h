#ifndef MINIVMM_RTC_H
#define MINIVMM_RTC_H
struct vm;
int rtc_init(struct vm *vm);
void rtc_exit(struct vm *vm);
#endif
