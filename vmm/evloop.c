#include "vmm/evloop.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int evloop_init(struct evloop *l)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EVLOOP_MAX };

	memset(l, 0, sizeof(*l));
	for (int i = 0; i < EVLOOP_MAX; i++)
		l->h[i].fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->wake_fd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0) {
		int e = errno;
		evloop_destroy(l);
		return -e;
	}
	return 0;
}

void evloop_destroy(struct evloop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	l->epfd = l->wake_fd = -1;
}

int evloop_add(struct evloop *l, int fd, evloop_fn fn, void *opaque)
{
	for (uint32_t i = 0; i < EVLOOP_MAX; i++) {
		if (l->h[i].fd != -1)
			continue;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
		l->h[i].fd = fd;
		l->h[i].fn = fn;
		l->h[i].opaque = opaque;
		return 0;
	}
	return -ENOSPC;
}

void evloop_del(struct evloop *l, int fd)
{
	for (int i = 0; i < EVLOOP_MAX; i++)
		if (l->h[i].fd == fd) {
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			l->h[i].fd = -1;
		}
}

int evloop_run_until_woken(struct evloop *l)
{
	for (;;) {
		struct epoll_event ev[8];
		int n = epoll_wait(l->epfd, ev, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			uint32_t k = ev[i].data.u32;
			if (k == EVLOOP_MAX) {
				uint64_t v;
				if (read(l->wake_fd, &v, sizeof(v)) < 0) { /* drained */ }
				return 0;
			}
			if (l->h[k].fd >= 0)
				l->h[k].fn(l->h[k].opaque, l->h[k].fd, ev[i].events);
		}
	}
}

void evloop_wake(struct evloop *l)
{
	uint64_t one = 1;

	if (write(l->wake_fd, &one, sizeof(one)) < 0) {
		/* Counter full means a wake is already pending. */
	}
}
