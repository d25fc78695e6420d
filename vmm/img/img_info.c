/* minivmm img info: the same facts `qemu-img info` prints. */
#include "vmm/img/img_int.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "devices/qcow2/qcow2.h"

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_snapshots(const struct qcow2_info *qi)
{
	printf("Snapshot list:\n");
	printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
	for (uint32_t i = 0; i < qi->nb_snapshots; i++) {
		const struct qcow2_snapshot_info *s = &qi->snapshots[i];
		char vms[32], date[32];
		time_t t = s->date_sec;
		struct tm tm;
		uint64_t ms = s->vm_clock_nsec / 1000000, secs = ms / 1000;
		img_human_size(s->vm_state_size, vms, sizeof(vms));
		localtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-10s%-17s%8s%20s %02llu:%02llu:%02llu.%03llu%11s\n", s->id, s->name, vms,
		       date, (unsigned long long)(secs / 3600), (unsigned long long)(secs / 60 % 60),
		       (unsigned long long)(secs % 60), (unsigned long long)(ms % 1000), "--");
	}
}

int img_info(int argc, char **argv)
{
	enum disk_format fmt = DISK_FMT_PROBE;
	bool json = false;
	int c;
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "json", no_argument, NULL, 'j' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 }
	};

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:U", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (img_parse_format(optarg, &fmt)) {
				fprintf(stderr, "minivmm img info: unknown format '%s'\n", optarg);
				return 1;
			}
			break;
		case 'O': json = !strcmp(optarg, "json"); break;
		case 'j': json = true; break;
		case 'U': break;
		default: return 1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "minivmm img info: exactly one FILE expected\n");
		return 1;
	}
	const char *path = argv[optind];
	struct disk *d;
	if (img_open(&d, path, fmt, true, DISK_CACHE_WRITEBACK))
		return 1;
	struct stat st;
	uint64_t actual = fstat(d->fd, &st) ? 0 : (uint64_t)st.st_blocks * 512;
	bool isq = qcow2_is_qcow2(d);
	struct qcow2_info qi;
	memset(&qi, 0, sizeof(qi));
	if (isq && qcow2_get_info(d, &qi)) {
		fprintf(stderr, "minivmm img info: %s: cannot read the image facts\n", path);
		d->ops->close(d);
		return 1;
	}
	const char *compat = qi.version == 2 ? "0.10" : "1.1";
	const char *ctype = qi.compression_type == 1 ? "zstd" : "zlib";

	if (json) {
		printf("{\n    \"virtual-size\": %llu,\n    \"filename\": ", (unsigned long long)d->size);
		json_str(path);
		if (isq)
			printf(",\n    \"cluster-size\": %llu", (unsigned long long)qi.cluster_size);
		printf(",\n    \"format\": \"%s\",\n    \"actual-size\": %llu", isq ? "qcow2" : "raw",
		       (unsigned long long)actual);
		if (isq && qi.backing[0]) {
			printf(",\n    \"backing-filename\": ");
			json_str(qi.backing);
			if (qi.backing_fmt[0]) {
				printf(",\n    \"backing-filename-format\": ");
				json_str(qi.backing_fmt);
			}
		}
		if (isq && qi.nb_snapshots) {
			printf(",\n    \"snapshots\": [");
			for (uint32_t i = 0; i < qi.nb_snapshots; i++) {
				const struct qcow2_snapshot_info *s = &qi.snapshots[i];
				printf("%s\n        {\n            \"id\": ", i ? "," : "");
				json_str(s->id);
				printf(",\n            \"name\": ");
				json_str(s->name);
				printf(",\n            \"vm-state-size\": %llu,\n"
				       "            \"date-sec\": %u,\n            \"date-nsec\": %u,\n"
				       "            \"vm-clock-sec\": %llu,\n"
				       "            \"vm-clock-nsec\": %llu\n        }",
				       (unsigned long long)s->vm_state_size, s->date_sec, s->date_nsec,
				       (unsigned long long)(s->vm_clock_nsec / 1000000000),
				       (unsigned long long)(s->vm_clock_nsec % 1000000000));
			}
			printf("\n    ]");
		}
		if (isq) {
			printf(",\n    \"format-specific\": {\n        \"type\": \"qcow2\",\n"
			       "        \"data\": {\n            \"compat\": \"%s\"", compat);
			if (qi.version >= 3)
				printf(",\n            \"compression-type\": \"%s\",\n"
				       "            \"lazy-refcounts\": %s,\n"
				       "            \"refcount-bits\": %u,\n"
				       "            \"corrupt\": %s,\n"
				       "            \"extended-l2\": false",
				       ctype, qi.lazy_refcounts ? "true" : "false", qi.refcount_bits,
				       qi.corrupt ? "true" : "false");
			else
				printf(",\n            \"compression-type\": \"zlib\",\n"
				       "            \"refcount-bits\": %u", qi.refcount_bits);
			printf("\n        }\n    },\n    \"dirty-flag\": %s", qi.dirty ? "true" : "false");
		}
		printf("\n}\n");
	} else {
		char vs[32], as[32];
		img_human_size(d->size, vs, sizeof(vs));
		img_human_size(actual, as, sizeof(as));
		printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n",
		       path, isq ? "qcow2" : "raw", vs, (unsigned long long)d->size, as);
		if (isq) {
			printf("cluster_size: %llu\n", (unsigned long long)qi.cluster_size);
			if (qi.backing[0])
				printf("backing file: %s\n", qi.backing);
			if (qi.backing_fmt[0])
				printf("backing file format: %s\n", qi.backing_fmt);
			if (qi.nb_snapshots)
				print_snapshots(&qi);
			printf("Format specific information:\n    compat: %s\n"
			       "    compression type: %s\n", compat, ctype);
			if (qi.version >= 3)
				printf("    lazy refcounts: %s\n", qi.lazy_refcounts ? "true" : "false");
			printf("    refcount bits: %u\n", qi.refcount_bits);
			if (qi.version >= 3)
				printf("    corrupt: %s\n    extended l2: false\n",
				       qi.corrupt ? "true" : "false");
			if (qi.dirty)
				printf("    dirty: true\n");
		}
	}
	free(qi.snapshots);
	d->ops->close(d);
	return 0;
}
