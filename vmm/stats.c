#include "vmm/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/vm.h"

#define NR_PORTS 65536
#define TOP_PORTS 12

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Seconds from our exec to now, from /proc/self/stat's starttime (clock
 * ticks since boot, field 22) and CLOCK_BOOTTIME; -1 if unknown. */
static double since_exec(void)
{
	char buf[1024], *p;
	unsigned long long start = 0;
	struct timespec ts;
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command name may contain spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			 "%*d %*d %*d %*d %llu", &start) != 1)
		return -1;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 -
	       (double)start / (double)sysconf(_SC_CLK_TCK);
}

void stats_init(struct vm *vm)
{
	vm->stats.start_ns = now_ns();
	vm->stats.start_after_exec = since_exec();
	/* 256 KiB of zero pages; only the pages of ports the guest uses get
	 * touched. */
	vm->stats.pio_port_exits = calloc(NR_PORTS, sizeof(*vm->stats.pio_port_exits));
}

void stats_free(struct vm *vm)
{
	free(vm->stats.pio_port_exits);
	vm->stats.pio_port_exits = NULL;
}

void stats_pio_exit(struct vm *vm, uint16_t port)
{
	atomic_uint *c = vm->stats.pio_port_exits;

	if (!c)
		return;
	atomic_fetch_add_explicit(&c[port], 1, memory_order_relaxed);
	if (!atomic_load_explicit(&vm->stats.first_pio_ns, memory_order_relaxed)) {
		uint64_t zero = 0;

		if (atomic_compare_exchange_strong(&vm->stats.first_pio_ns, &zero, now_ns()))
			atomic_store(&vm->stats.first_pio_port, port);
	}
}

static const char *port_owner(struct vm *vm, unsigned port)
{
	for (int i = 0; i < vm->pio.nr; i++)
		if (port >= vm->pio.r[i].base && port - vm->pio.r[i].base < vm->pio.r[i].len)
			return vm->pio.r[i].name ? vm->pio.r[i].name : "?";
	return "unhandled";
}

/* The busiest ports, most exits first: where a boot's exits go. */
static void print_top_ports(struct vm *vm)
{
	atomic_uint *c = vm->stats.pio_port_exits;
	unsigned top[TOP_PORTS], ntop = 0, nports = 0;

	if (!c)
		return;
	if (atomic_load(&vm->stats.first_pio_ns))
		fprintf(stderr, "minivmm: stats: VM set up %.2f s after exec; first pio exit "
			"(port %#x) %.3f s after that\r\n", vm->stats.start_after_exec,
			atomic_load(&vm->stats.first_pio_port),
			(double)(atomic_load(&vm->stats.first_pio_ns) - vm->stats.start_ns) / 1e9);
	for (unsigned p = 0; p < NR_PORTS; p++) {
		unsigned n = atomic_load_explicit(&c[p], memory_order_relaxed), j;

		if (!n)
			continue;
		nports++;
		for (j = ntop; j > 0 && atomic_load(&c[top[j - 1]]) < n; j--)
			if (j < TOP_PORTS)
				top[j] = top[j - 1];
		if (j < TOP_PORTS) {
			top[j] = p;
			if (ntop < TOP_PORTS)
				ntop++;
		}
	}
	fprintf(stderr, "minivmm: stats: pio exits by port (%u ports used):", nports);
	for (unsigned i = 0; i < ntop; i++)
		fprintf(stderr, " %#x(%s)=%u", top[i], port_owner(vm, top[i]),
			atomic_load(&c[top[i]]));
	fprintf(stderr, "\r\n");
}

/* Resident bytes of one guest RAM mapping (mincore: 1 byte per page). */
static uint64_t resident(void *p, uint64_t size)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t n = (size + (uint64_t)pg - 1) / (uint64_t)pg, res = 0;
	unsigned char *v;

	if (!p || !size || !(v = malloc(n)))
		return 0;
	if (mincore(p, size, v) == 0)
		for (uint64_t i = 0; i < n; i++)
			res += v[i] & 1;
	free(v);
	return res * (uint64_t)pg;
}

/* Peak RSS (VmHWM) in bytes, 0 if unknown. */
static uint64_t peak_rss(void)
{
	char line[128];
	unsigned long kib = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %lu kB", &kib) == 1)
			break;
	fclose(f);
	return (uint64_t)kib << 10;
}

/* What the VMM costs beyond the guest's own RAM: peak RSS minus the guest
 * RAM the guest has touched (the benchmark's "VMM overhead"). */
static void print_memory(struct vm *vm)
{
	uint64_t guest = resident(vm->ram_low, vm->ram_low_size) +
			 resident(vm->ram_high, vm->ram_high_size);
	uint64_t peak = peak_rss();

	fprintf(stderr, "minivmm: stats: memory: peak RSS %.1f MiB, guest RAM resident %.1f MiB, "
		"overhead %.1f MiB\r\n", (double)peak / (1 << 20), (double)guest / (1 << 20),
		peak > guest ? (double)(peak - guest) / (1 << 20) : 0.0);
}

void stats_print(struct vm *vm, int ndevices)
{
	struct vm_stats *s = &vm->stats;
	unsigned long io = atomic_load(&s->exits_io), mmio = atomic_load(&s->exits_mmio);
	unsigned long hlt = atomic_load(&s->exits_hlt), other = atomic_load(&s->exits_other);
	unsigned long intr = atomic_load(&s->exits_intr);

	fprintf(stderr, "minivmm: stats: exits total %lu: io %lu mmio %lu hlt %lu intr %lu other %lu\r\n",
		io + mmio + hlt + other + intr, io, mmio, hlt, intr, other);
	fprintf(stderr, "minivmm: stats: irqs injected from userspace %lu, unhandled pio %lu mmio %lu\r\n",
		atomic_load(&s->irqs_injected), vm->pio.unhandled, vm->mmio.unhandled);
	print_top_ports(vm);
	print_memory(vm);
	for (int i = 0; i < ndevices; i++)
		if (device_table[i].stats)
			device_table[i].stats(vm);
}
