#!/bin/sh
# /init for the network tests: bring eth0 up with the address given as
# mvt.ip=ADDR/LEN on the kernel command line, then run console lines.  Each
# line's output is framed: MVT-BEGIN-<n> ... MVT-END-<n> rc=<status>, so the
# host driver can wait for and parse one command at a time.
/sbin/minivmm-setup >/dev/null 2>&1
ip link set lo up
for w in $(cat /proc/cmdline); do
    case "$w" in
        mvt.ip=*) addr=${w#mvt.ip=} ;;
        mvt.mtu=*) mtu=${w#mvt.mtu=} ;;
    esac
done
for dev in /sys/class/net/eth*; do
    [ -e "$dev" ] || continue
    ip link set "${dev##*/}" up
done
[ -n "${mtu:-}" ] && ip link set eth0 mtu "$mtu"
[ -n "${addr:-}" ] && ip addr add "$addr" dev eth0
echo "MVT-NPROC=$(nproc)"
echo "MVT-MAC=$(cat /sys/class/net/eth0/address 2>/dev/null)"
echo "MVT-NET-UP"
n=0
while read -r line; do
    case "$line" in
        poweroff) poweroff -f ;;
    esac
    n=$((n + 1))
    echo "MVT-BEGIN-$n"
    eval "$line" 2>&1
    echo "MVT-END-$n rc=$?"
done
poweroff -f
