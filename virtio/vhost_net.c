/* vhost-net setup and teardown.  See virtio/vhost_net.h. */
#include "virtio/vhost_net.h"

#include <errno.h>
#include <fcntl.h>
/* linux/vhost.h pulls in linux/virtio_ring.h, whose ring structs clash
 * with virtio/queue.h's: rename them out of the way. */
#define vring_desc linux_vring_desc
#define vring_used_elem linux_vring_used_elem
#include <linux/vhost.h>
#undef vring_desc
#undef vring_used_elem
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "devices/tap.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "vmm/log.h"
#include "vmm/vm.h"

/* Ring-level features vhost itself must implement; the offload bits are the
 * tap's business (TUNSETOFFLOAD). */
#define VHOST_RING_FEATURES                                                    \
	(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_EVENT_IDX |             \
	 1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_NET_F_MRG_RXBUF)

struct vhost_net {
	struct vm *vm;
	unsigned n;
	int fd[TAP_MAX_QUEUES];
	bool owned[TAP_MAX_QUEUES];
};

void vhost_net_close(struct vhost_net *vh)
{
	if (!vh)
		return;
	for (unsigned i = 0; i < vh->n; i++)
		if (vh->fd[i] >= 0)
			close(vh->fd[i]);
	free(vh);
}

int vhost_net_open(struct vhost_net **out, struct vm *vm, unsigned npairs, char *err,
		   size_t errlen)
{
	struct vhost_net *vh = calloc(1, sizeof(*vh));

	*out = NULL;
	if (!vh || npairs > TAP_MAX_QUEUES) {
		free(vh);
		snprintf(err, errlen, "vhost-net: out of memory");
		return -ENOMEM;
	}
	vh->vm = vm;
	for (unsigned i = 0; i < npairs; i++) {
		uint64_t f = 0;

		vh->fd[i] = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
		vh->n = i + 1;
		if (vh->fd[i] < 0) {
			int e = errno;
			snprintf(err, errlen, "/dev/vhost-net: %s%s", strerror(e),
				 e == ENOENT ? " (modprobe vhost_net)" : "");
			vhost_net_close(vh);
			return -e;
		}
		/* SET_OWNER binds the fd to this process (its mm and a
		 * kernel worker thread); done once per fd. */
		if (ioctl(vh->fd[i], VHOST_SET_OWNER) < 0 ||
		    ioctl(vh->fd[i], VHOST_GET_FEATURES, &f) < 0) {
			int e = errno;
			snprintf(err, errlen, "/dev/vhost-net: VHOST_SET_OWNER/GET_FEATURES: %s",
				 strerror(e));
			vhost_net_close(vh);
			return -e;
		}
		vh->owned[i] = true;
		if ((f & VHOST_RING_FEATURES) != VHOST_RING_FEATURES) {
			snprintf(err, errlen, "/dev/vhost-net lacks ring features (0x%llx)",
				 (unsigned long long)f);
			vhost_net_close(vh);
			return -EOPNOTSUPP;
		}
	}
	*out = vh;
	return 0;
}

static int set_mem_table(struct vhost_net *vh, int fd)
{
	const struct guest_mem *gm = &vh->vm->mem;
	struct vhost_memory *m;
	int r = 0;

	m = calloc(1, sizeof(*m) + (size_t)gm->nr * sizeof(m->regions[0]));
	if (!m)
		return -ENOMEM;
	m->nregions = (uint32_t)gm->nr;
	for (int i = 0; i < gm->nr; i++) {
		m->regions[i].guest_phys_addr = gm->r[i].gpa;
		m->regions[i].memory_size = gm->r[i].size;
		m->regions[i].userspace_addr = (uint64_t)(uintptr_t)gm->r[i].host;
	}
	if (ioctl(fd, VHOST_SET_MEM_TABLE, m) < 0)
		r = -errno;
	free(m);
	return r;
}

/* The irqfd eventfd behind queue q's MSI-X vector, or -1 when there is no
 * in-kernel route (vhost could not interrupt the guest). */
static int call_fd(struct virtio_pci *vp, uint16_t q)
{
	uint16_t vec = atomic_load(&vp->q_vector[q]);
	int fd = -1;

	if (vec >= vp->nvec)
		return -1;
	pthread_mutex_lock(&vp->msix_lock);
	if (vp->msix[vec].routed)
		fd = vp->msix[vec].efd;
	pthread_mutex_unlock(&vp->msix_lock);
	return fd;
}

static int ring_setup(struct virtio_pci *vp, int fd, unsigned ring, uint16_t q, int tapfd)
{
	struct virtq *vq = &vp->vq[q];
	struct vhost_vring_state num = { .index = ring, .num = vq->size };
	struct vhost_vring_state base = { .index = ring, .num = vq->last_avail };
	struct vhost_vring_addr addr = {
		.index = ring,
		.desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
		.avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
		.used_user_addr = (uint64_t)(uintptr_t)vq->used_hdr,
	};
	struct vhost_vring_file kick = { .index = ring, .fd = vp->kick_fd[q] };
	struct vhost_vring_file call = { .index = ring, .fd = call_fd(vp, q) };
	struct vhost_vring_file backend = { .index = ring, .fd = tapfd };

	if (!vq->ready || vq->broken)
		return -EINVAL;
	if (call.fd < 0)
		return -ENXIO; /* no MSI-X route for this queue */
	if (ioctl(fd, VHOST_SET_VRING_NUM, &num) < 0 ||
	    ioctl(fd, VHOST_SET_VRING_BASE, &base) < 0 ||
	    ioctl(fd, VHOST_SET_VRING_ADDR, &addr) < 0 ||
	    ioctl(fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
	    ioctl(fd, VHOST_SET_VRING_CALL, &call) < 0 ||
	    ioctl(fd, VHOST_NET_SET_BACKEND, &backend) < 0)
		return -errno;
	return 0;
}

static void pair_detach(struct vhost_net *vh, unsigned i)
{
	for (unsigned ring = 0; ring < 2; ring++) {
		struct vhost_vring_file backend = { .index = ring, .fd = -1 };
		struct vhost_vring_state base = { .index = ring };

		ioctl(vh->fd[i], VHOST_NET_SET_BACKEND, &backend);
		/* GET_VRING_BASE stops the ring (vhost_vring_ioctl). */
		ioctl(vh->fd[i], VHOST_GET_VRING_BASE, &base);
	}
}

int vhost_net_start(struct vhost_net *vh, struct virtio_pci *vp, struct tap *tap,
		    unsigned npairs)
{
	uint64_t feat = vp->drv_features & VHOST_RING_FEATURES;

	if (npairs > vh->n)
		return -EINVAL;
	for (unsigned i = 0; i < npairs; i++) {
		int fd = vh->fd[i], r;

		if (ioctl(fd, VHOST_SET_FEATURES, &feat) < 0)
			r = -errno;
		else
			r = set_mem_table(vh, fd);
		if (!r)
			r = ring_setup(vp, fd, 0, (uint16_t)(2 * i), tap->fd[i]);
		if (!r)
			r = ring_setup(vp, fd, 1, (uint16_t)(2 * i + 1), tap->fd[i]);
		if (r) {
			while (1) {
				pair_detach(vh, i);
				if (i-- == 0)
					break;
			}
			return r;
		}
	}
	return 0;
}

void vhost_net_stop(struct vhost_net *vh, unsigned npairs)
{
	for (unsigned i = 0; i < npairs && i < vh->n; i++)
		pair_detach(vh, i);
}
