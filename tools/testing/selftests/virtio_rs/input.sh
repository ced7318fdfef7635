#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-input on a keyboard, a mouse and a tablet (scripts/vm --devices
# keyboard,mouse,tablet --drivers none).
#
# usage: input.sh [rust|c]   (default: $VRS_INPUT_DRIVER, else rust)
#
# The driver under test is virtio_input_rs or, as the reference the Rust
# driver must match, the C virtio_input: every test must pass with C. Each
# device shows up with the same name, ids, capabilities and features as with
# the C driver (with C itself this compares C with C, so it is skipped); key,
# relative and absolute events injected with QMP input-send-event are read
# back from /dev/input/eventN in order; rmmod with a reader open and
# hot-unplug with a reader blocked work; and across freeze/restore the driver
# keeps its input devices, as C does: no new input or event device appears,
# and an fd opened before (held by evhold, next to this script) still reads
# keys and still reports the Caps Lock LED it set. QEMU's devices cannot show what the driver sent
# on the status queue: that an LED reaches the device is tested on a device
# that records it, in input_lies.sh.
# Variables used only in vrs_test code strings look unused to shellcheck.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

vrs_pick_driver input.sh VRS_INPUT_DRIVER "${1:-}" virtio_input_rs virtio_input
C=virtio_input
KBD="QEMU Virtio Keyboard"
MOUSE="QEMU Virtio Mouse"
TABLET="QEMU Virtio Tablet"
EV_BIN=/tmp/vrs-input-events.bin
EVHOLD=$(dirname "$0")/evhold
# evhold's output; HOLD.pid: its pid; HOLD.ev, HOLD.class: the keyboard's event
# device and the list of input devices before suspend.
HOLD=/tmp/vrs-input-hold

# The virtio device whose input device has name $1.
dev_named() {
	for i in /sys/bus/virtio/devices/*/input/input*; do
		[ -e "$i/name" ] && [ "$(cat "$i/name")" = "$1" ] && echo "${i%/input/*}" && return 0
	done
	return 1
}
# The input device (sysfs) and event device (/dev) of the device named $1.
input_of() { d=$(dev_named "$1") && ls -d "$d"/input/input* | head -n 1; }
evdev_of() { i=$(input_of "$1") && e=$(ls -d "$i"/event* | head -n 1) && echo "/dev/input/${e##*/}"; }
bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }
all_bound_by() {
	for d in $(vrs_devices_of 18); do bound_by "$d" "$1" || return 1; done
}
# Wait until $1 (a module) drives all three devices: input devices appear asynchronously.
wait_bound() {
	i=0
	while [ $i -lt 20 ]; do
		all_bound_by "$1" && evdev_of "$KBD" >/dev/null && evdev_of "$MOUSE" >/dev/null &&
			evdev_of "$TABLET" >/dev/null && return 0
		sleep 1
		i=$((i + 1))
	done
	return 1
}

# What userspace sees of the device named $1.
snapshot() {
	i=$(input_of "$1") || return 1
	for f in name phys uniq id/bustype id/vendor id/product id/version properties \
		capabilities/ev capabilities/key capabilities/rel capabilities/abs \
		capabilities/msc capabilities/sw capabilities/led capabilities/snd capabilities/ff; do
		echo "$f: $(cat "$i/$f")"
	done
}
features_of() { d=$(dev_named "$1") && cat "$d/features"; }
file_of() { echo "/tmp/vrs-input-$2-$(echo "$1" | tr ' ' _)"; }

# wait_open PID FILE: wait until process PID has FILE open.
wait_open() {
	i=0
	while [ $i -lt 20 ]; do
		for f in /proc/"$1"/fd/*; do
			[ "$(readlink "$f")" = "$2" ] && return 0
		done
		sleep 1
		i=$((i + 1))
	done
	echo "$2 not opened by $1"
	return 1
}

# qmp_events JSON-EVENTS: inject events through QMP (to the active device of each kind).
qmp_events() {
	out=$(vrs-host "{\"execute\": \"input-send-event\", \"arguments\": {\"events\": [$1]}}")
	echo "$out" | grep -q '"return"' || { echo "QMP: $out"; return 1; }
}
key() { echo "{\"type\": \"key\", \"data\": {\"down\": $2, \"key\": {\"type\": \"qcode\", \"data\": \"$1\"}}}"; }
axis() { echo "{\"type\": \"$1\", \"data\": {\"axis\": \"$2\", \"value\": $3}}"; }

# read_events NAME COUNT EVENTS: read COUNT events from the device named NAME while EVENTS
# are injected; print them as "type code value" lines.
read_events() {
	ev=$(evdev_of "$1") || return 1
	rm -f $EV_BIN
	dd if="$ev" of=$EV_BIN bs=24 count="$2" 2>/dev/null &
	pid=$!
	wait_open $pid "$ev" && qmp_events "$3" || { kill $pid; return 1; }
	i=0
	while kill -0 $pid 2>/dev/null && [ $i -lt 20 ]; do sleep 1; i=$((i + 1)); done
	kill $pid 2>/dev/null
	wait $pid
	# struct input_event on 64-bit: 16 bytes of time, le16 type, le16 code, le32 value.
	od -An -v -w24 -td4 $EV_BIN | awk '{ t = $5 % 65536; print t, ($5 - t) / 65536, $6 }'
}
# expect_events NAME COUNT EVENTS EXPECTED
expect_events() {
	got=$(read_events "$1" "$2" "$3")
	echo "expected: $(echo "$4" | tr '\n' ,)"
	echo "got:      $(echo "$got" | tr '\n' ,)"
	test "$got" = "$4"
}

KEYS="$(key a true), $(key a false), $(key b true), $(key b false)"
KEYS_READ="1 30 1
1 30 0
1 48 1
1 48 0
0 0 0"
REL="$(axis rel x 10), $(axis rel y -5)"
REL_READ="2 0 10
2 1 -5
0 0 0"
ABS="$(axis abs x 1000), $(axis abs y 2000)"
ABS_READ="3 0 1000
3 1 2000
0 0 0"

ktap_print_header
ktap_set_plan 24

vrs_test "three virtio input devices present" 'test "$(vrs_devices_of 18 | wc -l)" -eq 3'

# The C driver first: what userspace sees of each device, and the features.
vrs_test "modprobe $C (the C driver) binds all three" 'modprobe $C && wait_bound $C'
for n in "$KBD" "$MOUSE" "$TABLET"; do
	snapshot "$n" >"$(file_of "$n" c)"
	features_of "$n" >"$(file_of "$n" cf)"
done
vrs_test "rmmod $C" 'rmmod $C && ! test -d /sys/module/$C'

vrs_test "modprobe $DRV binds all three" 'modprobe $DRV && wait_bound $DRV'
for n in "$KBD" "$MOUSE" "$TABLET"; do
	if [ "$KIND" = c ]; then
		vrs_skip "$n: same name, phys, uniq, id, properties and capabilities as with $C" \
			"this run tests the C driver itself"
		continue
	fi
	vrs_test "$n: same name, phys, uniq, id, properties and capabilities as with $C" '
		snapshot "$n" >"$(file_of "$n" rs)" && cat "$(file_of "$n" rs)" &&
		diff "$(file_of "$n" c)" "$(file_of "$n" rs)"'
done
if [ "$KIND" = c ]; then
	vrs_skip "features identical to the C driver's on all three" "this run tests the C driver itself"
else
	vrs_test "features identical to the C driver's on all three" '
		for n in "$KBD" "$MOUSE" "$TABLET"; do
			echo "$n: c $(cat "$(file_of "$n" cf)") rust $(features_of "$n")"
			test "$(cat "$(file_of "$n" cf)")" = "$(features_of "$n")" || exit 1
		done'
fi

vrs_test "keyboard: keys a and b down and up read back in order" \
	'expect_events "$KBD" 5 "$KEYS" "$KEYS_READ"'
vrs_test "mouse: relative motion read back in order" 'expect_events "$MOUSE" 3 "$REL" "$REL_READ"'
vrs_test "tablet: absolute position read back in order" 'expect_events "$TABLET" 3 "$ABS" "$ABS_READ"'

# The input device goes away under the reader: evdev wakes it with ENODEV,
# and it must exit on its own (it is killed only to clean up a failure).
vrs_test "rmmod $DRV while a reader holds the keyboard's event device: the reader returns" '
	ev=$(evdev_of "$KBD")
	cat "$ev" >/dev/null 2>&1 & pid=$!
	wait_open $pid "$ev" || exit 1
	rmmod $DRV; rc=$?
	i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done
	gone=1
	kill -0 $pid 2>/dev/null && { echo "reader still blocked after 10 s"; kill $pid; gone=0; }
	wait $pid; test $rc -eq 0 && ! test -d /sys/module/$DRV && test $gone -eq 1'
vrs_test "modprobe $DRV again binds all three, keys read back" '
	modprobe $DRV && wait_bound $DRV && expect_events "$KBD" 5 "$KEYS" "$KEYS_READ"'

# Freeze/restore: the devices' freeze and restore callbacks run, the system does not sleep.
# The driver keeps its input devices across it, as C does (C's virtinput_freeze/restore):
# evhold holds the keyboard's event device open throughout, sets Caps Lock through it
# before, and after resume reads EVIOCGLED and four key events on the same fd. It grabs
# the device (EVIOCGRAB): suspend switches VTs, and the VT keyboard handler then pushes
# the console's LED state (Caps Lock off) to every keyboard it has, whatever the driver.
vrs_test "keyboard: an fd held open across suspend sets Caps Lock through itself" '
	ev=$(evdev_of "$KBD") || exit 1
	echo "$ev" >$HOLD.ev && ls /sys/class/input >$HOLD.class || exit 1
	"$EVHOLD" "$ev" grab name setled 1 1 led ready wait 120 name led read 1 4 30 setled 1 0 \
		</dev/null >$HOLD 2>&1 &
	echo $! >$HOLD.pid
	i=0; while ! grep -qx ready $HOLD && [ $i -lt 20 ]; do sleep 1; i=$((i + 1)); done
	cat $HOLD
	led=$(sed -n "s/^led //p" $HOLD)
	grep -qx ready $HOLD && test -n "$led" && test $((led & 2)) -ne 0'
vrs_test "suspend/resume through pm_test=devices" '
	state=mem; grep -qw mem /sys/power/state || state=freeze
	echo devices >/sys/power/pm_test && echo $state >/sys/power/state; rc=$?
	echo none >/sys/power/pm_test; test $rc -eq 0'
vrs_test "after resume: the keyboard has the same event device, and no input device is new" '
	wait_bound $DRV || exit 1
	ev=$(evdev_of "$KBD")
	echo "keyboard: $(cat $HOLD.ev) before, $ev after"
	echo "/sys/class/input before: $(tr "\n" " " <$HOLD.class)"
	echo "/sys/class/input after:  $(ls /sys/class/input | tr "\n" " ")"
	test "$ev" = "$(cat $HOLD.ev)" && ls /sys/class/input | cmp -s - $HOLD.class'
vrs_test "after resume: the fd opened before reads keys a and b down and up" '
	pid=$(cat $HOLD.pid)
	qmp_events "$KEYS"; kill -USR1 $pid
	i=0; while ! grep -q "^done" $HOLD && [ $i -lt 40 ]; do sleep 1; i=$((i + 1)); done
	kill $pid 2>/dev/null
	cat $HOLD
	test "$(sed -n "s/^event //p" $HOLD)" = "$(echo "$KEYS_READ" | grep "^1 ")"'
vrs_test "after resume: EVIOCGLED on that fd still shows Caps Lock on" '
	cat $HOLD
	led=$(sed -n "s/^led //p" $HOLD)
	test "$(echo "$led" | wc -l)" -eq 2 && test -z "$(echo "$led" | uniq -u)" &&
		test $(($(echo "$led" | head -n 1) & 2)) -ne 0'
vrs_test "after resume all three are back and keys read back" '
	wait_bound $DRV && expect_events "$KBD" 5 "$KEYS" "$KEYS_READ"'
vrs_test "after resume the tablet reads back" 'expect_events "$TABLET" 3 "$ABS" "$ABS_READ"'

# Hot-unplug of the tablet while a reader waits on it (PCI only: virtio-mmio does not unplug).
if [ "$VRS_TRANSPORT" = mmio ]; then
	vrs_skip "device_del of the tablet while a reader is blocked" "virtio-mmio has no hot-unplug"
	vrs_skip "the reader returns after the unplug" "virtio-mmio has no hot-unplug"
else
	vrs_test "device_del of the tablet while a reader is blocked" '
		d=$(dev_named "$TABLET") && ev=$(evdev_of "$TABLET") || exit 1
		cat "$ev" >/dev/null 2>&1 & echo $! >/tmp/vrs-input-reader
		wait_open $! "$ev" &&
		vrs-host "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"tablet0\"}}" &&
		i=0; while [ -e "$d" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
		! test -e "$d"'
	vrs_test "the reader returns after the unplug" '
		pid=$(cat /tmp/vrs-input-reader)
		i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done
		! kill -0 $pid 2>/dev/null || { kill $pid; exit 1; }'
fi
vrs_test "the mouse still reads back" 'expect_events "$MOUSE" 3 "$REL" "$REL_READ"'
vrs_test "rmmod $DRV" 'rmmod $DRV && ! test -d /sys/module/$DRV'
ktap_finished
