/* --stats: counters printed when the VM stops.  Exits by reason are the
 * instrument that shows whether a fast path (ioeventfd/irqfd) works. */
#ifndef MINIVMM_STATS_H
#define MINIVMM_STATS_H
#include <stdint.h>
struct vm;
/* Allocate the per-port counters (best effort: without them only the
 * totals are kept); stats_free releases them. */
void stats_init(struct vm *vm);
void stats_free(struct vm *vm);
/* Called on each PIO exit; cheap no-op without --stats. */
void stats_pio_exit(struct vm *vm, uint16_t port);
void stats_print(struct vm *vm, int ndevices);
#endif
