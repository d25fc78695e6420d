#!/bin/bash
# `minivmm img` against qemu-img: images we create must pass `qemu-img
# check` and report the same facts in `qemu-img info`; `img info` must
# agree with `qemu-img info`; `img convert` output must compare equal.
# Usage: img-test.sh IMG_DRIVER   (a binary that behaves like `minivmm img`)
set -u
IMG=$(realpath "$1")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fails=0
# The system python starts much faster than a pyenv shim.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# Selected keys of `info --output=json`, flattened, for comparison.
facts() {
	$PY -c '
import json, sys
j = json.load(sys.stdin)
d = j.get("format-specific", {}).get("data", {})
keys = [j.get("virtual-size"), j.get("format"), j.get("cluster-size"),
        j.get("backing-filename"), j.get("backing-filename-format"),
        d.get("compat"), d.get("refcount-bits"), d.get("lazy-refcounts"),
        d.get("compression-type"), d.get("corrupt"),
        [ (s["id"], s["name"], s["vm-state-size"]) for s in j.get("snapshots", []) ]]
print(keys)'
}

qemu-img create -q -f raw base.raw 48M
qemu-io -f raw -c 'write -P 0x42 0 48M' base.raw >/dev/null

# --- create: ours vs qemu's, same options -------------------------------
i=0
while IFS='|' read -r args size; do
	i=$((i + 1))
	if ! $IMG create -q -f qcow2 $args ours$i.qcow2 $size; then
		fail "create $args"; continue
	fi
	qemu-img create -q -f qcow2 $args theirs$i.qcow2 $size
	qemu-img check -q ours$i.qcow2 || fail "qemu-img check after create $args"
	a=$(qemu-img info --output=json ours$i.qcow2 | facts)
	b=$(qemu-img info --output=json theirs$i.qcow2 | facts)
	[ "$a" = "$b" ] || fail "create $args: info differs: $a vs $b"
	# usable by qemu, and by our own info
	qemu-io -f qcow2 -c 'write -P 0x17 1M 300k' -c 'write -z 2M 1M' ours$i.qcow2 >/dev/null ||
		fail "qemu-io on our image ($args)"
	qemu-img check -q ours$i.qcow2 || fail "check after qemu writes ($args)"
	c=$($IMG info --output=json ours$i.qcow2 | facts)
	d=$(qemu-img info --output=json ours$i.qcow2 | facts)
	[ "$c" = "$d" ] || fail "info ($args): $c vs $d"
	qemu-img compare -q ours$i.qcow2 theirs$i.qcow2 >/dev/null 2>&1
	[ $? -le 1 ] || fail "compare ($args)"
	ok "create $args"
done <<'LIST'
|64M
-o cluster_size=512|8M
-o cluster_size=2M|64M
-o compat=0.10|64M
-o refcount_bits=1|64M
-o refcount_bits=64,cluster_size=4k|32M
-o lazy_refcounts=on|64M
-o compression_type=zstd|64M
-o preallocation=metadata|64M
-o preallocation=full|16M
-o preallocation=metadata,cluster_size=512|4M
-b base.raw -F raw|48M
-b base.raw -F raw|
LIST

# preallocated images really are allocated
$IMG create -q -f qcow2 -o preallocation=metadata pm.qcow2 64M
n=$(qemu-img map --output=json pm.qcow2 | grep -c '"data": true')
[ "$n" -ge 1 ] || fail "preallocation=metadata maps no data"

# raw create
$IMG create -q -f raw r.raw 10M && [ "$(stat -c %s r.raw)" = 10485760 ] && ok "create raw" || fail "create raw"

# --- info on qemu-made images, snapshots included -----------------------
qemu-img create -q -f qcow2 -b base.raw -F raw snap.qcow2 64M
qemu-io -f qcow2 -c 'write -P 1 0 1M' snap.qcow2 >/dev/null
qemu-img snapshot -c first snap.qcow2
qemu-img snapshot -c second snap.qcow2
for f in snap.qcow2 base.raw theirs1.qcow2 theirs4.qcow2; do
	a=$($IMG info --output=json $f | facts)
	b=$(qemu-img info --output=json $f | facts)
	[ "$a" = "$b" ] && ok "info $f" || fail "info $f: $a vs $b"
done
$IMG info snap.qcow2 | grep -q '^virtual size: 64 MiB (67108864 bytes)$' || fail "human info"

# --- convert -------------------------------------------------------------
qemu-img create -q -f qcow2 mid.qcow2 -b base.raw -F raw
qemu-io -f qcow2 -c 'write -P 0x33 2M 3M' -c 'write -z 10M 2M' -c 'discard 20M 1M' mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 top.qcow2 -b mid.qcow2 -F qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x44 3M 64k' -c 'write -P 0x45 60M 1M' top.qcow2 >/dev/null
qemu-img convert -c -O qcow2 -o compression_type=zstd top.qcow2 zstd.qcow2
for src in top.qcow2 zstd.qcow2 base.raw; do
	for fmt in raw qcow2; do
		rm -f out.$fmt
		if $IMG convert -O $fmt $src out.$fmt; then
			qemu-img compare -q -f $fmt out.$fmt $src || fail "convert $src -> $fmt differs"
			[ $fmt = raw ] || qemu-img check -q out.$fmt || fail "convert $src -> $fmt: check"
			ok "convert $src -> $fmt"
		else
			fail "convert $src -> $fmt"
		fi
	done
done
$IMG convert -O qcow2 -o cluster_size=4k,compat=0.10 top.qcow2 small.qcow2 &&
	qemu-img compare -q small.qcow2 top.qcow2 && qemu-img check -q small.qcow2 &&
	ok "convert with options" || fail "convert with options"
# thin: zeros are not allocated
a=$(stat -c %b out.qcow2); [ "$a" -lt 140000 ] || fail "convert output not thin ($a blocks)"

# --- bench (smoke; performance is measured in bench/img-bench) -----------
qemu-img create -q -f qcow2 b.qcow2 32M
$IMG bench -q -w -c 5000 -d 16 -S 1044480 b.qcow2 || fail "bench write"
qemu-img check -q b.qcow2 || fail "check after bench -w"
$IMG bench -q -c 5000 -d 16 -S 1044480 b.qcow2 || fail "bench read"
$IMG bench -q -w -t none -c 2000 -d 8 -s 64k b.qcow2 || fail "bench cache=none"
$IMG bench -q -c 2000 -d 8 base.raw || fail "bench raw"
qemu-img check -q b.qcow2 || fail "check after bench cache=none"
ok "bench"

# --- check exit codes (details in tests/unit/qcow2/test_check.c) ---------
$IMG check -q theirs1.qcow2; [ $? = 0 ] || fail "check clean rc"
$IMG check -q base.raw; [ $? = 63 ] || fail "check raw rc"

echo "$fails failure(s)"
[ $fails = 0 ]
