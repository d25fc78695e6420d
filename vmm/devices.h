/* Device registration: every device (or device family) provides an init and
 * an exit hook.  vm.c runs the table in vmm/devices.c forward at start and
 * backward at teardown, or backward from the failing entry after a failed
 * init (so nothing that started is left running).
 *
 * init returns 0 or -errno; on failure it prints one line saying what is
 * wrong (e.g. "disk.img: No such file or directory") and cleans up after
 * itself.  exit must be safe to call after a successful init only. */
#ifndef MINIVMM_DEVICES_H
#define MINIVMM_DEVICES_H

struct vm;

struct device_hooks {
	const char *name;
	int (*init)(struct vm *vm);
	void (*exit)(struct vm *vm);
	/* Optional: print --stats counters. */
	void (*stats)(struct vm *vm);
};

extern const struct device_hooks device_table[];
extern const int device_table_len;

#endif
