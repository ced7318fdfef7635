#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# kernel::virtio when a driver's handles outlive its device: the test module
# virtio_leak_rs (test_modules/) leaks a DeviceHandle and a Notifier on every
# probe, keeps its queue across a freeze, and uses stale handles after the
# device is closed. Run on the rng devices (scripts/vm --devices rng,rng1
# --drivers none). The device must survive unbind/bind, freeze/restore, a
# failed freeze and hot-unplug; stale handles must fail with ENODEV; NAPI
# initialisers run outside their net device's setup must fail; and
# KASAN, lockdep and kmemleak must stay quiet (make check scans the console).
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

M=virtio_leak_rs
DEVS=$(vrs_devices_of 4)
D0=$(echo "$DEVS" | sed -n 1p)
D1=$(echo "$DEVS" | sed -n 2p)
N0=${D0##*/virtio}
N1=${D1##*/virtio}

bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }
# mark: remember where the kernel log is; since: what was logged after the mark.
mark() { dmesg | wc -l >/tmp/leak-mark; }
since() { dmesg | tail -n +$(($(cat /tmp/leak-mark) + 1)); }
# logged PATTERN: the log since the mark has a line matching PATTERN (ERE).
logged() { since | grep -E "$1" || { since | tail -n 20; false; }; }
# wait_logged PATTERN: the same, waiting up to 10 s for a line a work item prints.
wait_logged() {
	i=0
	while ! since | grep -qE "$1" && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
	logged "$1"
}
# status_live: the device's status is what a bound driver leaves, ACKNOWLEDGE |
# DRIVER | FEATURES_OK | DRIVER_OK (0xf; a legacy device has no FEATURES_OK:
# 0x7), not a reset device (0) or one that failed.
status_live() {
	want=15
	[ "$VRS_TRANSPORT" = pci-legacy ] && want=7
	echo "status: $(cat "$D0/status"), want $want"
	test $(($(cat "$D0/status"))) -eq $want
}
# cycle: unbind virtio$N0, which must make a device round trip before
# teardown, and bind it again.
cycle() {
	mark
	echo "virtio$N0" >"/sys/bus/virtio/drivers/$M/unbind" &&
		logged "virtio$N0: round trip before remove: ok" &&
		echo "virtio$N0" >"/sys/bus/virtio/drivers/$M/bind" && bound_by "$D0" "$M"
}
suspend() {
	state=mem; grep -qw mem /sys/power/state || state=freeze
	echo devices >/sys/power/pm_test || return 1
	rc=0
	echo $state >/sys/power/state || rc=1
	echo none >/sys/power/pm_test
	return $rc
}

ktap_print_header
ktap_set_plan 25

vrs_test "insmod $M binds both rng devices" '
	mark; modprobe $M && bound_by $D0 $M && bound_by $D1 $M'
vrs_test "queue_cpu_map refuses queues that were not found" '
	logged "virtio$N0: queue_cpu_map beyond the queues: EINVAL EINVAL"'
vrs_test "unbind with leaked handles: a round trip first, then stale handles get ENODEV" '
	mark; echo virtio$N0 >/sys/bus/virtio/drivers/$M/unbind && bound_by $D0 - &&
	logged "virtio$N0: round trip before remove: ok" &&
	logged "virtio$N0: after removal: with=ENODEV notify=false"'
vrs_test "rebind after the leak: probe finds the queues again and the device works" '
	mark; echo virtio$N0 >/sys/bus/virtio/drivers/$M/bind && bound_by $D0 $M &&
	logged "virtio$N0: probed" &&
	cycle'
vrs_test "freeze/restore with a queue kept across the freeze" 'mark; suspend'
vrs_test "the kept queue and notifier fail after the freeze, touching nothing" '
	logged "virtio$N0: stale queue after freeze: add=ENODEV get_buf=false num_free=0 kick=false notify=false"'
vrs_test "the device works after restore" '
	cycle'
vrs_test "rmmod $M, then insmod with fail_freeze=1" '
	rmmod $M && ! test -d /sys/module/$M && modprobe $M fail_freeze=1 && bound_by $D0 $M'
vrs_test "a failed freeze aborts the suspend" 'mark; ! suspend && logged "failing freeze"'
vrs_test "after the failed freeze the device is still live" '
	cycle'
vrs_test "rmmod $M, then insmod with fail_restore=1" '
	rmmod $M && ! test -d /sys/module/$M && modprobe $M fail_restore=1 && bound_by $D0 $M'
# The core marks the device FAILED (0x80) after a failed restore; what must
# be gone is what the driver negotiated: ACKNOWLEDGE, DRIVER, FEATURES_OK.
vrs_test "a failed restore leaves the device reset" '
	mark; suspend; logged "virtio$N0: failing restore" &&
	echo "status after: $(cat $D0/status)" && test $(($(cat $D0/status) & 0x7f)) -eq 0'
vrs_test "after the failed restore, unbind and bind bring the device back" '
	mark; echo virtio$N0 >/sys/bus/virtio/drivers/$M/unbind && bound_by $D0 - &&
	echo virtio$N0 >/sys/bus/virtio/drivers/$M/bind && bound_by $D0 $M &&
	cycle'
# The adapter closes DeviceHandle users out before it resets the device: a
# user inside with() when the unbind starts still has a live device.
vrs_test "rmmod $M, then insmod with hold_ms=3000: a work item stays inside with()" '
	rmmod $M && ! test -d /sys/module/$M && mark && modprobe $M hold_ms=3000 &&
	bound_by $D0 $M && wait_logged "virtio$N0: inside with\(\), holding it 3000 ms"'
vrs_test "unbind waits for the user inside with(): its round trip, after the unbind began, works" '
	echo virtio$N0 >/sys/bus/virtio/drivers/$M/unbind && bound_by $D0 - &&
	logged "virtio$N0: round trip before remove: ok" &&
	wait_logged "virtio$N0: round trip inside with\(\) after 3000 ms: ok" &&
	echo virtio$N0 >/sys/bus/virtio/drivers/$M/bind && bound_by $D0 $M'
# (virtio$N1 has a work item inside with() too: it must be done before rmmod,
# as 6.12's workqueue abstraction does not keep the module alive for it.)
# Dropping a Virtqueue never resets the device: in probe (DRIVER_OK would
# land on a reset device), nor in its own callback (reset waits for the
# callbacks: the callback would wait for itself).
vrs_test "rmmod, insmod with drop_queue=1: a queue dropped in probe leaves the device live" '
	wait_logged "virtio$N1: round trip inside with\(\) after 3000 ms" && sleep 1 &&
	rmmod $M && mark && modprobe $M drop_queue=1 && bound_by $D0 $M &&
	logged "virtio$N0: dropped the queue in probe" && status_live'
vrs_test "after drop_queue=1: rmmod, insmod, and the device works" '
	rmmod $M && modprobe $M && bound_by $D0 $M && cycle'
vrs_test "rmmod, insmod with drop_queue=2: a queue dropped in its callback leaves the device live" '
	rmmod $M && mark && modprobe $M drop_queue=2 && bound_by $D0 $M &&
	wait_logged "virtio$N0: dropped the queue in its callback" && status_live'
vrs_test "after drop_queue=2: unbind, then rmmod, insmod, and the device works" '
	echo virtio$N0 >/sys/bus/virtio/drivers/$M/unbind && bound_by $D0 - &&
	rmmod $M && modprobe $M && bound_by $D0 $M && cycle'
# A NAPI initialiser holds no device: it may only build in the private area of
# a net device being set up, and is refused anywhere else, or after it; the
# same for a NapiVec (the contexts of a multiqueue device).
vrs_test "rmmod, insmod with napi_escape=1: only the NAPI context in the device's private area builds" '
	rmmod $M && mark && modprobe $M napi_escape=1 && bound_by $D0 $M &&
	logged "virtio$N0: napi: in the private area=ok outside it=EINVAL after the device=EINVAL" &&
	logged "virtio$N0: napi_vec: in the private area=ok [(]3 contexts[)] outside it=EINVAL after the device=EINVAL"'
vrs_test "after napi_escape=1: rmmod, insmod, and the device works" '
	rmmod $M && modprobe $M && bound_by $D0 $M && cycle'
vrs_test "the device is live after all of it" 'status_live'
if [ "$VRS_TRANSPORT" = mmio ]; then
	vrs_skip "device_del with leaked handles" "virtio-mmio has no hot-unplug"
	vrs_skip "the unplugged device's stale handles get ENODEV" "virtio-mmio has no hot-unplug"
else
	vrs_test "device_del with leaked handles" '
		mark; vrs-host "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"rng1\"}}" &&
		i=0; while [ -e "$D1" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
		! test -e "$D1"'
	vrs_test "the unplugged device's stale handles get ENODEV" '
		logged "virtio$N1: after removal: with=ENODEV notify=false"'
fi
vrs_test "rmmod $M" 'rmmod $M && ! test -d /sys/module/$M'
ktap_finished
