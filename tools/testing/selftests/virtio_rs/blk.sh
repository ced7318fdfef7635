#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio_blk_rs, the Rust virtio-blk driver (first slice: one queue, read,
# write, flush), on one block device
# (scripts/vm --devices blk --drivers none): it binds, registers rvdX (never
# a C vdX name), has the device's capacity, reads back what dd wrote, passes
# an fio crc32c verify job, holds an ext4 that e2fsck -fn finds clean, and
# negotiates the features the C driver negotiates.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

RS=virtio_blk_rs
D0=$(vrs_devices_of 2 | sed -n 1p)
DD=/usr/local/bin/dd
[ -x "$DD" ] || DD=$(command -v dd)
TMP=${TMPDIR:-/tmp}

# disk_of DEV: the block device name under a virtio device, or nothing.
disk_of() { ls "$1/block" 2>/dev/null | head -n 1; }
# bound_by DEV MODULE
bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }

ktap_print_header
ktap_set_plan 10

vrs_test "a block device is present" 'test -n "$D0"'
vrs_test "modprobe $RS binds it" 'modprobe $RS && bound_by $D0 $RS'
DISK=$(disk_of "$D0")
DEV=/dev/$DISK
vrs_test "its disk is named rvdX, not vdX ($DISK)" 'echo "$DISK" | grep -Eq "^rvd[a-z]+$" && test -b $DEV'
vrs_test "capacity is 256 MiB, logical block 512" '
	test "$(cat /sys/block/$DISK/size)" -eq 524288 &&
	test "$(cat /sys/block/$DISK/queue/logical_block_size)" -eq 512'

vrs_test "dd: 8 MiB written with O_DIRECT read back identical" '
	$DD if=/dev/urandom of=$TMP/blk.in bs=1M count=8 2>/dev/null &&
	$DD if=$TMP/blk.in of=$DEV bs=64k seek=16 oflag=direct conv=fsync 2>&1 | tail -n 1 &&
	echo 3 >/proc/sys/vm/drop_caches &&
	$DD if=$DEV of=$TMP/blk.out bs=64k skip=16 count=128 iflag=direct 2>/dev/null &&
	a=$(sha256sum <$TMP/blk.in) && b=$(sha256sum <$TMP/blk.out) &&
	echo "in $a out $b" && test "$a" = "$b"; rc=$?; rm -f $TMP/blk.in $TMP/blk.out; exit $rc'
vrs_test "dd: buffered write of odd sizes and readback through the page cache" '
	$DD if=/dev/urandom of=$TMP/blk.in bs=3000 count=700 2>/dev/null &&
	$DD if=$TMP/blk.in of=$DEV bs=3000 seek=1 conv=fsync 2>/dev/null &&
	echo 3 >/proc/sys/vm/drop_caches &&
	$DD if=$DEV of=$TMP/blk.out bs=3000 skip=1 count=700 2>/dev/null &&
	cmp $TMP/blk.in $TMP/blk.out; rc=$?; rm -f $TMP/blk.in $TMP/blk.out; exit $rc'
vrs_test "fio randwrite + verify crc32c, 4 jobs: no mismatch" '
	fio --name=verify --filename=$DEV --rw=randwrite --bs=4k --bsrange=4k-64k \
		--size=16M --numjobs=4 --offset_increment=16M --direct=1 \
		--ioengine=psync --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--group_reporting --output-format=terse >$TMP/fio.out 2>&1; rc=$?
	tail -n 5 $TMP/fio.out | cut -c1-200; rm -f $TMP/fio.out; exit $rc'
vrs_test "mkfs.ext4, then e2fsck -fn is clean" '
	mkfs.ext4 -F -q $DEV && e2fsck -fn $DEV'

# Features: Rust first, then C on the same device.
F0=$(cat "$D0/features")
vrs_test "features identical to the C driver's" '
	rmmod $RS && modprobe virtio_blk && bound_by $D0 virtio_blk &&
	echo "rust: $F0" && echo "c:    $(cat $D0/features)" &&
	test "$(cat $D0/features)" = "$F0" &&
	rmmod virtio_blk && modprobe $RS && bound_by $D0 $RS'
vrs_test "rmmod $RS removes its disk" '
	DISK=$(disk_of "$D0"); rmmod $RS && ! test -e /sys/block/$DISK && ! test -d /sys/module/$RS'

ktap_finished
