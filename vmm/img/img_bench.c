/* minivmm img bench: like `qemu-img bench` (same options and offset
 * pattern: start at -o, advance by -S, wrap at the image size) so the two
 * can be compared on the same image.
 *
 * Requests whose guest range maps to one contiguous host range (qcow2 data
 * clusters; for writes only clusters that may be overwritten in place) go
 * to io_uring (O_DIRECT writes: a thread pool) with up to -d in flight;
 * anything else (holes, zero or
 * compressed clusters, allocating writes) goes through the synchronous
 * backend path, which is what the VMM's I/O thread does as well. */
#include "vmm/img/img_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/qcow2/qcow2.h"

struct bench {
	struct disk *d;
	int fd;            /* data fd for io_uring */
	bool qcow2, write;
	uint64_t bufsize, step, offset, size;
	unsigned depth;
	uint64_t count, flush_interval;
	uint8_t **bufs;
	int *free_slots;
	int nfree;
	uint64_t sync_reqs, async_reqs;
	bool async_flag;      /* IOSQE_ASYNC on data requests */
	bool use_pool;        /* threads instead of io_uring */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Host offset for an async request, or -1 for the synchronous path. */
static int64_t map(struct bench *b, uint64_t off)
{
	struct qcow2_extent e;

	if (!b->qcow2)
		return (int64_t)off;
	if (qcow2_map_extent(b->d, off, b->bufsize, &e))
		return -1;
	if (e.type != QCOW2_EXT_DATA || e.len < b->bufsize || (b->write && !e.writable))
		return -1;
	return (int64_t)e.host;
}

static int sync_io(struct bench *b, uint8_t *buf, uint64_t off)
{
	struct iovec v = { buf, b->bufsize };
	ssize_t r = b->write ? disk_pwritev(b->d, &v, 1, off) : disk_preadv(b->d, &v, 1, off);
	return r < 0 ? (int)r : 0;
}

static int flush_all(struct bench *b)
{
	int r = disk_flush(b->d);
	if (!r && !b->qcow2 && fdatasync(b->fd))
		r = -errno;
	return r;
}

static int run(struct bench *b)
{
	struct io_uring ring;
	uint64_t submitted = 0, completed = 0, inflight = 0, off = b->offset, since_flush = 0;
	int r = io_uring_queue_init(b->depth, &ring, 0);

	if (r) {
		fprintf(stderr, "minivmm img bench: io_uring: %s\n", strerror(-r));
		return r;
	}
	/* Requests punted to io-wq may use up to depth workers (the default
	 * bound for regular files is a few per CPU). */
	unsigned int workers[2] = { b->depth, b->depth };
	io_uring_register_iowq_max_workers(&ring, workers);
	while (completed < b->count) {
		bool queued = false;
		while (submitted < b->count && b->nfree > 0) {
			int slot = b->free_slots[--b->nfree];
			uint64_t o = off;
			off += b->step;
			off = b->size ? off % b->size : 0;
			submitted++;
			int64_t host = map(b, o);
			if (host < 0) {
				b->sync_reqs++;
				r = sync_io(b, b->bufs[slot], o);
				b->free_slots[b->nfree++] = slot;
				if (r)
					goto out;
				completed++;
				since_flush++;
				continue;
			}
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (!sqe) {
				/* Cannot happen: depth slots, depth SQEs. */
				r = -EBUSY;
				goto out;
			}
			if (b->write)
				io_uring_prep_write(sqe, b->fd, b->bufs[slot], (unsigned)b->bufsize, (uint64_t)host);
			else
				io_uring_prep_read(sqe, b->fd, b->bufs[slot], (unsigned)b->bufsize, (uint64_t)host);
			io_uring_sqe_set_data64(sqe, (uint64_t)slot);
			/* Small page-cache reads are fastest inline. */
			if (b->async_flag)
				io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
			inflight++;
			b->async_reqs++;
			queued = true;
		}
		if (queued || inflight) {
			r = io_uring_submit_and_wait(&ring, inflight ? 1 : 0);
			if (r < 0)
				goto out;
		}
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			if (cqe->res != (int)b->bufsize) {
				r = cqe->res < 0 ? cqe->res : -EIO;
				io_uring_cq_advance(&ring, n + 1);
				goto out;
			}
			b->free_slots[b->nfree++] = (int)io_uring_cqe_get_data64(cqe);
			n++;
		}
		io_uring_cq_advance(&ring, n);
		inflight -= n;
		completed += n;
		since_flush += n;
		if (b->flush_interval && since_flush >= b->flush_interval) {
			/* Drain, then flush, like qemu-img bench --flush-interval. */
			while (inflight) {
				r = io_uring_wait_cqe(&ring, &cqe);
				if (r)
					goto out;
				b->free_slots[b->nfree++] = (int)io_uring_cqe_get_data64(cqe);
				io_uring_cqe_seen(&ring, cqe);
				inflight--;
				completed++;
			}
			r = flush_all(b);
			if (r)
				goto out;
			since_flush = 0;
		}
	}
	r = 0;
out:
	io_uring_queue_exit(&ring);
	return r;
}

/* ---- thread pool, for O_DIRECT writes ----
 * io_uring cannot always issue an O_DIRECT write without blocking (e.g.
 * the file's mtime must be updated), and the writes it then punts to io-wq
 * workers are serialized per file on filesystems without parallel-DIO
 * support, i.e. depth 1.  Plain threads doing pwrite keep -d writes in
 * flight. */
struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	int *jobs, njobs;             /* pending slots */
	uint64_t *host;               /* per slot */
	int *res_slot, *res, nres;    /* completions */
	bool stop;
	struct bench *b;
};

static void *pool_worker(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->njobs && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		int slot = p->jobs[--p->njobs];
		pthread_mutex_unlock(&p->lock);
		ssize_t n = pwrite(p->b->fd, p->b->bufs[slot], p->b->bufsize, (off_t)p->host[slot]);
		int res = n == (ssize_t)p->b->bufsize ? 0 : n < 0 ? -errno : -EIO;
		pthread_mutex_lock(&p->lock);
		p->res_slot[p->nres] = slot;
		p->res[p->nres++] = res;
		pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int run_pool(struct bench *b)
{
	struct pool p = { .b = b };
	unsigned nthreads = b->depth < 64 ? b->depth : 64;
	pthread_t *th = calloc(nthreads, sizeof(*th));
	uint64_t submitted = 0, completed = 0, inflight = 0, off = b->offset, since_flush = 0;
	int r = 0;

	p.jobs = calloc(b->depth, sizeof(int));
	p.host = calloc(b->depth, sizeof(uint64_t));
	p.res_slot = calloc(b->depth, sizeof(int));
	p.res = calloc(b->depth, sizeof(int));
	if (!th || !p.jobs || !p.host || !p.res_slot || !p.res)
		return -ENOMEM;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.work, NULL);
	pthread_cond_init(&p.done, NULL);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, pool_worker, &p);
	while (completed < b->count && !r) {
		while (submitted < b->count && b->nfree > 0) {
			int slot = b->free_slots[--b->nfree];
			uint64_t o = off;
			off += b->step;
			off = b->size ? off % b->size : 0;
			submitted++;
			int64_t host = map(b, o);
			if (host < 0) {
				b->sync_reqs++;
				r = sync_io(b, b->bufs[slot], o);
				b->free_slots[b->nfree++] = slot;
				if (r)
					break;
				completed++;
				since_flush++;
				continue;
			}
			b->async_reqs++;
			pthread_mutex_lock(&p.lock);
			p.host[slot] = (uint64_t)host;
			p.jobs[p.njobs++] = slot;
			pthread_cond_signal(&p.work);
			pthread_mutex_unlock(&p.lock);
			inflight++;
		}
		if (r || !inflight)
			continue;
		pthread_mutex_lock(&p.lock);
		while (!p.nres)
			pthread_cond_wait(&p.done, &p.lock);
		for (int i = 0; i < p.nres; i++) {
			if (p.res[i] && !r)
				r = p.res[i];
			b->free_slots[b->nfree++] = p.res_slot[i];
		}
		inflight -= (uint64_t)p.nres;
		completed += (uint64_t)p.nres;
		since_flush += (uint64_t)p.nres;
		p.nres = 0;
		pthread_mutex_unlock(&p.lock);
		if (!r && b->flush_interval && since_flush >= b->flush_interval && !inflight) {
			r = flush_all(b);
			since_flush = 0;
		}
	}
	/* Let everything in flight finish before the buffers go away. */
	pthread_mutex_lock(&p.lock);
	while (inflight) {
		while (!p.nres)
			pthread_cond_wait(&p.done, &p.lock);
		inflight -= (uint64_t)p.nres;
		p.nres = 0;
	}
	p.stop = true;
	pthread_cond_broadcast(&p.work);
	pthread_mutex_unlock(&p.lock);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	free(th);
	free(p.jobs);
	free(p.host);
	free(p.res_slot);
	free(p.res);
	return r;
}

int img_bench(int argc, char **argv)
{
	struct bench b = { .bufsize = 4096, .depth = 64, .count = 75000 };
	enum disk_format fmt = DISK_FMT_PROBE;
	enum disk_cache cache = DISK_CACHE_WRITEBACK;
	bool quiet = false, step_set = false;
	uint64_t v;
	int c;
	static const struct option lo[] = {
		{ "flush-interval", required_argument, NULL, 'F' },
		{ "pattern", required_argument, NULL, 'P' },
		{ "no-drain", no_argument, NULL, 'D' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 }
	};
	int pattern = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:d:f:ni:o:qs:S:t:wU", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (img_parse_size(optarg, &b.count) || !b.count)
				goto bad;
			break;
		case 'd':
			if (img_parse_size(optarg, &v) || !v || v > 4096)
				goto bad;
			b.depth = (unsigned)v;
			break;
		case 'f':
			if (img_parse_format(optarg, &fmt))
				goto bad;
			break;
		case 'o':
			if (img_parse_size(optarg, &b.offset))
				goto bad;
			break;
		case 's':
			if (img_parse_size(optarg, &b.bufsize) || !b.bufsize || b.bufsize > (1u << 30))
				goto bad;
			break;
		case 'S':
			if (img_parse_size(optarg, &b.step))
				goto bad;
			step_set = true;
			break;
		case 't':
			if (img_parse_cache(optarg, &cache))
				goto bad;
			break;
		case 'w': b.write = true; break;
		case 'q': quiet = true; break;
		case 'F':
			if (img_parse_size(optarg, &b.flush_interval))
				goto bad;
			break;
		case 'P': pattern = atoi(optarg); break;
		case 'n': case 'i': case 'D': case 'U': break;
		default: return 1;
		}
	}
	if (!step_set)
		b.step = b.bufsize;
	if (optind != argc - 1) {
		fprintf(stderr, "minivmm img bench: exactly one FILE expected\n");
		return 1;
	}
	if (b.flush_interval && !b.write) {
		fprintf(stderr, "minivmm img bench: --flush-interval is only available in write tests\n");
		return 1;
	}
	const char *path = argv[optind];
	if (img_open(&b.d, path, fmt, !b.write, cache))
		return 1;
	b.size = b.d->size;
	/* Large page-cache reads do better on io-wq workers (several CPUs)
	 * than inline (punted buffered writes would be serialized per file
	 * instead); O_DIRECT writes use the thread pool (see struct pool). */
	b.async_flag = cache != DISK_CACHE_NONE && !b.write && b.bufsize >= 16384;
	b.use_pool = cache == DISK_CACHE_NONE && b.write;
	if (getenv("MINIVMM_BENCH_ENGINE"))
		b.use_pool = !strcmp(getenv("MINIVMM_BENCH_ENGINE"), "threads");
	b.qcow2 = qcow2_is_qcow2(b.d);
	int own_fd = -1;
	if (b.qcow2) {
		b.fd = qcow2_data_fd(b.d);
	} else {
		/* Raw: the same file, O_DIRECT for cache=none. */
		own_fd = open(path, (b.write ? O_RDWR : O_RDONLY) | O_CLOEXEC |
			      (cache == DISK_CACHE_NONE ? O_DIRECT : 0));
		if (own_fd < 0) {
			fprintf(stderr, "minivmm img bench: %s: %s\n", path, strerror(errno));
			b.d->ops->close(b.d);
			return 1;
		}
		b.fd = own_fd;
	}
	if (b.offset + b.bufsize > b.size) {
		fprintf(stderr, "minivmm img bench: offset + buffer size beyond the image\n");
		b.d->ops->close(b.d);
		return 1;
	}
	b.bufs = calloc(b.depth, sizeof(*b.bufs));
	b.free_slots = calloc(b.depth, sizeof(int));
	for (unsigned i = 0; b.bufs && b.free_slots && i < b.depth; i++) {
		b.bufs[i] = aligned_alloc(4096, (b.bufsize + 4095) & ~4095ull);
		if (!b.bufs[i])
			break;
		memset(b.bufs[i], pattern, b.bufsize);
		b.free_slots[b.nfree++] = (int)i;
	}
	if (b.nfree != (int)b.depth) {
		fprintf(stderr, "minivmm img bench: out of memory\n");
		return 1;
	}
	if (!quiet)
		printf("Sending %llu %s requests, %llu bytes each, %u in parallel "
		       "(starting at offset %llu, step size %llu)\n",
		       (unsigned long long)b.count, b.write ? "write" : "read",
		       (unsigned long long)b.bufsize, b.depth, (unsigned long long)b.offset,
		       (unsigned long long)b.step);
	double t0 = now();
	int r = b.use_pool ? run_pool(&b) : run(&b);
	double t1 = now();
	if (r)
		fprintf(stderr, "minivmm img bench: request failed: %s\n", strerror(-r));
	else if (!quiet)
		printf("Run completed in %.3f seconds.\n", t1 - t0);
	if (getenv("MINIVMM_BENCH_VERBOSE"))
		fprintf(stderr, "async %llu, sync %llu\n", (unsigned long long)b.async_reqs,
			(unsigned long long)b.sync_reqs);
	for (unsigned i = 0; i < b.depth; i++)
		free(b.bufs[i]);
	free(b.bufs);
	free(b.free_slots);
	if (own_fd >= 0)
		close(own_fd);
	b.d->ops->close(b.d);
	return r ? 1 : 0;
bad:
	fprintf(stderr, "minivmm img bench: invalid value '%s' for -%c\n", optarg, c);
	return 1;
}
