/* Crash safety: a writer process doing random writes, write-zeroes,
 * discards and flushes through our backend is SIGKILLed at a random
 * moment, many times.  Each time `qemu-img check` must report no
 * corruption (leaks are fine), every write acknowledged before the last
 * completed flush must be there (read back by qemu), and our backend must
 * reopen the image (repairing the dirty image) and leave it clean. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/qcow2/qcow2.h"
#include "tests/unit/qcow2/qtest.h"

#define DISK (16u << 20)
#define RUNS 50

enum { OP_WRITE, OP_ZERO, OP_DISCARD, OP_FLUSH };

struct op { int kind; uint64_t off, len; };

static uint64_t cluster;

static struct op make_op(uint64_t seed, uint64_t i)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 1;
	struct op o;
	uint64_t k = qt_rand(&s) % 100;
	o.kind = k < 70 ? OP_WRITE : k < 80 ? OP_ZERO : k < 88 ? OP_DISCARD : OP_FLUSH;
	o.len = ((qt_rand(&s) % 128) + 1) * 512;
	o.off = (qt_rand(&s) % (DISK / 512)) * 512;
	if (o.kind == OP_DISCARD) {
		/* Whole clusters so that the result is defined (zeros). */
		o.off &= ~(cluster - 1);
		o.len = ((qt_rand(&s) % 4) + 1) * cluster;
	}
	if (o.off + o.len > DISK)
		o.len = DISK - o.off;
	return o;
}

/* Byte value op i writes at disk offset p. */
static uint8_t val(uint64_t i, uint64_t p)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ (p >> 3) * 0xc2b2ae3d27d4eb4full;
	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (p & 7)));
}

static void apply(uint8_t *img, uint64_t i, const struct op *o)
{
	if (o->kind == OP_WRITE)
		for (uint64_t p = o->off; p < o->off + o->len; p++)
			img[p] = val(i, p);
	else if (o->kind == OP_ZERO || o->kind == OP_DISCARD)
		memset(img + o->off, 0, o->len);
}

/* Child: run ops forever, logging progress with unbuffered writes (they
 * survive SIGKILL in the page cache, like the image does). */
static void writer(const char *img, const char *log, uint64_t seed, bool tiny)
{
	struct disk *d;
	char err[256];
	int lfd = open(log, O_WRONLY | O_APPEND);
	/* Tiny caches: tables are written back on eviction, between flushes,
	 * so the write ordering is exercised at every step. */
	struct qcow2_opts qo = { .l2_cache_bytes = 1, .rb_cache_bytes = 1 };
	struct disk_opts dopts = { .path = img, .format = DISK_FMT_QCOW2 };
	int fd = open(img, O_RDWR);
	if (lfd < 0 || fd < 0 || qcow2_open_ex(&d, fd, &dopts, tiny ? &qo : NULL, err, sizeof(err)))
		_exit(2);
	uint8_t *buf = malloc(128 * 512);
	/* Debugging aid: stop (as if killed) after a given number of ops. */
	const char *stop = getenv("QCOW2_CRASH_STOP");
	for (uint64_t i = 0;; i++) {
		if (stop && i == strtoull(stop, NULL, 0)) {
			/* wait to be killed */
			pause();
		}
		struct op o = make_op(seed, i);
		char line[64];
		int n = snprintf(line, sizeof(line), "S %llu\n", (unsigned long long)i);
		if (write(lfd, line, n) != n)
			_exit(3);
		int r = 0;
		if (o.kind == OP_WRITE) {
			for (uint64_t p = 0; p < o.len; p++)
				buf[p] = val(i, o.off + p);
			struct iovec v = { buf, o.len };
			r = disk_pwritev(d, &v, 1, o.off) == (ssize_t)o.len ? 0 : -1;
		} else if (o.kind == OP_ZERO) {
			r = d->ops->write_zeroes(d, o.off, o.len, i & 1);
		} else if (o.kind == OP_DISCARD) {
			r = d->ops->discard(d, o.off, o.len);
		} else {
			r = disk_flush(d);
			n = snprintf(line, sizeof(line), "F %llu\n", (unsigned long long)i);
			if (!r && write(lfd, line, n) != n)
				_exit(3);
		}
		if (r)
			_exit(4);
	}
}

static void one_run(int run)
{
	const char *img = qt_path("crash.qcow2"), *log = qt_path("crash.log");
	const char *raw = qt_path("crash.raw");
	uint64_t seed = (uint64_t)run * 7919 + 17;
	static const uint64_t clusters[] = { 65536, 4096, 512, 65536, 2 << 20 };
	cluster = clusters[run % 5];

	qt_must("qemu-img create -q -f qcow2 -o cluster_size=%llu%s '%s' %u",
		(unsigned long long)cluster, run % 7 == 3 ? ",refcount_bits=1" : "", img, DISK);
	/* Every fourth run: the disk is full of data shared with an internal
	 * snapshot, so writes copy-on-write clusters and L2 tables and drop
	 * refcounts; the snapshot must survive the crash unchanged. */
	bool snap = run % 4 == 2 && run % 7 != 3;   /* refcount_bits=1 cannot share */
	const char *snapraw = qt_path("crash-snap.raw"), *snapraw2 = qt_path("crash-snap2.raw");
	if (snap)
		qt_must("qemu-io -f qcow2 -c 'write -P 0x5c 0 %u' '%s' >/dev/null && "
			"qemu-img snapshot -c s '%s' && "
			"qemu-img convert -O raw -l snapshot.name=s '%s' '%s'", DISK, img, img, img, snapraw);
	/* The child may be killed before it even opens the log: never read
	 * a previous run's log. */
	unlink(log);
	close(open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		writer(img, log, seed, run % 2);
	struct timespec ts = { 0, (long)(5 + (seed * 31) % 120) * 1000000L };
	if (getenv("QCOW2_CRASH_DELAY_US"))
		ts.tv_nsec = atol(getenv("QCOW2_CRASH_DELAY_US")) * 1000L;
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFSIGNALED(st));   /* it must not have died on its own */

	/* Progress: last completed flush F, last started op S. */
	size_t ln;
	uint8_t *lb = qt_read_file(log, &ln);
	char *ls = realloc(lb, ln + 1);
	ls[ln] = 0;
	long long last_flush = -1, last_start = -1;
	for (char *p = strtok(ls, "\n"); p; p = strtok(NULL, "\n")) {
		if (p[0] == 'F')
			last_flush = atoll(p + 2);
		else if (p[0] == 'S')
			last_start = atoll(p + 2);
	}
	free(ls);

	int rc = qt_sh("qemu-img check -q '%s' >/dev/null 2>&1", img);
	if (rc != 0 && rc != 3)
		qt_sh("qemu-img check '%s' 1>&2", img);
	assert_true(rc == 0 || rc == 3);

	/* Flushed data is there; bytes may also come from ops started after
	 * the flush (they may or may not have landed). */
	size_t n;
	qt_must("qemu-img convert -U -O raw '%s' '%s'", img, raw);
	uint8_t *actual = qt_read_file(raw, &n);
	assert_int_equal(n, DISK);
	uint8_t *expect = calloc(1, DISK);
	if (snap)
		memset(expect, 0x5c, DISK);
	for (long long i = 0; i <= last_flush; i++) {
		struct op o = make_op(seed, i);
		apply(expect, i, &o);
	}
	uint64_t bad = 0;
	for (uint64_t p = 0; p < DISK; p++) {
		if (actual[p] == expect[p])
			continue;
		bool ok = false;
		for (long long i = last_flush + 1; i <= last_start && !ok; i++) {
			struct op o = make_op(seed, i);
			if (p >= o.off && p < o.off + o.len)
				ok = o.kind == OP_WRITE ? actual[p] == val(i, p) : actual[p] == 0;
		}
		if (!ok && bad++ == 0)
			fprintf(stderr, "run %d: byte %llu is %02x, expected %02x (flush %lld, start %lld)\n",
				run, (unsigned long long)p, actual[p], expect[p], last_flush, last_start);
	}
	free(actual);
	free(expect);
	if (bad) {
		for (long long i = last_flush - 3; i <= last_start; i++) {
			struct op o = make_op(seed, i);
			fprintf(stderr, "  op %lld: kind %d off %llu len %llu\n", i, o.kind,
				(unsigned long long)o.off, (unsigned long long)o.len);
		}
		if (getenv("QCOW2_CRASH_KEEP"))
			qt_sh("cp '%s' /tmp/crashfail-%d.qcow2", img, run);
	}
	assert_int_equal(bad, 0);

	if (snap) {
		qt_must("qemu-img convert -U -O raw -l snapshot.name=s '%s' '%s'", img, snapraw2);
		qt_must("cmp -s '%s' '%s'", snapraw, snapraw2);
	}
	/* We reopen the dirty image read-write (repairing leaks) and leave
	 * it clean. */
	struct disk *d;
	char err[256] = "";
	int r = qt_open(&d, img, false, err, sizeof(err));
	if (r)
		fprintf(stderr, "reopen: %s\n", err);
	assert_int_equal(r, 0);
	d->ops->close(d);
	qt_must("qemu-img check -q '%s'", img);
	if (run % 10 == 0)
		fprintf(stderr, "run %d: cluster %llu%s, flushed %lld of %lld ops, check rc %d\n", run,
			(unsigned long long)cluster, snap ? " (snapshot)" : "", last_flush, last_start, rc);
}

static void test_crash(void **s)
{
	const char *only = getenv("QCOW2_CRASH_RUN");
	for (int run = 0; run < RUNS; run++)
		if (!only || run == atoi(only))
			one_run(run);
}

static int teardown(void **s) { qt_cleanup(); return 0; }

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_crash) };
	return cmocka_run_group_tests(tests, NULL, teardown);
}
