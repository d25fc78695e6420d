/* minivmm: command line to VM.  This is the only file that exits the
 * process on an error; everything else returns -errno. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "firmware/bzimage.h"
#include "vmm/config.h"
#include "vmm/console.h"
#include "vmm/img/img.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define EXIT_USAGE 1   /* usage or setup error */
#define EXIT_GUEST 2   /* guest or VMM failure */

/* Quiet and fast on a VM: one UART to probe, no port-0x80 delays, no
 * timer cross-checks (KVM's clocks are sane), reboot through ACPI.
 * pci=noearly: no "poor man's" config-space scans before the PCI core
 * (arch/x86/kernel/early-quirks.c, aperture_64.c).  On an AMD CPU of the
 * GART era (family 0xf-0x12, which is what qemu's TCG "max" CPU and so
 * the nested harness reports) the AGP/GART aperture search reads all
 * 256 buses x 32 slots, twice: 16k config reads = 33k exits, more than
 * half of the guest's boot under nested KVM.  The quirks concern chipsets
 * we do not emulate; the PCI core still scans bus 0 as usual. */
#define DEFAULT_CMDLINE "console=ttyS0 8250.nr_uarts=1 io_delay=none no_timer_check " \
	"tsc=reliable reboot=acpi panic=1 pci=noearly quiet"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: minivmm -k bzImage [-i initrd] [-p \"cmdline\"] [-m 512M] [-c 1]\n"
"               [-d disk[,opts]]... [-n tap=IF[,opts]]... [--no-reboot] [--stats]\n"
"       minivmm img COMMAND ...     image tool (minivmm img --help)\n"
"\n"
"Boot a Linux kernel in a KVM virtual machine with its console on this\n"
"terminal.  Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A.\n"
"\n"
"  -k, --kernel FILE    Linux bzImage (x86_64, boot protocol 2.12+)\n"
"  -i, --initrd FILE    initial ramdisk\n"
"  -p, --append STR     kernel command line (default: \"%s\")\n"
"  -m, --memory SIZE    guest RAM, K/M/G suffix, bare number = MiB (default 512M)\n"
"  -c, --cpus N         virtual CPUs, 1-%d (default 1)\n"
"  -d, --disk FILE[,ro][,format=raw|qcow2][,cache=writeback|none|unsafe]\n"
"               [,serial=STR][,snapshot=on]   virtio-blk disk (repeatable; first is vda)\n"
"  -n, --net tap=IF[,mac=52:54:00:xx:xx:xx][,vhost=on|off][,queues=N]\n"
"                       virtio-net over a tap device (repeatable)\n"
"      --no-reboot      exit (status 0) when the guest reboots\n"
"      --stats          print exit and device counters when the VM stops\n"
"  -v, --verbose        more messages (repeat for debug)\n"
"  -h, --help           this help\n"
"  -V, --version        print the version\n"
"\n"
"Exit status: 0 guest powered off (or rebooted with --no-reboot) or user quit;\n"
"1 usage or setup error; 2 guest or VMM failure (registers are printed).\n",
		DEFAULT_CMDLINE, MAX_VCPUS);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("minivmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_USAGE);
}

/* A kernel or initrd file, kept open while mapped. */
struct image_file {
	const char *what, *path;
	int fd;
	size_t len;
	bool mapped;
};

/* Map a whole file (private, read-only), or read it when the file system
 * cannot mmap; dies with a message naming `what` and the file. */
static uint8_t *load_file(struct image_file *f, const char *what, const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	f->what = what;
	f->path = path;
	if (fd < 0)
		die("%s '%s': %s", what, path, strerror(errno));
	if (fstat(fd, &st) < 0)
		die("%s '%s': %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		die("%s '%s': not a regular file", what, path);
	if (st.st_size == 0)
		die("%s '%s': file is empty", what, path);
	f->fd = fd;
	f->len = (size_t)st.st_size;
	buf = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (buf != MAP_FAILED) {
		f->mapped = true;
		return buf;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf)
		die("%s '%s': out of memory (%lld bytes)", what, path, (long long)st.st_size);
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s '%s': read error: %s", what, path, n ? strerror(errno) : "short file");
		off += (size_t)n;
	}
	close(fd);
	f->fd = -1;
	return buf;
}

/* A mapped file that shrank would make the next copy into the guest
 * (at reboot) fault with SIGBUS: refuse to reboot instead. */
static void check_file_unchanged(const struct image_file *f)
{
	struct stat st;

	if (f->mapped && (fstat(f->fd, &st) < 0 || (size_t)st.st_size < f->len))
		die("%s '%s' shrank while the VM ran; not rebooting", f->what, f->path);
}

enum { OPT_NO_REBOOT = 256, OPT_STATS };

static void parse_args(int argc, char **argv, struct vm_config *cfg)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'p' },
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "disk", required_argument, NULL, 'd' },
		{ "net", required_argument, NULL, 'n' },
		{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	unsigned long n;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = 512ULL << 20;
	cfg->ncpus = 1;
	cfg->cmdline = DEFAULT_CMDLINE;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:i:p:m:c:d:n:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg->kernel = optarg; break;
		case 'i': cfg->initrd = optarg; break;
		case 'p': cfg->cmdline = optarg; break;
		case 'm': {
			int r = parse_size(optarg, &cfg->mem_size);
			if (r == -EINVAL)
				die("-m %s: not a size; use e.g. 512M, 2G or a number of MiB", optarg);
			if (r || cfg->mem_size < MIN_MEMORY || cfg->mem_size > MAX_MEMORY)
				die("-m %s: memory must be between %llu MiB and %llu GiB",
				    optarg, MIN_MEMORY >> 20, MAX_MEMORY >> 30);
			if (cfg->mem_size & 0xfff)
				die("-m %s: memory must be a multiple of 4 KiB", optarg);
			break;
		}
		case 'c':
			if (parse_uint(optarg, 1, MAX_VCPUS, &n))
				die("-c %s: the number of vCPUs must be from 1 to %d", optarg, MAX_VCPUS);
			cfg->ncpus = (unsigned)n;
			break;
		case 'd':
			if (cfg->ndisks == MAX_DISKS)
				die("-d %s: at most %d disks", optarg, MAX_DISKS);
			if (parse_disk(optarg, &cfg->disks[cfg->ndisks], err, sizeof(err)))
				die("%s", err);
			cfg->ndisks++;
			break;
		case 'n':
			if (cfg->nnets == MAX_NETS)
				die("-n %s: at most %d network devices", optarg, MAX_NETS);
			if (parse_net(optarg, &cfg->nets[cfg->nnets], err, sizeof(err)))
				die("%s", err);
			cfg->nnets++;
			break;
		case OPT_NO_REBOOT: cfg->no_reboot = true; break;
		case OPT_STATS: cfg->stats = true; break;
		case 'v': log_level++; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("minivmm %s\n", MINIVMM_VERSION); exit(0);
		case ':': die("option %s needs a value (see minivmm --help)", argv[optind - 1]);
		default:
			if (optopt)
				die("unknown option -%c (see minivmm --help)", optopt);
			die("unknown option %s (see minivmm --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (see minivmm --help)", argv[optind]);
	if (!cfg->kernel)
		die("no kernel given: use -k path/to/bzImage (see minivmm --help)");
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	char err[256];
	struct bzimage bz;
	struct image_file kf = { .fd = -1 }, inf = { .fd = -1 };
	enum vm_exit why;
	int kvm;

	if (argc > 1 && !strcmp(argv[1], "img"))
		return img_main(argc - 1, argv + 1);

	parse_args(argc, argv, &cfg);
	cfg.kernel_data = load_file(&kf, "kernel", cfg.kernel);
	cfg.kernel_len = kf.len;
	if (bzimage_parse(cfg.kernel_data, cfg.kernel_len, &bz, err, sizeof(err)))
		die("kernel '%s': %s", cfg.kernel, err);
	if (cfg.initrd)
		cfg.initrd_data = load_file(&inf, "initrd", cfg.initrd);
	cfg.initrd_len = inf.len;
	cfg.images_reclaimable = kf.mapped && (!cfg.initrd || inf.mapped);
	/* Check /dev/kvm before touching the terminal, so the error is a
	 * plain line on a sane terminal. */
	kvm = kvm_open_checked();
	if (kvm < 0)
		return EXIT_USAGE;
	close(kvm);

	console_setup();
	vcpu_signal_setup();
	for (;;) {
		why = vm_run_once(&cfg);
		if (why != VM_EXIT_REBOOT)
			break;
		if (cfg.no_reboot) {
			log_info("guest rebooted; exiting (--no-reboot)");
			why = VM_EXIT_POWEROFF;
			break;
		}
		log_info("guest rebooted; restarting the VM");
		check_file_unchanged(&kf);
		check_file_unchanged(&inf);
	}
	console_restore();
	switch (why) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_QUIT:
		return 0;
	case VM_EXIT_SETUP:
		return EXIT_USAGE;
	default:
		return EXIT_GUEST;
	}
}
