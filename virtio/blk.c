/* virtio-blk device (virtio 1.2 §5.2): config space, features, and the
 * per-disk I/O thread.  See virtio/blk.h and docs/virtio.md.
 *
 * The I/O thread sleeps in epoll on: every queue's kick eventfd (signalled
 * by KVM through KVM_IOEVENTFD, no vCPU exit), the io_uring completion
 * eventfd, and a stop eventfd.  A kick drains its queue with kicks
 * suppressed (§2.7.10), submits data I/O to io_uring in one batch (or runs
 * it synchronously), and every completion batch ends with at most one
 * interrupt per queue, only if the driver asked for it (EVENT_IDX). */
#include "virtio/blk.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/disk_raw.h"
#include "virtio/pci.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define TAG_STOP 0xffff0000u
#define TAG_AIO  0xffff0001u
#define AIO_DEPTH 256

struct virtio_blk {
	struct virtio_pci vp;
	struct vm *vm;
	struct disk *disk;
	struct blk_target t;
	char name[24];
	uint16_t nq;
	uint8_t config[60];
	struct blk_stats stats;
	bool want_aio;

	/* I/O thread state, valid between start() and stop(). */
	pthread_t thread;
	bool running;
	bool halted;             /* NEEDS_RESET raised: no more popping */
	int stop_fd, epfd;
	struct disk_aio *aio;
	unsigned aio_inflight;
	struct blk_req *free_reqs; /* free list, linked through chain.iov[0] */
	bool need_signal[VIRTIO_PCI_MAX_QUEUES];
};

static void put_le(uint8_t *p, unsigned len, uint64_t v)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- request pool (I/O thread only) ---- */

static struct blk_req *req_get(struct virtio_blk *b)
{
	struct blk_req *r = b->free_reqs;

	if (r) {
		b->free_reqs = r->chain.iov[0].iov_base;
		return r;
	}
	return malloc(sizeof(*r));
}

static void req_put(struct virtio_blk *b, struct blk_req *r)
{
	r->chain.iov[0].iov_base = b->free_reqs;
	b->free_reqs = r;
}

static void req_pool_free(struct virtio_blk *b)
{
	while (b->free_reqs) {
		struct blk_req *r = b->free_reqs;
		b->free_reqs = r->chain.iov[0].iov_base;
		free(r);
	}
}

/* ---- the I/O path ---- */

static void complete(struct virtio_blk *b, struct blk_req *r)
{
	uint32_t used = blk_req_finish(r);

	vq_push(&b->vp.vq[r->q], r->chain.head, used);
	b->need_signal[r->q] = true;
	req_put(b, r);
}

static void halt(struct virtio_blk *b)
{
	b->halted = true;
	virtio_pci_needs_reset(&b->vp);
}

/* One interrupt per queue per batch, if the driver wants one. */
static void signal_batches(struct virtio_blk *b)
{
	for (uint16_t q = 0; q < b->nq; q++) {
		if (!b->need_signal[q])
			continue;
		b->need_signal[q] = false;
		atomic_fetch_add(&b->stats.batches, 1);
		if (vq_should_notify(&b->vp.vq[q]))
			virtio_pci_signal_queue(&b->vp, q);
	}
}

static void submit_aio(struct virtio_blk *b)
{
	if (b->aio && disk_aio_submit(b->aio))
		log_warn("%s: io_uring submit failed", b->name);
}

static void process_queue(struct virtio_blk *b, uint16_t qi)
{
	struct virtq *vq = &b->vp.vq[qi];

	if (!vq->ready)
		return;
	do {
		vq_disable_notify(vq);
		while (!b->halted) {
			struct blk_req *r = req_get(b);
			int ret;

			if (!r) {
				log_err("%s: out of memory", b->name);
				return; /* the kick stays pending in the ring */
			}
			ret = vq_pop(vq, &r->chain);
			if (ret <= 0) {
				if (ret == -EBADMSG) {
					/* Return the head (len 0) and stop. */
					vq_push(vq, r->chain.head, 0);
					b->need_signal[qi] = true;
				}
				req_put(b, r);
				if (ret < 0)
					halt(b);
				break;
			}
			r->q = qi;
			blk_req_start(&b->t, r);
			if (r->io != BLK_IO_NONE && b->aio) {
				int e = disk_aio_prep(b->aio, r->io == BLK_IO_WRITE, r->iov, r->niov,
						      r->off, r);
				if (e == -EAGAIN) { /* SQ full: push it out, retry once */
					submit_aio(b);
					e = disk_aio_prep(b->aio, r->io == BLK_IO_WRITE, r->iov,
							  r->niov, r->off, r);
				}
				if (e == 0) {
					b->aio_inflight++;
					continue;
				}
			}
			blk_req_do_io(&b->t, r);
			complete(b, r);
		}
		submit_aio(b);
		if (b->halted)
			return;
	} while (vq_enable_notify(vq)); /* raced with a new buffer: again */
}

static void reap_aio(struct virtio_blk *b)
{
	void *tags[64];
	int res[64], n;

	while ((n = disk_aio_reap(b->aio, tags, res, 64)) > 0) {
		for (int i = 0; i < n; i++) {
			struct blk_req *r = tags[i];

			b->aio_inflight--;
			if (res[i] >= 0 && (size_t)res[i] != r->len)
				blk_req_do_io(&b->t, r); /* short: redo it synchronously */
			else
				blk_req_io_done(&b->t, r, res[i]);
			complete(b, r);
		}
	}
}

static void *io_thread(void *arg)
{
	struct virtio_blk *b = arg;
	struct epoll_event ev[16];
	bool stop = false;

	while (!stop) {
		int n = epoll_wait(b->epfd, ev, 16, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("%s: epoll_wait: %s", b->name, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t tag = ev[i].data.u32;
			uint64_t cnt;

			if (tag == TAG_STOP) {
				stop = true;
			} else if (tag == TAG_AIO) {
				reap_aio(b);
			} else if (tag < b->nq) {
				if (read(b->vp.kick_fd[tag], &cnt, sizeof(cnt)) == sizeof(cnt))
					atomic_fetch_add(&b->stats.kicks, cnt);
				process_queue(b, (uint16_t)tag);
			}
		}
		signal_batches(b);
	}
	/* Reset: let in-flight I/O land before the rings go away. */
	while (b->aio_inflight) {
		struct pollfd p = { .fd = disk_aio_fd(b->aio), .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		reap_aio(b);
	}
	signal_batches(b);
	return NULL;
}

static int epoll_add(int ep, int fd, uint32_t tag)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) ? -errno : 0;
}

/* DRIVER_OK (vCPU thread, transport lock held). */
static int blk_start(void *opaque)
{
	struct virtio_blk *b = opaque;
	int r;

	b->halted = false;
	b->aio_inflight = 0;
	memset(b->need_signal, 0, sizeof(b->need_signal));
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->epfd < 0 || b->stop_fd < 0) {
		r = -errno;
		goto fail;
	}
	b->aio = b->want_aio ? disk_aio_create(b->disk, AIO_DEPTH) : NULL;
	if ((r = epoll_add(b->epfd, b->stop_fd, TAG_STOP)))
		goto fail;
	if (b->aio && (r = epoll_add(b->epfd, disk_aio_fd(b->aio), TAG_AIO)))
		goto fail;
	for (uint16_t q = 0; q < b->nq; q++)
		if ((r = epoll_add(b->epfd, b->vp.kick_fd[q], q)))
			goto fail;
	r = -pthread_create(&b->thread, NULL, io_thread, b);
	if (r)
		goto fail;
	b->running = true;
	return 0;
fail:
	log_err("%s: cannot start I/O thread: %s", b->name, strerror(-r));
	disk_aio_destroy(b->aio);
	b->aio = NULL;
	if (b->epfd >= 0)
		close(b->epfd);
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	b->epfd = b->stop_fd = -1;
	return r;
}

/* Reset (vCPU thread, transport lock held): stop and join the thread. */
static void blk_stop(void *opaque)
{
	struct virtio_blk *b = opaque;
	uint64_t one = 1;

	if (!b->running)
		return;
	if (write(b->stop_fd, &one, sizeof(one)) != sizeof(one))
		log_err("%s: cannot stop I/O thread", b->name);
	pthread_join(b->thread, NULL);
	b->running = false;
	close(b->epfd);
	close(b->stop_fd);
	b->epfd = b->stop_fd = -1;
	disk_aio_destroy(b->aio);
	b->aio = NULL;
	req_pool_free(b);
}

static void blk_cfg_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = opaque;

	memset(data, 0, len);
	if (off < sizeof(b->config))
		memcpy(data, b->config + off,
		       len < sizeof(b->config) - off ? len : sizeof(b->config) - off);
}

static void blk_cfg_write(void *opaque, uint32_t off, const uint8_t *data, uint32_t len)
{
	/* Only "writeback" is writable, and only with CONFIG_WCE (not offered). */
}

static const struct virtio_dev_ops blk_ops = {
	.cfg_read = blk_cfg_read,
	.cfg_write = blk_cfg_write,
	.start = blk_start,
	.stop = blk_stop,
};

/* §5.2.4 struct virtio_blk_config */
static void build_config(struct virtio_blk *b)
{
	uint8_t *c = b->config;

	put_le(c + 0, 8, b->disk->size / BLK_SECTOR);      /* capacity */
	put_le(c + 8, 4, 1u << 20);                         /* size_max */
	put_le(c + 12, 4, VQ_MAX_IOV - 2);                  /* seg_max */
	put_le(c + 20, 4, BLK_SECTOR);                      /* blk_size */
	put_le(c + 34, 2, b->nq);                           /* num_queues */
	put_le(c + 36, 4, BLK_MAX_DISCARD_SECTORS);         /* max_discard_sectors */
	put_le(c + 40, 4, BLK_MAX_DISCARD_SEG);             /* max_discard_seg */
	put_le(c + 44, 4, 8);                               /* discard alignment: 4 KiB */
	put_le(c + 48, 4, BLK_MAX_DISCARD_SECTORS);         /* max_write_zeroes_sectors */
	put_le(c + 52, 4, BLK_MAX_DISCARD_SEG);             /* max_write_zeroes_seg */
	c[56] = 1;                                          /* write_zeroes_may_unmap */
}

static int blk_create(struct vm *vm, int idx, struct virtio_blk **out)
{
	const struct disk_opts *o = &vm->cfg->disks[idx];
	char err[512];
	struct virtio_blk *b;
	uint64_t feat;
	const char *env;
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	r = disk_open(&b->disk, o, err, sizeof(err));
	if (r) {
		log_err("%s", err);
		free(b);
		return r;
	}
	snprintf(b->name, sizeof(b->name), "virtio-blk%d", idx & 0xff);
	b->vm = vm;
	b->epfd = b->stop_fd = -1;
	b->nq = (uint16_t)(vm->cfg->ncpus < 1 ? 1 :
			   vm->cfg->ncpus > VIRTIO_PCI_MAX_QUEUES ? VIRTIO_PCI_MAX_QUEUES
								   : vm->cfg->ncpus);
	b->t = (struct blk_target){
		.disk = b->disk, .name = b->name, .ro = b->disk->readonly,
		.guard_sector0 = b->disk->probed_raw, .stats = &b->stats,
	};
	/* io_uring where it measured faster (docs/benchmarks.md): with
	 * cache=none it keeps the guest's queue depth in flight against the
	 * device (4k random reads 2.5x preadv); through the page cache a
	 * synchronous copy is cheaper (random writes 2x).  MINIVMM_BLK_AIO=0/1
	 * overrides, for benchmarking. */
	env = getenv("MINIVMM_BLK_AIO");
	b->want_aio = env && *env ? strcmp(env, "0") != 0 : o->cache == DISK_CACHE_NONE;
	build_config(b);
	feat = 1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_SEG_MAX |
	       1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH;
	if (b->nq > 1)
		feat |= 1ULL << VIRTIO_BLK_F_MQ;
	if (b->disk->readonly)
		feat |= 1ULL << VIRTIO_BLK_F_RO;
	else {
		if (b->disk->ops->discard)
			feat |= 1ULL << VIRTIO_BLK_F_DISCARD;
		if (b->disk->ops->write_zeroes)
			feat |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	}
	r = virtio_pci_init(&b->vp, vm, b->name, VIRTIO_ID_BLOCK, b->nq, feat, &blk_ops, b);
	if (r) {
		disk_close(b->disk);
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

static void blk_destroy(struct virtio_blk *b)
{
	virtio_pci_exit(&b->vp); /* resets: stops the I/O thread */
	disk_close(b->disk);
	free(b);
}

int virtio_blk_init(struct vm *vm)
{
	for (int i = 0; i < vm->cfg->ndisks; i++) {
		int r = blk_create(vm, i, &vm->blk[i]);
		if (r) {
			while (i-- > 0) {
				blk_destroy(vm->blk[i]);
				vm->blk[i] = NULL;
			}
			return r;
		}
	}
	return 0;
}

void virtio_blk_exit(struct vm *vm)
{
	for (int i = MAX_DISKS - 1; i >= 0; i--) {
		if (vm->blk[i]) {
			blk_destroy(vm->blk[i]);
			vm->blk[i] = NULL;
		}
	}
}

void virtio_blk_stats(struct vm *vm)
{
	for (int i = 0; i < MAX_DISKS; i++) {
		struct virtio_blk *b = vm->blk[i];
		if (!b)
			continue;
		fprintf(stderr,
			"%s (%s): kicks %lu, userspace kicks %lu, interrupts %lu, requests %lu, "
			"read %lu B, written %lu B, flushes %lu, discards %lu, errors %lu\r\n",
			b->name, vm->cfg->disks[i].path, atomic_load(&b->stats.kicks),
			atomic_load(&b->vp.stat_notify_exits), atomic_load(&b->vp.stat_irqs),
			atomic_load(&b->stats.requests), atomic_load(&b->stats.rd_bytes),
			atomic_load(&b->stats.wr_bytes), atomic_load(&b->stats.flushes),
			atomic_load(&b->stats.discards), atomic_load(&b->stats.errors));
	}
}
