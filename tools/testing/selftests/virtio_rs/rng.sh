#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio_rng_rs, the Rust virtio-rng driver, on two entropy devices
# (scripts/vm --devices rng,rng1 --drivers none): it binds, registers
# virtio_rng_rs.N, serves blocking and non-blocking reads that rngtest accepts,
# negotiates the features the C driver negotiates, and survives unbind/bind,
# rmmod under load, hot-unplug with a reader blocked, and freeze/restore.
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

# rng_bytes COUNT: read COUNT bytes from /dev/hwrng (blocking), print how many came.
rng_bytes() { dd if=/dev/hwrng bs=64 count=$(($1 / 64)) 2>/dev/null | wc -c; }
# bound_by DEV MODULE
bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }
available() { grep -qw "$1" $HWRNG/rng_available; }
use_rng() { echo "$1" >$HWRNG/rng_current && grep -qx "$1" $HWRNG/rng_current; }

ktap_print_header
ktap_set_plan 20

vrs_test "two entropy devices present" 'test -n "$D0" && test -n "$D1"'
vrs_test "modprobe $RS" 'modprobe $RS'
vrs_test "$RS binds both devices" 'bound_by $D0 $RS && bound_by $D1 $RS'
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

# Features: Rust first, then C on the same devices.
F0=$(cat "$D0/features") F1=$(cat "$D1/features")
vrs_test "features identical to the C driver's on both devices" '
	rmmod $RS && modprobe virtio_rng && bound_by $D0 virtio_rng && bound_by $D1 virtio_rng &&
	echo "rust: $F0 $F1" && echo "c:    $(cat $D0/features) $(cat $D1/features)" &&
	test "$(cat $D0/features)" = "$F0" && test "$(cat $D1/features)" = "$F1" &&
	rmmod virtio_rng && modprobe $RS && bound_by $D0 $RS && bound_by $D1 $RS'

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
vrs_test "modprobe $RS again binds both" 'modprobe $RS && bound_by $D0 $RS && bound_by $D1 $RS'

# Freeze/restore: the devices' freeze and restore callbacks run, the system does not sleep.
vrs_test "suspend/resume through pm_test=devices" '
	state=mem; grep -qw mem /sys/power/state || state=freeze
	echo devices >/sys/power/pm_test && echo $state >/sys/power/state; rc=$?
	echo none >/sys/power/pm_test; test $rc -eq 0'
vrs_test "after resume both are registered and read" '
	available $RS.$N0 && available $RS.$N1 && use_rng $RS.$N0 && test "$(rng_bytes 4096)" -eq 4096 &&
	use_rng $RS.$N1 && test "$(rng_bytes 4096)" -eq 4096'

# Hot-unplug of rng1 while a reader waits on it (PCI only: virtio-mmio does not unplug).
if [ "$VRS_TRANSPORT" = mmio ]; then
	vrs_skip "device_del while a reader is blocked" "virtio-mmio has no hot-unplug"
	vrs_skip "the reader returns after the unplug" "virtio-mmio has no hot-unplug"
	vrs_skip "the remaining device still reads" "virtio-mmio has no hot-unplug"
else
	vrs_test "device_del while a reader is blocked" '
		use_rng $RS.$N1
		dd if=/dev/hwrng of=/dev/null bs=64 count=10000000 </dev/null >/dev/null 2>&1 & echo $! >/tmp/rng-reader
		sleep 1
		vrs-host "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"rng1\"}}" &&
		i=0; while [ -e "$D1" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
		! test -e "$D1" && ! available $RS.$N1'
	vrs_test "the reader returns after the unplug" '
		pid=$(cat /tmp/rng-reader); kill $pid 2>/dev/null
		i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done
		! kill -0 $pid 2>/dev/null'
	vrs_test "the remaining device still reads" 'use_rng $RS.$N0 && test "$(rng_bytes 4096)" -eq 4096'
fi
vrs_test "rmmod $RS" 'rmmod $RS && ! test -d /sys/module/$RS'
ktap_finished
