/* Guest -> host cluster mapping through the L1 and L2 tables
 * (qcow2.txt "Cluster mapping"). */
#include "devices/qcow2/qcow2_int.h"

#include <errno.h>
#include <string.h>

#include "vmm/log.h"

void qcow2_compressed_extent(const struct qcow2 *q, uint64_t l2e, uint64_t *off, uint64_t *len)
{
	uint64_t coff = l2e & q->coffset_mask;
	uint64_t nsec = ((l2e >> q->csize_shift) & q->csize_mask) + 1;

	/* The data starts at coff and ends inside the last of nsec sectors
	 * counted from the sector containing coff. */
	*off = coff;
	*len = nsec * 512 - (coff & 511);
}

static int l2_offset(struct qcow2 *q, uint64_t l1i, uint64_t *off)
{
	uint64_t e = q->l1[l1i], o = e & L1E_OFFSET_MASK;

	*off = 0;
	if (!o)
		return 0;
	if (qcow2_check_range(q, o, q->cluster_size, true) || o >= q->file_size) {
		log_guest("qcow2 %s: L1 entry %llu invalid (%#llx)", q->path,
			  (unsigned long long)l1i, (unsigned long long)e);
		return -EIO;
	}
	*off = o;
	return 0;
}

static void classify(const struct qcow2 *q, uint64_t e, struct qmap *m)
{
	memset(m, 0, sizeof(*m));
	if (e & QCOW_OFLAG_COMPRESSED) {
		m->type = QMAP_COMPRESSED;
		m->l2e = e;
		return;
	}
	if (q->version >= 3 && (e & QCOW_OFLAG_ZERO)) {
		m->type = QMAP_ZERO;
		return;
	}
	m->host = e & L2E_OFFSET_MASK;
	if (!m->host) {
		m->type = QMAP_UNALLOC;
		return;
	}
	m->type = QMAP_DATA;
	m->copied = !!(e & QCOW_OFLAG_COPIED);
}

int qcow2_map(struct qcow2 *q, uint64_t off, uint64_t len, struct qmap *m)
{
	uint64_t cs = q->cluster_size, in = off & (cs - 1);
	uint64_t l1i = off >> (q->cluster_bits + q->l2_bits);
	uint64_t idx = (off >> q->cluster_bits) & (q->l2_entries - 1);
	uint64_t l2off, *l2, max;
	int r;

	if (l1i >= q->l1_size)
		return -EIO;
	/* Never run past the L2 table (L1 entry) containing off. */
	max = ((q->l2_entries - idx) << q->cluster_bits) - in;
	if (len > max)
		len = max;
	r = l2_offset(q, l1i, &l2off);
	if (r)
		return r;
	if (!l2off) {
		memset(m, 0, sizeof(*m));
		m->type = QMAP_UNALLOC;
		m->len = len;
		return 0;
	}
	r = qcache_get(&q->l2c, l2off, false, (void **)&l2);
	if (r)
		return r;
	classify(q, be64toh(l2[idx]), m);
	if (m->type == QMAP_DATA && qcow2_check_range(q, m->host, cs, true)) {
		log_guest("qcow2 %s: L2 entry for guest offset %#llx invalid (%#llx)", q->path,
			  (unsigned long long)off, (unsigned long long)be64toh(l2[idx]));
		qcache_put(&q->l2c, l2, false);
		return -EIO;
	}
	uint64_t done = cs - in;
	if (m->type != QMAP_COMPRESSED) {
		for (uint64_t i = idx + 1; done < len && i < q->l2_entries; i++) {
			struct qmap n;
			classify(q, be64toh(l2[i]), &n);
			if (n.type != m->type)
				break;
			if (n.type == QMAP_DATA &&
			    (n.host != m->host + done + in || n.copied != m->copied ||
			     qcow2_check_range(q, n.host, cs, true)))
				break;
			done += cs;
		}
	}
	qcache_put(&q->l2c, l2, false);
	if (m->type == QMAP_DATA)
		m->host += in;
	m->len = done < len ? done : len;
	return 0;
}

int qcow2_get_l2_for_write(struct qcow2 *q, uint64_t off, uint64_t **l2, uint64_t *idx)
{
	uint64_t l1i = off >> (q->cluster_bits + q->l2_bits);
	uint64_t old, noff, be, got;
	void *tbl, *otbl;
	int r;

	*idx = (off >> q->cluster_bits) & (q->l2_entries - 1);
	if (l1i >= q->l1_size)
		return -EIO;
	r = l2_offset(q, l1i, &old);
	if (r)
		return r;
	if (old && (q->l1[l1i] & QCOW_OFLAG_COPIED))
		return qcache_get(&q->l2c, old, false, (void **)l2);

	/* New table, or copy-on-write of a table shared with a snapshot.
	 * The data clusters it references keep their refcounts: they are
	 * now referenced from both tables. */
	r = qcow2_alloc_clusters(q, 1, &noff, &got);
	if (r)
		return r;
	r = qcache_get(&q->l2c, noff, true, &tbl);
	if (r)
		return r;
	if (old) {
		r = qcache_get(&q->l2c, old, false, &otbl);
		if (r)
			goto fail;
		memcpy(tbl, otbl, q->cluster_size);
		qcache_put(&q->l2c, otbl, false);
	}
	/* Rule 2: the table and its refcount on disk before the L1 entry. */
	r = qc_pwrite(q, tbl, q->cluster_size, noff);
	if (!r)
		r = qcache_flush(&q->rbc);
	if (!r)
		r = qc_sync(q);
	if (r)
		goto fail;
	be = htobe64(noff | QCOW_OFLAG_COPIED);
	r = qc_pwrite(q, &be, 8, q->l1_offset + l1i * 8);
	if (r)
		goto fail;
	q->l1[l1i] = noff | QCOW_OFLAG_COPIED;
	if (old) {
		r = qcow2_free_later(q, old, 1);
		if (r)
			goto fail;
	}
	*l2 = tbl;
	return 0;
fail:
	qcache_put(&q->l2c, tbl, false);
	return r;
}

void qcow2_put_l2(struct qcow2 *q, uint64_t *l2, bool dirty)
{
	qcache_put(&q->l2c, l2, dirty);
}
