/* The parsed command line.  main.c fills it (config.c parses), everything
 * else only reads it. */
#ifndef MINIVMM_CONFIG_H
#define MINIVMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/disk.h"

#define MAX_DISKS 8
#define MAX_NETS  4
#define MAX_VCPUS 64

#define MIN_MEMORY (32ULL << 20)
#define MAX_MEMORY (1ULL << 40)

struct net_config {
	char ifname[16];          /* IFNAMSIZ */
	uint8_t mac[6];
	bool mac_set;
	bool vhost;
	unsigned queues;          /* queue pairs, >= 1 */
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;       /* full cmdline as given to the guest */
	/* File contents, read once by main.c so errors surface before the VM
	 * exists; each (re)boot copies them into fresh guest RAM. */
	const uint8_t *kernel_data;
	size_t kernel_len;
	const uint8_t *initrd_data;
	size_t initrd_len;
	/* Set when both are private read-only file mappings (main.c), not
	 * heap copies: then vm.c drops their pages once they are copied into
	 * the guest, so a ~10 MiB kernel + initrd do not stay in our RSS for
	 * the VM's lifetime; a reboot faults them back from the page cache. */
	bool images_reclaimable;
	uint64_t mem_size;         /* bytes */
	unsigned ncpus;
	bool no_reboot;
	bool stats;                /* --stats: print counters on exit */
	int ndisks;
	struct disk_opts disks[MAX_DISKS];
	int nnets;
	struct net_config nets[MAX_NETS];
};

/* "512M", "2G", "1024" (MiB), "4096K".  Returns 0 or -EINVAL/-ERANGE. */
int parse_size(const char *s, uint64_t *out);
/* Unsigned integer in [min, max]; 0 or -EINVAL/-ERANGE. */
int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);
/* "FILE[,ro][,format=..][,cache=..][,serial=..][,snapshot=on]".  The string
 * is modified and pointed into.  0 or -EINVAL with a message in err. */
int parse_disk(char *s, struct disk_opts *d, char *err, unsigned errlen);
/* "tap=IF[,mac=..][,vhost=on|off][,queues=N]". */
int parse_net(char *s, struct net_config *n, char *err, unsigned errlen);

#endif
