#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-net drivers against devices that lie about the used length of a
# receive buffer (scripts/vm --devices none --drivers none). The devices are
# played in the guest by the test module vrs_badnet
# (test_modules/vrs_badnet.c), one per preset, each under its own root device
# /sys/devices/badnet-PRESET: QEMU cannot play them (its devices do not lie,
# and its vhost-user frontends need KVM, which these guests do not have).
#   mrg    mergeable receive buffers (MRG_RXBUF)
#   big    big packets (GUEST_TSO4, no MRG_RXBUF): chains of pages
#   small  small buffers
# Writing a kind to /sys/kernel/debug/vrs_badnet/PRESET/control makes the
# device send one 60-byte broadcast ARP request (for an address nobody has)
# into the next receive buffer, with the used length:
#   honest  the header and the frame
#   long    one byte more than the buffer holds
#   short   hdr_len + ETH_HLEN - 1
#   zero    0
#   long2   (mrg) a packet of two buffers, the second used with one byte more
#           than it holds
#
# usage: net_lies.sh [rust|c]   (default: $VRS_NET_DRIVER, else rust)
#
# The driver (virtio_net_rs, or the C virtio_net) binds every device; their
# interfaces go up, each with a packet socket (tcpdump) on it. Each lie is
# followed by an honest frame; the test waits for the packet socket to see
# the honest frame and for the counters C moves, then checks: the packet
# socket never saw the lie's frame, rx_length_errors and rx_dropped
# moved as in C's virtio_net 6.12 (receive_buf: a packet shorter than a
# header and an Ethernet header is a length error; receive_small and
# receive_mergeable: a used length beyond the buffer is a length error and a
# drop; receive_big: a drop only), and the honest frame arrived. Then rmmod of
# both modules, and the guest is still up. A splat fails the run through the
# host's console scan.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

vrs_pick_driver net_lies.sh VRS_NET_DRIVER "${1:-}" virtio_net_rs virtio_net

DEV=vrs_badnet
PRESETS="mrg big small"
DBG=/sys/kernel/debug/$DEV
TMP=${TMPDIR:-/tmp}/net_lies
rm -rf "$TMP"
mkdir -p "$TMP"
within() { vrs_within "$@"; }

# if_of PRESET: the interface of preset PRESET's device.
if_of() {
	_n=$(ls -d "/sys/devices/badnet-$1"/virtio*/net/* 2>/dev/null | head -n 1)
	[ -n "$_n" ] && echo "${_n##*/}"
}
# counters PRESET: "rx_length_errors rx_dropped" of its interface.
counters() {
	_s=/sys/class/net/$(if_of "$1")/statistics
	echo "$(cat "$_s/rx_length_errors") $(cat "$_s/rx_dropped")"
}
rx_packets() { cat "/sys/class/net/$(if_of "$1")/statistics/rx_packets"; }
send() { echo "$2" >"$DBG/$1/control"; }
# tcpdump drops its privileges to a user (-Z root here), whom it looks up in
# /etc/passwd, which the initramfs has not.
grep -qs '^root:' /etc/passwd || echo 'root:x:0:0:root:/:/bin/sh' >>/etc/passwd
# dump PRESET: a packet socket (tcpdump) on the interface in the background,
# every ARP frame it sees one line in $TMP/dump.PRESET; returns once it listens.
dump() {
	"$VRS_BIN/tcpdump" -Z root -l -n -i "$(if_of "$1")" arp \
		</dev/null >"$TMP/dump.$1" 2>"$TMP/dump.$1.err" &
	i=0
	while ! grep -q "listening on" "$TMP/dump.$1.err" && [ $i -lt 50 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	grep -q "listening on" "$TMP/dump.$1.err" || { cat "$TMP/dump.$1.err"; return 1; }
}
# seen PRESET KIND: how many frames of KIND the packet socket saw (the
# device's sender address is 10.11.12.N, N 1 to 5 for honest, long, short,
# zero, long2).
seen() {
	_k=1
	for _n in honest long short zero long2; do
		[ "$_n" = "$2" ] && break
		_k=$((_k + 1))
	done
	grep -c "tell 10\.11\.12\.$_k," "$TMP/dump.$1"
}
# lie PRESET KIND LENGTH-ERRORS DROPS: KIND, then (unless KIND is honest) an
# honest frame; waits (up to 10 s) until the packet socket saw the honest
# frame and the counters C moves have moved, then checks: exactly one honest
# frame more, no frame of the lie, LENGTH-ERRORS length errors and DROPS
# drops more. (rx_packets is only shown: C counts every buffer it takes.)
lie() {
	# shellcheck disable=SC2046
	set -- "$1" "$2" "$3" "$4" $(counters "$1") "$(seen "$1" honest)" "$(rx_packets "$1")"
	lies=$(seen "$1" "$2")
	want="$(($5 + $3)) $(($6 + $4))"
	send "$1" "$2" || return 1
	[ "$2" = honest ] || send "$1" honest || return 1
	i=0
	while [ $i -lt 50 ]; do
		# shellcheck disable=SC2046
		set -- "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" $(counters "$1")
		[ "$(seen "$1" honest)" -gt "$7" ] && [ "$9" -ge $(($5 + $3)) ] &&
			[ "${10}" -ge $(($6 + $4)) ] && break
		sleep 0.2
		i=$((i + 1))
	done
	got=$(counters "$1")
	[ "$2" = honest ] || lies=$(($(seen "$1" "$2") - lies))
	echo "rx_length_errors rx_dropped: before $5 $6, expected $want, got $got"
	echo "honest frames seen: before $7, now $(seen "$1" honest); frames of the lie seen: $lies"
	echo "rx_packets: before $8, now $(rx_packets "$1")"
	echo "device: $(cat "$DBG/$1/stats")"
	test "$got" = "$want" && test "$(seen "$1" honest)" -eq $(($7 + 1)) &&
		{ [ "$2" = honest ] || [ "$lies" -eq 0 ]; }
}

ktap_print_header
ktap_set_plan 16

vrs_test "$DRV binds every $DEV preset, and each interface goes up" '
	within 60 modprobe $DRV && within 60 modprobe $DEV presets=$(echo $PRESETS | tr " " ,) ||
		exit 1
	ok=0
	for p in $PRESETS; do
		d=$(ls -d /sys/devices/badnet-$p/virtio* 2>/dev/null | head -n 1)
		n=$(if_of $p) || { echo "$p: no interface (driver $(vrs_driver_module "$d"))"; ok=1; continue; }
		echo "$p: ${d##*/} $n driver $(vrs_driver_module "$d")"
		test "$(vrs_driver_module "$d")" = $DRV && ip link set dev $n up && dump $p || ok=1
	done
	exit $ok'

for p in $PRESETS; do
	vrs_test "$p: an honest frame arrives (a packet socket sees it), no error" "lie $p honest 0 0"
done

# As C: a used length beyond the buffer is a length error and a drop (small
# and mergeable buffers); for big packets C counts a drop only.
vrs_test "mrg: long (used length beyond the buffer): dropped, a length error, as C" 'lie mrg long 1 1'
vrs_test "mrg: short (below header + Ethernet header): a length error, as C" 'lie mrg short 1 0'
vrs_test "mrg: zero: a length error, as C" 'lie mrg zero 1 0'
vrs_test "mrg: long2 (second buffer used beyond its size): dropped, a length error, as C" \
	'lie mrg long2 1 1'
vrs_test "big: long (used length beyond the pages): dropped (C counts no length error)" \
	'lie big long 0 1'
vrs_test "big: short (below header + Ethernet header): a length error, as C" 'lie big short 1 0'
vrs_test "big: zero: a length error, as C" 'lie big zero 1 0'
vrs_test "small: long (used length beyond the buffer): dropped, a length error, as C" \
	'lie small long 1 1'
vrs_test "small: short (below header + Ethernet header): a length error, as C" 'lie small short 1 0'
vrs_test "small: zero: a length error, as C" 'lie small zero 1 0'

# As C: length errors count in rx_length_errors, and not in rx_errors too.
vrs_test "rx_errors still 0 on every interface, as C" '
	ok=0
	for p in $PRESETS; do
		e=$(cat /sys/class/net/$(if_of $p)/statistics/rx_errors) || exit 1
		echo "$p: rx_errors $e"
		test "$e" -eq 0 || ok=1
	done
	exit $ok'

vrs_test "rmmod $DEV and $DRV, and the guest is still up" '
	kill $(pidof tcpdump) 2>/dev/null
	within 60 rmmod $DEV && within 60 rmmod $DRV && ! test -d /sys/module/$DRV &&
		cat /proc/uptime'

ktap_finished
