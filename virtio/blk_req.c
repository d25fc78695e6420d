/* virtio-blk request parsing and non-data commands (virtio 1.2 §5.2.6).
 *
 * Request layout: a 16-byte device-readable header {le32 type; le32
 * reserved; le64 sector}, then data (readable for OUT/DISCARD/WRITE_ZEROES,
 * writable for IN/GET_ID), then one writable status byte.  The chain was
 * already split into readable-then-writable host iovecs by vq_pop; here the
 * header is copied once and everything is checked against that copy. */
#include "virtio/blk.h"

#include <errno.h>
#include <string.h>

#include "vmm/log.h"

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* §5.2.6: discard / write-zeroes segment */
struct blk_dwz_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags; /* bit 0: unmap (write-zeroes only) */
};
#define VIRTIO_BLK_WZ_UNMAP 1

static const unsigned char qcow2_magic[4] = { 'Q', 'F', 'I', 0xfb };

static bool range_ok(const struct blk_target *t, uint64_t sector, uint64_t len, uint64_t *off)
{
	uint64_t end;

	if (sector > UINT64_MAX / BLK_SECTOR)
		return false;
	*off = sector * BLK_SECTOR;
	return !__builtin_add_overflow(*off, len, &end) && end <= t->disk->size;
}

static void fail(const struct blk_target *t, struct blk_req *r, uint8_t st)
{
	r->st = st;
	r->io = BLK_IO_NONE;
	atomic_fetch_add(&t->stats->errors, 1);
}

static void do_get_id(const struct blk_target *t, struct blk_req *r)
{
	const struct vq_chain *c = &r->chain;
	char id[VIRTIO_BLK_ID_BYTES] = { 0 };
	size_t room = c->in_len - 1, n;

	/* The serial is NUL padded to 20 bytes; no terminator when 20 long. */
	memcpy(id, t->disk->serial, strnlen(t->disk->serial, sizeof(id)));
	n = room < sizeof(id) ? room : sizeof(id);
	iov_from_buf(c->iov + c->nr_out, c->nr_in, 0, id, n);
	r->used += (uint32_t)n;
	r->st = VIRTIO_BLK_S_OK;
}

static void do_discard_wz(const struct blk_target *t, struct blk_req *r, uint32_t type)
{
	const struct vq_chain *c = &r->chain;
	size_t dlen = c->out_len - sizeof(struct blk_hdr);
	struct blk_dwz_seg seg;
	uint64_t off;
	int ret;

	if (t->ro) {
		fail(t, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (dlen == 0 || dlen % sizeof(seg) || dlen / sizeof(seg) > BLK_MAX_DISCARD_SEG) {
		log_guest("%s: discard/write-zeroes with %zu bytes of segments", t->name, dlen);
		fail(t, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	for (size_t i = 0; i < dlen / sizeof(seg); i++) {
		iov_to_buf(c->iov, c->nr_out, sizeof(struct blk_hdr) + i * sizeof(seg), &seg,
			   sizeof(seg));
		/* §5.2.6.2: unmap is reserved for discard; unknown flags */
		if ((type == VIRTIO_BLK_T_DISCARD && seg.flags) || (seg.flags & ~VIRTIO_BLK_WZ_UNMAP)) {
			fail(t, r, VIRTIO_BLK_S_UNSUPP);
			return;
		}
		if (seg.num_sectors > BLK_MAX_DISCARD_SECTORS ||
		    !range_ok(t, seg.sector, (uint64_t)seg.num_sectors * BLK_SECTOR, &off)) {
			log_guest("%s: discard/write-zeroes out of range", t->name);
			fail(t, r, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (seg.num_sectors == 0)
			continue;
		if (type == VIRTIO_BLK_T_DISCARD)
			ret = t->disk->ops->discard ?
			      t->disk->ops->discard(t->disk, off, (uint64_t)seg.num_sectors * BLK_SECTOR)
			      : -EOPNOTSUPP;
		else
			ret = t->disk->ops->write_zeroes ?
			      t->disk->ops->write_zeroes(t->disk, off,
							 (uint64_t)seg.num_sectors * BLK_SECTOR,
							 seg.flags & VIRTIO_BLK_WZ_UNMAP)
			      : -EOPNOTSUPP;
		/* Discard is a hint: a backend that cannot punch holes
		 * simply keeps the data (§5.2.6.2 allows that). */
		if (ret == -EOPNOTSUPP && type == VIRTIO_BLK_T_DISCARD)
			ret = 0;
		if (ret) {
			fail(t, r, ret == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR);
			return;
		}
	}
	atomic_fetch_add(&t->stats->discards, 1);
	r->st = VIRTIO_BLK_S_OK;
}

void blk_req_start(const struct blk_target *t, struct blk_req *r)
{
	const struct vq_chain *c = &r->chain;
	const struct iovec *last;
	struct blk_hdr h;
	size_t dlen;

	r->io = BLK_IO_NONE;
	r->status = NULL;
	r->used = 0;
	r->niov = 0;
	r->iov = NULL;
	r->len = 0;
	atomic_fetch_add(&t->stats->requests, 1);

	/* The status byte is the last writable byte (§5.2.6). */
	if (c->nr_in == 0) {
		log_guest("%s: request without a writable status byte", t->name);
		fail(t, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	last = &c->iov[c->nr_out + c->nr_in - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	r->used = 1;
	if (c->out_len < sizeof(h)) {
		log_guest("%s: request header too short (%u bytes)", t->name, c->out_len);
		fail(t, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	iov_to_buf(c->iov, c->nr_out, 0, &h, sizeof(h)); /* copy once */

	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool wr = h.type == VIRTIO_BLK_T_OUT;
		int n;

		/* Slice the data out of the chain in place (iov_slice only ever
		 * writes entries it has already read). */
		if (wr) {
			dlen = c->out_len - sizeof(h);
			r->iov = r->chain.iov;
			n = iov_slice(r->iov, c->nr_out, sizeof(h), dlen, r->iov, c->nr_out);
		} else {
			dlen = c->in_len - 1;
			r->iov = r->chain.iov + c->nr_out;
			n = iov_slice(r->iov, c->nr_in, 0, dlen, r->iov, c->nr_in);
		}
		/* §5.2.6.1: data length is a multiple of 512; reads have no
		 * readable data, writes no writable data but the status. */
		if (n < 0 || dlen % BLK_SECTOR || (wr ? c->in_len != 1 : c->out_len != sizeof(h))) {
			log_guest("%s: malformed %s request (%zu data bytes)", t->name,
				  wr ? "write" : "read", dlen);
			fail(t, r, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (!range_ok(t, h.sector, dlen, &r->off)) {
			log_guest("%s: %s beyond the end of the disk (sector %llu, %zu bytes)",
				  t->name, wr ? "write" : "read", (unsigned long long)h.sector, dlen);
			fail(t, r, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (wr && t->ro) {
			fail(t, r, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (wr && t->guard_sector0 && r->off == 0 && dlen >= sizeof(qcow2_magic)) {
			unsigned char m[4];
			iov_to_buf(r->iov, (unsigned)n, 0, m, sizeof(m));
			if (!memcmp(m, qcow2_magic, sizeof(m))) {
				log_guest("%s: refusing to write a qcow2 header into a probed raw image "
					  "(use format=raw to allow)", t->name);
				fail(t, r, VIRTIO_BLK_S_IOERR);
				return;
			}
		}
		r->niov = n;
		r->len = dlen;
		if (dlen == 0) {
			r->st = VIRTIO_BLK_S_OK;
			return;
		}
		r->io = wr ? BLK_IO_WRITE : BLK_IO_READ;
		return;
	}
	case VIRTIO_BLK_T_FLUSH:
		atomic_fetch_add(&t->stats->flushes, 1);
		/* durable on completion: fdatasync before the status */
		r->st = disk_flush(t->disk) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		return;
	case VIRTIO_BLK_T_GET_ID:
		do_get_id(t, r);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		do_discard_wz(t, r, h.type);
		return;
	default:
		r->st = VIRTIO_BLK_S_UNSUPP;
		return;
	}
}

void blk_req_io_done(const struct blk_target *t, struct blk_req *r, ssize_t res)
{
	if (res < 0 || (size_t)res != r->len) {
		log_guest("%s: host %s error at %llu: %s", t->name,
			  r->io == BLK_IO_WRITE ? "write" : "read", (unsigned long long)r->off,
			  res < 0 ? strerror((int)-res) : "short transfer");
		fail(t, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (r->io == BLK_IO_READ) {
		atomic_fetch_add(&t->stats->rd_bytes, r->len);
		r->used += (uint32_t)r->len;
	} else {
		atomic_fetch_add(&t->stats->wr_bytes, r->len);
	}
	r->io = BLK_IO_NONE;
	r->st = VIRTIO_BLK_S_OK;
}

void blk_req_do_io(const struct blk_target *t, struct blk_req *r)
{
	ssize_t res;

	if (r->io == BLK_IO_NONE)
		return;
	if (r->io == BLK_IO_READ)
		res = disk_preadv(t->disk, r->iov, r->niov, r->off);
	else
		res = disk_pwritev(t->disk, r->iov, r->niov, r->off);
	blk_req_io_done(t, r, res);
}

uint32_t blk_req_finish(struct blk_req *r)
{
	if (!r->status)
		return 0;
	__atomic_store_n(r->status, r->st, __ATOMIC_RELAXED);
	return r->used;
}
