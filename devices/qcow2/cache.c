/* Bounded write-back cache of cluster-sized metadata (L2 tables and
 * refcount blocks).  A fixed number of slots, a hash on the host offset,
 * LRU eviction of unpinned slots.  Dirty slots are written back on flush or
 * eviction, after their dependency cache (crash-safety rule 1 in
 * qcow2_int.h). */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int hash_off(const struct qcache *c, uint64_t off)
{
	uint64_t h = (off >> c->q->cluster_bits) * 0x9e3779b97f4a7c15ull;
	return (int)(h >> 40) & (c->nbuckets - 1);
}

int qcache_init(struct qcache *c, struct qcow2 *q, const char *name, int n)
{
	memset(c, 0, sizeof(*c));
	c->q = q;
	c->name = name;
	c->n = n;
	c->nbuckets = 1;
	while (c->nbuckets < 2 * n)
		c->nbuckets <<= 1;
	c->bucket = malloc(sizeof(int) * c->nbuckets);
	c->e = calloc(n, sizeof(*c->e));
	/* One block so that qcache_put finds the slot by arithmetic. */
	c->mem = qc_alloc((size_t)n << q->cluster_bits);
	if (!c->bucket || !c->e || !c->mem)
		return -ENOMEM;
	for (int i = 0; i < c->nbuckets; i++)
		c->bucket[i] = -1;
	for (int i = 0; i < n; i++) {
		c->e[i].data = c->mem + ((size_t)i << q->cluster_bits);
		c->e[i].next = -1;
	}
	return 0;
}

void qcache_destroy(struct qcache *c)
{
	free(c->mem);
	free(c->e);
	free(c->bucket);
	memset(c, 0, sizeof(*c));
}

static int find(const struct qcache *c, uint64_t off)
{
	for (int i = c->bucket[hash_off(c, off)]; i >= 0; i = c->e[i].next)
		if (c->e[i].off == off)
			return i;
	return -1;
}

static void unlink_entry(struct qcache *c, int idx)
{
	int *pp = &c->bucket[hash_off(c, c->e[idx].off)];

	while (*pp >= 0) {
		if (*pp == idx) {
			*pp = c->e[idx].next;
			break;
		}
		pp = &c->e[*pp].next;
	}
	c->e[idx].next = -1;
	c->e[idx].off = 0;
	c->e[idx].dirty = false;
}

/* Write one dirty entry; its dependencies must already be on disk. */
static int write_entry(struct qcache *c, struct qc_entry *e)
{
	int r = qc_pwrite(c->q, e->data, c->q->cluster_size, e->off);

	if (!r)
		e->dirty = false;
	return r;
}

static int prepare_write(struct qcache *c)
{
	int r;

	if (c->depends) {
		r = qcache_flush(c->depends);
		if (r)
			return r;
	}
	if (c->need_sync) {
		/* Rules 1 and 2: refcounts and data before the tables. */
		r = qc_sync(c->q);
		if (r)
			return r;
	}
	return 0;
}

int qcache_flush(struct qcache *c)
{
	bool any = false;
	int r;

	for (int i = 0; i < c->n; i++)
		any |= c->e[i].dirty;
	if (!any)
		return 0;
	r = prepare_write(c);
	if (r)
		return r;
	for (int i = 0; i < c->n; i++) {
		if (c->e[i].dirty) {
			r = write_entry(c, &c->e[i]);
			if (r)
				return r;
		}
	}
	return 0;
}

int qcache_get(struct qcache *c, uint64_t off, bool fresh, void **data)
{
	int idx = find(c, off), victim = -1;
	int r;

	if (idx >= 0) {
		c->hits++;
		c->e[idx].lru = ++c->tick;
		c->e[idx].pin++;
		if (fresh)
			memset(c->e[idx].data, 0, c->q->cluster_size);
		*data = c->e[idx].data;
		return 0;
	}
	c->misses++;
	for (int i = 0; i < c->n; i++) {
		if (c->e[i].pin)
			continue;
		if (!c->e[i].off) {
			victim = i;
			break;
		}
		if (victim < 0 || c->e[i].lru < c->e[victim].lru)
			victim = i;
	}
	if (victim < 0)
		return -EBUSY; /* every slot pinned: a bug, not an image problem */
	struct qc_entry *e = &c->e[victim];
	if (e->dirty) {
		r = prepare_write(c);
		if (!r)
			r = write_entry(c, e);
		if (r)
			return r;
	}
	if (e->off)
		unlink_entry(c, victim);
	if (fresh) {
		memset(e->data, 0, c->q->cluster_size);
	} else {
		r = qc_pread(c->q, e->data, c->q->cluster_size, off, false);
		if (r)
			return r;
	}
	e->off = off;
	e->lru = ++c->tick;
	e->pin = 1;
	e->dirty = false;
	int h = hash_off(c, off);
	e->next = c->bucket[h];
	c->bucket[h] = victim;
	*data = e->data;
	return 0;
}

void qcache_put(struct qcache *c, void *data, bool dirty)
{
	size_t i = (size_t)((char *)data - c->mem) >> c->q->cluster_bits;

	if (i >= (size_t)c->n)
		return;
	if (c->e[i].pin > 0)
		c->e[i].pin--;
	if (dirty)
		c->e[i].dirty = true;
}

void qcache_discard(struct qcache *c, uint64_t off)
{
	int idx = find(c, off);

	if (idx >= 0 && !c->e[idx].pin)
		unlink_entry(c, idx);
}
