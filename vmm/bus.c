#include "vmm/bus.h"

#include "vmm/log.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	pthread_rwlock_destroy(&b->lock);
}

static bool overlaps(const struct bus_range *r, uint64_t base, uint64_t last)
{
	return base <= r->base + (r->len - 1) && r->base <= last;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_handler_fn fn,
		 void *opaque, const char *name)
{
	uint64_t last;
	int ret = 0;

	if (len == 0 || __builtin_add_overflow(base, len - 1, &last))
		return -EINVAL;
	pthread_rwlock_wrlock(&b->lock);
	for (int i = 0; i < b->nr; i++)
		if (overlaps(&b->r[i], base, last)) {
			ret = -EEXIST;
			goto out;
		}
	if (b->nr == BUS_MAX_RANGES) {
		ret = -ENOSPC;
		goto out;
	}
	b->r[b->nr++] = (struct bus_range){ base, len, fn, opaque, name };
out:
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_unregister(struct bus *b, uint64_t base, void *opaque)
{
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&b->lock);
	for (int i = 0; i < b->nr; i++)
		if (b->r[i].base == base && b->r[i].opaque == opaque) {
			b->r[i] = b->r[--b->nr];
			ret = 0;
			break;
		}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

bool bus_dispatch(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write)
{
	uint64_t last;

	if (len == 0 || len > 8 || __builtin_add_overflow(addr, len - 1, &last))
		goto unhandled;
	pthread_rwlock_rdlock(&b->lock);
	for (int i = 0; i < b->nr; i++) {
		const struct bus_range *r = &b->r[i];
		/* The whole access must fall inside one range. */
		if (addr >= r->base && last <= r->base + (r->len - 1)) {
			bus_handler_fn fn = r->fn;
			void *op = r->opaque;
			uint64_t off = addr - r->base;

			/* Handlers run under the read lock: a device moving its
			 * own BAR from a handler would deadlock, so BAR moves
			 * happen from PCI config space handlers on the other bus. */
			fn(op, off, data, len, is_write);
			pthread_rwlock_unlock(&b->lock);
			return true;
		}
	}
	pthread_rwlock_unlock(&b->lock);
unhandled:
	__atomic_add_fetch(&b->unhandled, 1, __ATOMIC_RELAXED);
	if (log_level >= LOG_DEBUG)
		log_guest("unhandled %s %s at %#llx, %u bytes", b->name,
			  is_write ? "write" : "read", (unsigned long long)addr, len);
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}
