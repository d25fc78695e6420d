/* Port-I/O and MMIO dispatch.  A device registers a range and a handler;
 * the vCPU thread that took the exit calls bus_dispatch().  Handlers run on
 * vCPU threads concurrently: each device protects its own state.
 *
 * Ranges may not overlap, and an access that is not entirely inside one
 * range is not dispatched (it counts as "unhandled", never fatal). */
#ifndef MINIVMM_BUS_H
#define MINIVMM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* addr is the offset from the range's base.  For reads the handler fills
 * data[0..len); for writes it consumes it.  len is 1, 2, 4 or 8. */
typedef void (*bus_handler_fn)(void *opaque, uint64_t addr, uint8_t *data,
			       uint32_t len, bool is_write);

struct bus_range {
	uint64_t base, len;
	bus_handler_fn fn;
	void *opaque;
	const char *name;
};

#define BUS_MAX_RANGES 64

struct bus {
	const char *name;           /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;      /* ranges may move (PCI BARs) while vCPUs run */
	struct bus_range r[BUS_MAX_RANGES];
	int nr;
	unsigned long unhandled;    /* accesses nobody claimed */
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);
/* 0, -EEXIST on overlap, -EINVAL on a wrapping/empty range, -ENOSPC. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_handler_fn fn,
		 void *opaque, const char *name);
/* Remove the range registered with exactly this base and opaque. */
int bus_unregister(struct bus *b, uint64_t base, void *opaque);
/* Returns true if a handler took the access; false reads as all-ones. */
bool bus_dispatch(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write);

#endif
