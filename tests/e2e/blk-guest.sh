#!/bin/sh
# Guest side of tests/e2e/blk: /etc/minivmm/rc in the test initramfs.
# The scenario comes from the kernel command line (blktest=NAME); results
# are printed as KEY=VALUE lines that the host script checks.
t=$(sed -n 's/.*blktest=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
echo "BLKTEST=$t"
echo "DEVS=$(ls /sys/block | grep vd | tr '\n' ' ')"

case "$t" in
basic)
	# vda: fresh ext4, files, sync, unmount (the host reads it with debugfs)
	mkfs.ext4 -q -F /dev/vda || exit 10
	mount -t ext4 /dev/vda /mnt || exit 11
	seq 1 20000 > /mnt/numbers.txt
	mkdir /mnt/dir && echo hello-from-guest > /mnt/dir/hello.txt
	dd if=/dev/urandom of=/mnt/random.bin bs=64k count=32 2>/dev/null
	echo "RANDOM_MD5=$(md5sum < /mnt/random.bin | cut -d' ' -f1)"
	sync
	umount /mnt || exit 12
	echo "SERIAL=$(cat /sys/block/vda/serial)"
	# vdb: read-only, host-written pattern, reads at odd sector offsets
	echo "VDB_RO=$(cat /sys/block/vdb/ro)"
	for off in 1 7 333 1025 4095; do
		echo "PAT_$off=$(dd if=/dev/vdb bs=512 skip=$off count=3 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
	done
	echo "PAT_BYTES=$(dd if=/dev/vdb bs=1 skip=12345 count=1000 2>/dev/null | md5sum | cut -d' ' -f1)"
	if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>/dev/null; then
		echo "VDB_WRITE=accepted"
	else
		echo "VDB_WRITE=refused"
	fi
	# bypass the guest's read-only flag: the device itself must refuse
	blockdev --setrw /dev/vdb 2>/dev/null
	if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>/dev/null; then
		echo "VDB_DEVWRITE=accepted"
	else
		echo "VDB_DEVWRITE=refused"
	fi
	# vdc: discard punches a hole
	blkdiscard -o 1048576 -l 4194304 /dev/vdc && echo "DISCARD=ok"
	echo "DISCARD_MAX=$(cat /sys/block/vdc/queue/discard_max_bytes)"
	echo "NR_HW_QUEUES=$(ls /sys/block/vda/mq | wc -l)"
	;;
fio)
	fio --name=verify --filename=/dev/vda --direct=1 --ioengine=libaio \
	    --rw=randwrite --bs=4k --iodepth=32 --numjobs=2 --size=48M \
	    --offset_increment=48M --verify=crc32c --do_verify=1 --verify_fatal=1 \
	    --group_reporting --eta=never --output=/tmp/fio.out
	echo
	echo "FIO_EXIT=$?"
	grep -E "err=|WRITE:|READ:" /tmp/fio.out
	echo "NR_HW_QUEUES=$(ls /sys/block/vda/mq | wc -l)"
	;;
bench)
	# tests/e2e is not the place for numbers: bench/blk-bench drives this.
	rt=$(sed -n 's/.*blkrt=\([0-9]*\).*/\1/p' /proc/cmdline)
	for spec in "randread 4k" "randwrite 4k" "read 1M" "write 1M"; do
		set -- $spec
		fio --name=b --filename=/dev/vda --direct=1 --ioengine=libaio --rw=$1 \
		    --bs=$2 --iodepth=32 --numjobs=1 --size=192M --runtime=${rt:-10} \
		    --time_based --group_reporting --eta=never --output-format=terse --terse-version=3 \
		    --output=/tmp/b.out
		# terse v3: field 8 read IOPS, 49 write IOPS, 7 read KiB/s, 48 write KiB/s
		echo "BENCH $1 $2 $(cut -d';' -f7,8,48,49 /tmp/b.out)"
	done
	;;
sleep)
	echo "SLEEPING"
	sleep 30
	;;
idle)
	# baseline for counting exits: same boot, no I/O
	;;
esac
echo "BLKTEST_DONE"
