#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio_rng_rs against a lying device (scripts/vm --devices badrng
# --drivers none [--badrng-lie MODE]): build/baddev, a vhost-user virtio-rng
# backend, writes 'Z' (0x5a) into every byte of each buffer and reports a used
# length chosen by MODE: honest, oversize (twice the buffer), zero, huge
# (0xffffffff), or cycle (each in turn, the default). Whatever the device
# says, the driver hands out only bytes the device wrote (all 'Z', never
# memory beyond its buffer), warns about lengths larger than the buffer,
# never hangs a reader beyond a signal, and unbinds and unloads cleanly.
# The C driver runs on the same device for comparison: it clamps silently,
# and after a zero-length answer it stops asking the device for more.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"
# VRS_BADRNG_LIE: init does not export it.
. /vrs/env

RS=virtio_rng_rs
C=virtio_rng
LIE=${VRS_BADRNG_LIE:-cycle}
HWRNG=/sys/class/misc/hw_random
DEVS=$(vrs_devices_of 4)
D=$(echo "$DEVS" | sed -n 1p)
N=${D##*/virtio}
OUT=/tmp/badrng.out

bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }
available() { grep -qw "$1" $HWRNG/rng_available; }
use_rng() { echo "$1" >$HWRNG/rng_current && grep -qx "$1" $HWRNG/rng_current; }
# alive PID: the process exists and is not a zombie.
alive() { [ -e "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"; }
# reap PID: SIGTERM it if still running; fails if it is still alive 10 s later.
reap() {
	kill "$1" 2>/dev/null
	i=0
	while alive "$1" && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done
	if alive "$1"; then
		echo "reader $1 survives SIGTERM: $(cat "/proc/$1/stat")"
		return 1
	fi
	wait "$1" 2>/dev/null
	return 0
}
# read_for SECONDS BYTES: read up to BYTES from /dev/hwrng into $OUT, for at most
# SECONDS; prints how many came. Fails if the reader cannot be killed.
read_for() {
	dd if=/dev/hwrng of=$OUT bs=64 count=$(($2 / 64)) </dev/null 2>/dev/null &
	rpid=$!
	i=0
	while alive $rpid && [ $i -lt "$1" ]; do sleep 1; i=$((i + 1)); done
	reap $rpid || return 1
	wc -c <$OUT
}
# only_z: $OUT holds some bytes, and nothing but the device's 'Z' bytes.
only_z() {
	[ -s $OUT ] || { echo "nothing was read"; return 1; }
	other=$(tr -d Z <$OUT | wc -c)
	[ "$other" -eq 0 ] || { echo "$other bytes are not the device's:"; od -A d -t x1 $OUT | head -n 8; }
	[ "$other" -eq 0 ]
}
# clamped LEN: the queue warned that the device used LEN bytes of a 4096-byte buffer.
clamped() { dmesg | grep -q "device used $1 bytes of a 4096-byte buffer, clamped"; }

ktap_print_header
ktap_set_plan 11

vrs_test "one lying entropy device (lie=$LIE)" '
	test -n "$D" && test "$(echo "$DEVS" | wc -l)" -eq 1 &&
	case $LIE in cycle|honest|oversize|zero|huge) ;; *) false ;; esac'
vrs_test "modprobe $RS binds it" 'modprobe $RS && bound_by $D $RS'
vrs_test "$RS.$N is registered and made rng_current" 'available $RS.$N && use_rng $RS.$N'

if [ "$LIE" = zero ]; then
	vrs_test "reads get nothing, and the reader dies on a signal" '
		got=$(read_for 5 64) && echo "$got bytes" && test "$got" -eq 0'
else
	vrs_test "reads return 64 KiB" 'got=$(read_for 120 65536) && echo "$got bytes" && test "$got" -eq 65536'
fi
if [ "$LIE" = zero ]; then
	vrs_skip "every byte read was written by the device" "nothing was read (lie=zero)"
else
	vrs_test "every byte read was written by the device" 'only_z'
fi

case $LIE in
oversize) vrs_test "the oversized length was clamped, with a warning" 'clamped 8192' ;;
huge) vrs_test "the huge length was clamped, with a warning" 'clamped 4294967295' ;;
cycle) vrs_test "both oversized lengths were clamped, with warnings" 'clamped 8192 && clamped 4294967295' ;;
*) vrs_test "no clamp warning from a device that never overstates" '! dmesg | grep -q "clamped$"' ;;
esac

vrs_test "sysfs unbind while a reader waits or reads" '
	dd if=/dev/hwrng of=/dev/null bs=64 count=10000000 </dev/null >/dev/null 2>&1 &
	pid=$!
	sleep 2
	echo virtio$N >/sys/bus/virtio/drivers/$RS/unbind && ! available $RS.$N && bound_by $D - &&
	reap $pid'
if [ "$LIE" = zero ]; then
	vrs_test "sysfs bind brings it back, still without data" '
		echo virtio$N >/sys/bus/virtio/drivers/$RS/bind && bound_by $D $RS && use_rng $RS.$N &&
		got=$(read_for 3 64) && test "$got" -eq 0'
else
	vrs_test "sysfs bind brings it back, and it reads" '
		echo virtio$N >/sys/bus/virtio/drivers/$RS/bind && bound_by $D $RS && use_rng $RS.$N &&
		got=$(read_for 60 4096) && test "$got" -eq 4096 && only_z'
fi
vrs_test "rmmod $RS while dd reads /dev/hwrng" '
	dd if=/dev/hwrng of=/dev/null bs=64 count=10000000 </dev/null >/dev/null 2>&1 &
	pid=$!
	sleep 2; rmmod $RS; rc=$?
	reap $pid && test $rc -eq 0 && ! test -d /sys/module/$RS'

# The C driver on the same device. It clamps silently; after a zero-length
# answer it has no request in flight and serves nothing more, so only what it
# returns is checked, not how much.
# virtio_rng.c names its hwrng from an index of its own (an IDA), not the
# virtio index: take the name from rng_available.
c_rng() { tr ' ' '\n' <$HWRNG/rng_available | grep -m1 "^$C\."; }
modprobe $C && bound_by "$D" $C && use_rng "$(c_rng)" && read_for 10 65536 >/tmp/c-bytes
ktap_print_msg "$C ($(c_rng)) returned $(cat /tmp/c-bytes 2>/dev/null || echo '?') of 65536 bytes in 10 s"
if [ "$(cat /tmp/c-bytes 2>/dev/null || echo 0)" -gt 0 ]; then
	vrs_test "C $C: what it returns is the device's bytes, and it unloads" '
		only_z && rmmod $C && ! test -d /sys/module/$C'
else
	vrs_skip "C $C: what it returns is the device's bytes" \
		"$C returned nothing (after a zero-length answer it serves nothing more)"
	rmmod $C
fi
vrs_test "$RS binds again after the C driver, and rmmod $RS" '
	modprobe $RS && bound_by $D $RS && available $RS.$N && rmmod $RS && ! test -d /sys/module/$RS'
ktap_finished
