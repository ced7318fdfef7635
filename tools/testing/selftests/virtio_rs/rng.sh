#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio_rng_rs, the Rust virtio-rng driver, on three entropy devices
# (scripts/vm --devices rng,rng1,rng2 --device-props
# rng2=max-bytes=0,period=60000 --drivers none): it binds, registers
# virtio_rng_rs.N, serves blocking reads that rngtest accepts and in which no
# 4 KiB block repeats, non-blocking reads that get EAGAIN when the device has
# nothing, negotiates the features the C driver negotiates, and survives
# unbind/bind, rmmod under load, hot-unplug with a reader blocked on the
# dry device, and freeze/restore.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

RS=virtio_rng_rs
HWRNG=/sys/class/misc/hw_random
DEVS=$(vrs_devices_of 4)
D0=$(echo "$DEVS" | sed -n 1p)
D1=$(echo "$DEVS" | sed -n 2p)
N0=${D0##*/virtio}
N1=${D1##*/virtio}
# rng2 (make check: max-bytes=0) is dry: QEMU never fills a buffer of it, so a
# reader of it blocks for real, and a non-blocking read gets EAGAIN. Not a
# rate (max-bytes=64, say): QEMU 7.2's limiter over-grants once two requests
# are in flight in one period (a driver that prefills its queue makes two at
# DRIVER_OK): the quota goes negative, and MIN(negative quota, size) taken as
# unsigned is the whole buffer, every time, until the period ends.
D2=$(vrs_dev_at 3)
N2=${D2##*/virtio}
HERE=$(dirname "$0")

# rng_bytes COUNT: read COUNT bytes from /dev/hwrng (blocking), print how many came.
rng_bytes() { dd if=/dev/hwrng bs=64 count=$(($1 / 64)) 2>/dev/null | wc -c; }
# bound_by DEV MODULE
bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }
available() { grep -qw "$1" $HWRNG/rng_available; }
use_rng() { echo "$1" >$HWRNG/rng_current && grep -qx "$1" $HWRNG/rng_current; }
# rng_core's fill thread ([hwrng]) wakes now and then and does a blocking read
# of the current device, holding the core's reading lock: if that device is
# the dry one, the read waits until the device goes away, and every reader,
# even a non-blocking one, waits for the lock. So before the dry device is
# made current: stop the thread ("none"), make DEV current (that starts a new
# thread, which reads DEV at once), and let that read finish. The new thread
# then sleeps for the crng reseed interval, at least uptime/2 in the first two
# minutes, 60 s after: from an uptime of 12 s on, a window of 6 s or more in
# which the thread reads nothing.
fill_thread_asleep() {
	up=$(cut -d. -f1 /proc/uptime)
	[ "$up" -lt 12 ] && sleep $((12 - up))
	echo none >$HWRNG/rng_current && use_rng "$1" || return 1
	# Its sleep (schedule_timeout, skipped by wchan) shows as hwrng_fillfn; a
	# read in a driver shows the driver's wait.
	for _i in 1 2 3 4 5; do
		sleep 1
		for _p in /proc/[0-9]*; do
			[ "$(cat "$_p/comm" 2>/dev/null)" = hwrng ] || continue
			[ "$(cat "$_p/wchan" 2>/dev/null)" = hwrng_fillfn ] && return 0
		done
	done
	echo "the hwrng fill thread did not go to sleep"; return 1
}

ktap_print_header
ktap_set_plan 26

vrs_test "three entropy devices present" 'test -n "$D0" && test -n "$D1" && test -n "$D2"'
vrs_test "modprobe $RS" 'modprobe $RS'
vrs_test "$RS binds the devices" 'bound_by $D0 $RS && bound_by $D1 $RS && bound_by $D2 $RS'
vrs_test "rng_available lists $RS.$N0 and $RS.$N1" 'available $RS.$N0 && available $RS.$N1'
vrs_test "$RS.$N0 can be made rng_current" 'use_rng $RS.$N0'
vrs_test "blocking reads return 64 KiB" 'test "$(rng_bytes 65536)" -eq 65536'
# Busybox dd has no iflag=nonblock: use the real one.
vrs_test "non-blocking reads return data or EAGAIN, without blocking" '
	got=0; i=0
	while [ $i -lt 50 ] && [ $got -eq 0 ]; do
		got=$(timeout 5 /usr/local/bin/dd if=/dev/hwrng iflag=nonblock bs=64 count=1 2>/dev/null | wc -c)
		i=$((i + 1))
	done
	test "$got" -eq 64'
# The dry device has nothing: a non-blocking read must fail at once with
# EAGAIN (not block, not return 0 bytes as success). (busybox timeout exits
# 143 when it kills, coreutils 124.)
vrs_test "non-blocking reads get EAGAIN when the device has nothing" '
	fill_thread_asleep $RS.$N0 && use_rng $RS.$N2 || exit 1
	err=$(timeout 5 /usr/local/bin/dd if=/dev/hwrng iflag=nonblock bs=64 count=1 2>&1 >/dev/null)
	rc=$?
	use_rng $RS.$N0 || exit 1
	echo "dd: exit $rc: $err" | head -n 2
	[ $rc -ne 124 ] && [ $rc -ne 143 ] || { echo "a non-blocking read blocked"; exit 1; }
	case $err in *"Resource temporarily unavailable"*) ;; *) false ;; esac'
# rngtest keeps the first 32 bits for bootstrap, so 250000 bytes make 99
# 20000-bit blocks. Good randomness fails a FIPS 140-2 block about once in a
# thousand; allowing two keeps the false alarm rate negligible, while bad data
# fails most blocks.
vrs_test "rngtest accepts 99 blocks (at most 2 FIPS failures)" '
	out=$(dd if=/dev/hwrng bs=2500 count=100 iflag=fullblock 2>/dev/null | rngtest 2>&1)
	echo "$out" | grep -E "successes|failures:"
	f=$(echo "$out" | sed -n "s/.*FIPS 140-2 failures: \([0-9]*\).*/\1/p")
	s=$(echo "$out" | sed -n "s/.*FIPS 140-2 successes: \([0-9]*\).*/\1/p")
	test $((${s:-0} + ${f:-0})) -ge 99 && test "${f:-99}" -le 2'
vrs_test "the second device serves reads too" 'use_rng $RS.$N1 && test "$(rng_bytes 4096)" -eq 4096'
# A buffer handed out twice is still good random data to rngtest; two equal
# 4 KiB blocks of real entropy do not happen. blkuniq (next to this script)
# counts repeated blocks.
vrs_test "blkuniq finds a repeated 4 KiB block (it can fail)" '
	dd if=/dev/urandom of=/tmp/rng-blk bs=4096 count=2 2>/dev/null &&
	! cat /tmp/rng-blk /tmp/rng-blk | $HERE/blkuniq'
vrs_test "64 MiB from $RS: no 4 KiB block repeats" '
	use_rng $RS.$N0 &&
	dd if=/dev/hwrng bs=4096 count=16384 iflag=fullblock 2>/dev/null | $HERE/blkuniq | tail -n 6'

# Features: Rust first, then C on the same devices.
F0=$(cat "$D0/features") F1=$(cat "$D1/features")
vrs_test "features identical to the C driver's on both devices" '
	rmmod $RS && modprobe virtio_rng && bound_by $D0 virtio_rng && bound_by $D1 virtio_rng &&
	echo "rust: $F0 $F1" && echo "c:    $(cat $D0/features) $(cat $D1/features)" &&
	test "$(cat $D0/features)" = "$F0" && test "$(cat $D1/features)" = "$F1"'
vrs_test "8 MiB from virtio_rng (C, the reference): no 4 KiB block repeats" '
	use_rng virtio_rng.$N0 &&
	dd if=/dev/hwrng bs=4096 count=2048 iflag=fullblock 2>/dev/null | $HERE/blkuniq | tail -n 6'
vrs_test "back to $RS" '
	rmmod virtio_rng && modprobe $RS && bound_by $D0 $RS && bound_by $D1 $RS && bound_by $D2 $RS'

vrs_test "sysfs unbind removes $RS.$N0" '
	echo virtio$N0 >/sys/bus/virtio/drivers/$RS/unbind && ! available $RS.$N0 && bound_by $D0 -'
vrs_test "sysfs bind brings it back, and it reads" '
	echo virtio$N0 >/sys/bus/virtio/drivers/$RS/bind && bound_by $D0 $RS &&
	use_rng $RS.$N0 && test "$(rng_bytes 4096)" -eq 4096'

vrs_test "rmmod $RS while dd reads /dev/hwrng" '
	use_rng $RS.$N0
	dd if=/dev/hwrng of=/dev/null bs=64 count=10000000 </dev/null >/dev/null 2>&1 & pid=$!
	sleep 1; rmmod $RS; rc=$?
	sleep 1; kill $pid 2>/dev/null; wait $pid
	test $rc -eq 0 && ! test -d /sys/module/$RS'
vrs_test "modprobe $RS again binds them" '
	modprobe $RS && bound_by $D0 $RS && bound_by $D1 $RS && bound_by $D2 $RS'

# Freeze/restore: the devices' freeze and restore callbacks run, the system does not sleep.
vrs_test "suspend/resume through pm_test=devices" '
	state=mem; grep -qw mem /sys/power/state || state=freeze
	echo devices >/sys/power/pm_test && echo $state >/sys/power/state; rc=$?
	echo none >/sys/power/pm_test; test $rc -eq 0'
vrs_test "after resume both are registered and read" '
	available $RS.$N0 && available $RS.$N1 && use_rng $RS.$N0 && test "$(rng_bytes 4096)" -eq 4096 &&
	use_rng $RS.$N1 && test "$(rng_bytes 4096)" -eq 4096'

# Hot-unplug of rng2 while a reader is blocked on it (PCI only: virtio-mmio does
# not unplug). rng2 is dry, so the reader is blocked in the driver; the unplug
# must wake it, and the hwrng core then serves it from the next device: it
# finishes on its own, unkilled. (The fill thread is kept asleep: had it read
# rng2 first, the reader would wait for the core's lock, not in the driver.)
if [ "$VRS_TRANSPORT" = mmio ]; then
	vrs_skip "a reader of the dry device is blocked" "virtio-mmio has no hot-unplug"
	vrs_skip "device_del while the reader is blocked" "virtio-mmio has no hot-unplug"
	vrs_skip "the reader finishes on its own after the unplug" "virtio-mmio has no hot-unplug"
	vrs_skip "the remaining device still reads" "virtio-mmio has no hot-unplug"
else
	vrs_test "a reader of the dry device is blocked" '
		fill_thread_asleep $RS.$N0 && use_rng $RS.$N2 || exit 1
		rm -f /tmp/rng-out
		dd if=/dev/hwrng of=/tmp/rng-out bs=64 count=64 </dev/null 2>/dev/null & echo $! >/tmp/rng-reader
		sleep 3
		pid=$(cat /tmp/rng-reader); got=$(wc -c </tmp/rng-out)
		echo "after 3 s: $got of 4096 bytes, state $(cut -d" " -f3 /proc/$pid/stat 2>/dev/null)"
		kill -0 $pid && test "$got" -lt 4096'
	vrs_test "device_del while the reader is blocked" '
		vrs-host "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"rng2\"}}" &&
		i=0; while [ -e "$D2" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
		! test -e "$D2" && ! available $RS.$N2'
	vrs_test "the reader finishes on its own after the unplug" '
		pid=$(cat /tmp/rng-reader)
		i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 20 ]; do sleep 1; i=$((i + 1)); done
		echo "read $(wc -c </tmp/rng-out) bytes; current: $(cat $HWRNG/rng_current)"
		! kill -0 $pid 2>/dev/null && test "$(wc -c </tmp/rng-out)" -eq 4096'
	vrs_test "the remaining device still reads" 'use_rng $RS.$N0 && test "$(rng_bytes 4096)" -eq 4096'
fi
vrs_test "rmmod $RS" 'rmmod $RS && ! test -d /sys/module/$RS'
ktap_finished
