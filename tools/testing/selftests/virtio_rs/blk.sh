#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-blk, on three devices (scripts/vm --devices blk,blk1,blk2 with
# --device-props blk=num-queues=1 --device-props blk1=num-queues=2
# --drive-props blk=discard=unmap --drive-props blk1=discard=unmap
# --drive-props blk2=readonly=on --drivers none; scripts/check.py passes
# exactly that):
#   D0 (blk0)  one request queue
#   D1 (blk1)  two request queues
#   D2 (blk2)  a read-only drive: the device offers VIRTIO_BLK_F_RO
#
# usage: blk.sh [rust|c]   (default: $VRS_BLK_DRIVER, else rust)
#
# The driver under test is virtio_blk_rs (disks rvdX) or, as the
# reference the Rust driver must match, the C virtio_blk (disks vdX): every
# test must pass with C. The tests: binding and disk names (and, with the
# other driver bound to one device, names that do not collide), capacity,
# serial, the number of hardware queues and each carrying I/O (QMP), dd
# round trips, fio with crc32c verify on one and on two queues, the
# read-only device, discard and write-zeroes (as QEMU saw them, QMP), the
# write cache and flushes, cache_type, ext4 with a remount and e2fsck, QMP
# block_resize, freeze/restore with a mounted ext4 and a held fd (same
# dev_t, I/O on both sides), features identical to the C driver's (with C
# itself this compares C with C, so it is skipped), queue limits identical
# to the other driver's, rmmod refused while fio runs, the module parameters
# (num_request_queues, queue_depth, poll_queues with polled I/O through the
# poll queue), the
# HDIO_GETGEO geometry against C's, QMP device_del while fio runs (pci
# only: virtio-mmio has no hot-unplug), and rmmod.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

KIND=${1:-${VRS_BLK_DRIVER:-rust}}
case $KIND in
rust) DRV=virtio_blk_rs PAT='rvd[a-z]+' OTHER=virtio_blk OTHER_PAT='vd[a-z]+' ;;
c) DRV=virtio_blk PAT='vd[a-z]+' OTHER=virtio_blk_rs OTHER_PAT='rvd[a-z]+' ;;
*)
	echo "usage: blk.sh [rust|c] (or VRS_BLK_DRIVER=rust|c)" >&2
	exit 2
	;;
esac

DEVS=$(vrs_devices_of 2)
D0=$(echo "$DEVS" | sed -n 1p)
D1=$(echo "$DEVS" | sed -n 2p)
D2=$(echo "$DEVS" | sed -n 3p)
DD=$VRS_BIN/dd
FIO=$VRS_BIN/fio
BLKDISCARD=$VRS_BIN/blkdiscard
TMP=${TMPDIR:-/tmp}
MIB=1048576
# The disks are 256 MiB (scripts/vm --disk-size); block_resize grows D0.
SECTORS=524288
RESIZED=335544320

# disk_of DEV: the block device name under a virtio device, or nothing.
disk_of() { ls "$1/block" 2>/dev/null | head -n 1; }
# bound_by DEV MODULE
bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }
all_bound_by() {
	for d in $D0 $D1 $D2; do
		bound_by "$d" "$1" && test -n "$(disk_of "$d")" || return 1
	done
}
have_module() { grep -q "/$1\.ko" "/lib/modules/$(uname -r)/modules.dep"; }
# The /sys/bus/virtio/drivers entry of module $1.
driver_dir() { vrs_driver_dir "$1"; }
# stat_field DISK N: field N (1-based) of /sys/block/DISK/stat; see
# Documentation/block/stat.rst: 1 read I/Os, 5 write I/Os, 12 discard I/Os,
# 16 flush I/Os.
stat_field() { awk -v n="$2" '{ print $n }' "/sys/block/$1/stat"; }
# wait_gone PATH SECONDS
wait_gone() {
	i=0
	while [ -e "$1" ] && [ $i -lt "$2" ]; do sleep 1; i=$((i + 1)); done
	! test -e "$1"
}
# wait_exit PID-FILE SECONDS: wait for a background job that writes its
# exit status to PID-FILE.rc; kill it (and fail) if it outlives SECONDS.
wait_exit() {
	pid=$(cat "$1") i=0
	while [ ! -e "$1.rc" ] && [ $i -lt "$2" ]; do sleep 1; i=$((i + 1)); done
	[ -e "$1.rc" ] && return 0
	echo "still running after $2 s: killed"
	# Where it is stuck: each thread's state, wait channel and kernel stack.
	for p in $(pidof fio); do
		for t in /proc/"$p"/task/*; do
			echo "fio $p/${t##*/}: $(grep State "$t/status") wchan=$(cat "$t/wchan" 2>/dev/null)"
			head -n 12 "$t/stack" 2>/dev/null
		done
	done
	tail -n 5 "${1%.pid}.out" 2>/dev/null
	kill -9 "$pid" 2>/dev/null
	return 1
}
# bg_fio NAME DISK ARGS...: fio with a long time-based random read/write
# load on DISK in the background, fully detached from the test's output
# (a test's output is a pipe that must close); fio's PID goes to
# $TMP/NAME.pid, its exit status to $TMP/NAME.pid.rc. Returns once fio has
# started, and fails if it stopped already.
bg_fio() {
	name=$1 disk=$2
	shift 2
	rm -f "$TMP/$name.pid" "$TMP/$name.pid.rc" "$TMP/$name.out"
	(
		"$FIO" --name="$name" --filename="/dev/$disk" --rw=randrw --bs=4k --size=16M \
			--direct=1 --ioengine=libaio --iodepth=8 --time_based --runtime=300 "$@" \
			>"$TMP/$name.out" 2>&1 &
		echo $! >"$TMP/$name.pid"
		wait $!
		echo $? >"$TMP/$name.pid.rc"
	) </dev/null >/dev/null 2>&1 &
	sleep 3
	if ! [ -e "$TMP/$name.pid" ] || [ -e "$TMP/$name.pid.rc" ]; then
		echo "fio did not start:"
		cat "$TMP/$name.out"
		return 1
	fi
}
# fio_verify DISK JOBS: random writes of 4-64 KiB, then a crc32c verify,
# JOBS jobs of 16 MiB each (one region each), libaio queue depth 8.
fio_verify() {
	"$FIO" --name=verify --filename="/dev/$1" --rw=randwrite --bsrange=4k-64k \
		--size=16M --numjobs="$2" --offset_increment=16M --direct=1 \
		--ioengine=libaio --iodepth=8 --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--cpus_allowed_policy=split --cpus_allowed="0-$(($(nproc) - 1))" \
		--group_reporting --output-format=terse >"$TMP/fio.out" 2>&1
	rc=$?
	# terse v3: field 5 is the error, 6 and 47 the KiB read and written.
	awk -F';' '/^3;/ { print "fio: error " $5 ", read " $6 " KiB, written " $47 " KiB" }' "$TMP/fio.out"
	[ $rc -eq 0 ] || tail -n 5 "$TMP/fio.out" | cut -c1-200
	rm -f "$TMP/fio.out"
	return $rc
}
# roundtrip DISK OFFSET-MIB: 1 MiB of random data written with O_DIRECT at
# OFFSET-MIB reads back identical.
roundtrip() {
	$DD if=/dev/urandom of="$TMP/rt.in" bs=1M count=1 2>/dev/null &&
		$DD if="$TMP/rt.in" of="/dev/$1" bs=1M seek="$2" count=1 oflag=direct 2>/dev/null &&
		$DD if="/dev/$1" of="$TMP/rt.out" bs=1M skip="$2" count=1 iflag=direct 2>/dev/null &&
		cmp "$TMP/rt.in" "$TMP/rt.out"
	rc=$?
	rm -f "$TMP/rt.in" "$TMP/rt.out"
	return $rc
}
# flushes_after DISK: how many flushes a 4 KiB buffered write + fsync issues.
flushes_after() {
	f0=$(stat_field "$1" 16)
	$DD if=/dev/urandom of="/dev/$1" bs=4k count=1 seek=100 conv=fsync 2>/dev/null || return 1
	echo $(($(stat_field "$1" 16) - f0))
}

# QEMU's view, through QMP (vrs-host). scripts/vm names the device of the
# disk with serial vrs-blkN "blkN" and its drive "blkdrvN".
# qemu_n DEV: that N, from the disk's serial.
qemu_n() {
	serial=$(cat "/sys/block/$(disk_of "$1")/serial") && [ "${serial#vrs-blk}" != "$serial" ] &&
		echo "${serial#vrs-blk}"
}
# used_idx DEV QUEUE: the used index of virtqueue QUEUE, as the device keeps it
# (x-query-virtio-queue-status; on packed rings it wraps at the ring size).
queue_status() { # DEV QUEUE: x-query-virtio-queue-status's reply
	# A virtio-pci device is a proxy with a virtio-backend child; on mmio
	# (virtio-blk-device) the device is the VirtIODevice itself.
	path=/machine/peripheral/blk$(qemu_n "$1")
	[ "$VRS_TRANSPORT" = mmio ] || path=$path/virtio-backend
	vrs-host "{\"execute\": \"x-query-virtio-queue-status\", \"arguments\": {\"path\": \"$path\", \"queue\": $2}}"
}
used_idx() { queue_status "$1" "$2" | sed -n 's/.*"used-idx": \([0-9]*\).*/\1/p'; }
# ring_size DEV: entries of its first virtqueue (256 on pci; on mmio the
# driver takes the transport's maximum, 1024).
ring_size() { queue_status "$1" 0 | sed -n 's/.*"vring-num": \([0-9]*\).*/\1/p'; }
# idx_delta A B: how far a used index moved from A to B: it wraps at 65536 on
# a split ring, at the ring size (256, scripts/vm) on a packed one (the
# device's used index is then a ring position).
idx_delta() {
	wrap=65536
	[ "$(vrs_feature "$D1" 34)" = 1 ] && wrap=256
	echo $((($2 - $1 + wrap) % wrap))
}
# blockstat DEV FIELD: a count of DEV's drive from query-blockstats: the
# drive's own "stats" as the virtio-blk device accounts them (wr_operations,
# wr_bytes, ..., after its file node's "stats" of the same names), or the
# file node's own (discard-nb-ok, discard-bytes-ok: discards that reached the
# image file).
blockstat() {
	vrs-host '{"execute": "query-blockstats"}' | sed 's/{"device": /\n/g' |
		grep "^\"blkdrv$(qemu_n "$1")\"" | grep -o "\"$2\": [0-9]*" | tail -n 1 | cut -d" " -f2
}
# allocated DEV: the bytes the drive's raw image file takes on the host
# (query-block "actual-size"): a hole punched there makes it smaller.
allocated() {
	vrs-host '{"execute": "query-block"}' | sed 's/{"io-status": /\n/g' |
		grep "\"device\": \"blkdrv$(qemu_n "$1")\"" | grep -o '"actual-size": [0-9]*' | cut -d" " -f2
}
# at_device DEV: "wr_operations wr_bytes discard-nb-ok discard-bytes-ok allocated"
at_device() {
	echo "$(blockstat "$1" wr_operations) $(blockstat "$1" wr_bytes)" \
		"$(blockstat "$1" discard-nb-ok) $(blockstat "$1" discard-bytes-ok) $(allocated "$1")"
}
# device_delta BEFORE AFTER: how two at_device lines differ, as "WRITES
# WRITE-BYTES DISCARDS DISCARD-BYTES FREED" (FREED: yes if the image shrank
# by half a MiB or more: every range the tests zero or discard is at least
# 1 MiB of fresh data. The image sits in the host's page cache (cache=unsafe)
# and its allocation moves by a few blocks as the host writes it back, so
# any shrink at all would not tell an unmapped range from writeback noise).
device_delta() {
	echo "$1 $2" | awk '{ print $6 - $1, $7 - $2, $8 - $3, $9 - $4,
		($5 - $10 >= 524288 ? "yes" : "no") }'
}
# ops_for DEV LIMIT-FILE BYTES: how many requests BYTES take at the queue
# limit LIMIT-FILE (bytes) of DEV's disk.
ops_for() {
	m=$(cat "/sys/block/$(disk_of "$1")/queue/$2") && [ "$m" -gt 0 ] && echo $((($3 + m - 1) / m))
}

# blkhold_start DISK [OFFSET-MIB FILE]: blkhold (next to this script) opens
# /dev/DISK and holds it open until SIGUSR1 (blkhold_geo), then, with
# OFFSET-MIB, reads 1 MiB there into FILE; its output goes to $TMP/hold.out,
# its PID to $TMP/hold.pid.
BLKHOLD=$(dirname "$0")/blkhold
blkhold_start() {
	rm -f "$TMP/hold.out"
	disk=$1
	shift
	"$BLKHOLD" "/dev/$disk" 600 "$@" </dev/null >"$TMP/hold.out" 2>&1 &
	echo $! >"$TMP/hold.pid"
	i=0
	while ! grep -q ready "$TMP/hold.out" 2>/dev/null && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done
	grep -q ready "$TMP/hold.out" || { cat "$TMP/hold.out"; return 1; }
}
# blkhold_done: signal blkhold, wait for it to exit and print its output.
blkhold_done() {
	pid=$(cat "$TMP/hold.pid")
	kill -USR1 "$pid" || return 1
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done
	cat "$TMP/hold.out"
}
# blkhold_geo: HDIO_GETGEO on the held fd; succeeds if it failed with ENXIO
# (as C: the disk's device is gone) and blkhold exited.
blkhold_geo() { blkhold_done && grep -q "^getgeo errno .* ENXIO" "$TMP/hold.out"; }

ktap_print_header
ktap_set_plan 45

vrs_test "three virtio-blk devices present" 'test -n "$D0" && test -n "$D1" && test -n "$D2"'
vrs_test "modprobe $DRV binds all three" 'modprobe $DRV && all_bound_by $DRV'
vrs_test "their disks are named ${PAT%\[*}X" '
	for d in $D0 $D1 $D2; do
		n=$(disk_of $d); echo "${d##*/}: $n"
		echo "$n" | grep -Eqx "$PAT" && test -b /dev/$n || exit 1
	done'
vrs_test "capacity is 256 MiB, logical block 512, on all three" '
	for d in $D0 $D1 $D2; do
		n=$(disk_of $d)
		echo "$n: $(cat /sys/block/$n/size) sectors of $(cat /sys/block/$n/queue/logical_block_size)"
		test "$(cat /sys/block/$n/size)" -eq $SECTORS &&
			test "$(cat /sys/block/$n/queue/logical_block_size)" -eq 512 || exit 1
	done'
# QEMU serial=vrs-blkN; the C driver prints it without a newline.
vrs_test "serial is QEMU's serial= (vrs-blk0, 1, 2), without a newline" '
	i=0
	for d in $D0 $D1 $D2; do
		n=$(disk_of $d); s=$(cat /sys/block/$n/serial)
		echo "$n: \"$s\", $(wc -c </sys/block/$n/serial) bytes"
		test "$s" = vrs-blk$i && test "$(wc -c </sys/block/$n/serial)" -eq 8 || exit 1
		i=$((i + 1))
	done'
vrs_test "num-queues=1: one hardware queue" '
	n=$(disk_of $D0); ls /sys/block/$n/mq; test "$(ls /sys/block/$n/mq | wc -l)" -eq 1'
vrs_test "num-queues=2: two hardware queues" '
	n=$(disk_of $D1); ls /sys/block/$n/mq; test "$(ls /sys/block/$n/mq | wc -l)" -eq 2'
# blk-mq maps each CPU to one hardware queue, and the driver each of those to
# a virtqueue: 20 O_DIRECT reads from CPU 0, then 20 from CPU 1, must each
# move the used index of one virtqueue by at least 20 at the device (and
# the other by less: a request or two of the kernel's own may pass), and not
# the same one.
# moved A0 A1 B0 B1 MIN: which of queues 0 and 1 moved by MIN or more from A to B.
moved() {
	[ "$(idx_delta "$1" "$3")" -ge "$5" ] && printf 0
	[ "$(idx_delta "$2" "$4")" -ge "$5" ] && printf 1
	echo
}
vrs_test "num-queues=2: reads from CPU 0 and from CPU 1 each went through their own virtqueue (QMP used-idx)" '
	n=$(disk_of $D1)
	a0=$(used_idx $D1 0) a1=$(used_idx $D1 1)
	taskset -c 0 $DD if=/dev/$n of=/dev/null bs=4k count=20 iflag=direct 2>/dev/null &&
	b0=$(used_idx $D1 0) b1=$(used_idx $D1 1) &&
	taskset -c 1 $DD if=/dev/$n of=/dev/null bs=4k count=20 skip=20 iflag=direct 2>/dev/null &&
	c0=$(used_idx $D1 0) c1=$(used_idx $D1 1) || exit 1
	echo "used-idx of queue 0: $a0, after CPU 0 $b0, after CPU 1 $c0; of queue 1: $a1, $b1, $c1"
	test -n "$a0" && test -n "$a1" && m0=$(moved $a0 $a1 $b0 $b1 20) && m1=$(moved $b0 $b1 $c0 $c1 20) &&
	echo "queue moved by CPU 0: $m0, by CPU 1: $m1" &&
	{ [ "$m0$m1" = 01 ] || [ "$m0$m1" = 10 ]; }'

# The other driver on D1, ours on D0 and D2: both name schemes at once.
if have_module $OTHER; then
	vrs_test "with $OTHER bound to one device, the names stay apart (${OTHER_PAT%\[*}X there)" '
		d1=${D1##*/}
		echo $d1 >"$(driver_dir $DRV)/unbind" &&
		modprobe $OTHER && bound_by $D1 $OTHER || exit 1
		a=$(disk_of $D0) b=$(disk_of $D1) c=$(disk_of $D2)
		echo "$DRV: $a $c, $OTHER: $b"
		echo "$a" | grep -Eqx "$PAT" && echo "$c" | grep -Eqx "$PAT" &&
			echo "$b" | grep -Eqx "$OTHER_PAT" && test "$a" != "$b" && test "$c" != "$b" &&
			test -b /dev/$a && test -b /dev/$b && test -b /dev/$c && roundtrip $b 8 || exit 1
		echo $d1 >"$(driver_dir $OTHER)/unbind" && rmmod $OTHER &&
		echo $d1 >"$(driver_dir $DRV)/bind" && all_bound_by $DRV'
else
	vrs_skip "with $OTHER bound to one device, the names stay apart" "$OTHER is not built"
fi

vrs_test "dd: 8 MiB written with O_DIRECT read back identical" '
	n=$(disk_of $D0)
	$DD if=/dev/urandom of=$TMP/blk.in bs=1M count=8 2>/dev/null &&
	$DD if=$TMP/blk.in of=/dev/$n bs=64k seek=16 oflag=direct conv=fsync 2>&1 | tail -n 1 &&
	echo 3 >/proc/sys/vm/drop_caches &&
	$DD if=/dev/$n of=$TMP/blk.out bs=64k skip=16 count=128 iflag=direct 2>/dev/null &&
	a=$(sha256sum <$TMP/blk.in) && b=$(sha256sum <$TMP/blk.out) &&
	echo "in $a out $b" && test "$a" = "$b"; rc=$?; rm -f $TMP/blk.in $TMP/blk.out; exit $rc'
vrs_test "dd: buffered write of odd sizes and readback through the page cache" '
	n=$(disk_of $D0)
	$DD if=/dev/urandom of=$TMP/blk.in bs=3000 count=700 2>/dev/null &&
	$DD if=$TMP/blk.in of=/dev/$n bs=3000 seek=1 conv=fsync 2>/dev/null &&
	echo 3 >/proc/sys/vm/drop_caches &&
	$DD if=/dev/$n of=$TMP/blk.out bs=3000 skip=1 count=700 2>/dev/null &&
	cmp $TMP/blk.in $TMP/blk.out; rc=$?; rm -f $TMP/blk.in $TMP/blk.out; exit $rc'
vrs_test "fio randwrite + crc32c verify, num-queues=1, 2 jobs x 16 MiB: no mismatch" '
	fio_verify $(disk_of $D0) 2'
vrs_test "fio randwrite + crc32c verify, num-queues=2, 2 jobs x 16 MiB on both CPUs: no mismatch" '
	fio_verify $(disk_of $D1) 2'

# D2: QEMU readonly=on, so the device offers VIRTIO_BLK_F_RO (bit 5).
vrs_test "read-only device: VIRTIO_BLK_F_RO negotiated, /sys/block/DISK/ro is 1, reads work" '
	n=$(disk_of $D2)
	echo "F_RO $(vrs_feature $D2 5), ro $(cat /sys/block/$n/ro)"
	test "$(vrs_feature $D2 5)" = 1 && test "$(cat /sys/block/$n/ro)" = 1 &&
	$DD if=/dev/$n of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null'
vrs_test "read-only device: an O_DIRECT write fails with EPERM or EROFS" '
	n=$(disk_of $D2)
	w0=$(stat_field $n 5)
	out=$($DD if=/dev/zero of=/dev/$n bs=4k count=1 oflag=direct 2>&1); rc=$?
	echo "dd: status $rc: $out" | head -n 2
	test $rc -ne 0 && echo "$out" | grep -Eq "Operation not permitted|Read-only file system" &&
	test "$(stat_field $n 5)" -eq "$w0"'

vrs_test "discard and write-zeroes are offered (max bytes > 0)" '
	n=$(disk_of $D0)
	dm=$(cat /sys/block/$n/queue/discard_max_bytes) wz=$(cat /sys/block/$n/queue/write_zeroes_max_bytes)
	echo "discard_max_bytes $dm write_zeroes_max_bytes $wz"
	test "$dm" -gt 0 && test "$wz" -gt 0'
# What reached the device, from QEMU's accounting (QMP): virtio-blk counts a
# WRITE_ZEROES as a write (one per request), and the image file counts each
# DISCARD that reaches it; the raw image (discard=unmap) punches a hole for a
# DISCARD and for a WRITE_ZEROES with the UNMAP flag, and keeps its
# allocation for one without. Zero pages written instead would take more
# than one request and free nothing; a DISCARD instead would be counted.
# zeroed_range DEV OFFSET-MIB: 3 MiB of random data at OFFSET-MIB, then the
# code in $ZERO on the middle MiB, reading back with only that MiB zeroed;
# $ZERO sees $n (the disk); prints what the device saw of it to $TMP/z.dev.
zeroed_range() {
	n=$(disk_of "$1")
	$DD if=/dev/urandom of="$TMP/z.in" bs=1M count=3 2>/dev/null &&
		$DD if="$TMP/z.in" of="/dev/$n" bs=1M seek="$2" oflag=direct 2>/dev/null &&
		before=$(at_device "$1") && eval "$ZERO" && after=$(at_device "$1") &&
		device_delta "$before" "$after" >"$TMP/z.dev" &&
		$DD if="/dev/$n" of="$TMP/z.out" bs=1M skip="$2" count=3 iflag=direct 2>/dev/null &&
		$DD if=/dev/zero of="$TMP/z.in" bs=1M seek=1 count=1 conv=notrunc 2>/dev/null &&
		cmp "$TMP/z.in" "$TMP/z.out"
	rc=$?
	rm -f "$TMP/z.in" "$TMP/z.out"
	echo "at the device: $(cat "$TMP/z.dev") (writes, bytes, discards, bytes, image freed)"
	echo "image allocation: ${before##* } -> ${after##* } bytes"
	return $rc
}
vrs_test "blkdiscard -z zeroes a range (and only it): one WRITE_ZEROES without UNMAP at the device" '
	ZERO="$BLKDISCARD -z -o $((33 * MIB)) -l $MIB /dev/\$n"
	zeroed_range $D0 32 && test "$(cat $TMP/z.dev)" = "$(ops_for $D0 write_zeroes_max_bytes $MIB) $MIB 0 0 no"'
# fio's falloc engine trims with fallocate(PUNCH_HOLE | KEEP_SIZE), which on
# a block device is a WRITE_ZEROES that may unmap (busybox fallocate has no
# --punch-hole).
vrs_test "fallocate punch-hole on the disk zeroes a range: one WRITE_ZEROES with UNMAP at the device" '
	ZERO="$FIO --name=punch --filename=/dev/\$n --ioengine=falloc --rw=trim --bs=1M --size=1M \
		--offset=$((37 * MIB)) >$TMP/punch.out 2>&1 || { tail -n 3 $TMP/punch.out; false; }"
	zeroed_range $D0 36 && test "$(cat $TMP/z.dev)" = "$(ops_for $D0 write_zeroes_max_bytes $MIB) $MIB 0 0 yes"'
vrs_test "blkdiscard of a range: counted in the disk stat, and DISCARDs at the device" '
	n=$(disk_of $D0)
	$DD if=/dev/urandom of=/dev/$n bs=1M seek=40 count=4 oflag=direct 2>/dev/null || exit 1
	d0=$(stat_field $n 12) before=$(at_device $D0)
	$BLKDISCARD -o $((40 * MIB)) -l $((4 * MIB)) /dev/$n || exit 1
	dev=$(device_delta "$before" "$(at_device $D0)")
	echo "discard I/Os: $d0 -> $(stat_field $n 12); at the device: $dev (writes, bytes, discards, bytes, image freed)"
	test "$(stat_field $n 12)" -gt "$d0" &&
	test "$dev" = "0 0 $(ops_for $D0 discard_max_bytes $((4 * MIB))) $((4 * MIB)) yes"'

vrs_test "the device has a write cache: cache_type is \"write back\"" '
	n=$(disk_of $D0); cat /sys/block/$n/cache_type
	test "$(cat /sys/block/$n/cache_type)" = "write back"'
vrs_test "a write + fsync issues a flush (flush I/Os, stat field 16, goes up)" '
	f=$(flushes_after $(disk_of $D0)) && echo "flushes: $f" && test "$f" -gt 0'
vrs_test "cache_type can be set to \"write through\" and back to \"write back\"" '
	n=$(disk_of $D0)
	for m in "write through" "write back"; do
		echo "$m" >/sys/block/$n/cache_type || exit 1
		echo "set \"$m\": cache_type \"$(cat /sys/block/$n/cache_type)\"," \
			"queue/write_cache \"$(cat /sys/block/$n/queue/write_cache)\""
		test "$(cat /sys/block/$n/cache_type)" = "$m" &&
			test "$(cat /sys/block/$n/queue/write_cache)" = "$m" || exit 1
	done'
vrs_test "write through: fsync issues no flush; write back again: it does" '
	n=$(disk_of $D0)
	echo "write through" >/sys/block/$n/cache_type && wt=$(flushes_after $n) &&
	echo "write back" >/sys/block/$n/cache_type && wb=$(flushes_after $n) &&
	echo "flushes: write through $wt, write back $wb" && test "$wt" -eq 0 && test "$wb" -gt 0'

vrs_test "ext4: mkfs, mount, files written, remounted and read back identical" '
	n=$(disk_of $D0)
	mkfs.ext4 -F -q /dev/$n && mkdir -p /mnt/vrs && mount -t ext4 /dev/$n /mnt/vrs || exit 1
	for s in 1 4000 65536 3000000; do
		$DD if=/dev/urandom of=/mnt/vrs/f$s bs=$s count=1 2>/dev/null || exit 1
	done
	(cd /mnt/vrs && sha256sum f*) >$TMP/ext4.sum && cat $TMP/ext4.sum && umount /mnt/vrs &&
	echo 3 >/proc/sys/vm/drop_caches && mount -t ext4 -o ro /dev/$n /mnt/vrs &&
	(cd /mnt/vrs && sha256sum -c $TMP/ext4.sum); rc=$?
	umount /mnt/vrs; exit $rc'
vrs_test "ext4: e2fsck -fn finds it clean" 'e2fsck -fn /dev/$(disk_of $D0)'

vrs_test "QMP block_resize to 320 MiB: the disk size follows" '
	n=$(disk_of $D0)
	vrs-host "{\"execute\": \"block_resize\", \"arguments\": {\"device\": \"blkdrv0\", \"size\": $RESIZED}}" || exit 1
	i=0; while [ "$(cat /sys/block/$n/size)" -ne $((RESIZED / 512)) ] && [ $i -lt 20 ]; do sleep 1; i=$((i + 1)); done
	echo "$n: $(cat /sys/block/$n/size) sectors"
	test "$(cat /sys/block/$n/size)" -eq $((RESIZED / 512)) &&
	roundtrip $n $((RESIZED / MIB - 1))'

# Freeze/restore: the devices' freeze and restore callbacks run, the system
# does not sleep. Across it: the disks keep their names and dev_t, an ext4
# on D0 stays mounted, an fd on D1 stays open (blkhold), and what was written
# before reads back after, through them.
devts() {
	for d in $D0 $D1 $D2; do
		n=$(disk_of "$d") && echo "$n $(cat "/sys/block/$n/dev") $(stat -c %t:%T "/dev/$n")"
	done
}
vrs_test "before suspend: ext4 mounted on D0 with a file, 1 MiB on D1, and D1 held open" '
	n=$(disk_of $D0)
	mkfs.ext4 -F -q /dev/$n && mkdir -p /mnt/vrs && mount -t ext4 /dev/$n /mnt/vrs &&
	$DD if=/dev/urandom of=/mnt/vrs/pm bs=1M count=1 2>/dev/null && sync &&
	$DD if=/dev/urandom of=$TMP/pm.d1 bs=1M count=1 2>/dev/null &&
	$DD if=$TMP/pm.d1 of=/dev/$(disk_of $D1) bs=1M seek=60 oflag=direct 2>/dev/null &&
	blkhold_start $(disk_of $D1) 60 $TMP/pm.held && devts >$TMP/pm.devt && cat $TMP/pm.devt'
vrs_test "suspend/resume through pm_test=devices" '
	state=mem; grep -qw mem /sys/power/state || state=freeze
	echo devices >/sys/power/pm_test && echo $state >/sys/power/state; rc=$?
	echo none >/sys/power/pm_test; test $rc -eq 0'
vrs_test "after resume: the same disks, with the same dev_t (major:minor)" '
	all_bound_by $DRV && devts >$TMP/pm.devt2 && cat $TMP/pm.devt2 && cmp $TMP/pm.devt $TMP/pm.devt2'
vrs_test "after resume: the fd held open across it reads, from the device, the data written before" '
	blkhold_done && grep -q "^getgeo ok" $TMP/hold.out && grep -q "^read ok 1048576" $TMP/hold.out &&
	cmp $TMP/pm.d1 $TMP/pm.held; rc=$?; rm -f $TMP/pm.held; exit $rc'
vrs_test "after resume: the mounted ext4 reads its file back and takes a new one; umount, e2fsck -fn clean" '
	n=$(disk_of $D0)
	sha256sum /mnt/vrs/pm >$TMP/pm.sum && echo 3 >/proc/sys/vm/drop_caches && sha256sum -c $TMP/pm.sum &&
	$DD if=/dev/urandom of=/mnt/vrs/pm2 bs=1M count=1 2>/dev/null && sync &&
	(cd /mnt/vrs && sha256sum pm pm2) >$TMP/pm.sum && umount /mnt/vrs &&
	mount -t ext4 -o ro /dev/$n /mnt/vrs && (cd /mnt/vrs && sha256sum -c $TMP/pm.sum) && umount /mnt/vrs &&
	e2fsck -fn /dev/$n; rc=$?
	umount /mnt/vrs 2>/dev/null; exit $rc'
vrs_test "after resume: D1 data reads back, new writes read back on D0 and D1, the read-only disk reads" '
	$DD if=/dev/$(disk_of $D1) of=$TMP/pm.out bs=1M skip=60 count=1 iflag=direct 2>/dev/null &&
	cmp $TMP/pm.d1 $TMP/pm.out && roundtrip $(disk_of $D0) 61 && roundtrip $(disk_of $D1) 61 &&
	$DD if=/dev/$(disk_of $D2) of=/dev/null bs=64k count=4 iflag=direct 2>/dev/null'

# Features: ours first, then C on the same devices (not with C itself).
if [ "$KIND" = c ]; then
	vrs_skip "features identical to the C driver's" "this run tests the C driver itself"
elif ! have_module virtio_blk; then
	vrs_skip "features identical to the C driver's" "virtio_blk is not built"
else
	vrs_test "features identical to the C driver's, on all three" '
		for d in $D0 $D1 $D2; do cat $d/features; done >$TMP/features.$DRV
		rmmod $DRV && modprobe virtio_blk && all_bound_by virtio_blk || exit 1
		for d in $D0 $D1 $D2; do cat $d/features; done >$TMP/features.c
		paste -d" " $TMP/features.$DRV $TMP/features.c | sed "s/^/$DRV, virtio_blk: /"
		cmp -s $TMP/features.$DRV $TMP/features.c; rc=$?
		rmmod virtio_blk && modprobe $DRV && all_bound_by $DRV && exit $rc'
fi

# Queue limits: the read-only files of /sys/block/DISK/queue (not the
# writable tunables, the scheduler, iosched/ or nr_requests) must read as
# with the other driver bound to the same device (Rust vs C either way).
queue_limits() {
	for f in /sys/block/"$1"/queue/*; do
		[ -f "$f" ] || continue
		case ${f##*/} in scheduler | nr_requests) continue ;; esac
		case $(stat -c %A "$f") in ??w*) continue ;; esac
		echo "${f##*/} $(cat "$f" 2>&1)"
	done
}
all_limits() { for d in $D0 $D1 $D2; do queue_limits "$(disk_of "$d")" | sed "s/^/${d##*\/} /"; done; }
if ! have_module $OTHER; then
	vrs_skip "queue limits identical to $OTHER's on the same devices" "$OTHER is not built"
else
	vrs_test "queue limits (read-only /sys/block/DISK/queue/*) identical to $OTHER's on the same devices" '
		all_limits >$TMP/limits.$DRV
		rmmod $DRV && modprobe $OTHER && all_bound_by $OTHER || exit 1
		all_limits >$TMP/limits.$OTHER
		rmmod $OTHER && modprobe $DRV && all_bound_by $DRV || exit 1
		echo "$(wc -l <$TMP/limits.$DRV) values with $DRV, $(wc -l <$TMP/limits.$OTHER) with $OTHER"
		diff -u $TMP/limits.$DRV $TMP/limits.$OTHER | grep -E "^[-+][^-+]" | sed "s/^-/$DRV: /; s/^+/$OTHER: /"
		test -s $TMP/limits.$DRV && cmp -s $TMP/limits.$DRV $TMP/limits.$OTHER'
fi

# rmmod with a disk open: the module is in use (each open disk holds a
# reference to it, as C's does), so rmmod fails with EWOULDBLOCK ("Resource
# temporarily unavailable") without hanging, and the module and its disks stay.
# blkhold holds the disk open too: fio in a time-based loop closes and
# reopens it between passes, and an rmmod in that gap would go through.
vrs_test "rmmod $DRV while fio runs on a disk: refused (in use), the module and its disks stay" '
	blkhold_start "$(disk_of $D0)" && bg_fio rmmod "$(disk_of $D0)" || exit 1
	out=$(timeout 30 rmmod $DRV 2>&1); rc=$?
	echo "rmmod: status $rc: $out"
	case $rc in
	0) echo "removed under load"; false ;;
	124 | 137 | 143) echo "rmmod hung"; false ;;
	*) echo "$out" | grep -Eqi "in use|temporarily unavailable|busy" && test -d /sys/module/$DRV &&
		all_bound_by $DRV && echo "refused while in use" ;;
	esac; ok=$?
	kill -0 "$(cat $TMP/rmmod.pid)" || { echo "fio stopped"; ok=1; }
	kill "$(cat $TMP/rmmod.pid)"; wait_exit $TMP/rmmod.pid 30 && echo "fio status $(cat $TMP/rmmod.pid.rc)" &&
	blkhold_done && test $ok -eq 0 && timeout 30 rmmod $DRV'
vrs_test "modprobe $DRV again binds all three, and the disk works" '
	modprobe $DRV && all_bound_by $DRV && roundtrip "$(disk_of $D0)" 8'

# Module parameters, as virtio_blk.c has them, on blk1 (num-queues=2).
vrs_test "num_request_queues=1 queue_depth=64: one hardware queue of 64 tags on a num-queues=2 disk" '
	rmmod $DRV && modprobe $DRV num_request_queues=1 queue_depth=64 && all_bound_by $DRV || exit 1
	n=$(disk_of $D1); ls /sys/block/$n/mq | tr "\n" " "; echo "tags: $(cat /sys/block/$n/mq/0/nr_tags)"
	test "$(ls /sys/block/$n/mq | wc -l)" -eq 1 && test "$(cat /sys/block/$n/mq/0/nr_tags)" -eq 64 &&
		roundtrip "$n" 4'
# Twice as many tags as ring entries (256 on pci, 1024 on mmio; one
# descriptor per request, indirect), all in flight: the ring fills,
# add_request fails with ENOSPC, and queue_rq hands the request back to
# blk-mq, unended, to requeue. Under TCG the guest cannot outrun QEMU, so
# QEMU throttles the disk's writes meanwhile (block_set_io_throttle, 100
# IOPS per 256 entries): the device holds what it took, and the ring fills. The block_rq_requeue trace event counts the requests
# handed back on this disk: it proves the ring did fill, and fio's verify
# that none was lost or ended twice on the way.
TRACE=/sys/kernel/tracing
throttle_writes() { # DISK IOPS (0: off): its drive is blkdrvN for serial vrs-blkN (scripts/vm)
	serial=$(cat "/sys/block/$1/serial") && [ "${serial#vrs-blk}" != "$serial" ] || return 1
	# One line: vrs-host sends its argument to the host as one line.
	args="\"device\": \"blkdrv${serial#vrs-blk}\", \"bps\": 0, \"bps_rd\": 0, \"bps_wr\": 0,"
	args="$args \"iops\": 0, \"iops_rd\": 0, \"iops_wr\": $2"
	vrs-host "{\"execute\": \"block_set_io_throttle\", \"arguments\": {$args}}" >/dev/null
}
requeue_trace() { # on|off
	[ -d $TRACE/events ] || mount -t tracefs nodev $TRACE 2>/dev/null || return 1
	if [ "$1" = on ]; then
		echo 0 >$TRACE/tracing_on && echo >$TRACE/trace &&
			echo 1 >$TRACE/events/block/block_rq_requeue/enable && echo 1 >$TRACE/tracing_on
	else
		echo 0 >$TRACE/tracing_on; echo 0 >$TRACE/events/block/block_rq_requeue/enable
	fi
}
vrs_test "queue_depth=2x the ring: the ring fills, requests are requeued, and fio verifies" '
	ring=$(ring_size $D0); [ -n "$ring" ] || { echo "no ring size from QMP"; exit 1; }
	qd=$((ring * 2))
	rmmod $DRV && modprobe $DRV queue_depth=$qd && all_bound_by $DRV || exit 1
	n=$(disk_of $D0); echo "ring: $ring entries; tags: $(cat /sys/block/$n/mq/0/nr_tags)"
	# A single-queue disk gets mq-deadline, whose nr_requests (256) would keep the
	# ring from ever overflowing: without a scheduler, every tag is usable.
	echo none >/sys/block/$n/queue/scheduler || exit 1
	requeue_trace on || { echo "no tracefs"; exit 1; }
	# Four jobs keep all the tags in flight; each writes twice its depth.
	throttle_writes $n $((ring * 100 / 256)) || { echo "block_set_io_throttle failed"; exit 1; }
	"$FIO" --name=full --filename=/dev/$n --rw=randwrite --bs=4k --size=$((qd * 2))k --numjobs=4 \
		--offset_increment=$((qd * 2))k --direct=1 --ioengine=libaio --iodepth=$((qd / 4)) \
		--iodepth_batch_submit=$((qd / 4)) --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--group_reporting --output-format=terse >$TMP/full.out 2>&1; rc=$?
	throttle_writes $n 0
	requeue_trace off
	dev=$(tr : , </sys/block/$n/dev)
	requeued=$(grep -c "block_rq_requeue: $dev " $TRACE/trace)
	echo "requests requeued on $n ($dev): $requeued"
	awk -F";" "/^3;/ { print \"fio: error \" \$5 \", read \" \$6 \" KiB, written \" \$47 \" KiB\" }" $TMP/full.out
	[ $rc -eq 0 ] || tail -n 5 $TMP/full.out | cut -c1-200
	rmmod $DRV && modprobe $DRV && all_bound_by $DRV && test $rc -eq 0 && test "$requeued" -gt 0'
# irqs_of DEV: the interrupts the virtio device DEV (virtioN) has raised so
# far, on all its lines (virtioN-config, virtioN-req.K on pci; virtioN on
# mmio) and all CPUs.
irqs_of() {
	awk -v d="${1##*/}" -v c="$(nproc)" '$NF == d || index($NF, d "-") == 1 {
		for (i = 2; i <= c + 1; i++) s += $i } END { print s + 0 }' /proc/interrupts
}
# With poll_queues=1 the last virtqueue (1) is the poll queue, with no
# callback and no interrupt, and polled I/O (io_uring with IOPOLL: a
# synchronous RWF_HIPRI read or write is not polled since Linux 5.16) maps to
# it alone: 250 writes and 250 verify reads move its used index by 500 (500
# mod 256 on a packed ring), and raise no interrupt: the device's interrupts
# meanwhile are at most the completions on queue 0 (a request or two that
# fio makes without polling).
# On mmio one interrupt line serves every queue, and with EVENT_IDX the poll
# queue's used_event stays 0, so its first completion after a reset may
# still interrupt once: one interrupt more than queue 0 completed is allowed.
vrs_test "poll_queues=1: the num-queues=2 disk polls (io_poll 1), and polled I/O verifies, through the poll queue, without interrupts" '
	rmmod $DRV && modprobe $DRV poll_queues=1 && all_bound_by $DRV || exit 1
	n=$(disk_of $D1); echo "io_poll $(cat /sys/block/$n/queue/io_poll), hw queues $(ls /sys/block/$n/mq | wc -l)"
	test "$(cat /sys/block/$n/queue/io_poll)" = 1 && test "$(ls /sys/block/$n/mq | wc -l)" -eq 2 || exit 1
	a0=$(used_idx $D1 0) a1=$(used_idx $D1 1) i0=$(irqs_of $D1)
	$FIO --name=hipri --filename=/dev/$n --rw=randwrite --bs=4k --size=1000k --direct=1 \
		--ioengine=io_uring --hipri --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output-format=terse >$TMP/hipri.out 2>&1; rc=$?
	b0=$(used_idx $D1 0) b1=$(used_idx $D1 1) i1=$(irqs_of $D1)
	tail -n 2 $TMP/hipri.out | cut -c1-120
	echo "used-idx of queue 0: $a0 -> $b0, of poll queue 1: $a1 -> $b1; interrupts of ${D1##*/}: $i0 -> $i1"
	grep -E " ${D1##*/}(-|\$)" /proc/interrupts | tr -s " "
	rmmod $DRV && modprobe $DRV && all_bound_by $DRV && test $rc -eq 0 &&
	test -n "$a0" && test -n "$a1" && test "$(idx_delta $a1 $b1)" -eq "$(idx_delta 0 500)" &&
	test $((i1 - i0)) -le $(($(idx_delta $a0 $b0) + 1))'

# HDIO_GETGEO (busybox fdisk prints it): the geometry C reports.
geometry() { fdisk -l "/dev/$1" 2>/dev/null | grep -i "heads"; }
if [ "$KIND" = c ]; then
	vrs_test "getgeo: HDIO_GETGEO reports a geometry" 'g=$(geometry "$(disk_of $D0)"); echo "$g"; test -n "$g"'
elif ! have_module virtio_blk; then
	vrs_skip "getgeo: the geometry C reports" "virtio_blk is not built"
else
	vrs_test "getgeo: the geometry C reports" '
		g=$(geometry "$(disk_of $D0)")
		rmmod $DRV && modprobe virtio_blk && all_bound_by virtio_blk || exit 1
		c=$(geometry "$(disk_of $D0)")
		echo "$DRV: $g"; echo "virtio_blk: $c"
		rmmod virtio_blk && modprobe $DRV && all_bound_by $DRV && test -n "$g" && test "$g" = "$c"'
fi

# Hot-unplug of blk1 (two queues) under fio (PCI only: virtio-mmio does not
# unplug), with blk1's disk held open throughout by blkhold.
if [ "$VRS_TRANSPORT" = mmio ]; then
	vrs_skip "device_del of a disk under fio: the device and the disk go away" "virtio-mmio has no hot-unplug"
	vrs_skip "fio gets an I/O error and exits" "virtio-mmio has no hot-unplug"
	vrs_skip "the other disks still work after the unplug" "virtio-mmio has no hot-unplug"
	# Instead, unbind with the disk held open, then bind again.
	vrs_test "HDIO_GETGEO on an fd held open across unbind: ENXIO" '
		n=$(disk_of $D1)
		blkhold_start $n || exit 1
		echo ${D1##*/} >"$(driver_dir $DRV)/unbind" && wait_gone /sys/block/$n 10 || exit 1
		blkhold_geo; rc=$?
		echo ${D1##*/} >"$(driver_dir $DRV)/bind" && all_bound_by $DRV && test $rc -eq 0'
else
	vrs_test "device_del of a disk under fio: the device and the disk go away" '
		n=$(disk_of $D1)
		blkhold_start $n || exit 1
		bg_fio unplug $n --numjobs=2 --offset_increment=16M || exit 1
		vrs-host "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"blk1\"}}" &&
		wait_gone "$D1" 30 && wait_gone /sys/block/$n 5'
	vrs_test "fio gets an I/O error and exits" '
		wait_exit $TMP/unplug.pid 120 || exit 1
		rc=$(cat $TMP/unplug.pid.rc); echo "fio status $rc"
		grep -iE "error|err=" $TMP/unplug.out | head -n 3
		test "$rc" -ne 0 && grep -qiE "io_u error|err= *[1-9]" $TMP/unplug.out'
	vrs_test "HDIO_GETGEO on an fd held open across device_del: ENXIO" 'blkhold_geo'
	vrs_test "the other disks still work after the unplug" '
		roundtrip "$(disk_of $D0)" 8 &&
		$DD if=/dev/$(disk_of $D2) of=/dev/null bs=64k count=4 iflag=direct 2>/dev/null'
fi

vrs_test "rmmod $DRV removes its disks" '
	disks=$(for d in $D0 $D1 $D2; do disk_of $d; done); echo "disks: $disks"
	rmmod $DRV && ! test -d /sys/module/$DRV || exit 1
	for n in $disks; do ! test -e /sys/block/$n || exit 1; done'

ktap_finished
