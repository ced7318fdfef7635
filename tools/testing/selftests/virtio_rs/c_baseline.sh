#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The baseline for every later comparison: each C virtio driver binds its
# device on this transport, and the transport is the one asked for (legacy
# devices did not negotiate VERSION_1; packed rings negotiated RING_PACKED).
. "$(dirname "$0")/../kselftest/ktap_helpers.sh"

# Bit N of the features string is character N+1.
feature() { cut -c$(($2 + 1)) "$1/features"; }

devs=$(ls -d /sys/bus/virtio/devices/* 2>/dev/null)
want=$(echo "$VRS_DEVICES" | tr ',' '\n' | grep -c .)
ktap_print_header
ktap_set_plan $((1 + 2 * $(echo "$devs" | grep -c .)))

have=$(echo "$devs" | grep -c .)
ktap_test_result "$have virtio devices present, $want attached" test "$have" -eq "$want"

for d in $devs; do
	id=$(($(cat "$d/device")))
	mod=$(vrs-drivers c-module "$id")
	got=-
	[ -e "$d/driver/module" ] && got=$(basename "$(readlink -f "$d/driver/module")")
	ktap_test_result "${d##*/} (id $id) bound by C $mod" test "$got" = "$mod"

	v1=$(feature "$d" 32)
	packed=$(feature "$d" 34)
	case "$VRS_TRANSPORT/$id" in
	pci-legacy/16 | pci-legacy/18) want_v1=1 ;; # QEMU: virtio 1.0-only devices
	pci-legacy/*) want_v1=0 ;;
	*) want_v1=1 ;;
	esac
	want_packed=0
	[ "$VRS_RING" = packed ] && [ "$want_v1" = 1 ] && want_packed=1
	ktap_test_result "${d##*/} (id $id) negotiated VERSION_1=$want_v1 RING_PACKED=$want_packed" \
		test "$v1$packed" = "$want_v1$want_packed"
done
ktap_finished
