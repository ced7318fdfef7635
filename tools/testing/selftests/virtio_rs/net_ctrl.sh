#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-net's control queue, seen from the host: two NICs on one QEMU hub
# (scripts/vm --devices net,net1 --drivers none; scripts/check.py passes
# exactly that). QEMU reports the first one's receive filter through QMP
# query-rx-filter (asked with vrs-host); it resets a device to promiscuous with
# an empty filter, so every entry the tests look for was sent by the driver.
# The second NIC, in its own network namespace, is the peer that hears the
# first one's announcement.
#
# usage: net_ctrl.sh [rust|c]   (default: $VRS_NET_DRIVER, else rust)
#
# The driver under test is virtio_net_rs or, as the reference, the C
# virtio_net: every test must pass with C. The tests: the control features
# negotiated (CTRL_VQ, CTRL_RX, CTRL_VLAN, GUEST_ANNOUNCE, CTRL_MAC_ADDR);
# promiscuous mode off once up, then on and off; all-multicast on and off; a
# multicast address joined and left; a secondary unicast address (a macvlan on
# the NIC) added to and removed from the unicast table; a VLAN device added to
# and removed from the VLAN table; the address changed while up; a QMP
# announce-self answered by the guest's own gratuitous ARP, which the peer
# (arp_accept) turns into a neighbour entry (QEMU's own announcement is a
# RARP, which does not); rmmod.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

vrs_pick_driver net_ctrl.sh VRS_NET_DRIVER "${1:-}" virtio_net_rs virtio_net

IP=$VRS_BIN/ip
D0=$(vrs_dev_at 1)
D1=$(vrs_dev_at 2)
# The NIC's QEMU id (scripts/vm.py).
NIC=net0
MC=01:00:5e:01:02:03
UC=52:54:00:77:77:77
NEWMAC=52:54:00:aa:bb:cc

# filter: net0's receive filter as QEMU reports it, on one line, no spaces.
filter() {
	vrs-host "{\"execute\": \"query-rx-filter\", \"arguments\": {\"name\": \"$NIC\"}}" | tr -d ' \n'
}
# has_filter PATTERN: the filter matches PATTERN (grep -E) within 5 s.
has_filter() {
	_i=0
	while [ $_i -lt 20 ]; do
		_f=$(filter)
		echo "$_f" | grep -Eq -- "$1" && return 0
		sleep 0.25
		_i=$((_i + 1))
	done
	echo "filter: $_f"
	return 1
}
# lacks_filter PATTERN: the filter stops matching PATTERN within 5 s.
lacks_filter() {
	_i=0
	while [ $_i -lt 20 ]; do
		_f=$(filter)
		echo "$_f" | grep -Eq -- "$1" || return 0
		sleep 0.25
		_i=$((_i + 1))
	done
	echo "filter: $_f"
	return 1
}
# neigh_of ADDR: the peer's neighbour entry for ADDR (empty if none).
neigh_of() { "$IP" -n peer neigh show "$1" dev "$IF1"; }
# learns ADDR MAC: the peer has an entry for ADDR with MAC within 5 s.
learns() {
	_i=0
	while [ $_i -lt 20 ]; do
		neigh_of "$1" | grep -q "lladdr $2" && return 0
		sleep 0.25
		_i=$((_i + 1))
	done
	echo "peer's neighbours: $("$IP" -n peer neigh show)"
	return 1
}

ktap_print_header
ktap_set_plan 15

vrs_test "modprobe $DRV, which binds both NICs" 'test -n "$D0" && test -n "$D1" &&
	modprobe $DRV && test "$(vrs_driver_module $D0)" = $DRV &&
	test "$(vrs_driver_module $D1)" = $DRV'
IF=$(ls "$D0/net" 2>/dev/null | head -n 1)
IF1=$(ls "$D1/net" 2>/dev/null | head -n 1)
echo "# features: $(cat "$D0/features" 2>/dev/null)"
vrs_test "CTRL_VQ, CTRL_RX, CTRL_VLAN, GUEST_ANNOUNCE and CTRL_MAC_ADDR negotiated" '
	f=""; for b in 17 18 19 21 23; do f=$f$(vrs_feature $D0 $b); done; test "$f" = 11111'
# The peer accepts gratuitous ARP (arp_accept): that is how it hears the
# announcement. No traffic flows between the two before that.
vrs_test "up: the driver turned promiscuous mode off" '
	test -n "$IF" && test -n "$IF1" && "$IP" netns add peer &&
	"$IP" link set $IF1 netns peer && "$IP" -n peer link set $IF1 up &&
	"$IP" -n peer addr add 10.0.9.2/24 dev $IF1 &&
	"$IP" netns exec peer sysctl -qw net.ipv4.conf.$IF1.arp_accept=1 &&
	"$IP" addr add 10.0.9.1/24 dev $IF && "$IP" link set $IF up &&
	has_filter "\"promiscuous\":false"'
vrs_test "promisc on, then off" '
	"$IP" link set $IF promisc on && has_filter "\"promiscuous\":true" &&
	"$IP" link set $IF promisc off && has_filter "\"promiscuous\":false"'
vrs_test "allmulticast on, then off" '
	"$IP" link set $IF allmulticast on && has_filter "\"multicast\":\"all\"" &&
	"$IP" link set $IF allmulticast off && has_filter "\"multicast\":\"normal\""'
vrs_test "a multicast address joined, then left" '
	"$IP" maddr add $MC dev $IF && has_filter "multicast-table\":\[[^]]*$MC" &&
	"$IP" maddr del $MC dev $IF && lacks_filter "$MC"'
vrs_test "a secondary unicast address (macvlan) in the unicast table, then out" '
	"$IP" link add link $IF name mv0 address $UC type macvlan &&
	"$IP" link set mv0 up && has_filter "unicast-table\":\[\"$UC\"\]" &&
	"$IP" link del mv0 && has_filter "unicast-table\":\[\]"'
# (VLAN 0 is in the table too: the 8021q module adds it to every filtering device.)
vrs_test "a VLAN device: its id in the VLAN table, then out" '
	"$IP" link add link $IF name vl5 type vlan id 5 &&
	has_filter "vlan-table\":\[([0-9]+,)*5[],]" && "$IP" link del vl5 &&
	lacks_filter "vlan-table\":\[([0-9]+,)*5[],]"'
vrs_test "the address changed while up" '
	"$IP" link set $IF address $NEWMAC && has_filter "main-mac\":\"$NEWMAC\"" &&
	test "$(cat /sys/class/net/$IF/address)" = $NEWMAC'
vrs_test "the old address back" '
	"$IP" link set $IF address 52:54:00:12:34:56 &&
	has_filter "main-mac\":\"52:54:00:12:34:56\""'
vrs_test "QMP announce-self: the peer learns the guest from its gratuitous ARP" '
	test -z "$(neigh_of 10.0.9.1)" &&
	vrs-host "{\"execute\": \"announce-self\", \"arguments\": {\"initial\": 50, \"max\": 550, \"rounds\": 2, \"step\": 100}}" &&
	learns 10.0.9.1 52:54:00:12:34:56'
vrs_test "no errors from the control queue in the kernel log" '
	! dmesg | grep -Ei "failed to (set|add|kill|ack|enable|disable)|control queue|cvq"'
# CTRL_GUEST_OFFLOADS makes rx-gro-hw a feature the user may change (C sets
# it in hw_features whenever the device has the bit); a change is a
# GUEST_OFFLOADS_SET command. On the hub QEMU refuses it (guest offloads need
# a vnet header): C warns ("Fail to set guest offload") and keeps the feature
# off: so must Rust.
vrs_test "ethtool -K rx-gro-hw on: offered, sent, refused by QEMU on the hub, still off" '
	e=$VRS_BIN/ethtool; test "$(vrs_feature $D0 2)" = 1 &&
	$e -k $IF | grep -x "rx-gro-hw: off" && { $e -K $IF rx-gro-hw on || true; } &&
	$e -k $IF | grep "^rx-gro-hw: off" && dmesg | grep -Ei "fail(ed)? to set guest offload"'
# rtnetlink hands ndo_get_stats64 a pointer into the message, aligned to 4
# bytes only where unaligned access is cheap (x86): whether it is 8-aligned
# depends on what precedes it, the interface name among them. (Before the
# fix, a Rust reference to it panicked on debug kernels: misaligned.)
vrs_test "statistics through rtnetlink, whatever the alignment (names of 1 to 8 bytes)" '
	"$IP" link set $IF down && for n in a ab abc abcd abcde abcdef abcdefg abcdefgh; do
		"$IP" link set dev $IF name $n && IF=$n && "$IP" -s link show dev $n >/dev/null &&
		"$IP" -s -s link show >/dev/null || break; done && test "$IF" = abcdefgh'
vrs_test "rmmod $DRV" 'rmmod $DRV && test "$(vrs_driver_module $D0)" != $DRV'
"$IP" netns del peer 2>/dev/null
ktap_finished
