#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-net on two NICs on one QEMU hub (scripts/vm --devices net,net1
# --drivers none; scripts/check.py passes exactly that):
#   D0 (net0)  mac 52:54:00:12:34:56
#   D1 (net1)  mac 52:54:11:12:34:56
#
# net1's device reports 10000 Mb/s, full duplex (VIRTIO_NET_F_SPEED_DUPLEX:
# --device-props net1=speed=10000,duplex=full); net0's reports nothing.
#
# usage: net.sh [rust|c]   (default: $VRS_NET_DRIVER, else rust)
#
# The driver under test is virtio_net_rs or, as the reference, the C
# virtio_net: every test must pass with C. Each NIC goes into its own network
# namespace (a: 10.0.0.1 and fd00::1, b: 10.0.0.2 and fd00::2), so that
# traffic between them crosses the hub rather than the loopback. The tests:
# binding, one interface per device with its MAC from config space, the
# negotiated MAC and STATUS features, carrier up, ping v4 and v6 both ways,
# iperf3 TCP both ways with the receiver's counters checked against what was
# sent (rx_bytes at least what the iperf3 server received, rx_packets at least
# the segments the sender's TCP sent), rx_dropped and rx_errors 0,
# the MTU range, ethtool (driver information, link settings with net1's speed
# and duplex, the link, ring sizes, toggling TSO), the transmit side (the module parameters csum, gso and napi_tx; byte queue
# limits at work on the sender; TSO: the sender's packets longer than the MTU,
# on a device with HOST_TSO4, which a hub never offers: skipped there),
# a suspend and resume (pm_test=devices) that keeps the interfaces (same
# index, addresses) and their traffic, as C's freeze/restore do, and rmmod
# with the interfaces in their namespaces.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

vrs_pick_driver net.sh VRS_NET_DRIVER "${1:-}" virtio_net_rs virtio_net

IP=$VRS_BIN/ip
IPERF=$VRS_BIN/iperf3
D0=$(vrs_dev_at 1)
D1=$(vrs_dev_at 2)
MAC0=52:54:00:12:34:56
MAC1=52:54:11:12:34:56
# What each iperf3 run sends (-n): enough for many full windows, short under TCG.
BYTES=$((16 * 1024 * 1024))
TMP=${TMPDIR:-/tmp}

# bound_by DEV MODULE
bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }
# iface_of DEV: the interface under a virtio device (in the initial namespace).
iface_of() { ls "$1/net" 2>/dev/null | head -n 1; }
# nsx NS CMD...: run CMD in namespace NS.
nsx() { _ns=$1; shift; "$IP" netns exec "$_ns" "$@"; }
# ctr NS IFACE COUNTER: a counter of /sys/class/net/IFACE/statistics, seen in NS.
ctr() { nsx "$1" cat "/sys/class/net/$2/statistics/$3"; }
# setup NS IFACE V4 V6: move IFACE into a new namespace NS and bring it up.
setup() {
	"$IP" netns add "$1" &&
		"$IP" link set "$2" netns "$1" &&
		"$IP" -n "$1" link set lo up &&
		"$IP" -n "$1" addr add "$3/24" dev "$2" &&
		"$IP" -n "$1" addr add "$4/64" dev "$2" nodad &&
		"$IP" -n "$1" link set "$2" up
}
# carrier_up NS IFACE: carrier 1 within 5 s.
carrier_up() {
	for _i in 1 2 3 4 5 6 7 8 9 10; do
		[ "$(nsx "$1" cat "/sys/class/net/$2/carrier" 2>/dev/null)" = 1 ] && return 0
		sleep 0.5
	done
	echo "$2 in $1: no carrier"
	return 1
}
# json_bytes SECTION FILE: the "bytes" of SECTION ("sum_sent", "sum_received")
# in iperf3's JSON output FILE (pretty-printed, one key per line).
json_bytes() {
	awk -v sec="\"$1\"" 'index($0, sec) { f = 1 } f && /"bytes"/ { gsub(/[^0-9]/, ""); print; exit }' "$2"
}
# tcp_mib NS FIELD: a Tcp counter of /proc/net/snmp in namespace NS.
tcp_mib() {
	nsx "$1" awk -v f="$2" '$1 == "Tcp:" {
		if (!c) { for (i = 2; i <= NF; i++) if ($i == f) c = i } else { print $c; exit }
	}' /proc/net/snmp
}
# iperf_tcp FROM FROM-IF TO TO-IF TO-ADDR: iperf3 sends $BYTES over TCP from
# namespace FROM to TO. Then TO's interface must have received at least the
# bytes the iperf3 server got (its sum_received: what the client wrote but
# never sent before the server closed does not count), and at least as many
# packets as FROM's TCP sent segments (OutSegs, retransmissions included:
# unicast, so nothing on the hub filters them; only the two NICs are on it).
# (Not the interfaces' packet counts against each other: with CTRL_RX, which
# C negotiates, QEMU filters the multicast the receiver did not join. Not the
# receiver's InSegs either: GRO merges segments before TCP counts them.)
iperf_tcp() {
	rx_b0=$(ctr "$3" "$4" rx_bytes) && rx_p0=$(ctr "$3" "$4" rx_packets) &&
		tx_b0=$(ctr "$1" "$2" tx_bytes) && tx_p0=$(ctr "$1" "$2" tx_packets) &&
		out0=$(tcp_mib "$1" OutSegs) || return 1
	rm -f "$TMP/iperf-$1.sum"
	nsx "$3" "$IPERF" -s -1 -B "$5" >"$TMP/iperf-s.log" 2>&1 &
	_sp=$!
	# Wait for the server to listen on port 5201 (0x1451).
	_i=0
	while ! nsx "$3" grep -q ':1451 ' /proc/net/tcp /proc/net/tcp6 2>/dev/null && [ $_i -lt 20 ]; do
		sleep 0.5
		_i=$((_i + 1))
	done
	if ! vrs_within 120 nsx "$1" "$IPERF" -J -c "$5" -n "$BYTES" >"$TMP/iperf-c.json" 2>&1; then
		tail -n 20 "$TMP/iperf-c.json"
		cat "$TMP/iperf-s.log"
		kill $_sp 2>/dev/null
		return 1
	fi
	wait $_sp
	sent=$(json_bytes sum_sent "$TMP/iperf-c.json")
	got=$(json_bytes sum_received "$TMP/iperf-c.json")
	[ -n "$sent" ] && [ -n "$got" ] || { echo "no byte counts in iperf3's output"; return 1; }
	# The last packets may still be on their way (in the receiver's ring, its
	# NAPI not run yet): give them a few seconds.
	out=$(($(tcp_mib "$1" OutSegs) - out0))
	_i=0
	while :; do
		rx_b=$(($(ctr "$3" "$4" rx_bytes) - rx_b0))
		rx_p=$(($(ctr "$3" "$4" rx_packets) - rx_p0))
		[ "$rx_p" -ge "$out" ] && [ "$rx_b" -ge "$got" ] && break
		[ $_i -ge 10 ] && break
		sleep 0.5
		_i=$((_i + 1))
	done
	# The sender's side, for the TSO test.
	echo "$(($(ctr "$1" "$2" tx_bytes) - tx_b0)) $(($(ctr "$1" "$2" tx_packets) - tx_p0))" >"$TMP/tx-$1"
	# Kept for the KTAP log, pass or fail (see note_iperf).
	_secs=$(awk '/"sum_received"/ { f = 1 } f && /"seconds"/ { gsub(/[^0-9.]/, ""); print; exit }' "$TMP/iperf-c.json")
	echo "$1 -> $3: iperf3 wrote $sent bytes, its server got $got in $_secs s; $4 received $rx_b bytes in $rx_p packets; $1's TCP sent $out segments" |
		tee "$TMP/iperf-$1.sum"
	test "$got" -gt 0 && test "$rx_b" -ge "$got" && test "$out" -gt 0 && test "$rx_p" -ge "$out"
}
# note_iperf FROM: the summary of the last iperf_tcp from FROM, as KTAP diagnostics.
note_iperf() { [ -f "$TMP/iperf-$1.sum" ] && sed 's/^/# /' "$TMP/iperf-$1.sum"; return 0; }
# clean NS IFACE: no drops, no errors, no TCP checksum errors.
clean() {
	for _c in rx_dropped rx_errors rx_length_errors; do
		_v=$(ctr "$1" "$2" $_c) || return 1
		[ "$_v" -eq 0 ] || { echo "$2 in $1: $_c = $_v"; return 1; }
	done
	_v=$(tcp_mib "$1" InCsumErrors) && [ "$_v" -eq 0 ] || { echo "$1: Tcp InCsumErrors = $_v"; return 1; }
}

# mtu_range IFACE: C's MTU range without VIRTIO_NET_F_MTU (which a hub does
# not offer): 68 to 65535.
mtu_range() {
	_l=$("$IP" -d link show "$1") || return 1
	echo "$_l" | grep -o 'minmtu [0-9]* maxmtu [0-9]*'
	echo "$_l" | grep -q 'minmtu 68 maxmtu 65535'
}
ETHTOOL=$VRS_BIN/ethtool
# eth NS ARGS...: ethtool in namespace NS.
eth() { _ns=$1; shift; nsx "$_ns" "$ETHTOOL" "$@"; }
# drvinfo NS IFACE DEV: ethtool -i names the driver (C's own name for C, the
# module's for Rust), C's version, and the transport's name of the device,
# which starts its parent's name (the PCI address; "virtio-mmio" of
# virtio-mmio.N).
drvinfo() {
	_i=$(eth "$1" -i "$2") || return 1
	echo "$_i" | grep -E '^(driver|version|bus-info):'
	_parent=$(basename "$(readlink -f "$3/..")")
	_bus=$(echo "$_i" | sed -n 's/^bus-info: //p')
	echo "$_i" | grep -qx "driver: $DRV" && echo "$_i" | grep -qx 'version: 1.0.0' &&
		[ -n "$_bus" ] && case $_parent in "$_bus"*) true ;; *) false ;; esac
}
# link NS IFACE SPEED DUPLEX: ethtool's link settings and link state.
link() {
	_s=$(eth "$1" "$2") || return 1
	echo "$_s" | grep -E 'Speed|Duplex|Port|Link detected' | tr -d '\t'
	echo "$_s" | grep -q "Speed: $3" && echo "$_s" | grep -q "Duplex: $4" &&
		echo "$_s" | grep -q 'Port: Other' && echo "$_s" | grep -q 'Link detected: yes'
}
# rings NS IFACE: ethtool -g: each way, the ring's current size is the
# largest the device allows (QEMU: 256 on pci, 1024 on mmio), not 0.
rings() {
	_g=$(eth "$1" -g "$2") || return 1
	echo "$_g" | grep -E '^(RX|TX):' | tr -d '\t' | tr '\n' ' '
	# shellcheck disable=SC2046 # the four sizes, as words
	set -- $(echo "$_g" | sed -nE 's/^(RX|TX):[[:space:]]*([0-9]+)$/\2/p')
	[ $# -eq 4 ] && [ "$1" -gt 0 ] && [ "$2" -gt 0 ] && [ "$3" = "$1" ] && [ "$4" = "$2" ]
}
# tso_toggle NS IFACE: ethtool -K turns TSO off, and on again.
tso_toggle() {
	eth "$1" -K "$2" tso off && eth "$1" -k "$2" | grep -x 'tcp-segmentation-offload: off' &&
		eth "$1" -K "$2" tso on && eth "$1" -k "$2" | grep -x 'tcp-segmentation-offload: on'
}
# suspend: a suspend and resume through pm_test=devices (the devices' freeze
# and restore run, the system does not sleep).
suspend() {
	_state=mem
	grep -qw mem /sys/power/state || _state=freeze
	_rc=0
	echo devices >/sys/power/pm_test && echo $_state >/sys/power/state || _rc=1
	echo none >/sys/power/pm_test
	return $_rc
}
# kept NS IFACE INDEX ADDR: IFACE is still in NS, with the same index and
# its address.
kept() {
	_ix=$(nsx "$1" cat "/sys/class/net/$2/ifindex") || return 1
	[ "$_ix" = "$3" ] || { echo "$2 in $1: ifindex $_ix, was $3"; return 1; }
	"$IP" -n "$1" addr show "$2" | grep -q "inet $4/" || { echo "$2 in $1: no $4"; return 1; }
}
# params: the transmit module parameters, all Y by default (as C's).
params() {
	for _p in csum gso napi_tx; do
		_v=$(cat "/sys/module/$DRV/parameters/$_p") || return 1
		echo "$_p=$_v"
		[ "$_v" = Y ] || return 1
	done
}
# bql NS IFACE: byte queue limits at work on IFACE's transmit queue, after
# traffic: a limit above 0, and nothing left in flight (within 5 s).
bql() {
	_q=/sys/class/net/$2/queues/tx-0/byte_queue_limits
	for _i in 1 2 3 4 5 6 7 8 9 10; do
		_l=$(nsx "$1" cat "$_q/limit") && _f=$(nsx "$1" cat "$_q/inflight") || return 1
		[ "$_l" -gt 0 ] && [ "$_f" -eq 0 ] && { echo "limit $_l, inflight 0"; return 0; }
		sleep 0.5
	done
	echo "$2 in $1: BQL limit $_l, inflight $_f"
	return 1
}
# tso NS IFACE: the packets IFACE sent in the last iperf_tcp from NS were,
# on average, longer than an Ethernet frame of the MTU: the device segmented.
tso() {
	read -r _b _p <"$TMP/tx-$1" || return 1
	_mtu=$(nsx "$1" cat "/sys/class/net/$2/mtu") || return 1
	echo "$2 sent $_b bytes in $_p packets, MTU $_mtu"
	[ "$_p" -gt 0 ] && [ $((_b / _p)) -gt $((_mtu + 14)) ]
}

ktap_print_header
ktap_set_plan 23

vrs_test "two virtio-net devices present" 'test -n "$D0" && test -n "$D1"'
vrs_test "modprobe $DRV" 'modprobe $DRV'
vrs_test "$DRV binds both devices" 'bound_by $D0 $DRV && bound_by $D1 $DRV'
IF0=$(iface_of "$D0")
IF1=$(iface_of "$D1")
vrs_test "each device has an interface" 'echo "$IF0 $IF1"; test -n "$IF0" && test -n "$IF1"'
vrs_test "MTU range 68 to 65535, as C" 'mtu_range $IF0 && mtu_range $IF1'
vrs_test "MAC addresses from config space" '
	a0=$(cat /sys/class/net/$IF0/address) && a1=$(cat /sys/class/net/$IF1/address) &&
	echo "$a0 $a1" && test "$a0" = $MAC0 && test "$a1" = $MAC1'
# Bits 5 (MAC) and 16 (STATUS): what this driver implements so far; the
# full string is printed for the comparison with C.
echo "# features: $(cat "$D0/features" 2>/dev/null)"
vrs_test "MAC and STATUS negotiated" '
	cat $D0/features && test "$(vrs_feature $D0 5)$(vrs_feature $D0 16)" = 11 &&
	test "$(vrs_feature $D1 5)$(vrs_feature $D1 16)" = 11'
vrs_test "interfaces up in namespaces a and b, carrier on" '
	setup a $IF0 10.0.0.1 fd00::1 && setup b $IF1 10.0.0.2 fd00::2 &&
	carrier_up a $IF0 && carrier_up b $IF1'
vrs_test "ethtool -i: driver, version, bus-info" 'drvinfo a $IF0 $D0 && drvinfo b $IF1 $D1'
# net1's speed and duplex, if it could tell (bit 63: not on a legacy device).
if [ "$(vrs_feature "$D1" 63)" = 1 ]; then SPEED1=10000Mb/s DUPLEX1=Full; else SPEED1=Unknown DUPLEX1=Unknown; fi
vrs_test "ethtool: speed and duplex from config space, port, link" '
	link a $IF0 Unknown Unknown && link b $IF1 $SPEED1 $DUPLEX1'
vrs_test "ethtool -g: ring sizes" 'rings a $IF0 && rings b $IF1'
if [ "$(vrs_feature "$D0" 11)" = 1 ]; then
	vrs_test "ethtool -K: TSO off and on again" 'tso_toggle a $IF0'
else
	vrs_skip "ethtool -K: TSO off and on again" "no HOST_TSO4 (a QEMU hub has no vnet header)"
fi
vrs_test "ping a -> b, IPv4" 'nsx a ping -c 3 -W 5 10.0.0.2'
vrs_test "ping b -> a, IPv4" 'nsx b ping -c 3 -W 5 10.0.0.1'
vrs_test "ping a -> b and b -> a, IPv6" 'nsx a ping6 -c 3 -W 5 fd00::2 && nsx b ping6 -c 3 -W 5 fd00::1'
vrs_test "iperf3 TCP a -> b, counted by b" 'iperf_tcp a $IF0 b $IF1 10.0.0.2'
note_iperf a
vrs_test "iperf3 TCP b -> a, counted by a" 'iperf_tcp b $IF1 a $IF0 10.0.0.1'
note_iperf b
vrs_test "module parameters csum, gso, napi_tx: Y by default" 'params'
vrs_test "byte queue limits on the senders' transmit queues" 'bql a $IF0 && bql b $IF1'
if [ "$(vrs_feature "$D0" 11)" = 1 ]; then
	vrs_test "TSO: a's packets longer than the MTU" 'tso a $IF0'
else
	vrs_skip "TSO: a's packets longer than the MTU" "no HOST_TSO4 (a QEMU hub has no vnet header)"
fi
vrs_test "no drops or errors: rx_dropped, rx_errors, rx_length_errors, Tcp InCsumErrors 0" 'clean a $IF0 && clean b $IF1'
IX0=$(nsx a cat "/sys/class/net/$IF0/ifindex" 2>/dev/null)
IX1=$(nsx b cat "/sys/class/net/$IF1/ifindex" 2>/dev/null)
vrs_test "suspend and resume: the same interfaces, addresses kept, ping" '
	suspend && kept a $IF0 "$IX0" 10.0.0.1 && kept b $IF1 "$IX1" 10.0.0.2 &&
	carrier_up a $IF0 && carrier_up b $IF1 &&
	nsx a ping -c 3 -W 5 10.0.0.2 && nsx b ping -c 3 -W 5 10.0.0.1'
vrs_test "rmmod $DRV with the interfaces in their namespaces" '
	rmmod $DRV && ! bound_by $D0 $DRV && ! bound_by $D1 $DRV'
"$IP" netns del a 2>/dev/null
"$IP" netns del b 2>/dev/null
ktap_finished
