#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The baseline for every later comparison: each C virtio driver binds its
# device on this transport, and the transport is the one asked for (legacy
# devices did not negotiate VERSION_1; packed rings negotiated RING_PACKED).
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

devs=$(ls -d /sys/bus/virtio/devices/* 2>/dev/null)
want=$(echo "$VRS_DEVICES" | tr ',' '\n' | grep -c .)
ktap_print_header
ktap_set_plan $((1 + 2 * $(echo "$devs" | grep -c .)))

have=$(echo "$devs" | grep -c .)
vrs_test "$have virtio devices present, $want attached" '[ "$have" -eq "$want" ]'

for d in $devs; do
	id=$(($(cat "$d/device")))
	mod=$(vrs-drivers c-module "$id")
	got=$(vrs_driver_module "$d")
	vrs_test "${d##*/} (id $id) bound by C $mod" '[ "$got" = "$mod" ]'

	v1=$(vrs_feature "$d" 32)
	packed=$(vrs_feature "$d" 34)
	case "$VRS_TRANSPORT/$id" in
	pci-legacy/16 | pci-legacy/18) want_v1=1 ;; # QEMU: virtio 1.0-only devices
	pci-legacy/*) want_v1=0 ;;
	*) want_v1=1 ;;
	esac
	want_packed=0
	[ "$VRS_RING" = packed ] && [ "$want_v1" = 1 ] && want_packed=1
	vrs_test "${d##*/} (id $id) negotiated VERSION_1=$want_v1 RING_PACKED=$want_packed" \
		'[ "$v1$packed" = "$want_v1$want_packed" ] || { echo "got VERSION_1=$v1 RING_PACKED=$packed"; false; }'
done
ktap_finished
