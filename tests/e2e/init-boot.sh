#!/bin/sh
# /init for the boot tests: report what the guest sees, then obey the
# console: "reboot", "poweroff", "shell", or any other line is run.
/sbin/minivmm-setup
echo "MVT-NPROC=$(nproc)"
echo "MVT-MEMTOTAL-KB=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "MVT-CMDLINE=$(cat /proc/cmdline)"
echo "MVT-BOOT-MARK"
while read -r line; do
    case "$line" in
        reboot) reboot -f ;;
        poweroff) poweroff -f ;;
        shell) exec setsid cttyhack sh ;;
        *) echo "MVT-ECHO=$(eval "$line")" ;;
    esac
done
poweroff -f
