/* minivmm img check: like `qemu-img check`, same exit codes
 * (0 clean, 1 check failed, 2 corruptions, 3 leaks only, 63 no checks for
 * this format). */
#include "vmm/img/img_int.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/qcow2/qcow2.h"

int img_check(int argc, char **argv)
{
	struct qcow2_check_result r;
	bool quiet = false, json = false;
	int fix = 0, c;
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "repair", required_argument, NULL, 'r' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 }
	};

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:r:qU", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "qcow2") && strcmp(optarg, "raw")) {
				fprintf(stderr, "minivmm img check: unknown format '%s'\n", optarg);
				return 1;
			}
			break;
		case 'r':
			if (!strcmp(optarg, "leaks"))
				fix = QCOW2_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS;
			else {
				fprintf(stderr, "minivmm img check: -r takes 'leaks' or 'all'\n");
				return 1;
			}
			break;
		case 'q': quiet = true; break;
		case 'O': json = !strcmp(optarg, "json"); break;
		case 'U': break;
		default: return 1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "minivmm img check: exactly one FILE expected\n");
		return 1;
	}
	const char *path = argv[optind];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char magic[4] = { 0 };
	if (fd < 0 || pread(fd, magic, 4, 0) < 0) {
		fprintf(stderr, "minivmm img check: %s: %m\n", path);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	if (memcmp(magic, "QFI\xfb", 4)) {
		fprintf(stderr, "minivmm img check: This image format does not support checks\n");
		return 63;
	}
	char err[512] = "";
	int ret = qcow2_check(path, fix, &r, quiet ? NULL : stderr, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "minivmm img check: %s\n", err);
		return 1;
	}
	if (json) {
		printf("{\n    \"image-end-offset\": %llu,\n    \"total-clusters\": %llu,\n"
		       "    \"check-errors\": %llu,\n    \"leaks\": %llu,\n    \"corruptions\": %llu,\n"
		       "    \"leaks-fixed\": %llu,\n    \"corruptions-fixed\": %llu,\n"
		       "    \"allocated-clusters\": %llu,\n    \"filename\": \"%s\",\n"
		       "    \"format\": \"qcow2\",\n    \"fragmented-clusters\": %llu,\n"
		       "    \"compressed-clusters\": %llu\n}\n",
		       (unsigned long long)r.image_end_offset, (unsigned long long)r.total_clusters,
		       (unsigned long long)r.check_errors, (unsigned long long)r.leaks,
		       (unsigned long long)r.corruptions, (unsigned long long)r.leaks_fixed,
		       (unsigned long long)r.corruptions_fixed,
		       (unsigned long long)r.allocated_clusters, path,
		       (unsigned long long)r.fragmented_clusters,
		       (unsigned long long)r.compressed_clusters);
	} else if (!quiet) {
		if (r.leaks_fixed || r.corruptions_fixed)
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %llu leaked clusters\n    %llu corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       (unsigned long long)r.leaks_fixed,
			       (unsigned long long)r.corruptions_fixed);
		if (!r.corruptions && !r.leaks && !r.check_errors)
			printf("No errors were found on the image.\n");
		if (r.corruptions)
			printf("\n%llu errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the image may corrupt it.\n",
			       (unsigned long long)r.corruptions);
		if (r.leaks)
			printf("\n%llu leaked clusters were found on the image.\n"
			       "This means waste of disk space, but no harm to data.\n",
			       (unsigned long long)r.leaks);
		if (r.check_errors)
			printf("\n%llu internal errors have occurred during the check.\n",
			       (unsigned long long)r.check_errors);
		if (r.total_clusters)
			printf("%llu/%llu = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed clusters\n",
			       (unsigned long long)r.allocated_clusters,
			       (unsigned long long)r.total_clusters,
			       100.0 * r.allocated_clusters / r.total_clusters,
			       r.allocated_clusters ? 100.0 * r.fragmented_clusters / r.allocated_clusters : 0,
			       r.allocated_clusters ? 100.0 * r.compressed_clusters / r.allocated_clusters : 0);
		printf("Image end offset: %llu\n", (unsigned long long)r.image_end_offset);
	}
	if (r.check_errors)
		return 1;
	if (r.corruptions)
		return 2;
	if (r.leaks)
		return 3;
	return 0;
}
