/* A 16550A as Linux's 8250 driver sees it.  Transmit is instantaneous (THR
 * is always empty), so output costs exactly one PIO exit per byte.
 * Register map: PC16550D datasheet, Table II. */
#include "devices/serial.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/vm.h"

#define RX_FIFO 16

/* Register offsets and bits. */
#define UART_RX   0  /* RBR/THR, DLL when LCR.DLAB */
#define UART_IER  1  /* DLM when LCR.DLAB */
#define UART_IIR  2  /* FCR on write */
#define UART_LCR  3
#define UART_MCR  4
#define UART_LSR  5
#define UART_MSR  6
#define UART_SCR  7

#define IER_RDI   0x01
#define IER_THRI  0x02
#define IIR_NONE  0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB  0x80
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI  0x40
#define MSR_DCD 0x80

struct serial {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_ipending;   /* THR-empty interrupt armed, cleared by IIR read */
	bool irq_level;
	uint8_t rx[RX_FIFO];
	unsigned rx_head, rx_count;
	int room_fd;
	unsigned long tx_bytes, rx_bytes;
};

static uint8_t iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

/* The IOAPIC pin is edge triggered for ISA IRQs: Linux's handler loops
 * until IIR says "none", so following the level here produces exactly one
 * rising edge per new condition. */
static void update_irq(struct serial *s)
{
	bool level = !(iir(s) & IIR_NONE);

	if (level != s->irq_level) {
		int r;
		s->irq_level = level;
		r = vm_irq_line(s->vm, COM1_IRQ, level);
		if (log_level > LOG_DEBUG)
			log_debug("serial irq %d -> %d", level, r);
	}
}

static void rx_room(struct serial *s)
{
	uint64_t one = 1;

	if (s->rx_count < RX_FIFO && (s->ier & IER_RDI) && write(s->room_fd, &one, 8) < 0) {
		/* counter saturated: a wake-up is already pending */
	}
}

static void rx_put(struct serial *s, uint8_t c)
{
	if (s->rx_count < RX_FIFO) {
		s->rx[(s->rx_head + s->rx_count) % RX_FIFO] = c;
		s->rx_count++;
		s->rx_bytes++;
	}
}

static uint8_t msr(const struct serial *s)
{
	if (s->mcr & MCR_LOOP) {
		/* Loopback (used by Linux's autoconfig): RTS->CTS, DTR->DSR,
		 * OUT1->RI, OUT2->DCD. */
		return (uint8_t)(((s->mcr & 0x02) ? MSR_CTS : 0) | ((s->mcr & 0x01) ? MSR_DSR : 0) |
				 ((s->mcr & 0x04) ? MSR_RI : 0) | ((s->mcr & 0x08) ? MSR_DCD : 0));
	}
	return MSR_DCD | MSR_DSR | MSR_CTS;
}

static void tx(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		rx_put(s, c);
	} else {
		ssize_t r;
		do {
			r = write(STDOUT_FILENO, &c, 1);
		} while (r < 0 && errno == EINTR);
		s->tx_bytes++;
	}
	s->thr_ipending = true;
}

static void serial_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	uint8_t v = data[0];
	bool dlab;

	if (len != 1) { /* the UART has byte registers only */
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&s->lock);
	dlab = s->lcr & LCR_DLAB;
	if (is_write) {
		switch (off) {
		case UART_RX:
			if (dlab)
				s->dll = v;
			else
				tx(s, v);
			break;
		case UART_IER:
			if (dlab) {
				s->dlm = v;
			} else {
				/* Enabling THRI while THR is empty raises it at once. */
				if (!(s->ier & IER_THRI) && (v & IER_THRI))
					s->thr_ipending = true;
				s->ier = v & 0x0f;
				rx_room(s);
			}
			break;
		case UART_IIR:
			s->fcr = v & 0xc9;
			if (v & FCR_CLEAR_RX) {
				s->rx_count = 0;
				rx_room(s);
			}
			break;
		case UART_LCR: s->lcr = v; break;
		case UART_MCR: s->mcr = v & 0x1f; break;
		case UART_SCR: s->scr = v; break;
		default: break; /* LSR/MSR are read-only */
		}
	} else {
		switch (off) {
		case UART_RX:
			if (dlab) {
				v = s->dll;
			} else if (s->rx_count) {
				v = s->rx[s->rx_head];
				s->rx_head = (s->rx_head + 1) % RX_FIFO;
				if (--s->rx_count == 0)
					rx_room(s);
			} else {
				v = 0;
			}
			break;
		case UART_IER: v = dlab ? s->dlm : s->ier; break;
		case UART_IIR:
			v = iir(s);
			if ((v & 0x0f) == IIR_THRI)
				s->thr_ipending = false;
			break;
		case UART_LCR: v = s->lcr; break;
		case UART_MCR: v = s->mcr; break;
		case UART_LSR: v = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0); break;
		case UART_MSR: v = msr(s); break;
		case UART_SCR: v = s->scr; break;
		default: v = 0xff;
		}
		data[0] = v;
	}
	if (log_level > LOG_DEBUG && off != UART_RX && off != UART_LSR)
		log_debug("serial %s off %llu val %#x ier %#x thr %d lvl %d", is_write ? "W" : "R",
			  (unsigned long long)off, data[0], s->ier, s->thr_ipending, s->irq_level);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	/* Hold input back until the driver listens: bytes queued before the
	 * port is opened would be flushed by its FIFO reset and lost. */
	if (s->ier & IER_RDI)
		while (n < len && s->rx_count < RX_FIFO)
			rx_put(s, buf[n++]);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

int serial_rx_room_fd(struct serial *s)
{
	return s->room_fd;
}

int serial_init(struct vm *vm)
{
	struct serial *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->vm = vm;
	pthread_mutex_init(&s->lock, NULL);
	s->room_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->room_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = bus_register(&vm->pio, COM1_BASE, 8, serial_io, s, "serial");
	if (ret)
		goto fail;
	vm->serial = s;
	return 0;
fail:
	if (s->room_fd >= 0)
		close(s->room_fd);
	free(s);
	return ret;
}

void serial_exit(struct vm *vm)
{
	struct serial *s = vm->serial;

	if (!s)
		return;
	bus_unregister(&vm->pio, COM1_BASE, s);
	close(s->room_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
	vm->serial = NULL;
}
