#!/bin/sh
# Guest side of bench/net-bench (run by the initramfs's default /init via
# --rc): address from mvt.ip= on the cmdline, then serve NTESTS iperf3 runs
# and power off.
ip link set lo up
for w in $(cat /proc/cmdline); do
    case "$w" in
        mvt.ip=*) addr=${w#mvt.ip=} ;;
        mvt.ntests=*) ntests=${w#mvt.ntests=} ;;
    esac
done
ip link set eth0 up
ip addr add "$addr" dev eth0
echo "NETBENCH-READY"
i=0
while [ "$i" -lt "${ntests:-4}" ]; do
    iperf3 -s -1 >/dev/null 2>&1
    i=$((i + 1))
done
