/* --stats: counters printed when the VM stops.  Exits by reason are the
 * instrument that shows whether a fast path (ioeventfd/irqfd) works. */
#ifndef MINIVMM_STATS_H
#define MINIVMM_STATS_H
struct vm;
void stats_print(struct vm *vm, int ndevices);
#endif
