/* Parsing of command-line values.  Kept apart from main.c so the unit tests
 * can exercise every rule without starting a VM. */
#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 20; /* a bare number is MiB, like -m in QEMU */

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	/* Accept an optional "B" or "iB" ("512MiB", "2GB"). */
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

static bool opt_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return false;
	return true;
}

int parse_disk(char *s, struct disk_opts *d, char *err, unsigned errlen)
{
	char *save = NULL, *tok;

	memset(d, 0, sizeof(*d));
	tok = strtok_r(s, ",", &save);
	if (!tok || !*tok) {
		snprintf(err, errlen, "-d needs a file name: -d FILE[,ro][,format=raw|qcow2][,cache=writeback|none|unsafe][,serial=STR][,snapshot=on]");
		return -EINVAL;
	}
	d->path = tok;
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *val = strchr(tok, '=');
		if (val)
			*val++ = '\0';
		if (!strcmp(tok, "ro") && !val) {
			d->readonly = true;
		} else if (!strcmp(tok, "ro") || !strcmp(tok, "readonly")) {
			if (!opt_bool(val, &d->readonly))
				goto bad;
		} else if (!strcmp(tok, "format") && val) {
			if (!strcmp(val, "raw"))
				d->format = DISK_FMT_RAW;
			else if (!strcmp(val, "qcow2"))
				d->format = DISK_FMT_QCOW2;
			else
				goto bad;
		} else if (!strcmp(tok, "cache") && val) {
			if (!strcmp(val, "writeback"))
				d->cache = DISK_CACHE_WRITEBACK;
			else if (!strcmp(val, "none"))
				d->cache = DISK_CACHE_NONE;
			else if (!strcmp(val, "unsafe"))
				d->cache = DISK_CACHE_UNSAFE;
			else
				goto bad;
		} else if (!strcmp(tok, "serial") && val) {
			if (strlen(val) > 20) {
				snprintf(err, errlen, "disk %s: serial '%s' is longer than 20 characters", d->path, val);
				return -EINVAL;
			}
			d->serial = val;
		} else if (!strcmp(tok, "snapshot") && val) {
			if (!opt_bool(val, &d->snapshot))
				goto bad;
		} else {
			goto bad;
		}
		continue;
bad:
		snprintf(err, errlen, "disk %s: bad option '%s%s%s' (valid: ro, format=raw|qcow2, cache=writeback|none|unsafe, serial=STR, snapshot=on|off)",
			 d->path, tok, val ? "=" : "", val ? val : "");
		return -EINVAL;
	}
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char extra;

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &extra) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[i * 3]) || !isxdigit((unsigned char)s[i * 3 + 1]))
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	/* A multicast address (bit 0 of the first octet) cannot be a NIC's. */
	if (mac[0] & 1)
		return -EINVAL;
	return 0;
}

int parse_net(char *s, struct net_config *n, char *err, unsigned errlen)
{
	char *save = NULL, *tok;

	memset(n, 0, sizeof(*n));
	n->queues = 1;
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');
		unsigned long q;

		if (!val)
			goto bad;
		*val++ = '\0';
		if (!strcmp(tok, "tap")) {
			if (!*val || strlen(val) >= sizeof(n->ifname)) {
				snprintf(err, errlen, "-n tap=%s: interface names are 1 to %zu characters",
					 val, sizeof(n->ifname) - 1);
				return -EINVAL;
			}
			strcpy(n->ifname, val);
		} else if (!strcmp(tok, "mac")) {
			if (parse_mac(val, n->mac)) {
				snprintf(err, errlen, "-n mac=%s: not a unicast MAC address like 52:54:00:12:34:56", val);
				return -EINVAL;
			}
			n->mac_set = true;
		} else if (!strcmp(tok, "vhost")) {
			if (!opt_bool(val, &n->vhost))
				goto bad;
		} else if (!strcmp(tok, "queues")) {
			if (parse_uint(val, 1, 16, &q)) {
				snprintf(err, errlen, "-n queues=%s: expected a number from 1 to 16", val);
				return -EINVAL;
			}
			n->queues = (unsigned)q;
		} else {
			goto bad;
		}
		continue;
bad:
		snprintf(err, errlen, "-n: bad option '%s%s%s' (valid: tap=IFNAME, mac=52:54:00:xx:xx:xx, vhost=on|off, queues=N)",
			 tok, val ? "=" : "", val ? val : "");
		return -EINVAL;
	}
	if (!n->ifname[0]) {
		snprintf(err, errlen, "-n needs tap=IFNAME, e.g. -n tap=tap0");
		return -EINVAL;
	}
	return 0;
}
