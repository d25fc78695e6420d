/* MC146818 CMOS real-time clock at ports 0x70 (index) / 0x71 (data).
 * Linux reads it once at boot for the wall-clock time (unless kvmclock
 * gives it), and hwclock reads it later.  We answer from the host's clock
 * in UTC, BCD 24-hour format (status register B = 0x02), never "update in
 * progress", so no reader ever waits. */
#include "devices/rtc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/vm.h"

#define RTC_PORT 0x70

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
};

static uint8_t bcd(int v) { return (uint8_t)(((v / 10) << 4) | (v % 10)); }

static uint8_t rtc_read(struct rtc *r, uint8_t idx)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	switch (idx) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case 0x32: return bcd((tm.tm_year + 1900) / 100); /* century */
	case 0x0a: return 0x26;  /* UIP clear, 32.768 kHz base, 1024 Hz */
	case 0x0b: return 0x02;  /* 24-hour, BCD, no interrupts */
	case 0x0c: return 0x00;  /* no interrupt flags */
	case 0x0d: return 0x80;  /* VRT: battery good */
	default: return r->cmos[idx];
	}
}

static void rtc_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	if (off == 0) {
		if (is_write)
			r->index = data[0] & 0x7f; /* bit 7 is the NMI mask */
		else
			data[0] = r->index;
	} else if (is_write) {
		/* Keep writes to plain CMOS bytes; the clock is the host's. */
		if (r->index > 0x0d && r->index != 0x32)
			r->cmos[r->index] = data[0];
	} else {
		data[0] = rtc_read(r, r->index);
	}
	if (len > 1 && !is_write)
		memset(data + 1, 0xff, len - 1);
	pthread_mutex_unlock(&r->lock);
}

int rtc_init(struct vm *vm)
{
	struct rtc *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	ret = bus_register(&vm->pio, RTC_PORT, 2, rtc_io, r, "rtc");
	if (ret) {
		free(r);
		return ret;
	}
	vm->rtc = r;
	return 0;
}

void rtc_exit(struct vm *vm)
{
	if (!vm->rtc)
		return;
	bus_unregister(&vm->pio, RTC_PORT, vm->rtc);
	pthread_mutex_destroy(&vm->rtc->lock);
	free(vm->rtc);
	vm->rtc = NULL;
}
