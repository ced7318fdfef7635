#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-net on two NICs (scripts/vm --devices net,net1 --drivers none, and
# --net-backend hub or tap; scripts/check.py passes exactly that):
#   D0 (net0)  mac 52:54:00:12:34:56, in namespace a: 10.0.0.1, fd00::1
#   D1 (net1)  mac 52:54:11:12:34:56, in namespace b: 10.0.0.2, fd00::2
#
# usage: net.sh [rust|c] [PATH0 PATH1 [MTU]]
#   rust|c       the driver under test (default: $VRS_NET_DRIVER, else rust):
#                virtio_net_rs or, as the reference, the C virtio_net; every
#                test must pass with C.
#   PATH0 PATH1  the RX path each NIC must be on, which the run chose with
#                QEMU properties (scripts/check.py's NET_PATHS): mrg
#                (MRG_RXBUF negotiated), big (no MRG_RXBUF, and guest GSO or
#                an MTU over 1500: big packets), small (neither); default mrg
#                mrg, what QEMU's defaults give.
#   MTU          the host_mtu the run gave both NICs (default: none, 1500).
#
# On the hub (VRS_NET_BACKEND=hub) QEMU offers no offloads; on taps with
# vnet headers (tap) it offers checksum and segmentation offloads, and GSO
# packets cross from NIC to NIC. Each NIC goes into its own network namespace,
# so that traffic between them crosses the backend rather than the loopback.
# The tests: binding, one interface per device with its MAC from config
# space, MAC and STATUS negotiated, each NIC on its RX path, carrier up, link
# dumps with statistics, ping v4 and v6 both ways, received skbs built on
# their buffers (build_skb) or copied where C does (traced), iperf3 TCP and UDP both ways with the receiver's
# counters checked against what was sent, TSO (on tap: the sender's bytes per
# packet over the MTU), no drops and no checksum errors, MTU 9000 (with
# host_mtu=9000), QMP set_link off and on, the features the C driver
# negotiates on the same devices. Then, on tap only (none of it depends on
# the backend, and make check's time is short): freeze/restore (same
# interfaces, addresses, traffic after), one NIC on C and one on Rust
# talking to each other, rmmod under iperf3 (and the driver back after),
# hot-unplug under iperf3 (pci). Last, rmmod.
# Also: the MTU range without host_mtu (68 to 65535, as C); ethtool (driver
# information, link settings with net1's speed and duplex, the link, ring
# sizes, toggling TSO where offered); the transmit module parameters csum,
# gso and napi_tx; byte queue limits at work on both senders. net1's device
# reports 10000 Mb/s, full duplex (VIRTIO_NET_F_SPEED_DUPLEX: scripts/check.py
# gives every net run --device-props net1=speed=10000,duplex=full).
# Queue pairs (VIRTIO_NET_F_MQ; VRS_NET_QUEUES, scripts/vm --net-queues, on
# tap): ethtool -l shows the device's pairs and those in use (as many as
# CPUs, as C), ethtool -S the per-queue statistics C 6.12 names; with more
# than one pair, ethtool -L combined N changes the pairs in use (sysfs
# queues, ethtool -l), traffic (iperf3 -P 4) moves every pair's counters,
# and ethtool -L combined 1 goes back to one pair. On pci (an interrupt per
# queue), each pair's interrupts go to its share of the online CPUs, with
# that as their affinity hint, and its transmit queue's XPS map is the same
# (/proc/irq/N/smp_affinity, affinity_hint, queues/tx-N/xps_cpus), as C
# spreads them: with the pairs in use, after ethtool -L combined 1 (pair 0
# on every CPU) and N, and with CPU 1 offline and online again (scripts/
# check.py gives the multiqueue runs two vCPUs).
# RSS and hash reports (VRS_NET_RSS, scripts/vm --net-rss: rss=on,hash=on on
# pci with more than one pair): ethtool -x shows C's default table and a key;
# ethtool -X weight 0 1 sends every flow of iperf3 -P 4 to queue 1, equal 1 to
# queue 0 (b's input.N interrupts), and default restores the table; ethtool -n/-N rx-flow-hash and
# -K rxhash as C; after ethtool -L combined 1 the table names queue 0 only.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

vrs_pick_driver net.sh VRS_NET_DRIVER "${1:-}" virtio_net_rs virtio_net
PATH0=${2:-mrg}
PATH1=${3:-mrg}
JUMBO=${4:-}
for _p in "$PATH0" "$PATH1"; do
	case $_p in
	mrg | big | small) ;;
	*) echo "net.sh: RX path '$_p' is none of mrg, big, small" >&2; exit 2 ;;
	esac
done
BACKEND=${VRS_NET_BACKEND:-hub}
QUEUES=${VRS_NET_QUEUES:-1}
C=virtio_net
RS=virtio_net_rs

IP=$VRS_BIN/ip
IPERF=$VRS_BIN/iperf3
D0=$(vrs_dev_at 1)
D1=$(vrs_dev_at 2)
MAC0=52:54:00:12:34:56
MAC1=52:54:11:12:34:56
# What each TCP iperf3 run sends (-n): enough for many full windows, short
# under TCG. UDP costs per datagram (no GSO): fewer bytes.
BYTES=$((16 * 1024 * 1024))
UDP_BYTES=$((1024 * 1024))
UDP_LEN=1400
TMP=${TMPDIR:-/tmp}
# Packets a receiver may get besides the test's (ARP, neighbour discovery,
# MLD, the iperf3 control connection of a UDP test).
OTHER=64

# bound_by DEV MODULE
bound_by() { test "$(vrs_driver_module "$1")" = "$2"; }
# wait_bound DEV MODULE: bound within 10 s.
wait_bound() {
	for _i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		bound_by "$1" "$2" && return 0
		sleep 0.5
	done
	echo "${1##*/}: bound by $(vrs_driver_module "$1"), not $2"
	return 1
}
# iface_of DEV: the interface under a virtio device (in the initial namespace).
iface_of() { ls "$1/net" 2>/dev/null | head -n 1; }
# nsx NS CMD...: run CMD in namespace NS.
nsx() { _ns=$1; shift; "$IP" netns exec "$_ns" "$@"; }
# ctr NS IFACE COUNTER: a counter of /sys/class/net/IFACE/statistics, seen in NS.
ctr() { nsx "$1" cat "/sys/class/net/$2/statistics/$3"; }
# setup NS IFACE V4 V6: move IFACE into namespace NS (made if missing), MTU
# 1500, addresses, up.
setup() {
	{ test -e "/run/netns/$1" || "$IP" netns add "$1"; } &&
		"$IP" link set "$2" netns "$1" &&
		"$IP" -n "$1" link set lo up &&
		"$IP" -n "$1" link set "$2" mtu 1500 &&
		"$IP" -n "$1" addr add "$3/24" dev "$2" &&
		"$IP" -n "$1" addr add "$4/64" dev "$2" nodad &&
		"$IP" -n "$1" link set "$2" up
}
# if_in NS: the interface (other than lo) in namespace NS, if any.
# (The Ethernet one: sit0, say, appears in every namespace once ipv6 loads sit.)
if_in() { "$IP" -n "$1" -o link show 2>/dev/null | awk -F': ' '/link\/ether/ { sub(/@.*/, "", $2); print $2; exit }'; }
# carrier NS IFACE: 0 or 1.
carrier() { nsx "$1" cat "/sys/class/net/$2/carrier" 2>/dev/null; }
# link_state NS IFACE: the carrier and the operational state (RFC 2863, as
# the link watch sets it from carrier changes: "1 up", "0 down"; a driver
# whose carrier never changed after registration leaves "unknown").
link_state() {
	echo "$(carrier "$1" "$2") $(nsx "$1" cat "/sys/class/net/$2/operstate" 2>/dev/null)"
}
# carrier_is NS IFACE VALUE: the carrier is VALUE within 5 s, and the
# interface (up) is operationally up with it, down without it.
carrier_is() {
	_want="$3 up"
	[ "$3" = 0 ] && _want="0 down"
	for _i in 1 2 3 4 5 6 7 8 9 10; do
		[ "$(link_state "$1" "$2")" = "$_want" ] && return 0
		sleep 0.5
	done
	echo "$2 in $1: carrier and operstate $(link_state "$1" "$2"), not $_want"
	return 1
}
carrier_up() { carrier_is "$1" "$2" 1; }
# setup_both: the interfaces of D0 and D1 (new ones after a rebind) into a
# and b, up, carrier on; sets IF0 and IF1.
setup_both() {
	IF0=$(iface_of "$D0") && IF1=$(iface_of "$D1") && test -n "$IF0" && test -n "$IF1" || {
		echo "no interface: ${D0##*/} '$IF0', ${D1##*/} '$IF1'"
		return 1
	}
	setup a "$IF0" 10.0.0.1 fd00::1 && setup b "$IF1" 10.0.0.2 fd00::2 &&
		carrier_up a "$IF0" && carrier_up b "$IF1"
}
# ping_both: ping v4 and v6, a -> b and b -> a.
ping_both() {
	nsx a ping -c 2 -W 5 10.0.0.2 && nsx b ping -c 2 -W 5 10.0.0.1 &&
		nsx a ping6 -c 2 -W 5 fd00::2 && nsx b ping6 -c 2 -W 5 fd00::1
}
# json_num SECTION KEY FILE: KEY's number in SECTION ("sum_sent",
# "sum_received", "sum") of the "end" of iperf3's JSON output FILE
# (pretty-printed, one key per line).
json_num() {
	awk -v sec="\"$1\":" -v key="\"$2\":" '/^\t"end":/ { e = 1 }
		e && index($0, sec) { f = 1 } f && index($0, key) { gsub(/[^0-9.]/, ""); print; exit }' "$3"
}
# mib NS FILE PREFIX FIELD: a counter of /proc/net/snmp or /proc/net/netstat
# (a header line and a value line per PREFIX) in namespace NS.
mib() {
	nsx "$1" awk -v p="$3:" -v f="$4" '$1 == p {
		if (!c) { for (i = 2; i <= NF; i++) if ($i == f) c = i } else { print $c; exit }
	}' "$2"
}
tcp_mib() { mib "$1" /proc/net/snmp Tcp "$2"; }
# iperf_start FROM TO TO-ADDR ARGS...: an iperf3 server in TO (one test), and
# the client in FROM with ARGS in the background; its JSON goes to
# $TMP/iperf-c.json, its pid to $TMP/iperf-c.pid, the server's to
# $TMP/iperf-s.pid.
iperf_start() {
	_f=$1 _t=$2 _a=$3
	shift 3
	nsx "$_t" "$IPERF" -s -1 -B "$_a" >"$TMP/iperf-s.log" 2>&1 &
	echo $! >"$TMP/iperf-s.pid"
	# Wait for the server to listen on port 5201 (0x1451).
	_i=0
	while ! nsx "$_t" grep -q ':1451 ' /proc/net/tcp /proc/net/tcp6 2>/dev/null && [ $_i -lt 20 ]; do
		sleep 0.5
		_i=$((_i + 1))
	done
	nsx "$_f" "$IPERF" -J -c "$_a" "$@" </dev/null >"$TMP/iperf-c.json" 2>&1 &
	echo $! >"$TMP/iperf-c.pid"
}
# iperf_wait SECONDS: the client ends within SECONDS (else it and the server
# are killed), and the server then.
iperf_wait() {
	_cp=$(cat "$TMP/iperf-c.pid") _sp=$(cat "$TMP/iperf-s.pid") _i=0
	while vrs_alive "$_cp" && [ $_i -lt "$1" ]; do sleep 1; _i=$((_i + 1)); done
	if vrs_alive "$_cp"; then
		iperf_kill
		echo "iperf3 still running after $1 s: killed"
		tail -n 20 "$TMP/iperf-c.json"
		return 1
	fi
	wait "$_cp"
	_rc=$?
	_i=0
	while vrs_alive "$_sp" && [ $_i -lt 10 ]; do sleep 1; _i=$((_i + 1)); done
	kill "$_sp" 2>/dev/null
	[ $_rc -eq 0 ] || { tail -n 20 "$TMP/iperf-c.json"; cat "$TMP/iperf-s.log"; }
	return $_rc
}
# iperf_kill: the client and server of iperf_start, if still there.
iperf_kill() {
	kill -9 "$(cat "$TMP/iperf-c.pid")" "$(cat "$TMP/iperf-s.pid")" 2>/dev/null
	return 0
}
# rx_settle NS IFACE RX_B0 RX_P0 BYTES PACKETS: wait up to 5 s for IFACE's
# rx_bytes and rx_packets to reach RX_B0 + BYTES and RX_P0 + PACKETS (the
# last packets may still be in the receiver's ring, its NAPI not run yet);
# sets rx_b and rx_p to what it received since.
rx_settle() {
	_i=0
	while :; do
		rx_b=$(($(ctr "$1" "$2" rx_bytes) - $3))
		rx_p=$(($(ctr "$1" "$2" rx_packets) - $4))
		[ "$rx_p" -ge "$6" ] && [ "$rx_b" -ge "$5" ] && break
		[ $_i -ge 10 ] && break
		sleep 0.5
		_i=$((_i + 1))
	done
}
# iperf_tcp FROM FROM-IF TO TO-IF TO-ADDR [BYTES]: iperf3 sends BYTES
# ($BYTES) over TCP from namespace FROM to TO. Then TO's interface must have
# received at least the bytes the iperf3 server got (its sum_received: what
# the client wrote but never sent before the server closed does not count).
# On the hub, where no GSO packet reaches a NIC, also at least as many
# packets as FROM's TCP sent segments (OutSegs, retransmissions included:
# unicast, so nothing on the hub filters them; only the two NICs are on it),
# and at most $OTHER more (ARP, neighbour discovery). (Not the interfaces'
# packet counts against each other: with CTRL_RX, which C negotiates, QEMU
# filters the multicast the receiver did not join. Not the receiver's InSegs
# either: GRO merges segments before TCP counts them.) On tap a GSO packet
# is one rx packet for many segments: bytes only. Leaves FROM's tx_bytes
# and tx_packets deltas in $TMP/iperf-FROM.tx (see the TSO test).
iperf_tcp() {
	rx_b0=$(ctr "$3" "$4" rx_bytes) && rx_p0=$(ctr "$3" "$4" rx_packets) &&
		tx_b0=$(ctr "$1" "$2" tx_bytes) && tx_p0=$(ctr "$1" "$2" tx_packets) &&
		out0=$(tcp_mib "$1" OutSegs) || return 1
	rm -f "$TMP/iperf-$1.sum"
	iperf_start "$1" "$3" "$5" -n "${6:-$BYTES}"
	iperf_wait 120 || return 1
	sent=$(json_num sum_sent bytes "$TMP/iperf-c.json")
	got=$(json_num sum_received bytes "$TMP/iperf-c.json")
	[ -n "$sent" ] && [ -n "$got" ] || { echo "no byte counts in iperf3's output"; return 1; }
	out=$(($(tcp_mib "$1" OutSegs) - out0))
	want_p=$out
	[ "$BACKEND" = hub ] || want_p=1
	rx_settle "$3" "$4" "$rx_b0" "$rx_p0" "$got" "$want_p"
	tx_b=$(($(ctr "$1" "$2" tx_bytes) - tx_b0))
	tx_p=$(($(ctr "$1" "$2" tx_packets) - tx_p0))
	echo "$tx_b $tx_p" >"$TMP/iperf-$1.tx"
	# Kept for the KTAP log, pass or fail (see note_iperf).
	_secs=$(json_num sum_received seconds "$TMP/iperf-c.json")
	echo "$1 -> $3 TCP: iperf3 wrote $sent bytes, its server got $got in $_secs s; $4 received $rx_b bytes in $rx_p packets; $1's TCP sent $out segments, $2 sent $tx_b bytes in $tx_p packets" |
		tee "$TMP/iperf-$1.sum"
	test "$got" -gt 0 && test "$rx_b" -ge "$got" && test "$out" -gt 0 || return 1
	[ "$BACKEND" = hub ] || return 0
	test "$rx_p" -ge "$out" && test "$rx_p" -le $((out + OTHER))
}
# iperf_udp FROM FROM-IF TO TO-IF TO-ADDR: iperf3 sends $UDP_BYTES over UDP
# in $UDP_LEN-byte datagrams (no IP fragments) from FROM to TO, as fast as
# it can. TO's interface must have received at least every datagram the
# client sent, each with its UDP, IP and Ethernet headers (8 + 20 + 14
# bytes), and at most $OTHER packets more (the iperf3 control connection,
# ARP). Datagrams the server's socket dropped (Udp RcvbufErrors: the sender
# and the receiver share the guest's one vCPU) still count: the NIC
# received them.
iperf_udp() {
	rx_b0=$(ctr "$3" "$4" rx_bytes) && rx_p0=$(ctr "$3" "$4" rx_packets) || return 1
	rm -f "$TMP/iperf-$1.sum"
	iperf_start "$1" "$3" "$5" -u -b 0 -l $UDP_LEN -n $UDP_BYTES
	iperf_wait 120 || return 1
	sent=$(json_num sum bytes "$TMP/iperf-c.json")
	dgrams=$(json_num sum packets "$TMP/iperf-c.json")
	lost=$(json_num sum lost_packets "$TMP/iperf-c.json")
	[ -n "$sent" ] && [ -n "$dgrams" ] || { echo "no byte or packet counts in iperf3's output"; return 1; }
	rx_settle "$3" "$4" "$rx_b0" "$rx_p0" $((sent + dgrams * 42)) "$dgrams"
	_secs=$(json_num sum seconds "$TMP/iperf-c.json")
	echo "$1 -> $3 UDP: iperf3 sent $sent bytes in $dgrams datagrams in $_secs s ($lost lost on the way to its server); $4 received $rx_b bytes in $rx_p packets" |
		tee "$TMP/iperf-$1.sum"
	test "$dgrams" -gt 0 && test "$rx_p" -ge "$dgrams" && test "$rx_p" -le $((dgrams + OTHER)) &&
		test "$rx_b" -ge $((sent + dgrams * 42))
}
# note_iperf FROM: the summary of the last iperf run from FROM, as KTAP diagnostics.
note_iperf() { [ -f "$TMP/iperf-$1.sum" ] && sed 's/^/# /' "$TMP/iperf-$1.sum"; return 0; }
# clean NS IFACE: no drops, no errors, no checksum errors (IP, ICMP, TCP,
# UDP, UDP over IPv6).
clean() {
	for _c in rx_dropped rx_errors rx_length_errors rx_crc_errors rx_frame_errors; do
		_v=$(ctr "$1" "$2" $_c) || return 1
		[ "$_v" -eq 0 ] || { echo "$2 in $1: $_c = $_v"; return 1; }
	done
	for _m in "/proc/net/netstat IpExt" "/proc/net/snmp Icmp" "/proc/net/snmp Tcp" "/proc/net/snmp Udp"; do
		# shellcheck disable=SC2086 # two words: FILE PREFIX
		_v=$(mib "$1" $_m InCsumErrors) && [ "$_v" -eq 0 ] || { echo "$1: ${_m#* } InCsumErrors = $_v"; return 1; }
	done
	_v=$(nsx "$1" awk '$1 == "Udp6InCsumErrors" { print $2 }' /proc/net/snmp6)
	[ "$_v" -eq 0 ] || { echo "$1: Udp6InCsumErrors = $_v"; return 1; }
}
# path_of DEV: the RX path the C driver's rules give the negotiated features:
# mrg with MRG_RXBUF (15); else big with GUEST_TSO4/TSO6/ECN/UFO (7-10) or
# MTU (3, and then an MTU over 1500: the runs give host_mtu only to jumbo
# NICs); else small.
path_of() {
	if [ "$(vrs_feature "$1" 15)" = 1 ]; then
		echo mrg
	elif [ "$(vrs_feature "$1" 7)$(vrs_feature "$1" 8)$(vrs_feature "$1" 9)$(vrs_feature "$1" 10)$(vrs_feature "$1" 3)" != 00000 ]; then
		echo big
	else
		echo small
	fi
}
# qmp CMD ARGS-JSON: one QMP command on the host (vrs-host), quietly.
qmp() { vrs-host "{\"execute\": \"$1\", \"arguments\": $2}" >"$TMP/qmp.out" || { cat "$TMP/qmp.out"; return 1; }; }
# features_under MODULE: the features file of D0 and D1 with MODULE bound to
# both (virtio-net drivers unloaded, then MODULE loaded: a fresh probe), one
# line each.
features_under() {
	for _m in $C $RS; do
		! test -d "/sys/module/$_m" || rmmod "$_m" || return 1
	done
	modprobe "$1" && wait_bound "$D0" "$1" && wait_bound "$D1" "$1" &&
		echo "${D0##*/} $(cat "$D0/features")" && echo "${D1##*/} $(cat "$D1/features")"
}
# rebind DEV MODULE: unbind DEV from its driver and bind it to MODULE's
# (loaded if needed).
rebind() {
	_cur=$(vrs_driver_module "$1")
	if [ "$_cur" != - ]; then
		echo "${1##*/}" >"$(vrs_driver_dir "$_cur")/unbind" || return 1
	fi
	test -d "/sys/module/$2" || modprobe "$2" || return 1
	bound_by "$1" "$2" || echo "${1##*/}" >"$(vrs_driver_dir "$2")/bind"
	wait_bound "$1" "$2"
}
# bg_traffic: iperf3 TCP a -> b for up to 120 s in the background, and wait
# (up to 30 s) until b has received 1 MiB of it.
bg_traffic() {
	_b0=$(ctr b "$IF1" rx_bytes) || return 1
	iperf_start a b 10.0.0.2 -t 120
	_i=0
	while [ $(($(ctr b "$IF1" rx_bytes) - _b0)) -lt 1048576 ] && [ $_i -lt 60 ]; do sleep 0.5; _i=$((_i + 1)); done
	echo "under iperf3: b received $(($(ctr b "$IF1" rx_bytes) - _b0)) bytes"
	[ $_i -lt 60 ]
}

# mtu_range IFACE DEV: C's MTU range: 68 to 65535, or, with VIRTIO_NET_F_MTU
# (bit 3: a host_mtu), 68 to the device's MTU, which is then the interface's.
mtu_range() {
	_l=$("$IP" -d link show "$1") || return 1
	echo "$_l" | grep -o 'mtu [0-9]* .*minmtu [0-9]* maxmtu [0-9]*' | sed 's/ qdisc.*minmtu/ ... minmtu/'
	_max=65535
	[ "$(vrs_feature "$2" 3)" = 1 ] && _max=$(cat "/sys/class/net/$1/mtu")
	echo "$_l" | grep -Eq "minmtu 68 maxmtu $_max( |$)"
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
# params: the transmit module parameters, all Y by default (as C's).
params() {
	for _p in csum gso napi_tx; do
		_v=$(cat "/sys/module/$DRV/parameters/$_p") || return 1
		echo "$_p=$_v"
		[ "$_v" = Y ] || return 1
	done
}
# napi_tx_writable: napi_tx is writable (0644), as C's, and refuses what is
# not a bool; it is left at N.
napi_tx_writable() {
	_np=/sys/module/$DRV/parameters/napi_tx
	_m=$(command stat -c %a "$_np") && echo "mode $_m" && [ "$_m" = 644 ] || return 1
	echo N >"$_np" && [ "$(cat "$_np")" = N ] || return 1
	if echo maybe 2>/dev/null >"$_np" || [ "$(cat "$_np")" != N ]; then
		echo "napi_tx=maybe accepted: $(cat "$_np")"
		return 1
	fi
}
# rebind_b: b's device probed again by $DRV, its new interface $_b set up in b.
rebind_b() {
	rebind "$D1" "$DRV" && _b=$(iface_of "$D1") && test -n "$_b" &&
		setup b "$_b" 10.0.0.2 fd00::2 && carrier_up b "$_b"
}
# napi_tx_off: b's device, probed again with napi_tx=N, frees sent packets on
# the next transmit instead of in a NAPI poll, so after TCP from b its
# transmit queue has no byte queue limit (BQL counts only NAPI completions, in
# C as here). napi_tx goes back to Y, and b's device is probed again with it.
napi_tx_off() {
	_np=/sys/module/$DRV/parameters/napi_tx
	[ "$(cat "$_np")" = N ] || return 1
	rebind_b && _a=$(if_in a) &&
		iperf_tcp b "$_b" a "$_a" 10.0.0.1 $((1024 * 1024)) || return 1
	_l=$(nsx b cat "/sys/class/net/$_b/queues/tx-0/byte_queue_limits/limit") || return 1
	echo "b, napi_tx=N: BQL limit $_l"
	echo Y >"$_np" && rebind_b && nsx b ping -c 2 -W 5 10.0.0.1 && [ "$_l" -eq 0 ]
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

# channels NS IFACE MAX CUR: ethtool -l shows MAX combined channels at most
# and CUR in use, and nothing else (as C); sysfs has CUR queues each way.
channels() {
	_l=$(eth "$1" -l "$2") || return 1
	echo "$_l" | grep -E '^(Combined|RX|TX|Other):' | tr -d '\t' | tr '\n' ' '
	echo
	# shellcheck disable=SC2046 # the two combined counts, as words
	set -- "$1" "$2" "$3" "$4" $(echo "$_l" | sed -nE 's/^Combined:[[:space:]]*([0-9]+)$/\1/p')
	[ $# -eq 6 ] && [ "$5" = "$3" ] && [ "$6" = "$4" ] || return 1
	[ "$(echo "$_l" | grep -cE '^(RX|TX|Other):[[:space:]]*n/a$')" -eq 6 ] || return 1
	_q=$(nsx "$1" ls "/sys/class/net/$2/queues" | tr '\n' ' ')
	echo "queues: $_q"
	[ "$(nsx "$1" ls "/sys/class/net/$2/queues" | grep -c '^rx-')" -eq "$4" ] &&
		[ "$(nsx "$1" ls "/sys/class/net/$2/queues" | grep -c '^tx-')" -eq "$4" ]
}
# stat_names PAIRS: the names ethtool -S shows in C 6.12 for PAIRS pairs in
# use, on a device without VIRTIO_NET_F_DEVICE_STATS: the totals, then each
# receive queue's, then each transmit queue's (virtnet_get_strings).
RQ_STATS="drops xdp_packets xdp_tx xdp_redirects xdp_drops kicks"
SQ_STATS="xdp_tx xdp_tx_drops kicks tx_timeouts"
stat_names() {
	for _s in $RQ_STATS; do echo "rx_$_s"; done
	for _s in $SQ_STATS; do echo "tx_$_s"; done
	_i=0
	while [ $_i -lt "$1" ]; do for _s in $RQ_STATS; do echo "rx${_i}_$_s"; done; _i=$((_i + 1)); done
	_i=0
	while [ $_i -lt "$1" ]; do for _s in $SQ_STATS; do echo "tx${_i}_$_s"; done; _i=$((_i + 1)); done
}
# stats_named NS IFACE PAIRS: ethtool -S shows exactly stat_names PAIRS.
stats_named() {
	eth "$1" -S "$2" >"$TMP/stats" || return 1
	sed -n 's/^ *\([^:]*\): .*/\1/p' "$TMP/stats" >"$TMP/stats.names"
	stat_names "$3" >"$TMP/stats.want"
	echo "$(wc -l <"$TMP/stats.names") statistics: $(tr '\n' ' ' <"$TMP/stats.names")"
	diff "$TMP/stats.want" "$TMP/stats.names"
}
# stat NS IFACE NAME: one value of ethtool -S.
stat() { eth "$1" -S "$2" | sed -n "s/^ *$3: //p"; }
# irqs DEV QUEUE: the interrupts of DEV's queue QUEUE (input.0, say) on all
# CPUs (pci: a vector per queue, named DEV-QUEUE).
irqs() {
	awk -v n="${1##*/}-$2" '$NF == n { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts
}
# pair_counts PAIRS: for each pair I, a's tx{I}_kicks and b's input.I
# interrupts, as "I:KICKS:IRQS" words.
pair_counts() {
	_i=0
	while [ $_i -lt "$1" ]; do
		echo "$_i:$(stat a "$IF0" "tx${_i}_kicks"):$(irqs "$D1" "input.$_i")"
		_i=$((_i + 1))
	done | tr '\n' ' '
}
# pairs_moved PAIRS BEFORE AFTER: every pair's counts in AFTER (pair_counts)
# above those in BEFORE.
pairs_moved() {
	for _w in $2; do
		_i=${_w%%:*}
		_a=$(echo "$3" | tr ' ' '\n' | grep "^$_i:")
		_k0=$(echo "$_w" | cut -d: -f2) _q0=$(echo "$_w" | cut -d: -f3)
		_k1=$(echo "$_a" | cut -d: -f2) _q1=$(echo "$_a" | cut -d: -f3)
		[ -n "$_k1" ] && [ -n "$_q1" ] && [ "$_k1" -gt "$_k0" ] && [ "$_q1" -gt "$_q0" ] || return 1
	done
}
# mq_traffic PAIRS: iperf3 -P 4 a -> b, up to 4 times (each picks new flows,
# hashed to queues at random), until a sent on every transmit queue (its
# tx{I}_kicks moved) and b received on every receive queue (its input.I
# interrupts moved).
mq_traffic() {
	_b=$(pair_counts "$1")
	echo "before: $_b"
	for _r in 1 2 3 4; do
		iperf_start a b 10.0.0.2 -P 4 -n $((4 * 1024 * 1024)) && iperf_wait 120 || return 1
		_n=$(pair_counts "$1")
		echo "after run $_r: $_n"
		pairs_moved "$1" "$_b" "$_n" && return 0
	done
	return 1
}

# Interrupt affinity and XPS (pci: an interrupt per queue).
# online_cpus: the online CPUs, a word each.
online_cpus() {
	tr ',' '\n' </sys/devices/system/cpu/online | while IFS=- read -r _a _b; do seq "$_a" "${_b:-$_a}"; done
}
# cpu_layout PAIRS: the CPUs of each pair below PAIRS as C's
# virtnet_set_affinity spreads the online CPUs over them, a mask a line: a
# stride of CPUs each (one more for the first of them while CPUs are left
# over), wrapping around when there are more pairs than CPUs.
cpu_layout() {
	# shellcheck disable=SC2046 # the online CPUs, as words
	set -- "$1" $(online_cpus)
	_p=$1
	shift
	_stride=$(($# / _p > 1 ? $# / _p : 1))
	_strag=$(($# >= _p ? $# % _p : 0))
	_k=0 _i=0
	while [ $_i -lt "$_p" ]; do
		_m=0 _j=0
		while [ $_j -lt $((_stride + (_i < _strag))) ]; do
			eval "_c=\${$((_k % $# + 1))}"
			_m=$((_m | (1 << _c))) _k=$((_k + 1)) _j=$((_j + 1))
		done
		echo $_m
		_i=$((_i + 1))
	done
}
# irq_of DEV QUEUE: the interrupt of DEV's queue QUEUE (input.0, say).
irq_of() { awk -v n="${1##*/}-$2" '$NF == n { sub(":", "", $1); print $1; exit }' /proc/interrupts; }
# hexmask FILE: the CPU mask in FILE (smp_affinity, xps_cpus), as a number.
hexmask() { _x=$(tr -d ',\n' <"$1") && echo $((0x$_x)); }
# affine NS IFACE DEV PAIRS: for each pair I below PAIRS, DEV's input.I and
# output.I interrupts go to pair I's CPUs (cpu_layout), which are also their
# affinity hint, and IFACE's tx-I is the transmit queue of those CPUs (XPS
# xps_cpus), as C sets them.
affine() {
	_i=0
	for _m in $(cpu_layout "$4"); do
		for _q in input.$_i output.$_i; do
			_n=$(irq_of "$3" "$_q")
			[ -n "$_n" ] || { echo "${3##*/}: no $_q interrupt"; return 1; }
			_a=$(hexmask "/proc/irq/$_n/smp_affinity") && _h=$(hexmask "/proc/irq/$_n/affinity_hint") || return 1
			echo "${3##*/}-$_q (irq $_n): CPUs $(cat "/proc/irq/$_n/smp_affinity_list"), mask $(printf %x "$_a"), hint $(printf %x "$_h"); C's $(printf %x "$_m")"
			[ "$_a" -eq "$_m" ] && [ "$_h" -eq "$_m" ] || return 1
		done
		_x=$(nsx "$1" sh -c "tr -d ',\n' </sys/class/net/$2/queues/tx-$_i/xps_cpus") || return 1
		echo "$2 tx-$_i: xps_cpus $_x; C's $(printf %x "$_m")"
		[ $((0x$_x)) -eq "$_m" ] || return 1
		_i=$((_i + 1))
	done
}
# affine_both PAIRS: affine for both NICs.
affine_both() { affine a "$IF0" "$D0" "$1" && affine b "$IF1" "$D1" "$1"; }
# cpu1_cycle: CPU 1 offline, the pairs spread over the CPUs left; online
# again, spread over all, as C (the affinity and XPS follow CPU hotplug).
cpu1_cycle() {
	echo 0 >/sys/devices/system/cpu/cpu1/online || return 1
	echo "CPU 1 offline: CPUs $(cat /sys/devices/system/cpu/online) online"
	affine_both "$QUEUES"
	_r=$?
	echo 1 >/sys/devices/system/cpu/cpu1/online || return 1
	echo "CPU 1 online: CPUs $(cat /sys/devices/system/cpu/online) online"
	[ $_r -eq 0 ] && affine_both "$QUEUES"
}

# RSS (VRS_NET_RSS, scripts/vm --net-rss: rss=on,hash=on on both NICs).
# rss_table NS IFACE: the indirection table ethtool -x shows, an entry a line.
rss_table() {
	eth "$1" -x "$2" | sed -n 's/^ \{1,\}[0-9]\{1,\}: *//p' | tr -s ' \t' '\n' | grep -v '^$'
}
# rss_shown NS IFACE PAIRS: ethtool -x shows C's default: QEMU's 128
# entries, entry I sending to queue I mod PAIRS (ethtool_rxfh_indir_default),
# a key of QEMU's 40 bytes, and the Toeplitz function only.
rss_shown() {
	eth "$1" -x "$2" >"$TMP/rssx" || return 1
	head -n 3 "$TMP/rssx"
	rss_table "$1" "$2" >"$TMP/rss.table"
	_n=$(wc -l <"$TMP/rss.table")
	_bad=$(awk -v p="$3" '$1 != (NR - 1) % p' "$TMP/rss.table" | wc -l)
	_key=$(grep -A1 '^RSS hash key:' "$TMP/rssx" | tail -n 1)
	echo "$_n entries, $_bad not the default; key $_key"
	[ "$_n" -eq 128 ] && [ "$_bad" -eq 0 ] &&
		[ "$(echo "$_key" | tr ':' '\n' | grep -c '^[0-9a-f][0-9a-f]$')" -eq 40 ] &&
		grep -q 'toeplitz: on' "$TMP/rssx" && grep -q 'xor: off' "$TMP/rssx"
}
# rss_steer Q: b's table set to send every flow to queue Q (ethtool -X: equal
# 1 for queue 0, weight 0 1 for queue 1); under iperf3 -P 4 a -> b, b's
# input.Q interrupts move and those of the other queue at most a tenth as
# much (no flow is hashed to it).
rss_steer() {
	if [ "$1" -eq 0 ]; then eth b -X "$IF1" equal 1; else eth b -X "$IF1" weight 0 1; fi || return 1
	_t=$(rss_table b "$IF1" | sort -u | tr '\n' ' ')
	echo "table now sends to: $_t"
	[ "$_t" = "$1 " ] || return 1
	_o=$((1 - $1))
	_q0=$(irqs "$D1" "input.$1") _o0=$(irqs "$D1" "input.$_o")
	iperf_start a b 10.0.0.2 -P 4 -n $((4 * 1024 * 1024)) && iperf_wait 120 || return 1
	_dq=$(($(irqs "$D1" "input.$1") - _q0)) _do=$(($(irqs "$D1" "input.$_o") - _o0))
	echo "under iperf3 -P 4: input.$1 +$_dq interrupts, input.$_o +$_do"
	[ "$_dq" -ge 10 ] && [ $((_do * 10)) -le "$_dq" ]
}
# rss_fields NS IFACE FLOW WANT: ethtool -n rx-flow-hash FLOW shows exactly the
# fields WANT (sd: the addresses; sdfn: and the ports).
rss_fields() {
	eth "$1" -n "$2" rx-flow-hash "$3" >"$TMP/rssn" || return 1
	_got=$(grep -E '^(IP SA|IP DA|L4 bytes)' "$TMP/rssn" | tr '\n' '/')
	echo "$3: $_got"
	case $4 in
	sd) [ "$_got" = "IP SA/IP DA/" ] ;;
	sdfn) [ "$_got" = "IP SA/IP DA/L4 bytes 0 & 1 [TCP/UDP src port]/L4 bytes 2 & 3 [TCP/UDP dst port]/" ] ;;
	*) return 1 ;;
	esac
}

# How the driver makes the skb of each received frame, seen with tracing
# (tracefs event triggers; the debug kernel has no function tracer and no
# kprobes): a stack trace of every skb that __build_skb allocates (event
# kmem:kmem_cache_alloc, its call site __build_skb, or build_skb should that
# inline it), and every skb handed to GRO (net:napi_gro_receive_entry, which
# names the interface and the length). A frame's GRO event that follows a
# stack trace through build_skb (since the previous GRO event) was built on
# its receive buffer; one that does not was copied into a new skb
# (napi_alloc_skb in C) or, for an old driver, received into an skb
# allocated at refill (__netdev_alloc_skb, not build_skb).
TRACE=/sys/kernel/tracing
TRIGGER='stacktrace if call_site.function == __build_skb || call_site.function == build_skb'
# rx_builds SIZE: ping -c 4 -s SIZE a -> b, traced; prints "IFACE BUILT
# RECEIVED" for the ping's frames (IP length SIZE + 28) each NIC handed to GRO.
rx_builds() {
	test -e "$TRACE/trace" || mount -t tracefs nodev "$TRACE" || return 1
	echo 0 >"$TRACE/tracing_on" && echo >"$TRACE/trace" &&
		echo 1 >"$TRACE/events/net/napi_gro_receive_entry/enable" &&
		echo "$TRIGGER" >"$TRACE/events/kmem/kmem_cache_alloc/trigger" || return 1
	echo 1 >"$TRACE/tracing_on"
	nsx a ping -c 4 -W 5 -s "$1" 10.0.0.2 >/dev/null
	_rc=$?
	echo 0 >"$TRACE/tracing_on"
	echo "!$TRIGGER" >"$TRACE/events/kmem/kmem_cache_alloc/trigger"
	echo 0 >"$TRACE/events/net/napi_gro_receive_entry/enable"
	[ $_rc -eq 0 ] || { echo "ping -s $1 a -> b failed"; return 1; }
	awk -v len="len=$(($1 + 28))" '
		/<stack trace>/ { st = 1; next }
		/^ => / { if (st && $2 ~ /^build_skb(\+|$)/) b = 1; next }
		/napi_gro_receive_entry:/ {
			st = 0
			if (index($0, " " len " ")) {
				d = $0; sub(/.*dev=/, "", d); sub(/ .*/, "", d)
				t[d]++; if (b) k[d]++
			}
			b = 0; next
		}
		{ st = 0 }
		END { for (d in t) print d, k[d] + 0, t[d] }' "$TRACE/trace"
}
# built_as_c SIZE: of the frames of 4 pings of SIZE bytes a -> b (4 echo
# requests on b, 4 replies on a; SIZE + 42 bytes each), each NIC's are all
# built on their buffers, or none, as C: on small buffers all; on the other
# paths all if the frame is longer than GOOD_COPY_LEN (128 bytes; and leaves
# room for the shared info after it, as any frame of at most 1000 bytes
# does), else none (copied).
built_as_c() {
	rx_builds "$1" >"$TMP/builds" || return 1
	_ok=0
	for _x in "$IF0 $PATH0" "$IF1 $PATH1"; do
		# shellcheck disable=SC2086 # two words: IFACE PATH
		set -- "$1" $_x
		_want=4
		[ "$3" = small ] || [ $(($1 + 42)) -gt 128 ] || _want=0
		_got=$(awk -v d="$2" '$1 == d { print $2 "/" $3 }' "$TMP/builds")
		echo "$2 ($3): $_got of the ${1}-byte pings' frames built on their buffers, want $_want/4"
		[ "$_got" = "$_want/4" ] || _ok=1
	done
	return $_ok
}

# built_after_rx: a, which has just received a TCP run with guest GSO, gets
# the 4 replies of 4 pings of 1400 bytes (1442-byte frames) built on their
# buffers, as C: its mergeable buffers are sized by the average packet length
# (EWMA), which the 64 KiB GSO packets raised to a page, so each frame leaves
# room for the shared info (buffers of a full frame, 1536 bytes, would not,
# and the frame would be copied); small buffers and big packets always
# build a frame this long.
built_after_rx() {
	rx_builds 1400 >"$TMP/builds" || return 1
	_got=$(awk -v d="$IF0" '$1 == d { print $2 "/" $3 }' "$TMP/builds")
	echo "$IF0 ($PATH0): $_got of the 1400-byte pings' replies built on their buffers, want 4/4"
	[ "$_got" = 4/4 ]
}

# mrg_size: each NIC's rx-0 shows C's virtio_net/mergeable_rx_buffer_size
# on mergeable buffers only: the size of its next buffers, from the average
# packet length (EWMA) clamped between a full frame and a page, plus the
# header, on a cache line. a has just received TCP: with guest GSO (tap) its
# 64 KiB packets give a page (4096); on the hub, frames of at most 1514 bytes
# give the floor (1518 + 12, on a cache line: 1536). b's is in between.
mrg_size() {
	_ok=0
	for _x in "a $IF0 $PATH0" "b $IF1 $PATH1"; do
		# shellcheck disable=SC2086 # three words: NS IFACE PATH
		set -- $_x
		_d=/sys/class/net/$2/queues/rx-0/virtio_net
		if [ "$3" != mrg ]; then
			echo "$2 in $1 ($3): $(nsx "$1" ls "$_d" 2>&1)"
			! nsx "$1" test -e "$_d" || _ok=1
			continue
		fi
		_v=$(nsx "$1" cat "$_d/mergeable_rx_buffer_size") || return 1
		_want="1536 to 4096"
		if [ "$1" = a ] && [ "$BACKEND" = hub ]; then _want=1536; elif [ "$1" = a ]; then _want=4096; fi
		echo "$2 in $1 ($3): mergeable_rx_buffer_size $_v, want $_want"
		[ $((_v % 64)) -eq 0 ] && [ "$_v" -ge 1536 ] && [ "$_v" -le 4096 ] || _ok=1
		case $_want in *to*) ;; *) [ "$_v" -eq "$_want" ] || _ok=1 ;; esac
	done
	return $_ok
}

# net_test and net_skip: vrs_test and vrs_skip, then the guest's uptime as a
# diagnostic: what each test costs of make check's guest-time budget.
net_test() { vrs_test "$@"; echo "# uptime $(cut -d" " -f1 /proc/uptime)"; }
net_skip() { vrs_skip "$@"; echo "# uptime $(cut -d" " -f1 /proc/uptime)"; }
ktap_print_header
ktap_set_plan 61

echo "# backend $BACKEND; RX paths asked for: a $PATH0, b $PATH1; host_mtu ${JUMBO:-none}"
net_test "two virtio-net devices present" 'test -n "$D0" && test -n "$D1"'
net_test "modprobe $DRV" 'modprobe $DRV'
net_test "$DRV binds both devices" 'wait_bound $D0 $DRV && wait_bound $D1 $DRV'
IF0=$(iface_of "$D0")
IF1=$(iface_of "$D1")
net_test "each device has an interface" 'echo "$IF0 $IF1"; test -n "$IF0" && test -n "$IF1"'
net_test "MTU range 68 to 65535, or to the device's MTU (host_mtu), as C" '
	mtu_range $IF0 $D0 && mtu_range $IF1 $D1'
net_test "MAC addresses from config space" '
	a0=$(cat /sys/class/net/$IF0/address) && a1=$(cat /sys/class/net/$IF1/address) &&
	echo "$a0 $a1" && test "$a0" = $MAC0 && test "$a1" = $MAC1'
# The full strings are printed for the comparison with C.
echo "# features: ${D0##*/} $(cat "$D0/features" 2>/dev/null)"
echo "# features: ${D1##*/} $(cat "$D1/features" 2>/dev/null)"
net_test "MAC and STATUS negotiated" '
	test "$(vrs_feature $D0 5)$(vrs_feature $D0 16)" = 11 &&
	test "$(vrs_feature $D1 5)$(vrs_feature $D1 16)" = 11'
net_test "RX paths: a on $PATH0, b on $PATH1 (by the negotiated features)" '
	p0=$(path_of $D0) p1=$(path_of $D1); echo "a: $p0, b: $p1"
	test "$p0" = $PATH0 && test "$p1" = $PATH1'
net_test "napi_weight parameter, 64 by default" '
	test "$(cat /sys/module/$DRV/parameters/napi_weight)" = 64'
net_test "interfaces up in namespaces a and b, MTU 1500, carrier on" 'setup_both'
# Link dumps with statistics (ndo_get_stats64) from each namespace: the
# stack hands the driver a struct rtnl_link_stats64 inside a netlink
# message, which x86 leaves only 4-byte aligned.
net_test "link dumps with statistics in a, b and the initial namespace (ip -s -d link show)" '
	for n in a b; do "$IP" -n $n -s -d link show >/dev/null || exit 1; done
	"$IP" -s -d link show >/dev/null && "$IP" -n a -s link show dev $IF0 && "$IP" -n b -s link show dev $IF1'
net_test "ethtool -i: driver, version, bus-info" 'drvinfo a $IF0 $D0 && drvinfo b $IF1 $D1'
# net1's speed and duplex, if it could tell (bit 63: not on a legacy device).
if [ "$(vrs_feature "$D1" 63)" = 1 ]; then SPEED1=10000Mb/s DUPLEX1=Full; else SPEED1=Unknown DUPLEX1=Unknown; fi
net_test "ethtool: speed and duplex from config space, port, link" '
	link a $IF0 Unknown Unknown && link b $IF1 $SPEED1 $DUPLEX1'
net_test "ethtool -g: ring sizes" 'rings a $IF0 && rings b $IF1'
if [ "$(vrs_feature "$D0" 11)" = 1 ]; then
	net_test "ethtool -K: TSO off and on again" 'tso_toggle a $IF0'
else
	net_skip "ethtool -K: TSO off and on again" "no HOST_TSO4 (a QEMU hub has no vnet header)"
fi
net_test "ping a -> b, IPv4" 'nsx a ping -c 3 -W 5 10.0.0.2'
net_test "ping b -> a, IPv4" 'nsx b ping -c 3 -W 5 10.0.0.1'
net_test "ping a -> b and b -> a, IPv6" 'nsx a ping6 -c 3 -W 5 fd00::2 && nsx b ping6 -c 3 -W 5 fd00::1'
net_test "RX skbs of 542-byte frames built on their buffers (build_skb) on every path, as C" 'built_as_c 500'
net_test "RX skbs of 98-byte frames built on small buffers, copied on the other paths, as C" 'built_as_c 56'
net_test "iperf3 TCP a -> b, counted by b" 'iperf_tcp a $IF0 b $IF1 10.0.0.2'
note_iperf a
# TSO: with HOST_TSO4 the sender hands the NIC TCP packets of several
# segments, so its tx_bytes per tx_packets exceed the MTU (ethtool -S's
# device counters, which would count segments, QEMU 7.2 does not offer).
# Without TSO a packet is at most a frame, the MTU and its Ethernet header
# (1514); even at TCG's rates, TCP's autosizing makes a TSO packet at least
# two segments (about 2960): one and a half MTUs tells them apart.
if [ "$BACKEND" = hub ]; then
	net_skip "TSO: a's bytes per packet during the TCP run exceed 1.5 MTUs" "the hub: QEMU offers no TSO to a NIC whose peer has no vnet header"
else
	net_test "TSO: a's bytes per packet during the TCP run exceed 1.5 MTUs" '
		mtu=$(nsx a cat /sys/class/net/$IF0/mtu) && read -r tx_b tx_p <$TMP/iperf-a.tx || exit 1
		echo "a sent $tx_b bytes in $tx_p packets: $((tx_b / (tx_p + (tx_p == 0)))) per packet, MTU $mtu"
		test "$tx_p" -gt 0 && test $((tx_b / tx_p)) -gt $((mtu * 3 / 2))'
fi
# GSO off: with TSO and GSO off (ethtool -K, set_features), the stack cuts
# TCP into frames before the driver, so a's packets are at most a frame
# (the MTU and an Ethernet header), as C; the TSO test above is the same
# measure with the offloads on, and fails this bound.
if [ "$BACKEND" = hub ]; then
	net_skip "ethtool -K tso off gso off: a's packets in a TCP run at most a frame" "the hub: QEMU offers no TSO to a NIC whose peer has no vnet header"
else
	net_test "ethtool -K tso off gso off: a's packets in a TCP run at most a frame" '
		eth a -K $IF0 tso off gso off || exit 1
		iperf_tcp a $IF0 b $IF1 10.0.0.2 $((4 * 1024 * 1024)); rc=$?
		eth a -K $IF0 tso on gso on || exit 1
		mtu=$(nsx a cat /sys/class/net/$IF0/mtu) && read -r tx_b tx_p <$TMP/iperf-a.tx || exit 1
		echo "a sent $tx_b bytes in $tx_p packets: $((tx_b / (tx_p + (tx_p == 0)))) per packet, MTU $mtu"
		test $rc -eq 0 && test "$tx_p" -gt 0 && test $((tx_b / tx_p)) -le $((mtu + 14))'
fi
net_test "iperf3 TCP b -> a, counted by a" 'iperf_tcp b $IF1 a $IF0 10.0.0.1'
# (On the hub there is no GSO, every frame is at most 1514 bytes, and C's
# buffers depend on where a page-fragment page ends: not a fixed answer.)
if [ "$BACKEND" = hub ]; then
	net_skip "after TCP b -> a: a's 1442-byte frames built on their buffers (buffers sized by average packet length), as C" "the hub: no GSO packets to raise the average"
else
	net_test "after TCP b -> a: a's 1442-byte frames built on their buffers (buffers sized by average packet length), as C" 'built_after_rx'
fi
net_test "queues/rx-0/virtio_net/mergeable_rx_buffer_size on mergeable buffers only, by the average packet length, as C" 'mrg_size'
note_iperf b
net_test "iperf3 UDP a -> b, counted by b" 'iperf_udp a $IF0 b $IF1 10.0.0.2'
note_iperf a
net_test "iperf3 UDP b -> a, counted by a" 'iperf_udp b $IF1 a $IF0 10.0.0.1'
note_iperf b
net_test "no drops or errors; no IP, ICMP, TCP, UDP, UDPv6 checksum errors" 'clean a $IF0 && clean b $IF1'
net_test "module parameters csum, gso, napi_tx: Y by default" 'params'
net_test "byte queue limits on the senders' transmit queues" 'bql a $IF0 && bql b $IF1'

# Queue pairs. As C, as many in use as there are CPUs, up to the device's.
CPUS=$(grep -c '^processor' /proc/cpuinfo)
CUR=$((QUEUES < CPUS ? QUEUES : CPUS))
net_test "ethtool -l: $QUEUES combined channels at most, $CUR in use, as many queues each way" '
	channels a $IF0 $QUEUES $CUR && channels b $IF1 $QUEUES $CUR'
net_test "ethtool -S: C 6.12's statistics for $CUR pairs (totals, rxN_*, txN_*)" '
	stats_named a $IF0 $CUR && stats_named b $IF1 $CUR'
if [ "$QUEUES" -gt 1 ]; then
	net_test "ethtool -L combined $QUEUES: $QUEUES pairs in use (ethtool -l, sysfs queues, ethtool -S)" '
		eth a -L $IF0 combined $QUEUES && eth b -L $IF1 combined $QUEUES &&
		channels a $IF0 $QUEUES $QUEUES && channels b $IF1 $QUEUES $QUEUES &&
		stats_named a $IF0 $QUEUES'
	if [ "$VRS_TRANSPORT" = mmio ]; then
		net_skip "interrupt affinity and XPS: pair N's interrupts and tx-N on its CPUs" "virtio-mmio has one interrupt for all queues"
	else
		net_test "interrupt affinity and XPS: pair N's interrupts and tx-N on its CPUs (input.N, output.N, xps_cpus), as C" '
			affine_both $QUEUES'
	fi
	if [ "$VRS_TRANSPORT" = mmio ]; then
		net_skip "iperf3 -P 4 a -> b: every pair carries traffic (a's txN_kicks, b's input.N interrupts)" "virtio-mmio has one interrupt for all queues"
	else
		net_test "iperf3 -P 4 a -> b: every pair carries traffic (a's txN_kicks, b's input.N interrupts)" '
			mq_traffic $QUEUES'
	fi
	if [ "${VRS_NET_RSS:-0}" = 1 ]; then
		net_test "RSS: ethtool -x shows C's default table over $QUEUES queues, a 40-byte key, toeplitz" '
			rss_shown a $IF0 $QUEUES && rss_shown b $IF1 $QUEUES'
		net_test "RSS: ethtool -X weight 0 1 sends every flow to queue 1, equal 1 to queue 0 (b's input.N interrupts)" '
			rss_steer 1 && rss_steer 0'
		net_test "RSS: ethtool -X default: the default table again" '
			eth b -X $IF1 default && rss_shown b $IF1 $QUEUES'
		net_test "hash report: rx-flow-hash tcp4 and udp4 sdfn; -N tcp4 sd, then sdfn again; sdf refused" '
			rss_fields b $IF1 tcp4 sdfn && rss_fields b $IF1 udp4 sdfn &&
			eth b -N $IF1 rx-flow-hash tcp4 sd && rss_fields b $IF1 tcp4 sd &&
			eth b -N $IF1 rx-flow-hash tcp4 sdfn && rss_fields b $IF1 tcp4 sdfn &&
			eth b -N $IF1 rx-flow-hash tcp4 sdf 2>&1 | grep "Cannot change" && rss_fields b $IF1 tcp4 sdfn'
		net_test "hash report: receive-hashing off by default, on and off with ethtool -K, ping both ways" '
			eth b -k $IF1 | grep -x "receive-hashing: off" &&
			eth b -K $IF1 rxhash on && eth b -k $IF1 | grep -x "receive-hashing: on" && ping_both &&
			eth b -K $IF1 rxhash off && eth b -k $IF1 | grep -x "receive-hashing: off"'
	else
		for _t in "RSS: ethtool -x shows C's default table" "RSS: ethtool -X moves flows" \
			"RSS: ethtool -X default" "hash report: rx-flow-hash" "hash report: receive-hashing"; do
			net_skip "$_t" "no RSS in this run (scripts/vm --net-rss)"
		done
	fi
	net_test "ethtool -L combined 1: one pair in use again, ping both ways; combined 0 and above $QUEUES refused" '
		! eth a -L $IF0 combined 0 2>/dev/null && ! eth a -L $IF0 combined $((QUEUES + 1)) 2>/dev/null &&
		eth a -L $IF0 combined 1 && eth b -L $IF1 combined 1 &&
		channels a $IF0 $QUEUES 1 && channels b $IF1 $QUEUES 1 && ping_both'
	if [ "${VRS_NET_RSS:-0}" = 1 ]; then
		net_test "RSS: after ethtool -L combined 1, ethtool -x sends every entry to queue 0" '
			rss_shown a $IF0 1 && rss_shown b $IF1 1'
	else
		net_skip "RSS: after ethtool -L combined 1" "no RSS in this run (scripts/vm --net-rss)"
	fi
	# As C 6.12: the one pair gets every CPU; the pairs out of use keep
	# their interrupts' affinity, and their transmit queues are gone.
	if [ "$VRS_TRANSPORT" = mmio ]; then
		for _t in "interrupt affinity and XPS after ethtool -L combined 1" \
			"interrupt affinity and XPS after ethtool -L combined $QUEUES again" \
			"interrupt affinity and XPS follow CPU hotplug"; do
			net_skip "$_t" "virtio-mmio has one interrupt for all queues"
		done
	else
		net_test "interrupt affinity and XPS after ethtool -L combined 1: pair 0 on every CPU, as C" '
			affine_both 1'
		net_test "interrupt affinity and XPS after ethtool -L combined $QUEUES again: spread again, as C" '
			eth a -L $IF0 combined $QUEUES && eth b -L $IF1 combined $QUEUES && affine_both $QUEUES'
		if [ -w /sys/devices/system/cpu/cpu1/online ]; then
			net_test "interrupt affinity and XPS follow CPU hotplug: CPU 1 offline, then online again, as C" '
				cpu1_cycle'
		else
			net_skip "interrupt affinity and XPS follow CPU hotplug" "no CPU 1 to take offline (scripts/vm --smp)"
		fi
		# Back to one pair, as the tests above left it.
		eth a -L "$IF0" combined 1 && eth b -L "$IF1" combined 1 || echo "# ethtool -L combined 1 failed"
	fi
else
	for _t in "ethtool -L combined N: N pairs in use" \
		"iperf3 -P 4 a -> b: every pair carries traffic" \
		"RSS: ethtool -x shows C's default table" "RSS: ethtool -X moves flows" \
		"RSS: ethtool -X default" "hash report: rx-flow-hash" "hash report: receive-hashing" \
		"ethtool -L combined 1: one pair in use again" "RSS: after ethtool -L combined 1" \
		"interrupt affinity and XPS: pair N's interrupts and tx-N on its CPUs" \
		"interrupt affinity and XPS after ethtool -L combined 1" \
		"interrupt affinity and XPS after ethtool -L combined N again" \
		"interrupt affinity and XPS follow CPU hotplug"; do
		net_skip "$_t" "one queue pair in this run (scripts/vm --net-queues)"
	done
fi

# MTU 9000: the runs that give both NICs host_mtu=9000 (MTU feature). The
# C driver makes it the interface's max_mtu. Busybox's ping has no -M do:
# instead, no IPv4 or IPv6 reassembly and no fragment made in a or b, so
# each 8000-byte ping crossed as one frame.
# frags: IPv4 ReasmReqds and FragCreates, IPv6 ReasmReqds and FragCreates,
# of a and of b.
frags() {
	for _n in a b; do
		echo "$(mib $_n /proc/net/snmp Ip ReasmReqds)/$(mib $_n /proc/net/snmp Ip FragCreates)/$(nsx $_n awk '$1 == "Ip6ReasmReqds" || $1 == "Ip6FragCreates" { printf "%s/", $2 }' /proc/net/snmp6)"
	done | tr "\n" " "
}
if [ -z "$JUMBO" ]; then
	net_skip "MTU 9000: max_mtu, both set to it, 8000-byte pings unfragmented both ways" "this run gives the NICs no host_mtu"
else
	net_test "MTU $JUMBO: max_mtu, both set to it, 8000-byte pings unfragmented both ways" '
		m0=$(nsx a "$IP" -d link show $IF0 | sed -n "s/.* maxmtu \([0-9]*\).*/\1/p")
		m1=$(nsx b "$IP" -d link show $IF1 | sed -n "s/.* maxmtu \([0-9]*\).*/\1/p")
		echo "maxmtu: a $m0, b $m1"
		test "$m0" = $JUMBO && test "$m1" = $JUMBO || exit 1
		"$IP" -n a link set $IF0 mtu $JUMBO && "$IP" -n b link set $IF1 mtu $JUMBO || exit 1
		f0=$(frags) &&
		nsx a ping -c 2 -W 5 -s 8000 10.0.0.2 && nsx b ping -c 2 -W 5 -s 8000 10.0.0.1 &&
		nsx a ping6 -c 2 -W 5 -s 8000 fd00::2 && nsx b ping6 -c 2 -W 5 -s 8000 fd00::1 || exit 1
		f1=$(frags); echo "reassemblies and fragments (v4 a, b; v6 a, b): $f0 -> $f1"
		test "$f0" = "$f1"'
	"$IP" -n a link set "$IF0" mtu 1500 2>/dev/null
	"$IP" -n b link set "$IF1" mtu 1500 2>/dev/null
fi

# QMP set_link: QEMU clears VIRTIO_NET_S_LINK_UP in b's config and raises a
# config interrupt; the driver turns the carrier off, and on again.
net_test "QMP set_link net1 off: b's carrier goes off, a's stays on" '
	qmp set_link "{\"name\": \"net1\", \"up\": false}" && carrier_is b $IF1 0 && carrier_is a $IF0 1'
net_test "QMP set_link net1 on: b's carrier comes back, ping both ways" '
	qmp set_link "{\"name\": \"net1\", \"up\": true}" && carrier_is b $IF1 1 &&
	nsx a ping -c 2 -W 5 10.0.0.2 && nsx b ping -c 2 -W 5 10.0.0.1'

# The features each driver negotiates on the same two devices: rmmod, then
# modprobe C, then this run's driver again (for C, C again: a fresh probe).
net_test "features: the same as the C driver's on both devices" '
	that=$(features_under $C) && this=$(features_under $DRV) || exit 1
	echo "$DRV:"; echo "$this"; echo "$C:"; echo "$that"
	test "$this" = "$that"'
net_test "after the rebinds: $DRV on both, interfaces up in a and b, ping v4 and v6 both ways" '
	wait_bound $D0 $DRV && wait_bound $D1 $DRV && setup_both && ping_both'
net_test "napi_tx writable (0644) as C's, refuses a non-bool" 'napi_tx_writable'
# C virtio_net 6.12.117 frees a tagged pointer when a device probed with
# napi_tx=N is removed with packets in its ring (KASAN: slab-out-of-bounds in
# consume_skb from remove_vq_common): see Documentation/architecture.rst.
if [ "$KIND" = c ]; then
	echo Y >/sys/module/$C/parameters/napi_tx
	net_skip "b probed with napi_tx=N: no BQL after TCP from b (Rust only)" \
		"C 6.12.117 corrupts memory when that device is removed (architecture.rst)"
elif [ "$BACKEND" != hub ]; then
	echo Y >"/sys/module/$DRV/parameters/napi_tx"
	net_skip "b probed with napi_tx=N: no BQL after TCP from b (Rust only)" \
		"the hub runs test this (make check's guest-time budget): it does not depend on the backend"
else
	net_test "b probed with napi_tx=N: no BQL after TCP from b (Rust only)" 'napi_tx_off'
fi
IF0=$(if_in a) IF1=$(if_in b)

# The rest changes the devices' state the hardest: freeze/restore, the
# other driver on one NIC, rmmod and hot-unplug under traffic. None of it
# depends on the backend: the tap runs do it, the hub runs stop here (for
# make check's time budget).
HEAVY="the tap runs test this (net-tap, net-tap-c): none of it depends on the backend"
if [ "$BACKEND" = hub ]; then
	for _t in "suspend/resume through pm_test=devices" \
		"after resume: same interfaces and addresses, carrier on, ping v4 and v6 both ways" \
		"C on a, Rust on b: ping v4 and v6, iperf3 TCP both ways" \
		"rmmod $DRV under iperf3 a -> b: the interfaces go away" \
		"modprobe $DRV again: both bound, up, ping v4 and v6 both ways" \
		"device_del net1 under iperf3 a -> b: the device goes away" \
		"a survives the unplug: bound, carrier on, it still sends"; do
		net_skip "$_t" "$HEAVY"
	done
else
	# Freeze/restore: the devices' freeze and restore callbacks run, the system
	# does not sleep. The interfaces stay (same ifindex, addresses kept), and
	# traffic flows after.
	netstate() {
		for _n in a b; do
			_if=$IF0
			[ $_n = a ] || _if=$IF1
			echo "$_n $_if ifindex $(nsx $_n cat "/sys/class/net/$_if/ifindex")"
			"$IP" -n $_n -o addr show dev "$_if" | awk '{ print $2, $3, $4 }' | grep -v " fe80::"
		done
	}
	netstate >"$TMP/pm.before"
	net_test "suspend/resume through pm_test=devices" '
		state=mem; grep -qw mem /sys/power/state || state=freeze
		echo devices >/sys/power/pm_test && echo $state >/sys/power/state; rc=$?
		echo none >/sys/power/pm_test; test $rc -eq 0'
	net_test "after resume: same interfaces and addresses, carrier on, ping v4 and v6 both ways" '
		netstate >$TMP/pm.after; cat $TMP/pm.after
		cmp $TMP/pm.before $TMP/pm.after && carrier_up a $IF0 && carrier_up b $IF1 && ping_both'

	# One NIC on each driver, at once: a's on C, b's on Rust.
	if [ "$KIND" = c ]; then
		net_skip "C on a, Rust on b: ping v4 and v6, iperf3 TCP both ways" "pairs C with Rust: run by the rust suite"
	else
		net_test "C on a, Rust on b: ping v4 and v6, iperf3 TCP both ways" '
			rebind $D0 $C && rebind $D1 $RS && setup_both && ping_both &&
			iperf_tcp a $IF0 b $IF1 10.0.0.2 $((4 * 1024 * 1024)) && iperf_tcp b $IF1 a $IF0 10.0.0.1 $((4 * 1024 * 1024))'
	fi

	IF0=$(if_in a) IF1=$(if_in b)
	net_test "rmmod $DRV under iperf3 a -> b: the interfaces go away" '
		rebind $D0 $DRV && rebind $D1 $DRV || exit 1
		[ $DRV = $C ] || ! test -d /sys/module/$C || rmmod $C || exit 1
		setup_both && bg_traffic || { iperf_kill; exit 1; }
		vrs_within 60 rmmod $DRV; rc=$?
		iperf_kill
		test $rc -eq 0 && ! test -d /sys/module/$DRV && test -z "$(if_in a)$(if_in b)"'
	net_test "modprobe $DRV again: both bound, up, ping v4 and v6 both ways" '
		modprobe $DRV && wait_bound $D0 $DRV && wait_bound $D1 $DRV && setup_both && ping_both'

	IF0=$(if_in a) IF1=$(if_in b)
	# Hot-unplug of net1 under iperf3 (PCI only: virtio-mmio does not unplug).
	# a's NIC survives: still bound, carrier on, and it still sends (the tap
	# takes its packets; on the hub, QEMU stops taking a's packets once net1
	# is gone with some of them queued for it: a's TX stalls in QEMU).
	if [ "$VRS_TRANSPORT" = mmio ]; then
		net_skip "device_del net1 under iperf3 a -> b: the device goes away" "virtio-mmio has no hot-unplug"
		net_skip "a survives the unplug: bound, carrier on, it still sends" "virtio-mmio has no hot-unplug"
	else
		net_test "device_del net1 under iperf3 a -> b: the device goes away" '
			bg_traffic || { iperf_kill; exit 1; }
			qmp device_del "{\"id\": \"net1\"}"; rc=$?
			i=0; while [ -e $D1 ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
			iperf_kill
			test $rc -eq 0 && ! test -e $D1'
		net_test "a survives the unplug: bound, carrier on, it still sends" '
			t0=$(ctr a $IF0 tx_packets)
			nsx a ping -c 3 -W 1 10.0.0.2; nsx a ping6 -c 3 -W 1 fd00::2
			t1=$(ctr a $IF0 tx_packets); echo "a: tx_packets $t0 -> $t1"
			bound_by $D0 $DRV && carrier_up a $IF0 && test $((t1 - t0)) -ge 6'
	fi
fi
net_test "rmmod $DRV with the interfaces in their namespaces" '
	rmmod $DRV && ! bound_by $D0 $DRV && ! bound_by $D1 $DRV'
"$IP" netns del a 2>/dev/null
"$IP" netns del b 2>/dev/null
ktap_finished
