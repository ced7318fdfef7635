#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-input drivers against a multitouch device that tells the truth, and
# against devices that lie (scripts/vm --devices none --drivers none). The
# devices are played in the guest by the test module vrs_badinput
# (test_modules/vrs_badinput.c), one per preset, each under its own root
# device /sys/devices/badinput-PRESET: QEMU 7.2 cannot play them (its
# vhost-user-input frontend needs KVM, and these guests run under TCG).
#   mt              honest: a touchscreen "badinput mt", INPUT_PROP_DIRECT,
#                   BTN_TOUCH, ABS_X/Y and 10 slots of ABS_MT_POSITION_X/Y and
#                   ABS_MT_TRACKING_ID with distinctive absinfo, LED_NUML and
#                   LED_CAPSL
#   abs-min-gt-max  ABS_X and ABS_MT_POSITION_X with minimum > maximum
#   slots-0, slots-257, slots-1024, slots-1025
#                   ABS_MT_SLOT's maximum is the slot count less one
#   short           an injected touch is preceded by 192 events whose
#                   buffers are used with lengths 0..7 (the bytes are there)
#   flood           events (ABS_X, SYN_REPORT), thousands a second, unasked
# /sys/kernel/debug/vrs_badinput/PRESET/log has every event the driver sent
# on the status queue; writing "inject mt" to .../control sends a two-finger
# touch (down in slots 0 and the last, move, up).
#
# usage: input_lies.sh [rust|c]   (default: $VRS_INPUT_DRIVER, else rust)
#
# The driver (virtio_input_rs, or the C virtio_input) is bound to one device
# at a time (drivers_autoprobe off). On the honest device: the input device
# has the name, properties and capabilities the device gave, EVIOCGABS reads
# back every axis as advertised, the injected touch arrives event by event
# (slots, tracking ids, positions) and leaves EVIOCGMTSLOTS right, LEDs set
# through the event device arrive at the device (its status log), and a
# reader open across an unbind gets an error, as does a write to its stale
# fd. On the lies: each is refused cleanly (the write to bind fails with an
# error, nothing is left) or the device works and the touch arrives, as C
# does; slots-257 and slots-1024 bind (as C: the input core takes up to 1024
# slots); slots-1025, more than the input core takes, is refused; after short
# events the touch still arrives in full; under the flood a reader gets
# events, LEDs still arrive at the device, an unbind works and a rebind
# reads the touch. Then rmmod, a modprobe that binds every device with the
# same outcome, the devices going away (rmmod vrs_badinput) under a reader,
# and rmmod again. A splat fails the run through the host's console scan.
#
# Tests marked "(Rust only)" check what Rust does beyond C; with C they
# SKIP, printing what C did (Documentation/hardening.rst records it).
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

vrs_pick_driver input_lies.sh VRS_INPUT_DRIVER "${1:-}" virtio_input_rs virtio_input

DEV=vrs_badinput
PRESETS="mt abs-min-gt-max slots-0 slots-257 slots-1024 slots-1025 short flood"
# gen-spin: the config generation changes at every read. The C driver's
# config reads (virtio_cread_bytes) retry until it settles, forever: C never
# sees this device (its result, measured by hand, is in hardening.rst).
[ "$KIND" = rust ] && PRESETS="$PRESETS gen-spin"
EVHOLD=$(dirname "$0")/evhold
DBG=/sys/kernel/debug/$DEV
BUS=/sys/bus/virtio
TMP=${TMPDIR:-/tmp}/input_lies
rm -rf "$TMP"
mkdir -p "$TMP"

# dev_of PRESET: the virtio device of preset PRESET; input_of PRESET: its input device.
dev_of() {
	_d=$(ls -d "/sys/devices/badinput-$1"/virtio* 2>/dev/null | head -n 1)
	[ -n "$_d" ] && echo "$_d"
}
input_of() {
	_i=$(ls -d "$(dev_of "$1")"/input/input* 2>/dev/null | head -n 1)
	[ -n "$_i" ] && echo "$_i"
}
evdev_of() {
	e=$(ls -d "$(input_of "$1")"/event* 2>/dev/null | head -n 1) && [ -n "$e" ] &&
		echo "/dev/input/${e##*/}"
}
# The /sys/bus/virtio/drivers entry of module $DRV.
driver_dir() { vrs_driver_dir "$DRV"; }
within() { vrs_within "$@"; }
bound() { test "$(vrs_driver_module "$1")" = "$DRV"; }
# outcome PRESET: "input NAME", "refused", or what else the device looks like.
outcome() {
	d=$(dev_of "$1") i=$(input_of "$1")
	if bound "$d" && [ -n "$i" ]; then
		echo "input ${i##*/}"
	elif ! [ -e "$d/driver" ] && [ -z "$i" ]; then
		echo refused
	else
		echo "broken: driver $(vrs_driver_module "$d"), input device '${i:-none}'"
	fi
}
# bind PRESET: one probe; sets RC (the write's status) and O (the outcome),
# and keeps the probe's dmesg in $TMP/dmesg.PRESET.
bind() {
	d=$(dev_of "$1")
	dmesg -c >/dev/null
	out=$(within 60 sh -c "echo ${d##*/} >'$(driver_dir)/bind'" 2>&1)
	RC=$?
	dmesg >"$TMP/dmesg.$1"
	O=$(outcome "$1")
	[ "$RC" -eq 124 ] && O="broken: the probe hung"
	echo "$1 $O" >>"$TMP/round1"
	ktap_print_msg "$1 (${d##*/}): bind status $RC${out:+ ($out)}: $O"
}
# refused_cleanly PRESET: the probe failed with EINVAL (the write to bind
# failed, status 1: not killed by an oops), said why, and left nothing.
refused_cleanly() {
	d=$(dev_of "$1")
	why=$(grep -E "${d##*/}: probe with driver .* failed with error" "$TMP/dmesg.$1")
	echo "dmesg: ${why:-nothing about ${d##*/}}"
	echo "device status $(cat "$d/status")"
	! grep -E 'Oops|BUG|panicked|Call Trace' "$TMP/dmesg.$1" && [ "$RC" -eq 1 ] &&
		echo "$why" | grep -q 'error -22$' && ! [ -e "$d/driver" ] && [ -z "$(input_of "$1")" ]
}
control() { echo "$2" >"$DBG/$1/control"; }
status_log() { cat "$DBG/$1/log"; }
# wait_log PRESET EXPECTED: wait up to 10 s for the status log to be EXPECTED.
wait_log() {
	i=0
	while [ "$(status_log "$1")" != "$2" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
	echo "expected: $(echo "$2" | tr '\n' ,)"
	echo "device:   $(status_log "$1" | tr '\n' ,)"
	test "$(status_log "$1")" = "$2"
}
# hold PRESET COMMAND...: evhold on the preset's event device in the
# background, output in $TMP/hold; returns once it has printed "ready".
hold() {
	ev=$(evdev_of "$1") || { echo "no event device for $1"; return 1; }
	shift
	"$EVHOLD" "$ev" ready "$@" </dev/null >"$TMP/hold" 2>&1 &
	HOLD=$!
	i=0
	while ! grep -qx ready "$TMP/hold" && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
	grep -qx ready "$TMP/hold" || { cat "$TMP/hold"; return 1; }
}
# unhold: wait up to 30 s for evhold to finish, then show what it printed.
unhold() {
	i=0
	while kill -0 "$HOLD" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
	kill "$HOLD" 2>/dev/null
	wait "$HOLD"
	cat "$TMP/hold"
}
# inject PRESET: inject the touch and print every event read up to the end
# of it (BTN_TOUCH 0 and its SYN_REPORT) as "TYPE CODE VALUE" lines.
inject() {
	hold "$1" until 1 330 0 30 || return 1
	control "$1" "inject mt" || { kill "$HOLD"; return 1; }
	unhold >"$TMP/touch.$1"
	grep -q '^done 0$' "$TMP/touch.$1" || { cat "$TMP/touch.$1"; return 1; }
	sed -n 's/^event //p' "$TMP/touch.$1"
}
# slot_event SLOT: ABS_MT_SLOT SLOT, on a device with slots ($MT = 1).
slot_event() {
	[ "$MT" = 1 ] && echo "3 47 $1"
	:
}
# touch_events SLOT MT: what the input core passes on for the injected touch,
# its second finger in slot SLOT. It sends ABS_MT_SLOT only when the slot
# changes (slot 0 is current at first), and with MT=0 (no slots) never.
touch_events() {
	MT=$2
	printf '3 57 100\n3 53 1000\n3 54 2000\n1 330 1\n3 0 1000\n3 1 2000\n0 0 0\n'
	slot_event "$1"
	printf '3 57 101\n3 53 3000\n3 54 500\n0 0 0\n'
	slot_event 0
	printf '3 53 1100\n3 54 2100\n'
	slot_event "$1"
	printf '3 53 2900\n3 54 600\n3 0 1100\n3 1 2100\n0 0 0\n'
	slot_event 0
	printf '3 57 -1\n0 0 0\n'
	slot_event "$1"
	printf '3 57 -1\n1 330 0\n0 0 0\n'
}
# expect_touch PRESET SLOT MT: the touch arrives, exactly; with TAIL=1, as
# the last events read (events before it are the device's other business).
expect_touch() {
	got=$(inject "$1") || { echo "$got"; return 1; }
	want=$(touch_events "$2" "$3")
	[ "${TAIL:-0}" = 1 ] && got=$(echo "$got" | tail -n "$(echo "$want" | wc -l)")
	echo "expected: $(echo "$want" | tr '\n' ,)"
	echo "got:      $(echo "$got" | tr '\n' ,)"
	test "$got" = "$want"
}
# absinfo PRESET: "abs CODE VALUE MIN MAX FUZZ FLAT RES" of each axis.
absinfo() {
	"$EVHOLD" "$(evdev_of "$1")" abs 0 abs 1 abs 47 abs 53 abs 54 abs 57 | grep -v '^done'
}
# mt_slots PRESET CODE N: EVIOCGMTSLOTS of axis CODE in N slots.
mt_slots() { "$EVHOLD" "$(evdev_of "$1")" slots "$2" "$3" | grep -v '^done'; }
# slots_case PRESET COUNT: the tests of a device that says it has COUNT slots
# (at most 1024, which the input core takes): C binds it, so must Rust.
slots_case() {
	p=$1 n=$2
	bind "$p"
	case $O in
	input*)
		vrs_test "$p: bound with $n slots (ABS_MT_SLOT 0..$((n - 1))), as C" '
			echo "bound: $O"; absinfo $p | grep "^abs 47 " &&
			test "$(absinfo $p | grep "^abs 47 ")" = "abs 47 0 0 $((n - 1)) 0 0 0"'
		vrs_test "$p: the touch arrives, its second finger in slot $((n - 1))" \
			'expect_touch $p $((n - 1)) 1'
		;;
	*)
		vrs_test "$p: bound with $n slots (ABS_MT_SLOT 0..$((n - 1))), as C" \
			'echo "$O (bind status $RC)"; false'
		ktap_test_fail "$p: the touch arrives, its second finger in slot $((n - 1))"
		;;
	esac
}

HONEST_ABS="abs 0 0 17 4000 3 5 11
abs 1 0 23 3000 2 7 13
abs 47 0 0 9 0 0 0
abs 53 0 19 4001 4 0 12
abs 54 0 29 3001 6 0 14
abs 57 0 0 65535 0 0 0"

ktap_print_header
ktap_set_plan 29

vrs_test "$DEV plays every preset, and $DRV loads with automatic binding off" '
	echo 0 >$BUS/drivers_autoprobe &&
	within 60 modprobe $DEV presets=$(echo $PRESETS | tr " " ,) &&
	within 60 modprobe $DRV && driver_dir >/dev/null || exit 1
	ok=0
	for p in $PRESETS; do
		d=$(dev_of $p) || { echo "no virtio device under /sys/devices/badinput-$p"; ok=1; continue; }
		echo "$p: ${d##*/}"
		! [ -e "$d/driver" ] || { echo "$p: bound already"; ok=1; }
	done
	exit $ok'

# The honest device.
bind mt
vrs_test "mt: binds, a touchscreen with the name, ids, properties and capabilities given" '
	echo "$O"; test "$RC" -eq 0 && i=$(input_of mt) || exit 1
	for f in name uniq id/bustype id/vendor id/product id/version properties \
		capabilities/ev capabilities/key capabilities/abs capabilities/led; do
		echo "$f: $(cat $i/$f)"
	done | tee $TMP/caps
	printf "%s\n" "name: badinput mt" "uniq: mt" "id/bustype: 0006" "id/vendor: 1af4" \
		"id/product: 0bad" "id/version: 0001" "properties: 2" "capabilities/ev: 2000b" \
		"capabilities/key: 400 0 0 0 0 0" "capabilities/abs: 260800000000003" \
		"capabilities/led: 3" | cmp -s - $TMP/caps'
vrs_test "mt: EVIOCGABS reads back every axis as the device advertised it" '
	got=$(absinfo mt); echo "$got"; test "$got" = "$HONEST_ABS"'
vrs_test "mt: an injected two-finger touch arrives: slots, tracking ids, positions, in order" \
	'expect_touch mt 9 1'
vrs_test "mt: after it, EVIOCGMTSLOTS has the last positions in slots 0 and 9, no contact" '
	x=$(mt_slots mt 53 10) && y=$(mt_slots mt 54 10) && t=$(mt_slots mt 57 10) || exit 1
	echo "$x"; echo "$y"; echo "$t"
	test "$x" = "slots 53 1100 0 0 0 0 0 0 0 0 2900" &&
		test "$y" = "slots 54 2100 0 0 0 0 0 0 0 0 600" &&
		test "$t" = "slots 57 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1"'
# EV_LED written to the event device: the input core passes a change to the
# driver, which sends it on the status queue; the device records it.
vrs_test "mt: Caps Lock and Num Lock on, written to the event device, arrive at the device" '
	control mt clear &&
	"$EVHOLD" "$(evdev_of mt)" setled 1 1 setled 0 1 led || exit 1
	wait_log mt "status type=17 code=1 value=1
status type=17 code=0 value=1"'
vrs_test "mt: and off again, in order, and nothing else" '
	"$EVHOLD" "$(evdev_of mt)" setled 1 0 setled 0 0 led || exit 1
	wait_log mt "status type=17 code=1 value=1
status type=17 code=0 value=1
status type=17 code=1 value=0
status type=17 code=0 value=0"'
vrs_test "mt: unbind with a reader open: the reader and a write to its fd get errors" '
	hold mt count 60 setled 1 1 || exit 1
	d=$(dev_of mt)
	within 60 sh -c "echo ${d##*/} >$(driver_dir)/unbind"; rc=$?
	out=$(unhold); echo "unbind status $rc"; echo "$out"
	test $rc -eq 0 && ! [ -e $d/driver ] && test -z "$(input_of mt)" &&
		echo "$out" | grep -q "^error count: device gone" &&
		echo "$out" | grep -q "^error setled: No such device"'

# The lies.
bind abs-min-gt-max
case $O in
input*)
	vrs_test "abs-min-gt-max: bound with the axes as given (as C), or refused cleanly" '
		echo "bound: $O"; got=$(absinfo abs-min-gt-max); echo "$got"
		test "$got" = "$(echo "$HONEST_ABS" | sed "s/^abs 0 0 17 4000/abs 0 0 4000 17/;
			s/^abs 53 0 19 4001/abs 53 0 4001 19/")"'
	vrs_test "abs-min-gt-max: the touch arrives, outside the range as the device sends it" \
		'expect_touch abs-min-gt-max 9 1'
	;;
refused)
	vrs_test "abs-min-gt-max: bound with the axes as given (as C), or refused cleanly" '
		echo "refused: bind status $RC"; refused_cleanly abs-min-gt-max'
	vrs_skip "abs-min-gt-max: the touch arrives, outside the range as the device sends it" \
		"the probe was refused"
	;;
*)
	vrs_test "abs-min-gt-max: bound with the axes as given (as C), or refused cleanly" \
		'echo "$O"; false'
	ktap_test_fail "abs-min-gt-max: the touch arrives, outside the range as the device sends it"
	;;
esac

# Slot count 0: ABS_MT_SLOT 0..-1. input_mt_init_slots(0) sets up nothing.
bind slots-0
case $O in
input*)
	vrs_test "slots-0: bound without slots (EVIOCGMTSLOTS fails, as C), or refused cleanly" '
		echo "bound: $O"; out=$(mt_slots slots-0 57 1); echo "$out"
		echo "$out" | grep -q "^error slots: Invalid argument"'
	vrs_test "slots-0: the touch arrives, without slot events" 'expect_touch slots-0 1 0'
	;;
refused)
	vrs_test "slots-0: bound without slots (EVIOCGMTSLOTS fails, as C), or refused cleanly" '
		echo "refused: bind status $RC"; refused_cleanly slots-0'
	vrs_skip "slots-0: the touch arrives, without slot events" "the probe was refused"
	;;
*)
	vrs_test "slots-0: bound without slots (EVIOCGMTSLOTS fails, as C), or refused cleanly" \
		'echo "$O"; false'
	ktap_test_fail "slots-0: the touch arrives, without slot events"
	;;
esac
slots_case slots-257 257
slots_case slots-1024 1024
bind slots-1025
vrs_test "slots-1025: more slots than the input core takes: refused cleanly, EINVAL (as C)" '
	echo "$O"; refused_cleanly slots-1025'

# A config generation that never settles: Rust gives up after a bounded
# number of tries (config::GENERATION_TRIES), with a warning, and refuses the
# device with EIO; the probe must return, and leave nothing behind.
GEN_ONLY="Rust only: C's config reads retry forever on this device (Documentation/hardening.rst)"
if [ "$KIND" = c ]; then
	vrs_skip "gen-spin: the probe gives up on a config generation that never settles (Rust only)" "$GEN_ONLY"
	vrs_skip "gen-spin: nothing is left bound, and the guest is up (Rust only)" "$GEN_ONLY"
else
	bind gen-spin
	vrs_test "gen-spin: the probe gives up on a config generation that never settles (Rust only)" '
		echo "$O, bind status $RC"; grep -E "generation|failed with error" $TMP/dmesg.gen-spin
		[ "$RC" -eq 1 ] && grep -q "generation kept changing" $TMP/dmesg.gen-spin &&
		grep -Eq "probe with driver .* failed with error -5$" $TMP/dmesg.gen-spin'
	vrs_test "gen-spin: nothing is left bound, and the guest is up (Rust only)" '
		d=$(dev_of gen-spin); echo "device status $(cat $d/status)"
		! [ -e "$d/driver" ] && [ -z "$(input_of gen-spin)" ] && cat /proc/uptime'
fi

# Short events: the touch after them arrives whole.
bind short
vrs_test "short: binds, and after 192 short events the touch arrives in full" '
	echo "$O"; test "$RC" -eq 0 && TAIL=1 expect_touch short 9 1 &&
	echo "device: $(cat $DBG/short/stats)"'
# The markers are ABS_X 500, 510, ..., 1450 and their SYN_REPORTs: 96 frames
# that a driver which ignores the used length reports. The touch has two
# ABS_X events of its own.
markers() { echo $(($(grep -c '^event 3 0 ' "$TMP/touch.short") - 2)); }
if [ "$KIND" = c ]; then
	ktap_print_msg "short with C: $(markers) of the 96 short ABS_X events reached userspace;" \
		"short-event warnings in dmesg: $(dmesg | grep -c 'short event')"
	vrs_skip "short: no event from a buffer used short reaches userspace, with a warning (Rust only)" \
		"Rust only: C reports the buffer whatever its used length (Documentation/hardening.rst)"
else
	vrs_test "short: no event from a buffer used short reaches userspace, with a warning (Rust only)" '
		dmesg | grep "short event"; echo "markers read: $(markers)"
		test "$(markers)" -eq 0 && dmesg | grep -q "short event (. bytes) dropped"'
fi

# The flood: thousands of events a second from the moment the driver is ready.
bind flood
vrs_test "flood: binds under the flood, and a reader gets events" '
	echo "$O"; test "$RC" -eq 0 || exit 1
	"$EVHOLD" "$(evdev_of flood)" count 3 >$TMP/flood.count; cat $TMP/flood.count
	n=$(sed -n "s/^count \([0-9]*\) .*/\1/p" $TMP/flood.count); test "${n:-0}" -gt 0'
ktap_print_msg "flood: a reader in 3 s: $(head -n 1 "$TMP/flood.count");" \
	"device: $(cat "$DBG/flood/stats")"
vrs_test "flood: an LED set under the flood arrives at the device" '
	control flood clear && "$EVHOLD" "$(evdev_of flood)" setled 1 1 || exit 1
	wait_log flood "status type=17 code=1 value=1"'
vrs_test "flood: unbind under the flood, with a reader open, returns; the reader gets an error" '
	hold flood count 60 || exit 1
	d=$(dev_of flood)
	within 60 sh -c "echo ${d##*/} >$(driver_dir)/unbind"; rc=$?
	out=$(unhold); echo "unbind status $rc"; echo "$out"
	test $rc -eq 0 && ! [ -e $d/driver ] && echo "$out" | grep -q "^error count: device gone"'
vrs_test "flood: bound again under the flood; once it stops, the touch arrives" '
	bind flood; test "$RC" -eq 0 || exit 1
	control flood "flood off" && sleep 1 && echo "device: $(cat $DBG/flood/stats)" &&
	TAIL=1 expect_touch flood 9 1'

vrs_test "rmmod $DRV unbinds every device and leaves no input device behind" '
	echo 1 >$BUS/drivers_autoprobe
	within 60 rmmod $DRV && ! test -d /sys/module/$DRV || exit 1
	for p in $PRESETS; do
		d=$(dev_of $p); test -z "$(input_of $p)" && ! test -e $d/driver ||
			{ echo "$p: left behind"; exit 1; }
	done'
vrs_test "modprobe $DRV with automatic binding: the same outcome on every device" '
	! test -d /sys/module/$DRV || { echo "$DRV is still loaded"; exit 1; }
	within 120 modprobe $DRV || exit 1
	i=0
	while [ $i -lt 20 ]; do
		for p in $PRESETS; do echo "$p $(outcome $p)"; done >$TMP/round2
		sed "s/ input input[0-9]*$/ input/" $TMP/round1 | sort -u -k1,1 >$TMP/r1
		sed "s/ input input[0-9]*$/ input/" $TMP/round2 | sort -k1,1 >$TMP/r2
		cmp -s $TMP/r1 $TMP/r2 && break
		sleep 1; i=$((i + 1))
	done
	paste -d"|" $TMP/r1 $TMP/r2
	cmp -s $TMP/r1 $TMP/r2'
vrs_test "the devices go away (rmmod $DEV) under a reader of mt and the flood: it returns" '
	hold mt count 60 || exit 1
	within 60 rmmod $DEV; rc=$?
	out=$(unhold); echo "rmmod $DEV status $rc"; echo "$out"
	test $rc -eq 0 && ! test -d /sys/module/$DEV && test -z "$(ls -d /sys/devices/badinput-* 2>/dev/null)" &&
		echo "$out" | grep -q "^error count: device gone"'
vrs_test "rmmod $DRV, and the guest is still up" '
	within 60 rmmod $DRV && ! test -d /sys/module/$DRV && cat /proc/uptime'

ktap_finished
