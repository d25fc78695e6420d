/* virtio-net device (virtio 1.2 §5.1) over a tap: features, config space,
 * control queue and one I/O thread per queue pair.  See virtio/net.h and
 * docs/networking.md.
 *
 * Queue layout (§5.1.2): receiveq1, transmitq1, ..., receiveqN,
 * transmitqN, controlq (only with CTRL_VQ, offered when queues > 1).
 *
 * Each pair's thread sleeps in epoll on the tap fd of that pair, the RX and
 * TX kick eventfds (signalled by KVM through KVM_IOEVENTFD) and a stop
 * eventfd; pair 0 also serves the control queue.  RX reads one packet at a
 * time from the tap into a bounce buffer and spreads it over guest buffers;
 * when the guest has none, the packet stays in the buffer, the tap fd
 * leaves the epoll set (no spinning) and an RX kick brings it back.  TX
 * writes each chain to the tap with one writev.  Work is drained in
 * batches with kicks suppressed, and each batch ends with at most one
 * interrupt per queue, only if the driver wants it (EVENT_IDX). */
#include "virtio/net.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/tap.h"
#include "virtio/pci.h"
#include "virtio/vhost_net.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define NET_MAX_PAIRS TAP_MAX_QUEUES
#define RX_BATCH 64   /* packets per wake-up before looking at other fds */
#define TX_BATCH 256

enum { TAG_STOP, TAG_TAP, TAG_RX, TAG_TX, TAG_CTRL };

struct virtio_net;

struct net_pair {
	struct virtio_net *n;
	unsigned idx;
	pthread_t thread;
	bool running;
	int epfd, stop_fd;
	bool tap_polled;          /* tap fd in the epoll set */
	uint8_t *rxbuf;           /* one packet from the tap */
	size_t rxlen;             /* > 0: a packet waits for guest buffers */
	struct vq_chain *chain;   /* scratch */
	bool sig_rx, sig_tx;
};

struct virtio_net {
	struct virtio_pci vp;
	struct vm *vm;
	char name[24];
	struct tap tap;
	uint8_t mac[6];
	unsigned npairs;          /* offered (max_virtqueue_pairs) */
	unsigned active;          /* the driver's choice (VQ_PAIRS_SET) */
	bool has_ctrl;
	uint16_t ctrl_q;
	uint8_t config[12];
	_Atomic bool halted;      /* NEEDS_RESET raised: stop touching rings */
	bool want_vhost;
	bool vhost_on;            /* rings are served by vhost right now */
	struct vhost_net *vhost;
	struct net_stats stats;
	struct net_pair pair[NET_MAX_PAIRS];
};

static uint16_t rxq(unsigned p) { return (uint16_t)(2 * p); }
static uint16_t txq(unsigned p) { return (uint16_t)(2 * p + 1); }

static void halt(struct virtio_net *n)
{
	atomic_store(&n->halted, true);
	virtio_pci_needs_reset(&n->vp);
}

static void tap_poll(struct net_pair *p, bool on)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = TAG_TAP };
	int fd = p->n->tap.fd[p->idx];

	if (on == p->tap_polled)
		return;
	if (epoll_ctl(p->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &e) == 0 || !on)
		p->tap_polled = on;
}

/* ---- receive ---- */

static void rx_process(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	struct virtq *vq = &n->vp.vq[rxq(p->idx)];
	bool mrg = virtio_pci_has(&n->vp, VIRTIO_NET_F_MRG_RXBUF);
	int fd = n->tap.fd[p->idx];

	if (!vq->ready) {
		tap_poll(p, false);
		return;
	}
	for (unsigned i = 0; i < RX_BATCH && !atomic_load(&n->halted); i++) {
		uint16_t seen;
		int r;

		if (!p->rxlen) {
			ssize_t got = read(fd, p->rxbuf, NET_MAX_PKT);
			if (got < 0) {
				/* EAGAIN: drained.  Anything else (EBADFD:
				 * queue detached): stop polling until a kick. */
				if (errno != EAGAIN && errno != EINTR)
					tap_poll(p, false);
				return;
			}
			if (got < VNET_HDR_LEN)
				continue;
			p->rxlen = (size_t)got;
		}
		seen = vq_avail_idx(vq); /* deliver sees at least these buffers */
		r = net_rx_deliver(vq, p->chain, p->rxbuf, p->rxlen, mrg);
		if (r == 1) {
			atomic_fetch_add(&n->stats.rx_packets, 1);
			atomic_fetch_add(&n->stats.rx_bytes, p->rxlen - VNET_HDR_LEN);
			p->rxlen = 0;
			p->sig_rx = true;
		} else if (r == 0) {
			/* Not enough buffers: park the packet, stop reading
			 * the tap, and ask for a kick when the driver adds a
			 * buffer past those we saw (§2.7.10).  Retry only if
			 * it already has: no spinning on a ring that holds
			 * some, but too few, buffers. */
			atomic_fetch_add(&n->stats.rx_stalls, 1);
			tap_poll(p, false);
			if (!vq_enable_notify_at(vq, seen))
				return;
			vq_disable_notify(vq);
			tap_poll(p, true);
		} else if (r == -EMSGSIZE) {
			atomic_fetch_add(&n->stats.rx_dropped, 1);
			p->rxlen = 0;
		} else {
			p->sig_rx = true;
			halt(n);
			return;
		}
	}
}

/* RX kick: the driver added buffers. */
static void rx_kick(struct net_pair *p)
{
	struct virtq *vq = &p->n->vp.vq[rxq(p->idx)];

	if (!vq->ready || atomic_load(&p->n->halted))
		return;
	vq_disable_notify(vq);
	tap_poll(p, true);
	rx_process(p);
}

/* ---- transmit ---- */

static void tx_process(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	struct virtq *vq = &n->vp.vq[txq(p->idx)];
	int fd = n->tap.fd[p->idx];

	if (!vq->ready)
		return;
	do {
		unsigned i;

		vq_disable_notify(vq);
		for (i = 0; i < TX_BATCH; i++) {
			ssize_t r;
			int ret;

			if (atomic_load(&n->halted))
				return;
			ret = vq_pop(vq, p->chain);
			if (ret == 0)
				break;
			if (ret < 0) {
				if (ret == -EBADMSG) {
					vq_push(vq, p->chain->head, 0);
					p->sig_tx = true;
				}
				halt(n);
				return;
			}
			r = net_tx_send(fd, p->chain);
			vq_push(vq, p->chain->head, 0); /* nothing written for the driver */
			p->sig_tx = true;
			if (r == -EBADMSG) {
				halt(n);
				return;
			}
			if (r < 0) {
				atomic_fetch_add(&n->stats.tx_errors, 1);
				continue;
			}
			atomic_fetch_add(&n->stats.tx_packets, 1);
			atomic_fetch_add(&n->stats.tx_bytes, (unsigned long)r);
		}
		if (i == TX_BATCH) {
			/* More may be waiting: let RX run, and come back
			 * through our own kick eventfd. */
			uint64_t one = 1;
			if (write(n->vp.kick_fd[txq(p->idx)], &one, sizeof(one)) < 0)
				log_err("%s: tx self-kick: %s", n->name, strerror(errno));
			return;
		}
	} while (vq_enable_notify(vq));
}

/* ---- control queue (§5.1.6.5) ---- */

static void set_active_pairs(struct virtio_net *n, unsigned pairs)
{
	for (unsigned i = 0; i < n->npairs; i++) {
		int r = tap_queue_attach(&n->tap, i, i < pairs);
		if (r)
			log_warn("%s: tap queue %u: TUNSETQUEUE: %s", n->name, i, strerror(-r));
	}
	n->active = pairs;
	/* A re-attached queue's thread may have stopped polling its tap:
	 * poke it through its RX kick (with vhost the kernel just re-checks
	 * the ring). */
	for (unsigned i = 1; i < pairs; i++) {
		uint64_t one = 1;
		if (write(n->vp.kick_fd[rxq(i)], &one, sizeof(one)) < 0)
			log_err("%s: rx wake-up: %s", n->name, strerror(errno));
	}
}

static uint8_t ctrl_command(struct virtio_net *n, const struct vq_chain *c)
{
	uint8_t hdr[2];
	uint16_t pairs;

	if (iov_to_buf(c->iov, c->nr_out, 0, hdr, 2) != 2)
		return VIRTIO_NET_ERR;
	if (hdr[0] == VIRTIO_NET_CTRL_MQ && hdr[1] == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) {
		if (iov_to_buf(c->iov, c->nr_out, 2, &pairs, 2) != 2 ||
		    pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > n->npairs) {
			log_guest("%s: VQ_PAIRS_SET: bad pair count", n->name);
			return VIRTIO_NET_ERR;
		}
		set_active_pairs(n, pairs);
		return VIRTIO_NET_OK;
	}
	return VIRTIO_NET_ERR; /* class/command not offered */
}

static void ctrl_process(struct net_pair *p)
{
	struct virtio_net *n = p->n;
	struct virtq *vq = &n->vp.vq[n->ctrl_q];
	int r;

	while (!atomic_load(&n->halted) && (r = vq_pop(vq, p->chain)) != 0) {
		struct vq_chain *c = p->chain;
		uint8_t ack;

		if (r < 0 || c->nr_in == 0 || c->out_len < 2) {
			if (r != -EIO)
				vq_push(vq, c->head, 0);
			halt(n);
			break;
		}
		ack = ctrl_command(n, c);
		/* The ack is the last writable byte. */
		iov_from_buf(c->iov + c->nr_out, c->nr_in, c->in_len - 1, &ack, 1);
		vq_push(vq, c->head, 1);
	}
	if (vq_should_notify(vq))
		virtio_pci_signal_queue(&n->vp, n->ctrl_q);
}

/* ---- the thread ---- */

static void drain_kick(int fd, atomic_ulong *count)
{
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) == sizeof(cnt) && count)
		atomic_fetch_add(count, cnt);
}

static void signal_batch(struct net_pair *p)
{
	struct virtio_net *n = p->n;

	if (p->sig_rx) {
		p->sig_rx = false;
		if (vq_should_notify(&n->vp.vq[rxq(p->idx)]))
			virtio_pci_signal_queue(&n->vp, rxq(p->idx));
	}
	if (p->sig_tx) {
		p->sig_tx = false;
		if (vq_should_notify(&n->vp.vq[txq(p->idx)]))
			virtio_pci_signal_queue(&n->vp, txq(p->idx));
	}
}

static void *pair_thread(void *arg)
{
	struct net_pair *p = arg;
	struct virtio_net *n = p->n;
	struct epoll_event ev[8];

	for (;;) {
		int k = epoll_wait(p->epfd, ev, 8, -1);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			log_err("%s: epoll_wait: %s", n->name, strerror(errno));
			return NULL;
		}
		for (int i = 0; i < k; i++) {
			switch (ev[i].data.u32) {
			case TAG_STOP:
				return NULL;
			case TAG_TAP:
				rx_process(p);
				break;
			case TAG_RX:
				drain_kick(n->vp.kick_fd[rxq(p->idx)], &n->stats.rx_kicks);
				rx_kick(p);
				break;
			case TAG_TX:
				drain_kick(n->vp.kick_fd[txq(p->idx)], &n->stats.tx_kicks);
				tx_process(p);
				break;
			case TAG_CTRL:
				drain_kick(n->vp.kick_fd[n->ctrl_q], NULL);
				ctrl_process(p);
				break;
			}
		}
		signal_batch(p);
	}
}

static int epoll_add(int ep, int fd, uint32_t tag)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) ? -errno : 0;
}

static void pair_stop(struct net_pair *p)
{
	uint64_t one = 1;

	if (p->running) {
		if (write(p->stop_fd, &one, sizeof(one)) != sizeof(one))
			log_err("%s: cannot stop queue pair %u", p->n->name, p->idx);
		pthread_join(p->thread, NULL);
		p->running = false;
	}
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	p->epfd = p->stop_fd = -1;
	p->tap_polled = false;
	p->rxlen = 0;
}

/* Userspace datapath for pair i: thread + epoll set.  The ctrl queue
 * rides on pair 0 (also in vhost mode, where it is the only thing
 * pair 0's thread serves). */
static int pair_start(struct virtio_net *n, unsigned i, bool datapath)
{
	struct net_pair *p = &n->pair[i];
	int r;

	p->n = n;
	p->idx = i;
	p->rxlen = 0;
	p->tap_polled = false;
	p->sig_rx = p->sig_tx = false;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->epfd < 0 || p->stop_fd < 0)
		return -errno;
	if ((r = epoll_add(p->epfd, p->stop_fd, TAG_STOP)))
		return r;
	if (datapath) {
		if ((r = epoll_add(p->epfd, n->vp.kick_fd[rxq(i)], TAG_RX)) ||
		    (r = epoll_add(p->epfd, n->vp.kick_fd[txq(i)], TAG_TX)))
			return r;
		tap_poll(p, true);
		if (!p->tap_polled)
			return -EIO;
	}
	if (i == 0 && n->has_ctrl && (r = epoll_add(p->epfd, n->vp.kick_fd[n->ctrl_q], TAG_CTRL)))
		return r;
	r = -pthread_create(&p->thread, NULL, pair_thread, p);
	if (r == 0)
		p->running = true;
	return r;
}

/* Offloads the tap may hand us = what the guest said it can take. */
static unsigned guest_offloads(const struct virtio_pci *v)
{
	unsigned f = 0;

	if (virtio_pci_has(v, VIRTIO_NET_F_GUEST_CSUM)) {
		f |= TUN_F_CSUM;
		if (virtio_pci_has(v, VIRTIO_NET_F_GUEST_TSO4))
			f |= TUN_F_TSO4;
		if (virtio_pci_has(v, VIRTIO_NET_F_GUEST_TSO6))
			f |= TUN_F_TSO6;
		if (virtio_pci_has(v, VIRTIO_NET_F_GUEST_ECN))
			f |= TUN_F_TSO_ECN;
		if (virtio_pci_has(v, VIRTIO_NET_F_GUEST_UFO))
			f |= TUN_F_UFO;
	}
	return f;
}

static void net_stop(void *opaque);

/* DRIVER_OK (vCPU thread, transport lock held). */
static int net_start(void *opaque)
{
	struct virtio_net *n = opaque;
	unsigned first = 1;
	int r;

	atomic_store(&n->halted, false);
	if ((r = tap_set_vnet_hdr_size(&n->tap, VNET_HDR_LEN)) ||
	    (r = tap_set_offload(&n->tap, guest_offloads(&n->vp)))) {
		log_err("%s: configuring tap %s: %s", n->name, n->tap.ifname, strerror(-r));
		return r;
	}
	/* §5.1.6.5.5: only the first pair until the driver asks for more. */
	n->active = 1;
	for (unsigned i = 0; i < n->npairs; i++)
		tap_queue_attach(&n->tap, i, i < first);
	n->vhost_on = false;
	if (n->vhost) {
		r = vhost_net_start(n->vhost, &n->vp, &n->tap, n->npairs);
		if (r == 0)
			n->vhost_on = true;
		else
			log_warn("%s: vhost-net: %s; using the userspace datapath", n->name,
				 strerror(-r));
	}
	for (unsigned i = 0; i < n->npairs; i++) {
		if (n->vhost_on && !(i == 0 && n->has_ctrl))
			continue;
		r = pair_start(n, i, !n->vhost_on);
		if (r) {
			log_err("%s: cannot start queue pair %u: %s", n->name, i, strerror(-r));
			net_stop(n);
			return r;
		}
	}
	return 0;
}

/* Reset (vCPU thread, transport lock held): threads joined, vhost
 * detached; the rings are no longer touched on return. */
static void net_stop(void *opaque)
{
	struct virtio_net *n = opaque;

	for (unsigned i = 0; i < n->npairs; i++)
		pair_stop(&n->pair[i]);
	if (n->vhost_on)
		vhost_net_stop(n->vhost, n->npairs);
	n->vhost_on = false;
}

static void net_cfg_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = opaque;

	memset(data, 0, len);
	if (off < sizeof(n->config))
		memcpy(data, n->config + off,
		       len < sizeof(n->config) - off ? len : sizeof(n->config) - off);
}

static void net_cfg_write(void *opaque, uint32_t off, const uint8_t *data, uint32_t len)
{
	/* mac is read-only without CTRL_MAC_ADDR (§5.1.4); nothing else is
	 * writable. */
}

static const struct virtio_dev_ops net_ops = {
	.cfg_read = net_cfg_read,
	.cfg_write = net_cfg_write,
	.start = net_start,
	.stop = net_stop,
};

/* Stable locally administered MAC for a tap name (FNV-1a): the same guest
 * on the same tap keeps its address (and DHCP lease) across runs. */
static void default_mac(const char *ifname, uint8_t mac[6])
{
	uint32_t h = 2166136261u;

	for (const char *s = ifname; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static uint64_t net_features(const struct virtio_net *n)
{
	uint64_t f = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS |
		     1ULL << VIRTIO_NET_F_MRG_RXBUF;
	unsigned off = n->tap.offloads;

	/* Host side: the tap takes partial checksums and GSO frames from us
	 * (IFF_VNET_HDR) whatever its offload setting. */
	f |= 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_HOST_TSO4 |
	     1ULL << VIRTIO_NET_F_HOST_TSO6 | 1ULL << VIRTIO_NET_F_HOST_ECN;
	if (off & TUN_F_UFO)
		f |= 1ULL << VIRTIO_NET_F_HOST_UFO;
	/* Guest side: only what the tap can be told to produce. */
	if (off & TUN_F_CSUM) {
		f |= 1ULL << VIRTIO_NET_F_GUEST_CSUM;
		if (off & TUN_F_TSO4)
			f |= 1ULL << VIRTIO_NET_F_GUEST_TSO4;
		if (off & TUN_F_TSO6)
			f |= 1ULL << VIRTIO_NET_F_GUEST_TSO6;
		if (off & TUN_F_TSO_ECN)
			f |= 1ULL << VIRTIO_NET_F_GUEST_ECN;
		if (off & TUN_F_UFO)
			f |= 1ULL << VIRTIO_NET_F_GUEST_UFO;
	}
	if (n->npairs > 1)
		f |= 1ULL << VIRTIO_NET_F_CTRL_VQ | 1ULL << VIRTIO_NET_F_MQ;
	return f;
}

static void net_destroy(struct virtio_net *n)
{
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++) {
		free(n->pair[i].rxbuf);
		free(n->pair[i].chain);
	}
	vhost_net_close(n->vhost);
	tap_close(&n->tap);
	free(n);
}

static int net_create(struct vm *vm, int idx, struct virtio_net **out)
{
	const struct net_config *nc = &vm->cfg->nets[idx];
	char err[512];
	struct virtio_net *n;
	uint16_t nq;
	uint64_t feat;
	int r;

	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	snprintf(n->name, sizeof(n->name), "virtio-net%d", idx & 0xff);
	n->vm = vm;
	n->npairs = nc->queues ? nc->queues : 1;
	if (n->npairs > NET_MAX_PAIRS) {
		log_err("%s: at most %d queue pairs", n->name, NET_MAX_PAIRS);
		free(n);
		return -EINVAL;
	}
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++)
		n->pair[i].epfd = n->pair[i].stop_fd = -1;
	r = tap_open(&n->tap, nc->ifname, n->npairs, err, sizeof(err));
	if (r) {
		log_err("%s", err);
		free(n);
		return r;
	}
	for (unsigned i = 0; i < n->npairs; i++) {
		n->pair[i].rxbuf = malloc(NET_MAX_PKT);
		n->pair[i].chain = malloc(sizeof(struct vq_chain));
		if (!n->pair[i].rxbuf || !n->pair[i].chain) {
			net_destroy(n);
			return -ENOMEM;
		}
	}
	if (nc->vhost) {
		r = vhost_net_open(&n->vhost, vm, n->npairs, err, sizeof(err));
		if (r)
			log_warn("%s: %s; falling back to the userspace datapath", n->name, err);
	}
	if (nc->mac_set)
		memcpy(n->mac, nc->mac, 6);
	else
		default_mac(nc->ifname, n->mac);
	n->has_ctrl = n->npairs > 1;
	nq = (uint16_t)(2 * n->npairs + n->has_ctrl);
	n->ctrl_q = (uint16_t)(2 * n->npairs);
	/* §5.1.4 struct virtio_net_config: mac, status, max_virtqueue_pairs */
	memcpy(n->config, n->mac, 6);
	n->config[6] = VIRTIO_NET_S_LINK_UP;
	n->config[8] = (uint8_t)n->npairs;
	feat = net_features(n);
	r = virtio_pci_init(&n->vp, vm, n->name, VIRTIO_ID_NET, nq, feat, &net_ops, n);
	if (r) {
		net_destroy(n);
		return r;
	}
	/* Always shown: the user needs the MAC for DHCP or static ARP. */
	fprintf(stderr, "minivmm: %s: tap %s%s, mac %02x:%02x:%02x:%02x:%02x:%02x, %u queue pair%s, vhost %s",
		 n->name, n->tap.ifname, n->tap.created ? " (created)" : "", n->mac[0],
		 n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5], n->npairs,
		 n->npairs > 1 ? "s" : "", n->vhost ? "on" : "off");
	fputs("\r\n", stderr);
	*out = n;
	return 0;
}

int virtio_net_init(struct vm *vm)
{
	for (int i = 0; i < vm->cfg->nnets; i++) {
		int r = net_create(vm, i, &vm->net[i]);
		if (r) {
			while (i-- > 0) {
				virtio_pci_exit(&vm->net[i]->vp);
				net_destroy(vm->net[i]);
				vm->net[i] = NULL;
			}
			return r;
		}
	}
	return 0;
}

void virtio_net_exit(struct vm *vm)
{
	for (int i = MAX_NETS - 1; i >= 0; i--) {
		if (vm->net[i]) {
			virtio_pci_exit(&vm->net[i]->vp); /* resets: stops the threads */
			net_destroy(vm->net[i]);
			vm->net[i] = NULL;
		}
	}
}

static double per(unsigned long a, unsigned long b)
{
	return b ? (double)a / (double)b : 0.0;
}

void virtio_net_stats(struct vm *vm)
{
	for (int i = 0; i < MAX_NETS; i++) {
		struct virtio_net *n = vm->net[i];
		unsigned long rxp, txp, rxk, txk, irq, pk;

		if (!n)
			continue;
		rxp = atomic_load(&n->stats.rx_packets);
		txp = atomic_load(&n->stats.tx_packets);
		rxk = atomic_load(&n->stats.rx_kicks);
		txk = atomic_load(&n->stats.tx_kicks);
		irq = atomic_load(&n->vp.stat_irqs);
		pk = rxp + txp;
		fprintf(stderr,
			"%s (%s): rx %lu packets %lu B, tx %lu packets %lu B, "
			"kicks rx %lu tx %lu (userspace %lu), interrupts %lu; per packet: "
			"kicks %.3f, interrupts %.3f; rx dropped %lu, rx stalls %lu, "
			"tx errors %lu%s\r\n",
			n->name, n->tap.ifname, rxp, atomic_load(&n->stats.rx_bytes), txp,
			atomic_load(&n->stats.tx_bytes), rxk, txk,
			atomic_load(&n->vp.stat_notify_exits), irq, per(rxk + txk, pk),
			per(irq, pk), atomic_load(&n->stats.rx_dropped),
			atomic_load(&n->stats.rx_stalls), atomic_load(&n->stats.tx_errors),
			n->vhost ? " (vhost: datapath counters are in the kernel)" : "");
	}
}
