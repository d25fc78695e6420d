#!/bin/sh
# Guest side of tests/e2e/run-qcow2-tests (/etc/minivmm/rc).  The scenario
# comes from the kernel command line (q2test=NAME); results are KEY=VALUE
# lines the host checks.
t=$(sed -n 's/.*q2test=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
echo "Q2TEST=$t"
case "$t" in
overlay)
	# vda: ext4 from a compressed qcow2 base through an overlay.
	e2fsck -fn /dev/vda >/tmp/fsck1 2>&1; echo "FSCK_BEFORE=$?"
	mount -t ext4 /dev/vda /mnt || exit 11
	echo "BASE_MD5=$(md5sum < /mnt/base.bin | cut -d' ' -f1)"
	echo "BASE_TXT=$(cat /mnt/hello.txt)"
	dd if=/dev/urandom of=/mnt/new.bin bs=64k count=64 2>/dev/null
	echo "NEW_MD5=$(md5sum < /mnt/new.bin | cut -d' ' -f1)"
	rm /mnt/delete-me.bin
	sync
	umount /mnt || exit 12
	e2fsck -fn /dev/vda >/tmp/fsck2 2>&1; echo "FSCK_AFTER=$?"
	# vdb: an empty thin qcow2 made by `minivmm img create`: fio verify.
	fio --name=verify --filename=/dev/vdb --direct=1 --ioengine=libaio \
	    --rw=randwrite --bs=4k --iodepth=32 --size=64M --verify=crc32c \
	    --do_verify=1 --verify_fatal=1 --eta=never --output=/tmp/fio.out
	echo "FIO_EXIT=$?"
	# Discard and write-zeroes on a qcow2 (deallocate / zero clusters).
	blkdiscard -o 0 -l 8388608 /dev/vdb && echo "DISCARD=ok"
	echo "ZERO_MD5=$(dd if=/dev/vdb bs=1M count=8 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
	;;
snapshot)
	mount -t ext4 /dev/vda /mnt || exit 11
	dd if=/dev/urandom of=/mnt/scratch.bin bs=64k count=32 2>/dev/null
	rm -f /mnt/base.bin
	sync
	umount /mnt
	echo "SNAP_WROTE=ok"
	;;
esac
echo "Q2TEST_DONE"
