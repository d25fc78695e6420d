/* Linux tap devices (/dev/net/tun, Documentation/networking/tuntap.rst).
 *
 * A tap is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR: every frame read
 * or written is preceded by a virtio-net header, so checksum and
 * segmentation offloads pass between the guest and the host stack without
 * being resolved in software.  queues > 1 opens one fd per queue with
 * IFF_MULTI_QUEUE; the kernel steers flows across the attached fds.
 *
 * An existing tap (e.g. `ip tuntap add dev tap0 mode tap user $USER`) is
 * attached without privilege; a missing one is created (CAP_NET_ADMIN) and
 * brought up, and disappears when minivmm closes it. */
#ifndef MINIVMM_TAP_H
#define MINIVMM_TAP_H

#include <stdbool.h>
#include <stddef.h>

#define TAP_MAX_QUEUES 16

struct tap {
	char ifname[16];
	unsigned nq;
	int fd[TAP_MAX_QUEUES];
	bool created;       /* did not exist before: we made it */
	unsigned offloads;  /* TUN_F_* the kernel accepted when probed */
};

/* Open (or create) ifname with nq queues, non-blocking.  0, or -errno with
 * one line in err saying what is wrong and what to do. */
int tap_open(struct tap *t, const char *ifname, unsigned nq, char *err, size_t errlen);
void tap_close(struct tap *t);

/* TUNSETOFFLOAD: which offloads the reader (the guest) accepts. */
int tap_set_offload(struct tap *t, unsigned tun_flags);
/* TUNSETVNETHDRSZ on every queue fd. */
int tap_set_vnet_hdr_size(struct tap *t, int size);
/* TUNSETQUEUE: attach or detach queue fd i, so that the kernel stops
 * steering packets to a queue the guest does not use. */
int tap_queue_attach(struct tap *t, unsigned i, bool attach);

#endif
