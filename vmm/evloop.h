/* The main thread's event loop: one epoll set of (fd, callback, opaque).
 * It carries the console input, signals, and the VM's "stop" wake-up; disk
 * and network I/O have threads of their own and do not go through here. */
#ifndef MINIVMM_EVLOOP_H
#define MINIVMM_EVLOOP_H

#include <stdbool.h>

typedef void (*evloop_fn)(void *opaque, int fd, unsigned events);

#define EVLOOP_MAX 16

struct evloop {
	int epfd;
	int wake_fd;      /* eventfd: evloop_wake() makes evloop_run return */
	struct { int fd; evloop_fn fn; void *opaque; } h[EVLOOP_MAX];
};

int evloop_init(struct evloop *l);
void evloop_destroy(struct evloop *l);
int evloop_add(struct evloop *l, int fd, evloop_fn fn, void *opaque);
void evloop_del(struct evloop *l, int fd);
/* Run until woken; returns 0, or -errno on an epoll failure. */
int evloop_run_until_woken(struct evloop *l);
/* Async-signal and thread safe. */
void evloop_wake(struct evloop *l);

#endif
