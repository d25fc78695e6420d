/* Modern virtio-pci transport (virtio 1.2 §4.1).  See virtio/pci.h. */
#include "virtio/pci.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/vm.h"

/* §4.1.4 capability types */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK  0x4000
#define MSIX_ENTRY_MASKED 1

static uint64_t ld(const uint8_t *d, uint32_t len)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static void st(uint8_t *d, uint32_t len, uint64_t v)
{
	for (uint32_t i = 0; i < len; i++)
		d[i] = (uint8_t)(v >> (8 * i));
}

/* ---- MSI-X ---- */

/* Deliver vector vec now or mark it pending.  Caller holds msix_lock. */
static void msix_fire_locked(struct virtio_pci *v, uint16_t vec)
{
	struct vpci_msix_entry *e = &v->msix[vec];
	uint64_t one = 1;

	if (!v->msix_enabled)
		return; /* no INTx: nothing to deliver to */
	atomic_fetch_add(&v->stat_irqs, 1);
	if (v->msix_fmask || (e->ctrl & MSIX_ENTRY_MASKED)) {
		v->pba[vec / 64] |= 1ULL << (vec % 64);
		return;
	}
	if (e->attached) {
		if (write(e->efd, &one, sizeof(one)) == (ssize_t)sizeof(one))
			return;
	}
	/* No route (KVM refused one): slow path, still correct. */
	vm_signal_msi(v->vm, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
}

static void msix_fire(struct virtio_pci *v, uint16_t vec)
{
	if (vec >= v->nvec)
		return;
	pthread_mutex_lock(&v->msix_lock);
	msix_fire_locked(v, vec);
	pthread_mutex_unlock(&v->msix_lock);
}

/* Entry vec changed, or enable/mask changed: make the KVM route match the
 * entry, and deliver a pending message once it is unmasked. */
static void msix_update_locked(struct virtio_pci *v, uint16_t vec)
{
	struct vpci_msix_entry *e = &v->msix[vec];
	uint64_t addr = (uint64_t)e->addr_hi << 32 | e->addr_lo;

	if (!v->msix_enabled || v->msix_fmask || (e->ctrl & MSIX_ENTRY_MASKED)) {
		/* Masked: detach, so nothing reaches the guest until unmask. */
		if (e->attached && vm_irqfd(v->vm, e->efd, e->gsi, false) == 0)
			e->attached = false;
		return;
	}
	if (!e->routed) {
		uint32_t gsi;

		if (vm_msi_route_add(v->vm, addr, e->data, &gsi) == 0) {
			e->routed = true;
			e->gsi = gsi;
		}
	} else if (e->r_addr != addr || e->r_data != e->data) {
		if (vm_msi_route_update(v->vm, e->gsi, addr, e->data)) {
			/* Keep delivering correctly through the slow path. */
			if (e->attached)
				vm_irqfd(v->vm, e->efd, e->gsi, false);
			vm_msi_route_del(v->vm, e->gsi);
			e->routed = e->attached = false;
		}
	}
	e->r_addr = addr;
	e->r_data = e->data;
	/* (Re-)attach after the route says the right thing; KVM injects at
	 * once if the eventfd was written while detached. */
	if (e->routed && !e->attached)
		e->attached = vm_irqfd(v->vm, e->efd, e->gsi, true) == 0;
	if (v->pba[vec / 64] & (1ULL << (vec % 64))) {
		v->pba[vec / 64] &= ~(1ULL << (vec % 64));
		atomic_fetch_sub(&v->stat_irqs, 1); /* counted when it was pended */
		msix_fire_locked(v, vec);
	}
}

static void msix_table_access(struct virtio_pci *v, uint32_t off, uint8_t *data, uint32_t len,
			      bool is_write)
{
	uint32_t vec = off / 16, reg = (off % 16) / 4;

	/* Dword accesses (8-byte ones are split by the caller). */
	if (len != 4 || (off & 3) || vec >= v->nvec) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&v->msix_lock);
	{
		struct vpci_msix_entry *e = &v->msix[vec];
		uint32_t *r[4] = { &e->addr_lo, &e->addr_hi, &e->data, &e->ctrl };

		if (!is_write) {
			st(data, 4, *r[reg]);
		} else {
			uint32_t val = (uint32_t)ld(data, 4);
			if (reg == 3)
				val &= MSIX_ENTRY_MASKED;
			*r[reg] = val;
			msix_update_locked(v, (uint16_t)vec);
		}
	}
	pthread_mutex_unlock(&v->msix_lock);
}

static void msix_pba_read(struct virtio_pci *v, uint32_t off, uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
	pthread_mutex_lock(&v->msix_lock);
	for (uint32_t i = 0; i < len; i++) {
		uint32_t byte = off + i;
		if (byte / 8 < sizeof(v->pba) / 8)
			data[i] = (uint8_t)(v->pba[byte / 8] >> (8 * (byte % 8)));
	}
	pthread_mutex_unlock(&v->msix_lock);
}

/* Config-space hook: the MSI-X message control word changed. */
static void vpci_cfg_write(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct virtio_pci *v = d->opaque;
	uint32_t ctl = v->msix_cap + 2u;
	uint16_t mc;

	if (off > ctl + 1 || off + len <= ctl)
		return;
	mc = pci_cfg_r16(d, ctl);
	pthread_mutex_lock(&v->msix_lock);
	v->msix_enabled = mc & MSIX_CTRL_ENABLE;
	v->msix_fmask = mc & MSIX_CTRL_FMASK;
	for (uint16_t i = 0; i < v->nvec; i++)
		msix_update_locked(v, i);
	pthread_mutex_unlock(&v->msix_lock);
}

/* ---- reset, status, features ---- */

static void vpci_reset_locked(struct virtio_pci *v)
{
	if (v->started) {
		v->ops->stop(v->opaque); /* the I/O thread is gone on return */
		v->started = false;
	}
	for (int q = 0; q < v->nq; q++) {
		vq_reset(&v->vq[q]);
		v->vq[q].size = VQ_MAX_SIZE;
		atomic_store(&v->q_vector[q], VIRTIO_MSI_NO_VECTOR);
	}
	atomic_store(&v->cfg_vector, VIRTIO_MSI_NO_VECTOR);
	v->drv_features = 0;
	v->dfsel = v->gfsel = 0;
	v->qsel = 0;
	atomic_store(&v->isr, 0);
	atomic_store(&v->status, 0);
}

void virtio_pci_needs_reset(struct virtio_pci *v)
{
	uint8_t old = atomic_fetch_or(&v->status, VIRTIO_STATUS_NEEDS_RESET);

	if (old & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_guest("%s: device needs reset (driver error)", v->name);
	/* §4.1.4.5: ISR bit 1 = configuration change; with MSI-X the config
	 * vector carries it. */
	atomic_fetch_or(&v->isr, 2);
	if (old & VIRTIO_STATUS_DRIVER_OK)
		msix_fire(v, atomic_load(&v->cfg_vector));
}

void virtio_pci_signal_queue(struct virtio_pci *v, uint16_t q)
{
	if (q >= v->nq)
		return;
	atomic_fetch_or(&v->isr, 1);
	msix_fire(v, atomic_load(&v->q_vector[q]));
}

static void status_write(struct virtio_pci *v, uint8_t val)
{
	uint8_t old = atomic_load(&v->status);

	if (val == 0) {
		vpci_reset_locked(v);
		return;
	}
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* §3.1.1: accept only a subset of what we offered, and only
		 * the modern interface (VERSION_1, §6.1). */
		if ((v->drv_features & ~v->dev_features) ||
		    !((v->drv_features >> VIRTIO_F_VERSION_1) & 1)) {
			log_guest("%s: refusing features 0x%llx", v->name,
				  (unsigned long long)v->drv_features);
			val &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	/* Bits the device owns stay as they are. */
	val = (uint8_t)((val & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
	atomic_store(&v->status, val);
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) && !v->started) {
		if (!(val & VIRTIO_STATUS_FEATURES_OK)) {
			virtio_pci_needs_reset(v);
			return;
		}
		if (v->ops->start(v->opaque) == 0)
			v->started = true;
		else
			virtio_pci_needs_reset(v);
	}
}

static void queue_enable(struct virtio_pci *v, uint16_t q)
{
	struct virtq *vq = &v->vq[q];

	if (vq->ready)
		return;
	vq->event_idx = virtio_pci_has(v, VIRTIO_F_EVENT_IDX);
	vq->indirect = virtio_pci_has(v, VIRTIO_F_INDIRECT_DESC);
	if (vq_enable(vq)) {
		log_guest("%s: queue %u: invalid size %u or ring addresses", v->name, q, vq->size);
		virtio_pci_needs_reset(v);
	}
}

/* ---- common configuration (§4.1.4.3) ---- */

static uint64_t common_read(struct virtio_pci *v, uint32_t off)
{
	struct virtq *vq = v->qsel < v->nq ? &v->vq[v->qsel] : NULL;

	switch (off) {
	case 0x00: return v->dfsel;
	case 0x04: return v->dfsel < 2 ? (uint32_t)(v->dev_features >> (32 * v->dfsel)) : 0;
	case 0x08: return v->gfsel;
	case 0x0c: return v->gfsel < 2 ? (uint32_t)(v->drv_features >> (32 * v->gfsel)) : 0;
	case 0x10: return atomic_load(&v->cfg_vector);
	case 0x12: return v->nq;
	case 0x14: return atomic_load(&v->status);
	case 0x15: return v->config_gen;
	case 0x16: return v->qsel;
	case 0x18: return vq ? vq->size : 0;
	case 0x1a: return vq ? atomic_load(&v->q_vector[v->qsel]) : VIRTIO_MSI_NO_VECTOR;
	case 0x1c: return vq ? vq->ready : 0;
	case 0x1e: return vq ? v->qsel : 0;
	case 0x20: return vq ? vq->desc_gpa : 0;
	case 0x28: return vq ? vq->avail_gpa : 0;
	case 0x30: return vq ? vq->used_gpa : 0;
	case 0x38: return vq ? v->qsel : 0; /* queue_notify_data */
	default:   return 0;
	}
}

/* Width of the field at off, or 0 if no field starts there. */
static uint32_t common_width(uint32_t off)
{
	switch (off) {
	case 0x00: case 0x04: case 0x08: case 0x0c: return 4;
	case 0x10: case 0x12: case 0x16: case 0x18: case 0x1a: case 0x1c: case 0x1e:
	case 0x38: case 0x3a: return 2;
	case 0x14: case 0x15: return 1;
	case 0x20: case 0x28: case 0x30: return 8;
	default: return 0;
	}
}

static void set_gpa_half(uint64_t *g, uint32_t half, uint32_t len, uint64_t val)
{
	if (len == 8)
		*g = val;
	else if (half == 0)
		*g = (*g & 0xffffffff00000000ULL) | (uint32_t)val;
	else
		*g = (*g & 0xffffffffULL) | val << 32;
}

static void common_write(struct virtio_pci *v, uint32_t off, uint32_t len, uint64_t val)
{
	struct virtq *vq = v->qsel < v->nq ? &v->vq[v->qsel] : NULL;
	uint8_t status = atomic_load(&v->status);

	/* 64-bit ring addresses may be written as two dwords (§4.1.3.1). */
	if (off >= 0x20 && off < 0x38 && len == 4 && (off & 4)) {
		off -= 4;
		if (vq && !vq->ready) {
			uint64_t *g = off == 0x20 ? &vq->desc_gpa
				    : off == 0x28 ? &vq->avail_gpa : &vq->used_gpa;
			set_gpa_half(g, 1, 4, val);
		}
		return;
	}
	if (common_width(off) != len && !(off >= 0x20 && off < 0x38 && len == 4))
		return; /* wrong access size: ignore (§4.1.3.1) */
	switch (off) {
	case 0x00: v->dfsel = (uint32_t)val; break;
	case 0x08: v->gfsel = (uint32_t)val; break;
	case 0x0c:
		/* Features are frozen once FEATURES_OK is set (§3.1.1). */
		if (v->gfsel < 2 && !(status & VIRTIO_STATUS_FEATURES_OK)) {
			uint64_t m = 0xffffffffULL << (32 * v->gfsel);
			v->drv_features = (v->drv_features & ~m) | ((val << (32 * v->gfsel)) & m);
		}
		break;
	case 0x10:
		atomic_store(&v->cfg_vector, val < v->nvec ? (uint16_t)val : VIRTIO_MSI_NO_VECTOR);
		break;
	case 0x14: status_write(v, (uint8_t)val); break;
	case 0x16: v->qsel = (uint16_t)val; break;
	case 0x18:
		if (vq && !vq->ready)
			vq->size = (uint16_t)val; /* validated by vq_enable */
		break;
	case 0x1a:
		if (vq)
			atomic_store(&v->q_vector[v->qsel],
				     val < v->nvec ? (uint16_t)val : VIRTIO_MSI_NO_VECTOR);
		break;
	case 0x1c:
		if (vq && val == 1)
			queue_enable(v, v->qsel);
		break;
	case 0x20: case 0x28: case 0x30:
		if (vq && !vq->ready) {
			uint64_t *g = off == 0x20 ? &vq->desc_gpa
				    : off == 0x28 ? &vq->avail_gpa : &vq->used_gpa;
			set_gpa_half(g, 0, len, val);
		}
		break;
	default:
		break; /* read-only or unknown */
	}
}

static void common_access_read(struct virtio_pci *v, uint32_t off, uint8_t *data, uint32_t len)
{
	if (off >= 0x20 && off < 0x38 && len == 4) /* half of a ring address */
		st(data, 4, common_read(v, off & ~7u) >> (8 * (off & 4)));
	else if (common_width(off) == len)
		st(data, len, common_read(v, off));
	else
		memset(data, 0, len);
}

/* ---- BAR0 dispatch ---- */

static void bar_access(void *opaque, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *v = opaque;
	uint32_t off = (uint32_t)addr;

	if (off < VPCI_COMMON_OFF + VPCI_COMMON_LEN) {
		pthread_mutex_lock(&v->lock);
		if (is_write)
			common_write(v, off, len, ld(data, len));
		else
			common_access_read(v, off, data, len);
		pthread_mutex_unlock(&v->lock);
	} else if (off >= VPCI_ISR_OFF && off < VPCI_ISR_OFF + 4) {
		/* §4.1.4.5: reading ISR clears it. */
		if (!is_write) {
			memset(data, 0, len);
			if (off == VPCI_ISR_OFF)
				data[0] = atomic_exchange(&v->isr, 0);
		}
	} else if (off >= VPCI_DEVCFG_OFF && off + len <= VPCI_DEVCFG_OFF + VPCI_DEVCFG_LEN) {
		pthread_mutex_lock(&v->lock);
		if (is_write)
			v->ops->cfg_write(v->opaque, off - VPCI_DEVCFG_OFF, data, len);
		else
			v->ops->cfg_read(v->opaque, off - VPCI_DEVCFG_OFF, data, len);
		pthread_mutex_unlock(&v->lock);
	} else if (off >= VPCI_NOTIFY_OFF && off < VPCI_NOTIFY_OFF + VPCI_NOTIFY_MUL * (uint32_t)v->nq) {
		/* A kick KVM did not catch (other width, or no ioeventfd). */
		if (is_write) {
			uint64_t one = 1;
			uint32_t q = (off - VPCI_NOTIFY_OFF) / VPCI_NOTIFY_MUL;
			atomic_fetch_add(&v->stat_notify_exits, 1);
			if (write(v->kick_fd[q], &one, sizeof(one)) < 0)
				log_guest("%s: kick: %s", v->name, strerror(errno));
		} else {
			memset(data, 0, len);
		}
	} else if (off >= VPCI_MSIX_OFF && off < VPCI_MSIX_OFF + 16u * v->nvec) {
		if (len == 8) {
			msix_table_access(v, off - VPCI_MSIX_OFF, data, 4, is_write);
			msix_table_access(v, off - VPCI_MSIX_OFF + 4, data + 4, 4, is_write);
		} else {
			msix_table_access(v, off - VPCI_MSIX_OFF, data, len, is_write);
		}
	} else if (off >= VPCI_PBA_OFF && off < VPCI_PBA_OFF + sizeof(v->pba)) {
		if (!is_write)
			msix_pba_read(v, off - VPCI_PBA_OFF, data, len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
}

/* BAR0 moved: move the per-queue ioeventfds with it. */
static void vpci_bar_map(struct pci_dev *d, int bar, uint64_t addr, bool map)
{
	struct virtio_pci *v = d->opaque;

	if (bar != 0)
		return;
	for (uint16_t q = 0; q < v->nq; q++) {
		uint64_t a = addr + VPCI_NOTIFY_OFF + (uint64_t)VPCI_NOTIFY_MUL * q;

		if (map) {
			v->ioeventfd_ok[q] = vm_ioeventfd(v->vm, a, 2, false, true, q,
							  v->kick_fd[q], true) == 0;
			if (!v->ioeventfd_ok[q])
				log_warn("%s: KVM_IOEVENTFD for queue %u failed; kicks will exit",
					 v->name, q);
		} else if (v->ioeventfd_ok[q]) {
			vm_ioeventfd(v->vm, a, 2, false, true, q, v->kick_fd[q], false);
			v->ioeventfd_ok[q] = false;
		}
	}
}

/* ---- capabilities and setup ---- */

static uint8_t add_virtio_cap(struct virtio_pci *v, uint8_t type, uint32_t off, uint32_t len,
			      uint32_t extra, bool has_extra)
{
	uint8_t c[20] = { PCI_CAP_ID_VNDR, 0, has_extra ? 20 : 16, type, 0 /* bar */ };

	st(c + 8, 4, off);
	st(c + 12, 4, len);
	if (has_extra)
		st(c + 16, 4, extra);
	return pci_dev_add_cap(&v->pdev, c, c[2]);
}

int virtio_pci_init(struct virtio_pci *v, struct vm *vm, const char *name,
		    uint16_t device_id, uint16_t nq, uint64_t features,
		    const struct virtio_dev_ops *ops, void *opaque)
{
	uint8_t msix[12] = { PCI_CAP_ID_MSIX };
	int r;

	if (nq == 0 || nq > VIRTIO_PCI_MAX_QUEUES || !vm->pci)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->ops = ops;
	v->opaque = opaque;
	v->nq = nq;
	v->nvec = (uint16_t)(nq + 1);
	v->dev_features = features | 1ULL << VIRTIO_F_VERSION_1 |
			  1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX;
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->msix_lock, NULL);
	for (int i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++)
		v->kick_fd[i] = -1;
	for (int i = 0; i < VIRTIO_PCI_MAX_VECTORS; i++)
		v->msix[i].efd = -1;
	for (uint16_t q = 0; q < nq; q++) {
		v->vq[q].gm = &vm->mem;
		v->kick_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (v->kick_fd[q] < 0)
			goto fail_errno;
	}
	for (uint16_t i = 0; i < v->nvec; i++) {
		v->msix[i].ctrl = MSIX_ENTRY_MASKED; /* reset state (PCI 3.0 §6.8.2.9) */
		v->msix[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (v->msix[i].efd < 0)
			goto fail_errno;
	}
	vpci_reset_locked(v);

	/* §4.1.2: 0x1040 + id, revision >= 1, subsystem device id >= 0x40. */
	pci_dev_init(&v->pdev, v->name, 0x1af4, (uint16_t)(0x1040 + device_id),
		     device_id == 2 ? 0x010000 : 0x020000, 0x1af4, 0x40);
	if (device_id == 2)
		v->pdev.cfg[PCI_CLASS_DEVICE] = 0x80; /* mass storage, other */
	v->pdev.opaque = v;
	v->pdev.cfg_write = vpci_cfg_write;
	v->pdev.bar_map = vpci_bar_map;
	pci_dev_set_bar(&v->pdev, 0, VPCI_BAR_SIZE, false, false, bar_access, v);
	add_virtio_cap(v, VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON_OFF, VPCI_COMMON_LEN, 0, false);
	add_virtio_cap(v, VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR_OFF, 4, 0, false);
	add_virtio_cap(v, VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVCFG_OFF, VPCI_DEVCFG_LEN, 0, false);
	add_virtio_cap(v, VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF,
		       (uint32_t)VPCI_NOTIFY_MUL * nq, VPCI_NOTIFY_MUL, true);
	/* MSI-X: table size N-1, table and PBA in BAR0 (BIR 0). */
	st(msix + 2, 2, (uint16_t)(v->nvec - 1));
	st(msix + 4, 4, VPCI_MSIX_OFF);
	st(msix + 8, 4, VPCI_PBA_OFF);
	v->msix_cap = pci_dev_add_cap(&v->pdev, msix, sizeof(msix));
	v->pdev.wmask[v->msix_cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;

	r = pci_add_device(vm->pci, &v->pdev);
	if (r) {
		log_err("%s: no free PCI slot or BAR space", v->name);
		goto fail;
	}
	return 0;
fail_errno:
	r = -errno;
	log_err("%s: eventfd: %s", name, strerror(errno));
fail:
	for (int i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++)
		if (v->kick_fd[i] >= 0)
			close(v->kick_fd[i]);
	for (int i = 0; i < VIRTIO_PCI_MAX_VECTORS; i++)
		if (v->msix[i].efd >= 0)
			close(v->msix[i].efd);
	return r;
}

void virtio_pci_exit(struct virtio_pci *v)
{
	pthread_mutex_lock(&v->lock);
	vpci_reset_locked(v);
	pthread_mutex_unlock(&v->lock);
	pci_remove_device(v->vm->pci, &v->pdev);
	for (uint16_t i = 0; i < v->nvec; i++) {
		struct vpci_msix_entry *e = &v->msix[i];
		if (e->attached)
			vm_irqfd(v->vm, e->efd, e->gsi, false);
		if (e->routed)
			vm_msi_route_del(v->vm, e->gsi);
		close(e->efd);
	}
	for (uint16_t q = 0; q < v->nq; q++)
		close(v->kick_fd[q]);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->msix_lock);
}
