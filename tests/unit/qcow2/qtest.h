/* Helpers shared by the qcow2 unit tests: temp dirs, running qemu-img /
 * qemu-io, reading images through our backend and through qemu. */
#ifndef QTEST_H
#define QTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/disk.h"

/* A fresh temporary directory, removed by qt_cleanup(). */
const char *qt_dir(void);
void qt_cleanup(void);
/* Path inside qt_dir() (static rotating buffers). */
const char *qt_path(const char *name);
/* Run a shell command (printf-style); returns its exit status. */
int qt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, but the command must succeed (cmocka assert). */
void qt_must(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read a whole file. */
uint8_t *qt_read_file(const char *path, size_t *len);
/* Open with our qcow2 backend (probe: qcow2 only). */
int qt_open(struct disk **d, const char *path, bool readonly, char *err, size_t errlen);
/* Read the whole virtual disk with our backend using odd-sized, multi-iov
 * requests. */
uint8_t *qt_read_ours(struct disk *d);
/* The whole virtual disk as qemu sees it (qemu-img convert -O raw). */
uint8_t *qt_read_qemu(const char *path, size_t *len);
/* Assert our view of path equals qemu's. */
void qt_assert_same_as_qemu(const char *path);
/* Deterministic PRNG. */
uint64_t qt_rand(uint64_t *s);

#endif
