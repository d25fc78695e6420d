/* vhost-net: the kernel serves a virtio-net queue pair (drivers/vhost/net.c,
 * Documentation/virt/kvm/... and include/uapi/linux/vhost.h).
 *
 * One /dev/vhost-net fd per queue pair, two rings each (0 = RX, 1 = TX).
 * The kick eventfd of each ring is the queue's KVM ioeventfd and the call
 * eventfd is the irqfd of the queue's MSI-X vector, so a packet crosses
 * guest -> tap -> guest without minivmm running at all.  The tap fd is the
 * backend (the tap already speaks virtio-net headers, IFF_VNET_HDR).
 * minivmm only sets the rings up at DRIVER_OK and detaches them on reset. */
#ifndef MINIVMM_VHOST_NET_H
#define MINIVMM_VHOST_NET_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct virtio_pci;
struct tap;
struct vhost_net;

/* Open /dev/vhost-net once per pair (before any guest code runs) and check
 * that the kernel implements the ring features the transport offers.
 * 0 or -errno with one line in err. */
int vhost_net_open(struct vhost_net **out, struct vm *vm, unsigned npairs, char *err,
		   size_t errlen);
void vhost_net_close(struct vhost_net *vh); /* NULL is fine */
/* Hand the rings of pairs 0..npairs-1 to the kernel.  0 or -errno (then
 * nothing is left attached and the caller uses its own datapath). */
int vhost_net_start(struct vhost_net *vh, struct virtio_pci *vp, struct tap *tap,
		    unsigned npairs);
/* Detach every ring (device reset): on return the kernel no longer
 * touches guest memory for this device. */
void vhost_net_stop(struct vhost_net *vh, unsigned npairs);

#endif
