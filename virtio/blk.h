/* virtio-blk (virtio 1.2 §5.2).
 *
 * virtio/blk_req.c: one request, from a popped chain to a status byte.  It
 *   copies the header once, checks directions, sizes, sector + length
 *   against the capacity (checked add) and a writable status byte, runs
 *   everything but data I/O itself and describes the data I/O (host iovecs
 *   into guest RAM) for the caller.  No transport, no threads: unit-tested.
 * virtio/blk.c: the device: config space, features, an I/O thread per disk
 *   (epoll on the queue kick eventfds and the io_uring completion eventfd),
 *   batched completions, one interrupt per batch, the device-table hooks. */
#ifndef MINIVMM_VIRTIO_BLK_H
#define MINIVMM_VIRTIO_BLK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "devices/disk.h"
#include "virtio/queue.h"

struct vm;

#define VIRTIO_ID_BLOCK 2

/* §5.2.3 feature bits */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* §5.2.6 request types and status */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define BLK_SECTOR 512
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per segment */
#define BLK_MAX_DISCARD_SEG 1

struct blk_stats {
	atomic_ulong kicks;      /* guest notifications (eventfd counts) */
	atomic_ulong requests;
	atomic_ulong rd_bytes, wr_bytes;
	atomic_ulong flushes, discards, errors;
	atomic_ulong batches;    /* completion batches (<= interrupts wanted) */
};

/* What the request layer needs to know about the disk. */
struct blk_target {
	struct disk *disk;
	const char *name;
	bool ro;                 /* VIRTIO_BLK_F_RO advertised */
	bool guard_sector0;      /* probed raw: refuse a qcow2 magic at 0 */
	struct blk_stats *stats;
};

enum blk_io { BLK_IO_NONE, BLK_IO_READ, BLK_IO_WRITE };

struct blk_req {
	struct vq_chain chain;   /* filled by vq_pop */
	uint16_t q;              /* queue it came from */
	enum blk_io io;          /* data I/O still to do */
	uint64_t off;            /* byte offset of the data I/O */
	size_t len;              /* data bytes */
	int niov;
	struct iovec *iov;       /* data iovecs: trimmed in place in chain.iov */
	uint8_t *status;         /* the status byte in guest RAM, or NULL */
	uint8_t st;              /* VIRTIO_BLK_S_* to report */
	uint32_t used;           /* bytes written to writable buffers */
};

/* Parse and run r->chain except for data I/O.  On return either
 * r->io == BLK_IO_NONE and r->st is final, or the caller must move r->len
 * bytes between r->iov and the disk at r->off and call blk_req_io_done. */
void blk_req_start(const struct blk_target *t, struct blk_req *r);
/* res: bytes transferred or -errno. */
void blk_req_io_done(const struct blk_target *t, struct blk_req *r, ssize_t res);
/* Synchronous data I/O through the disk ops (start must have run). */
void blk_req_do_io(const struct blk_target *t, struct blk_req *r);
/* Write the status byte; returns the used length for vq_push. */
uint32_t blk_req_finish(struct blk_req *r);

/* Device-table hooks (vmm/devices.c): one device per cfg->disks[]. */
int virtio_blk_init(struct vm *vm);
void virtio_blk_exit(struct vm *vm);
void virtio_blk_stats(struct vm *vm);

#endif
