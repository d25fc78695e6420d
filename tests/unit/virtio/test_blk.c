/* virtio-blk request handling (virtio/blk_req.c) with the raw file backend
 * (devices/disk.c, devices/disk_raw.c), over fake guest memory.  Results
 * are checked by reading the image file directly, not through the code
 * under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/disk_raw.h"
#include "virtio/blk.h"
#include "vq_driver.h"

#define DISK_SIZE (1u << 20)

struct ctx {
	struct fake_vm vm;
	struct vq_driver d;
	struct virtq q;
	struct blk_req r;
	struct blk_stats stats;
	struct blk_target t;
	struct disk *disk;
	char path[64];
	int fd; /* independent fd for checking */
};

static int open_disk(struct ctx *x, struct disk_opts *o)
{
	char err[256];
	int r = disk_open(&x->disk, o, err, sizeof(err));

	if (r)
		return r;
	x->t = (struct blk_target){ .disk = x->disk, .name = "test", .ro = x->disk->readonly,
				    .guard_sector0 = x->disk->probed_raw, .stats = &x->stats };
	return 0;
}

static int setup(void **state)
{
	struct ctx *x = calloc(1, sizeof(*x));
	struct disk_opts o = { 0 };

	strcpy(x->path, "/var/tmp/minivmm-blk-XXXXXX");
	x->fd = mkstemp(x->path);
	assert_true(x->fd >= 0);
	assert_int_equal(ftruncate(x->fd, DISK_SIZE), 0);
	fake_vm_init(&x->vm);
	vqd_init(&x->d, &x->vm, 64, &x->q);
	x->q.indirect = true;
	assert_int_equal(vq_enable(&x->q), 0);
	o.path = x->path;
	o.serial = "SERIAL-0123456789ABC"; /* exactly 20 bytes */
	assert_int_equal(open_disk(x, &o), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *x = *state;

	if (x->disk)
		disk_close(x->disk);
	close(x->fd);
	unlink(x->path);
	fake_vm_free(&x->vm);
	free(x);
	return 0;
}

struct hdr { uint32_t type, reserved; uint64_t sector; };

/* Build header + data buffers (each seg bytes) + status, submit, run the
 * request synchronously; returns the status byte as seen by the guest. */
static int run(struct ctx *x, uint32_t type, uint64_t sector, uint64_t *data, int nseg,
	       uint32_t seg, bool data_write, uint32_t *used)
{
	struct vqd_buf b[16];
	uint64_t h = vqd_alloc(&x->d, 16), st = vqd_alloc(&x->d, 1);
	struct hdr hd = { type, 0, sector };
	int n = 0;

	memcpy(fake_host(&x->vm, h), &hd, sizeof(hd));
	*(uint8_t *)fake_host(&x->vm, st) = 0xaa;
	b[n++] = (struct vqd_buf){ h, 16, false };
	for (int i = 0; i < nseg; i++)
		b[n++] = (struct vqd_buf){ data[i], seg, data_write };
	b[n++] = (struct vqd_buf){ st, 1, true };
	vqd_publish(&x->d, vqd_chain(&x->d, b, n));
	assert_int_equal(vq_pop(&x->q, &x->r.chain), 1);
	blk_req_start(&x->t, &x->r);
	blk_req_do_io(&x->t, &x->r);
	*used = blk_req_finish(&x->r);
	vq_push(&x->q, x->r.chain.head, *used);
	return *(uint8_t *)fake_host(&x->vm, st);
}

static void fill(struct ctx *x, uint64_t gpa, uint32_t len, uint8_t seed)
{
	uint8_t *p = fake_host(&x->vm, gpa);

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void test_write_read(void **state)
{
	struct ctx *x = *state;
	uint64_t w[3], rd[3];
	uint8_t file[3 * 1024];
	uint32_t used;

	for (int i = 0; i < 3; i++) {
		w[i] = vqd_alloc(&x->d, 1024);
		fill(x, w[i], 1024, (uint8_t)(i + 1));
	}
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 5, w, 3, 1024, false, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	/* independent check: the bytes are in the file at 5 * 512 */
	assert_int_equal(pread(x->fd, file, sizeof(file), 5 * 512), sizeof(file));
	for (int i = 0; i < 3; i++)
		assert_memory_equal(file + i * 1024, fake_host(&x->vm, w[i]), 1024);
	/* read it back in two 1536-byte segments */
	for (int i = 0; i < 2; i++)
		rd[i] = vqd_alloc(&x->d, 1536);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 5, rd, 2, 1536, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 3073);
	assert_memory_equal(fake_host(&x->vm, rd[0]), file, 1536);
	assert_memory_equal(fake_host(&x->vm, rd[1]), file + 1536, 1536);
	assert_int_equal(x->stats.rd_bytes, 3072);
	assert_int_equal(x->stats.wr_bytes, 3072);
}

static void test_host_pattern_odd_offsets(void **state)
{
	struct ctx *x = *state;
	uint8_t pat[4096];
	uint64_t rd = vqd_alloc(&x->d, 4096);
	uint32_t used;

	for (unsigned i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 13 + 5);
	assert_int_equal(pwrite(x->fd, pat, sizeof(pat), 7 * 512), sizeof(pat));
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 9, &rd, 1, 1024, true, &used), VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_host(&x->vm, rd), pat + 2 * 512, 1024);
}

static void test_out_of_range(void **state)
{
	struct ctx *x = *state;
	uint64_t d = vqd_alloc(&x->d, 1024);
	uint32_t used;

	/* last sector is fine, one more is not */
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, &d, 1, 512, true, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, &d, 1, 1024, true, &used),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, DISK_SIZE / 512, &d, 1, 512, false, &used),
			 VIRTIO_BLK_S_IOERR);
	/* sector * 512 overflows; sector * 512 + len wraps */
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, UINT64_MAX / 256, &d, 1, 512, true, &used),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, UINT64_MAX / 512, &d, 1, 512, false, &used),
			 VIRTIO_BLK_S_IOERR);
}

static void test_bad_length(void **state)
{
	struct ctx *x = *state;
	uint64_t d = vqd_alloc(&x->d, 1024);
	uint32_t used;

	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 0, &d, 1, 511, true, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 0, &d, 1, 700, false, &used), VIRTIO_BLK_S_IOERR);
	/* write with its data in the writable part */
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 0, &d, 1, 512, true, &used), VIRTIO_BLK_S_IOERR);
	/* read with readable data after the header */
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 0, &d, 1, 512, false, &used), VIRTIO_BLK_S_IOERR);
}

static void test_no_status(void **state)
{
	struct ctx *x = *state;
	uint64_t h = vqd_alloc(&x->d, 16);
	struct hdr hd = { VIRTIO_BLK_T_FLUSH, 0, 0 };
	struct vqd_buf b[] = { { h, 16, false }, { vqd_alloc(&x->d, 1), 1, false } };

	memcpy(fake_host(&x->vm, h), &hd, sizeof(hd));
	vqd_publish(&x->d, vqd_chain(&x->d, b, 2));
	assert_int_equal(vq_pop(&x->q, &x->r.chain), 1);
	blk_req_start(&x->t, &x->r);
	assert_null(x->r.status);
	assert_int_equal(blk_req_finish(&x->r), 0);
	assert_int_equal(x->stats.errors, 1);
}

static void test_short_header(void **state)
{
	struct ctx *x = *state;
	struct vqd_buf b[] = { { vqd_alloc(&x->d, 8), 8, false }, { vqd_alloc(&x->d, 1), 1, true } };
	uint32_t used;

	vqd_publish(&x->d, vqd_chain(&x->d, b, 2));
	assert_int_equal(vq_pop(&x->q, &x->r.chain), 1);
	blk_req_start(&x->t, &x->r);
	used = blk_req_finish(&x->r);
	assert_int_equal(used, 1);
	assert_int_equal(*(uint8_t *)fake_host(&x->vm, b[1].gpa), VIRTIO_BLK_S_IOERR);
}

static void test_flush_getid_unsupp(void **state)
{
	struct ctx *x = *state;
	uint64_t id = vqd_alloc(&x->d, 20);
	uint32_t used;

	assert_int_equal(run(x, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0, false, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(run(x, VIRTIO_BLK_T_GET_ID, 0, &id, 1, 20, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(fake_host(&x->vm, id), "SERIAL-0123456789ABC", 20);
	assert_int_equal(run(x, 99, 0, NULL, 0, 0, false, &used), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(run(x, 10 /* GET_LIFETIME */, 0, NULL, 0, 0, false, &used),
			 VIRTIO_BLK_S_UNSUPP);
}

static int dwz(struct ctx *x, uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
	uint64_t s = vqd_alloc(&x->d, 16);
	struct { uint64_t sector; uint32_t num, flags; } seg = { sector, n, flags };
	uint32_t used;

	memcpy(fake_host(&x->vm, s), &seg, sizeof(seg));
	return run(x, type, 0, &s, 1, 16, false, &used);
}

static void test_discard_punches_hole(void **state)
{
	struct ctx *x = *state;
	static uint8_t buf[DISK_SIZE], zero[256 * 1024];
	struct stat st0, st1;

	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(pwrite(x->fd, buf, sizeof(buf), 0), sizeof(buf));
	fsync(x->fd);
	assert_int_equal(fstat(x->fd, &st0), 0);
	assert_int_equal(dwz(x, VIRTIO_BLK_T_DISCARD, 512, 512, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(fstat(x->fd, &st1), 0);
	assert_true(st1.st_blocks < st0.st_blocks);          /* really sparse again */
	assert_int_equal(st1.st_size, DISK_SIZE);            /* size unchanged */
	assert_int_equal(pread(x->fd, buf, sizeof(zero), 512 * 512), sizeof(zero));
	assert_memory_equal(buf, zero, sizeof(zero));
	assert_int_equal(lseek(x->fd, 512 * 512, SEEK_HOLE), 512 * 512);
	/* unmap flag is reserved for discard */
	assert_int_equal(dwz(x, VIRTIO_BLK_T_DISCARD, 0, 8, 1), VIRTIO_BLK_S_UNSUPP);
	/* out of range */
	assert_int_equal(dwz(x, VIRTIO_BLK_T_DISCARD, DISK_SIZE / 512 - 4, 8, 0),
			 VIRTIO_BLK_S_IOERR);
}

static void test_write_zeroes(void **state)
{
	struct ctx *x = *state;
	uint8_t buf[8192], zero[8192] = { 0 };

	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(pwrite(x->fd, buf, sizeof(buf), 0), sizeof(buf));
	assert_int_equal(dwz(x, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(x, VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(x->fd, buf, sizeof(buf), 0), sizeof(buf));
	assert_memory_equal(buf, zero, sizeof(buf));
	assert_int_equal(dwz(x, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2), VIRTIO_BLK_S_UNSUPP);
}

static void test_readonly(void **state)
{
	struct ctx *x = *state;
	struct disk_opts o = { .path = x->path, .readonly = true };
	uint64_t d = vqd_alloc(&x->d, 512);
	uint8_t buf[512], zero[512] = { 0 };
	uint32_t used;

	disk_close(x->disk);
	x->disk = NULL;
	assert_int_equal(open_disk(x, &o), 0);
	assert_true(x->t.ro);
	fill(x, d, 512, 3);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 0, &d, 1, 512, false, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(x, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(x, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(pread(x->fd, buf, 512, 0), 512);
	assert_memory_equal(buf, zero, 512);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 0, &d, 1, 512, true, &used), VIRTIO_BLK_S_OK);
}

static void test_qcow2_magic_guard(void **state)
{
	struct ctx *x = *state;
	struct disk_opts o = { .path = x->path, .format = DISK_FMT_RAW };
	uint64_t d = vqd_alloc(&x->d, 512);
	uint8_t buf[4];
	uint32_t used;

	memset(fake_host(&x->vm, d), 0, 512);
	memcpy(fake_host(&x->vm, d), "QFI\xfb", 4);
	/* probed raw: refused, file untouched */
	assert_true(x->disk->probed_raw);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 0, &d, 1, 512, false, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(pread(x->fd, buf, 4, 0), 4);
	assert_memory_not_equal(buf, "QFI\xfb", 4);
	/* elsewhere it is just data */
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 1, &d, 1, 512, false, &used), VIRTIO_BLK_S_OK);
	/* format=raw given explicitly: allowed */
	disk_close(x->disk);
	x->disk = NULL;
	assert_int_equal(open_disk(x, &o), 0);
	assert_false(x->disk->probed_raw);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 0, &d, 1, 512, false, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(x->fd, buf, 4, 0), 4);
	assert_memory_equal(buf, "QFI\xfb", 4);
}

static void test_open_errors(void **state)
{
	struct ctx *x = *state;
	struct disk *d2;
	char err[256];
	struct disk_opts o = { .path = "/nonexistent/disk.img" };

	assert_int_equal(disk_open(&d2, &o, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/disk.img: No such file or directory"));
	/* second writer on the same image (OFD locks conflict per open) */
	o.path = x->path;
	assert_int_equal(disk_open(&d2, &o, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "locked by another process"));
	o.readonly = true;
	assert_int_equal(disk_open(&d2, &o, err, sizeof(err)), -EBUSY);
	/* qcow2 requested, raw found */
	disk_close(x->disk);
	x->disk = NULL;
	o.readonly = false;
	o.format = DISK_FMT_QCOW2;
	assert_int_equal(disk_open(&d2, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a qcow2 image"));
	/* two readers are fine */
	o.format = DISK_FMT_PROBE;
	o.readonly = true;
	assert_int_equal(disk_open(&x->disk, &o, err, sizeof(err)), 0);
	assert_int_equal(disk_open(&d2, &o, err, sizeof(err)), 0);
	disk_close(d2);
	/* not a file */
	o.path = "/dev/null";
	assert_int_not_equal(disk_open(&d2, &o, err, sizeof(err)), 0);
	o.path = "/";
	assert_int_not_equal(disk_open(&d2, &o, err, sizeof(err)), 0);
}

/* cache=none: O_DIRECT with aligned buffers, bounce for misaligned ones. */
static void test_cache_none(void **state)
{
	struct ctx *x = *state;
	struct disk_opts o = { .path = x->path, .cache = DISK_CACHE_NONE };
	uint64_t al = (vqd_alloc(&x->d, 16384) + 4095) & ~4095ULL;
	uint64_t odd[2] = { al + 4096 + 8, al + 8192 + 520 };
	uint8_t file[1024];
	uint32_t used;

	disk_close(x->disk);
	x->disk = NULL;
	assert_int_equal(open_disk(x, &o), 0);
	fill(x, al, 4096, 9);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 8, &al, 1, 4096, false, &used), VIRTIO_BLK_S_OK);
	fill(x, odd[0], 512, 1);
	fill(x, odd[1], 512, 2);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 16, odd, 2, 512, false, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(x->fd, file, 1024, 16 * 512), 1024);
	assert_memory_equal(file, fake_host(&x->vm, odd[0]), 512);
	assert_memory_equal(file + 512, fake_host(&x->vm, odd[1]), 512);
	memset(fake_host(&x->vm, odd[0]), 0, 512);
	memset(fake_host(&x->vm, odd[1]), 0, 512);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 16, odd, 2, 512, true, &used), VIRTIO_BLK_S_OK);
	assert_memory_equal(file, fake_host(&x->vm, odd[0]), 512);
	assert_memory_equal(file + 512, fake_host(&x->vm, odd[1]), 512);
	/* a single sector at an odd sector offset (buffered fallback if the
	 * O_DIRECT alignment is bigger than 512) */
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 9, odd, 1, 512, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(x->fd, file, 512, 9 * 512), 512);
	assert_memory_equal(file, fake_host(&x->vm, odd[0]), 512);
}

static void test_aio(void **state)
{
	struct ctx *x = *state;
	struct disk_aio *a = disk_aio_create(x->disk, 8);
	char wbuf[4096], rbuf[4096];
	struct iovec wv = { wbuf, sizeof(wbuf) }, rv = { rbuf, sizeof(rbuf) };
	void *tags[4];
	int res[4], n = 0;

	assert_non_null(a);
	memset(wbuf, 0x3c, sizeof(wbuf));
	assert_int_equal(disk_aio_prep(a, true, &wv, 1, 8192, (void *)1), 0);
	assert_int_equal(disk_aio_submit(a), 0);
	while (n == 0)
		n = disk_aio_reap(a, tags, res, 4);
	assert_int_equal(n, 1);
	assert_ptr_equal(tags[0], (void *)1);
	assert_int_equal(res[0], 4096);
	assert_int_equal(pread(x->fd, rbuf, 4096, 8192), 4096);
	assert_memory_equal(rbuf, wbuf, 4096);
	memset(rbuf, 0, sizeof(rbuf));
	assert_int_equal(disk_aio_prep(a, false, &rv, 1, 8192, (void *)2), 0);
	assert_int_equal(disk_aio_submit(a), 0);
	n = 0;
	while (n == 0)
		n = disk_aio_reap(a, tags, res, 4);
	assert_int_equal(res[0], 4096);
	assert_memory_equal(rbuf, wbuf, 4096);
	disk_aio_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_write_read),
		T(test_host_pattern_odd_offsets),
		T(test_out_of_range),
		T(test_bad_length),
		T(test_no_status),
		T(test_short_header),
		T(test_flush_getid_unsupp),
		T(test_discard_punches_hole),
		T(test_write_zeroes),
		T(test_readonly),
		T(test_qcow2_magic_guard),
		T(test_open_errors),
		T(test_cache_none),
		T(test_aio),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
