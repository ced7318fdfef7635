#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A virtio console driver's named ports, on one virtio-serial device with one
# virtserialport, vrs.port0, whose host side is a socket that vrs-host drives
# (scripts/vm --devices console --drivers none):
#   console.sh [rust|c]    (or VRS_CONSOLE_DRIVER=rust|c; default rust)
# rust tests virtio_console_rs (class virtio-ports-rs), c the C virtio_console
# (class virtio-ports), the reference every test must pass on. The port shows
# up with its name in sysfs, gets its /dev/virtio-ports link (no udev here:
# this script makes it, as udev's rule does), moves 1 B, 4 KiB and 1 MiB
# both ways byte for byte (SHA-256 of what each side sent and got), poll and
# O_NONBLOCK behave as C's (POLLOUT with room, POLLIN when data comes,
# POLLHUP and end of file when the host closes its side, EAGAIN), the host
# can reconnect, a second open gets EBUSY, rmmod is refused while a port is
# open, a port hot-unplugged (QMP device_del) or unbound while open gives its
# file POLLHUP and ENODEV, ports come back on hot-add and bind,
# and the Rust driver negotiates the features C negotiates.
# With scripts/vm --hvc, port 0 is a console port (virtconsole): /dev/hvc0,
# with console=hvc0. The printk backlog is replayed on it when the driver
# registers it (not by C: see below), kernel messages reach the host, and a shell on it answers a
# command the host types. A console port hot-added from the host (a QMP
# ringbuf chardev) is /dev/hvc1, carries bytes both ways, and goes with a
# reader open. A file open across freeze/restore keeps working, as does
# hvc0, and O_ASYNC brings SIGIO when the host sends.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

vrs_pick_driver "$0" VRS_CONSOLE_DRIVER "${1:-}" virtio_console_rs virtio_console
case $KIND in
rust) CLASS=virtio-ports-rs ;;
c) CLASS=virtio-ports ;;
esac
C=virtio_console
NAME=vrs.port0
LINK=/dev/virtio-ports/$NAME
VPT=$(dirname "$0")/vporttest
D=$(vrs_devices_of 3 | head -n 1)
H="vrs-host port console"
HV="vrs-host port hvc0"
RF=/tmp/vrs-console-features
CF=/tmp/vrs-console-c-features

# wait_for TRIES COMMAND...: COMMAND succeeds within TRIES tries a tenth of a second apart.
wait_for() {
	_n=$1
	shift
	while [ "$_n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		_n=$((_n - 1))
	done
	"$@"
}
bound_by() { test "$(vrs_driver_module "$D")" = "$1"; }
# port_dev: the /dev node of the port named $NAME, from its sysfs name.
port_dev() {
	for f in "/sys/class/$CLASS"/*/name; do
		[ -e "$f" ] && [ "$(cat "$f")" = "$NAME" ] || continue
		d=${f%/name}
		echo "/dev/${d##*/}"
		return 0
	done
	return 1
}
# make_link: what udev's rule does: /dev/virtio-ports/NAME -> the port's node.
make_link() {
	p=$(port_dev) || return 1
	mkdir -p /dev/virtio-ports
	ln -sf "../${p#/dev/}" "$LINK"
	test -c "$LINK"
}
# wait_open PID FILE: process PID has FILE open.
has_open() {
	for f in /proc/"$1"/fd/*; do
		[ "$(readlink "$f")" = "$2" ] && return 0
	done
	return 1
}
sha() { sha256sum | cut -d' ' -f1; }
# g2h N: N random bytes from the guest reach the host unchanged.
g2h() {
	head -c "$1" /dev/urandom >/tmp/vrs-g2h
	want=$(sha </tmp/vrs-g2h)
	cat /tmp/vrs-g2h >"$LINK" &
	pid=$!
	got=$($H recv "$1") || { kill $pid; echo "host: $got"; return 1; }
	wait $pid || { echo "the guest's writer failed"; return 1; }
	echo "sent $want, host got $got"
	test "$got" = "$want"
}
# h2g N: N random bytes from the host reach the guest unchanged.
h2g() {
	head -c "$1" "$LINK" >/tmp/vrs-h2g &
	pid=$!
	wait_for 100 has_open $pid "$(readlink -f "$LINK")" || { kill $pid; return 1; }
	want=$($H send "$1") || { kill $pid; echo "host: $want"; return 1; }
	wait $pid || { echo "the guest's reader failed"; return 1; }
	got=$(sha </tmp/vrs-h2g)
	echo "host sent $want, guest got $got ($(wc -c </tmp/vrs-h2g) bytes)"
	test "$got" = "$want"
}
# A blocking poll or read that the driver never wakes would hang the run: vporttest
# gives up after a minute (a bound, not a measure: the wake-ups it waits for are
# immediate). Not busybox timeout: its watcher process would keep fd 5 open.
# polls MASK: a poll of fd 5 that does not wait returns MASK.
polls() { got=$($VPT 5 poll 0); echo "poll: $got"; test "$got" = "$1"; }
no_hup() { ! $VPT 5 poll 0 | grep -q hup; }

# suspend: freeze and resume every device (pm_test), as leak.sh does.
suspend() {
	state=mem
	grep -qw mem /sys/power/state || state=freeze
	echo devices >/sys/power/pm_test || return 1
	rc=0
	echo $state >/sys/power/state || rc=1
	echo none >/sys/power/pm_test
	return $rc
}
QMP_HADD='{"execute": "device_add", "arguments": {"driver": "virtconsole", "bus": "console0.0", "chardev": "vhvc1", "name": "vrs.hvc1", "id": "vrshvc1"}}'
QMP_HDEL='{"execute": "device_del", "arguments": {"id": "vrshvc1"}}'
HV1="vrs-host port hvc1"
# named NAME: a port named NAME is in the class.
named() { grep -qx "$1" "/sys/class/$CLASS"/*/name; }
unnamed() { ! named "$1"; }
hvc_registered() { dmesg | grep -q "console \[hvc0\] enabled"; }
# ended PID: process PID has exited.
ended() { ! kill -0 "$1" 2>/dev/null; }

# --- qemu-guest-agent (issue 16) ---------------------------------------------
# qemu-ga on the second port scripts/vm gives the device, org.qemu.guest_agent.0,
# reached through the /dev/virtio-ports link vrs-portlinks makes (the image's
# stand-in for udev's rule); the host side is a real agent client, vrs-host ga
# (guest-sync-delimited, then the command, each reply within a bound). Every
# test checks what the agent answered against the guest itself.
GA_NAME=org.qemu.guest_agent.0
GA_LINK=/dev/virtio-ports/$GA_NAME
GA_PID=/tmp/vrs-qga.pid
GA_LOG=/tmp/vrs-qga.log
GA_FILE=/tmp/vrs-ga-file
ga() { vrs-host ga console "$1"; }
# jget KEY: the value of the first KEY in the one-line JSON reply $r, in $v (a
# string without its quotes, a number or a boolean as it is); false if there is
# no KEY. No fork: each costs a tenth of a second in a debug guest under TCG.
jget() {
	v=
	case $r in *"\"$1\":"*) ;; *) return 1 ;; esac
	v=${r#*\""$1"\":}
	case $v in
	\"*)
		v=${v#\"}
		v=${v%%\"*}
		;;
	*) v=${v%%[,\}]*} ;;
	esac
}
# gar JSON: the agent's reply to JSON in $r; false, and the reply or the host's
# error printed, if it has no "return".
gar() { r=$(ga "$1") || { echo "$1: $r"; return 1; }; }
# has KEY VALUE: KEY is VALUE in the reply $r.
has() { jget "$1"; [ "$v" = "$2" ] || { echo "$1: '$v', not '$2'"; return 1; }; }
# ga_up: qemu-ga wrote its pidfile and holds the agent port open.
ga_up() { has_open "$(cat $GA_PID)" "$(readlink -f "$GA_LINK")"; }
# ga_closed PID: process PID (qemu-ga) does not hold the agent port open.
ga_closed() { ! has_open "$1" "$(readlink -f "$GA_LINK")"; }
# ga_exec SCRIPT: run sh -c SCRIPT through guest-exec with its output captured,
# poll guest-exec-status until it exited; its reply in $r.
ga_exec() {
	r=$(ga '{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","'"$1"'"],"capture-output":true}}') &&
		jget pid || { echo "guest-exec: $r"; return 1; }
	_p=$v
	_n=100
	while [ "$_n" -gt 0 ]; do
		r=$(ga '{"execute":"guest-exec-status","arguments":{"pid":'"$_p"'}}') || { echo "$r"; return 1; }
		jget exited && [ "$v" = true ] && { echo "$r"; return 0; }
		sleep 0.1
		_n=$((_n - 1))
	done
	echo "pid $_p never exited: $r"
	return 1
}
# ga_file: bytes written with guest-file-write are in the guest's file, and
# guest-file-read gives them back.
ga_file() {
	head -c 1000 /dev/urandom >/tmp/vrs-ga-want
	want=$(sha </tmp/vrs-ga-want)
	b64=$(base64 -w 0 </tmp/vrs-ga-want)
	rm -f $GA_FILE
	r=$(ga '{"execute":"guest-file-open","arguments":{"path":"'$GA_FILE'","mode":"w+"}}') &&
		jget return || { echo "open: $r"; return 1; }
	h=$v
	r=$(ga '{"execute":"guest-file-write","arguments":{"handle":'"$h"',"buf-b64":"'"$b64"'"}}') &&
		has count 1000 || { echo "write: $r"; return 1; }
	r=$(ga '{"execute":"guest-file-flush","arguments":{"handle":'"$h"'}}') || { echo "flush: $r"; return 1; }
	got=$(sha <$GA_FILE)
	echo "wrote $want, the guest's file has $got"
	[ "$got" = "$want" ] || return 1
	r=$(ga '{"execute":"guest-file-seek","arguments":{"handle":'"$h"',"offset":0,"whence":"set"}}') ||
		{ echo "seek: $r"; return 1; }
	r=$(ga '{"execute":"guest-file-read","arguments":{"handle":'"$h"',"count":4096}}') &&
		jget buf-b64 || { echo "read: $r"; return 1; }
	got=$(echo "$v" | base64 -d | sha)
	echo "read back $got"
	[ "$got" = "$want" ] && has count 1000 && has eof true || return 1
	r=$(ga '{"execute":"guest-file-close","arguments":{"handle":'"$h"'}}') || { echo "close: $r"; return 1; }
	[ "$(sha <$GA_FILE)" = "$want" ]
}

ga_tests() {
	vrs_test "vrs-portlinks: $GA_LINK links to the port of that name" '
		vrs-portlinks && ls -lL "$GA_LINK" &&
		test "$(readlink -f "$GA_LINK")" = "$(NAME=$GA_NAME; port_dev)"'
	vrs_test "qemu-ga starts on $GA_LINK and opens it" '
		rm -f $GA_PID
		qemu-ga -m virtio-serial -p "$GA_LINK" -d -f $GA_PID -t /tmp -l $GA_LOG &&
		wait_for 50 ga_up || { cat $GA_LOG; false; }'
	vrs_test "guest-ping answers" 'r=$(ga "{\"execute\":\"guest-ping\"}"); echo "$r"; test "$r" = "{\"return\":{}}"'
	vrs_test "guest-info: the agent's version; guest-exec enabled" '
		gar "{\"execute\":\"guest-info\"}" && jget version && qv=$(qemu-ga --version) &&
		echo "version $v; $qv" && test -n "$v" && test "$qv" = "QEMU Guest Agent $v" &&
		case $r in *"\"enabled\":true,\"name\":\"guest-exec\","*) ;; *) false ;; esac'
	vrs_test "guest-get-osinfo: the image's /etc/os-release, the running kernel" '
		gar "{\"execute\":\"guest-get-osinfo\"}" && echo "$r" &&
		(. /etc/os-release && has id "$ID" && has version-id "$VERSION_ID" &&
		 has pretty-name "$PRETTY_NAME") &&
		read -r kr </proc/sys/kernel/osrelease && has kernel-release "$kr" &&
		has machine "$(uname -m)"'
	vrs_test "guest-file-open/write/read/close: 1000 bytes, in the guest's file too" 'ga_file'
	vrs_test "guest-exec: captured output, exit code 0" '
		cmd="cat /proc/sys/kernel/random/boot_id; uname -r"
		ga_exec "$cmd" && jget out-data && out=$(echo "$v" | base64 -d) &&
		want=$(sh -c "$cmd") && echo "out-data: $out" && test "$out" = "$want" && has exitcode 0'
	vrs_test "guest-exec: a failing command, its exit code and stderr" '
		ga_exec "echo vrs-oops >&2; exit 7" && has exitcode 7 &&
		jget err-data && test "$(echo "$v" | base64 -d)" = vrs-oops'
	vrs_test "qemu-ga stops and closes the port" '
		p=$(cat $GA_PID) && kill "$p" && wait_for 50 ga_closed "$p" && (exec 6<>"$GA_LINK")'
}

ktap_print_header
ktap_set_plan 46

vrs_test "a virtio console device present" 'test -n "$D"'
vrs_test "the host side of hvc0 connects" '$HV connect'
vrs_test "modprobe $DRV binds the device" '
	modprobe $DRV && wait_for 50 bound_by $DRV && cat "$D/features" >$RF'
vrs_test "hvc0: the kernel console registers" '
	wait_for 100 hvc_registered'
# C's init_port_console() puts the port on its list of consoles only after
# hvc_alloc() returns, and hvc_alloc() is where the kernel console replays its
# backlog: C's put_chars() finds no port then, and the backlog is dropped
# (hvc0's host side gets nothing; seen on 6.12.117). The Rust driver's backend
# is in place before hvc_alloc().
if [ "$KIND" = rust ]; then
	vrs_test "hvc0: the printk backlog replayed on it" '$HV expect "Linux version"'
else
	vrs_skip "hvc0: the printk backlog replayed on it" "C drops it (see console.sh)"
fi
vrs_test "hvc0: kernel messages reach the host" '
	echo "<1>vrs-hvc-kmsg-$$" >/dev/kmsg && $HV expect "vrs-hvc-kmsg-$$"'
vrs_test "hvc0: a shell on it answers a command the host types" '
	sh -c "exec sh -i </dev/hvc0 >/dev/hvc0 2>&1" &
	SHPID=$!
	$HV write "echo vrs-\$((6*7))" && $HV expect vrs-42'
[ -n "${SHPID:-}" ] && kill "$SHPID" 2>/dev/null
vrs_test "the console port's /dev/vport*p0 cannot be opened: ENXIO" '
	p=$(ls -d /sys/class/$CLASS/vport*p0) && err=$(cat "/dev/${p##*/}" 2>&1)
	echo "$err"; echo "$err" | grep -q "No such device or address"'
vrs_test "port $NAME in /sys/class/$CLASS, named" 'wait_for 100 port_dev && port_dev'
vrs_test "$LINK links to its character device" 'make_link && ls -lL "$LINK"'
vrs_test "the host connects to the port" '$H connect'

for n in 1 4096 1048576; do
	vrs_test "guest to host, $n bytes, byte for byte" 'g2h $n'
done
for n in 1 4096 1048576; do
	vrs_test "host to guest, $n bytes, byte for byte" 'h2g $n'
done

exec 5<>"$LINK"
vrs_test "host connected, nothing to read: POLLOUT, no POLLIN" '
	wait_for 100 no_hup; polls "out "'
vrs_test "O_NONBLOCK read with nothing to read: EAGAIN" '
	got=$($VPT 5 readnb 100); echo "$got"; test "$got" = "error EAGAIN"'
vrs_test "a second open gets EBUSY" '! cat "$LINK" 2>/dev/null'
vrs_test "poll wakes with POLLIN when the host sends" '
	{ sleep 1; $H send 10 >/dev/null; } &
	got=$($VPT 5 pollin -1); wait; echo "poll: $got"; test "$got" = "in " &&
	got=$($VPT 5 read 100) && echo "$got" && test "$got" = "data 10"'
vrs_test "rmmod $DRV is refused while a port is open" '! rmmod $DRV 2>/dev/null && bound_by $DRV'
vrs_test "host disconnects: POLLIN and POLLHUP, then end of file" '
	$H close && wait_for 100 polls "in hup " &&
	got=$($VPT 5 read 100); echo "read: $got"; test "$got" = "eof"'
vrs_test "O_NONBLOCK write with the host disconnected: EAGAIN" '
	got=$($VPT 5 writenb 10); echo "$got"; test "$got" = "error EAGAIN"'
vrs_test "the host reconnects: no POLLHUP, POLLOUT" '$H connect && wait_for 100 no_hup && polls "out "'
vrs_test "O_ASYNC: SIGIO when the host sends" '
	rm -f /tmp/vrs-sigio
	$VPT 5 sigio 30000 >/tmp/vrs-sigio &
	pid=$!
	wait_for 100 grep -q armed /tmp/vrs-sigio && $H send 10 >/dev/null
	wait $pid; cat /tmp/vrs-sigio
	test "$(tail -n 1 /tmp/vrs-sigio)" = sigio && $VPT 5 read 100 | grep -q "data 10"'
vrs_test "freeze/restore with the port open: the same file moves data both ways" '
	suspend && wait_for 100 no_hup &&
	got=$($VPT 5 writenb 4096) && echo "$got" && test "$got" = "wrote 4096" &&
	$H recv 4096 >/dev/null && $H send 10 >/dev/null &&
	got=$($VPT 5 read 100) && echo "$got" && test "$got" = "data 10"'
vrs_test "hvc0 after freeze/restore: kernel messages reach the host" '
	echo "<1>vrs-hvc-resumed-$$" >/dev/kmsg && $HV expect "vrs-hvc-resumed-$$"'
exec 5<&-
vrs_test "after the reconnect, 4 KiB both ways" 'g2h 4096 && h2g 4096'
QMP_DEL='{"execute": "device_del", "arguments": {"id": "vrsport0"}}'
QMP_ADD='{"execute": "device_add", "arguments": {"driver": "virtserialport", "bus": "console0.0", "chardev": "vcon0", "name": "vrs.port0", "id": "vrsport0"}}'
gone() { ! port_dev; }
# after_unplug: what C gives a file open on a port that went: POLLHUP, ENODEV, ENODEV.
after_unplug() {
	p=$($VPT 5 poll 0) r=$($VPT 5 read 10) w=$($VPT 5 writenb 10)
	echo "poll: $p read: $r write: $w"
	test "$p|$r|$w" = "hup |error ENODEV|error ENODEV"
}
exec 5<>"$LINK"
vrs_test "port hot-unplug with the port open: the node goes; POLLHUP, ENODEV" '
	vrs-host "$QMP_DEL" && wait_for 100 gone && after_unplug'
exec 5<&-
vrs_test "port hot-add: the port is back, named, and 4 KiB both ways" '
	vrs-host "$QMP_ADD" && wait_for 100 port_dev && make_link && g2h 4096 && h2g 4096'
vrs_test "console port hot-add: /dev/hvc1, bytes both ways" '
	$HV1 connect && vrs-host "$QMP_HADD" >/dev/null && wait_for 100 named vrs.hvc1 &&
	echo vrs-hvc1-out >/dev/hvc1 && $HV1 expect vrs-hvc1-out &&
	head -n 1 /dev/hvc1 >/tmp/vrs-hvc1-in 2>&1 &
	pid=$!
	wait_for 100 has_open $pid /dev/hvc1 && $HV1 write vrs-hvc1-in &&
	wait_for 100 ended $pid && cat /tmp/vrs-hvc1-in && grep -q vrs-hvc1-in /tmp/vrs-hvc1-in'
vrs_test "console port hot-remove with a reader open: the reader ends, the port goes" '
	cat /dev/hvc1 >/dev/null 2>&1 &
	pid=$!
	wait_for 100 has_open $pid /dev/hvc1 &&
	vrs-host "$QMP_HDEL" >/dev/null && wait_for 100 unnamed vrs.hvc1 &&
	wait_for 100 ended $pid && ! echo x 2>/dev/null >/dev/hvc1 && $HV1 close'
exec 5<>"$LINK"
vrs_test "unbind with the port open: POLLHUP, ENODEV" '
	echo "${D##*/}" >"$D/driver/unbind" && gone && after_unplug'
exec 5<&-
vrs_test "bind again: the port is back, named" '
	echo "${D##*/}" >"$(vrs_driver_dir $DRV)/bind" &&
	wait_for 100 port_dev && make_link'
ga_tests
vrs_test "rmmod $DRV with no port open; the port is gone" '
	rmmod $DRV && ! test -e "$(readlink -f "$LINK")"'
# The C driver last, for the features it negotiates (first, it would be the
# driver that registers hvc0 and replays the backlog).
if [ "$KIND" = rust ]; then
	vrs_test "C $C negotiates the features $DRV negotiated" '
		modprobe $C && wait_for 50 bound_by $C && cat "$D/features" >$CF && rmmod $C &&
		echo "c $(cat $CF) rust $(cat $RF)" && test "$(cat $CF)" = "$(cat $RF)"'
else
	vrs_skip "C $C negotiates the features $DRV negotiated" "this run tests the C driver itself"
fi
ktap_finished
