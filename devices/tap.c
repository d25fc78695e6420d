/* Linux tap devices.  See devices/tap.h. */
#include "devices/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/log.h"

static void close_all(struct tap *t)
{
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++) {
		if (t->fd[i] >= 0)
			close(t->fd[i]);
		t->fd[i] = -1;
	}
}

/* One line per failure, naming the tap and the likely fix. */
static void explain(struct tap *t, int e, bool mq, char *err, size_t errlen)
{
	const char *n = t->ifname;

	switch (e) {
	case EPERM:
	case EACCES:
		snprintf(err, errlen,
			 "tap %s: permission denied (create it for your user first: "
			 "ip tuntap add dev %s mode tap%s user $USER; or run as root)",
			 n, n, mq ? " multi_queue" : "");
		break;
	case EBUSY:
		snprintf(err, errlen, "tap %s: in use by another process", n);
		break;
	case EINVAL:
		snprintf(err, errlen,
			 "tap %s: exists but is not a %stap device (queues=N > 1 needs "
			 "'ip tuntap add dev %s mode tap multi_queue')",
			 n, mq ? "multi-queue " : "single-queue ", n);
		break;
	default:
		snprintf(err, errlen, "tap %s: TUNSETIFF: %s", n, strerror(e));
	}
}

static int bring_up(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		r = -errno;
	else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			r = -errno;
	}
	close(s);
	return r;
}

int tap_open(struct tap *t, const char *ifname, unsigned nq, char *err, size_t errlen)
{
	bool mq = nq > 1;
	unsigned feat = 0;

	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		t->fd[i] = -1;
	if (!*ifname || strlen(ifname) >= IFNAMSIZ) {
		snprintf(err, errlen, "tap '%s': interface names are 1 to %d characters", ifname,
			 IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (nq == 0 || nq > TAP_MAX_QUEUES) {
		snprintf(err, errlen, "tap %s: queues must be 1 to %d", ifname, TAP_MAX_QUEUES);
		return -EINVAL;
	}
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
	t->nq = nq;
	t->created = if_nametoindex(ifname) == 0;
	for (unsigned i = 0; i < nq; i++) {
		struct ifreq ifr = { 0 };
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

		if (fd < 0) {
			int e = errno;
			if (e == ENOENT || e == ENODEV)
				snprintf(err, errlen, "tap %s: /dev/net/tun does not exist "
					 "(modprobe tun)", ifname);
			else
				snprintf(err, errlen, "tap %s: /dev/net/tun: %s", ifname,
					 e == EACCES ? "permission denied" : strerror(e));
			close_all(t);
			return -e;
		}
		t->fd[i] = fd;
		if (i == 0 && ioctl(fd, TUNGETFEATURES, &feat) == 0 &&
		    (!(feat & IFF_VNET_HDR) || (mq && !(feat & IFF_MULTI_QUEUE)))) {
			snprintf(err, errlen, "tap %s: the kernel's tun driver lacks %s", ifname,
				 !(feat & IFF_VNET_HDR) ? "IFF_VNET_HDR" : "IFF_MULTI_QUEUE");
			close_all(t);
			return -EOPNOTSUPP;
		}
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (mq ? IFF_MULTI_QUEUE : 0);
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			int e = errno;
			explain(t, e, mq, err, errlen);
			close_all(t);
			return -e;
		}
	}
	/* Probe what the kernel accepts (set_offload in drivers/net/tun.c
	 * refuses unknown bits), then start with none: the guest decides. */
	t->offloads = 0;
	if (ioctl(t->fd[0], TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) == 0)
		t->offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
	if (ioctl(t->fd[0], TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_UFO) == 0)
		t->offloads |= TUN_F_UFO | TUN_F_CSUM;
	ioctl(t->fd[0], TUNSETOFFLOAD, 0);
	if (t->created) {
		int r = bring_up(ifname);
		if (r)
			log_warn("tap %s: cannot bring it up: %s", ifname, strerror(-r));
	}
	return 0;
}

void tap_close(struct tap *t)
{
	close_all(t);
}

int tap_set_offload(struct tap *t, unsigned tun_flags)
{
	return ioctl(t->fd[0], TUNSETOFFLOAD, tun_flags & t->offloads) < 0 ? -errno : 0;
}

int tap_set_vnet_hdr_size(struct tap *t, int size)
{
	for (unsigned i = 0; i < t->nq; i++)
		if (ioctl(t->fd[i], TUNSETVNETHDRSZ, &size) < 0)
			return -errno;
	return 0;
}

int tap_queue_attach(struct tap *t, unsigned i, bool attach)
{
	struct ifreq ifr = { 0 };

	if (i >= t->nq || t->nq == 1)
		return 0;
	ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	/* EINVAL: already in that state. */
	if (ioctl(t->fd[i], TUNSETQUEUE, &ifr) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}
