#include "vmm/console.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "devices/serial.h"
#include "vmm/evloop.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define CTRL_A 0x01

static struct termios saved_tio;
static bool tio_saved;

void console_restore(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static void fatal_signal(int sig)
{
	console_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

void console_setup(void)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
	sigset_t set;

	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;

		tio_saved = true;
		atexit(console_restore);
		for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			signal(fatal[i], fatal_signal);
		/* Raw: every key (Ctrl-C too) goes to the guest; Ctrl-A x quits. */
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	/* These arrive through a signalfd in the main loop instead. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1); /* only vCPU threads unblock it */
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

struct console {
	struct vm *vm;
	int sig_fd;
	bool stdin_open, stdin_polled, escape;
	bool stdin_file;   /* a regular file: epoll refuses it, it is always readable */
	uint8_t pend[512];
	size_t pend_off, pend_len;
};

static void on_stdin(void *opaque, int fd, unsigned events);
static void push_pending(struct console *c);
static bool filter(struct console *c, const uint8_t *in, size_t n);

static void stdin_watch(struct console *c, bool on)
{
	if (!c->stdin_open || on == c->stdin_polled)
		return;
	if (on) {
		if (evloop_add(c->vm->loop, STDIN_FILENO, on_stdin, c) < 0)
			return;
	} else {
		evloop_del(c->vm->loop, STDIN_FILENO);
	}
	c->stdin_polled = on;
}

/* Filter Ctrl-A escapes into c->pend; returns false if the user quit. */
static bool filter(struct console *c, const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = in[i];

		if (c->escape) {
			c->escape = false;
			if (b == 'x' || b == 'X') {
				vm_request_exit(c->vm, VM_EXIT_QUIT);
				return false;
			}
			if (b == 'h' || b == '?') {
				fprintf(stderr, "\r\nminivmm: Ctrl-A x  quit\r\nminivmm: Ctrl-A Ctrl-A  send Ctrl-A\r\n");
				continue;
			}
			if (b != CTRL_A)
				continue; /* unknown escape: swallow */
		} else if (b == CTRL_A) {
			c->escape = true;
			continue;
		}
		c->pend[c->pend_len++] = b;
	}
	return true;
}

/* Read one chunk of input into c->pend (Ctrl-A escapes filtered out).
 * Returns false at EOF or when the user quit. */
static bool read_chunk(struct console *c, int fd)
{
	uint8_t buf[sizeof(c->pend)];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		/* EOF (a script's pipe ended): the guest keeps running. */
		if (c->stdin_polled)
			evloop_del(c->vm->loop, fd);
		c->stdin_polled = false;
		c->stdin_open = false;
		return false;
	}
	c->pend_off = c->pend_len = 0;
	return filter(c, buf, (size_t)n);
}

static void on_stdin(void *opaque, int fd, unsigned events)
{
	struct console *c = opaque;

	(void)events;
	if (read_chunk(c, fd))
		push_pending(c);
}

static void push_pending(struct console *c)
{
	if (c->pend_off < c->pend_len)
		c->pend_off += serial_rx_push(c->vm->serial, c->pend + c->pend_off,
					      c->pend_len - c->pend_off);
	/* A regular file cannot be polled: read the next chunk whenever the
	 * guest has taken everything (we get here on every "room" event). */
	if (c->stdin_file && c->stdin_open && c->pend_off == c->pend_len &&
	    read_chunk(c, STDIN_FILENO))
		c->pend_off += serial_rx_push(c->vm->serial, c->pend + c->pend_off,
					      c->pend_len - c->pend_off);
	/* Read more only when everything read so far is in the guest: the
	 * pipe (or the terminal) is our buffer, and it applies back-pressure. */
	if (!c->stdin_file)
		stdin_watch(c, c->pend_off == c->pend_len);
}

static void on_room(void *opaque, int fd, unsigned events)
{
	struct console *c = opaque;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0) { /* spurious */ }
	push_pending(c);
}

static void on_signal(void *opaque, int fd, unsigned events)
{
	struct console *c = opaque;
	struct signalfd_siginfo si;

	(void)events;
	if (read(fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %u: stopping the VM", si.ssi_signo);
		vm_request_exit(c->vm, VM_EXIT_QUIT);
	}
}

int console_init(struct vm *vm)
{
	struct console *c = calloc(1, sizeof(*c));
	sigset_t set;
	int ret;

	if (!c)
		return -ENOMEM;
	c->vm = vm;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	c->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (c->sig_fd < 0 || evloop_add(vm->loop, c->sig_fd, on_signal, c) < 0 ||
	    evloop_add(vm->loop, serial_rx_room_fd(vm->serial), on_room, c) < 0) {
		log_err("console setup: %s", strerror(errno));
		if (c->sig_fd >= 0)
			close(c->sig_fd);
		free(c);
		return -EIO;
	}
	c->stdin_open = true;
	ret = evloop_add(vm->loop, STDIN_FILENO, on_stdin, c);
	if (ret == 0)
		c->stdin_polled = true;
	else if (ret == -EPERM)
		c->stdin_file = true;  /* regular file (or /dev/null): read on demand */
	else
		c->stdin_open = false;
	vm->console = c;
	return 0;
}

void console_exit(struct vm *vm)
{
	struct console *c = vm->console;

	if (!c)
		return;
	if (c->stdin_polled)
		evloop_del(vm->loop, STDIN_FILENO);
	evloop_del(vm->loop, serial_rx_room_fd(vm->serial));
	evloop_del(vm->loop, c->sig_fd);
	close(c->sig_fd);
	free(c);
	vm->console = NULL;
}
