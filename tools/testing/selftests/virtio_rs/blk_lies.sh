#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-blk drivers against devices whose config space lies (scripts/vm
# --devices badblk:honest,badblk:blk-size-0,... --drivers none; one
# build/baddev backend per disk, scripts/check.py passes all the presets).
# Each disk is an honest 8 MiB RAM disk; its struct virtio_blk_config is a
# preset: honest, or one field a driver must refuse or clamp:
#   blk-size-0, blk-size-3, blk-size-2g   blk_size 0, 3, 2^31
#   pbexp-63                              physical_block_exp 63
#   align-255                             alignment_offset 255
#   io-sizes                              min_io_size 65535, opt_io_size 2^32-1
#   seg-max-0                             seg_max 0 and size_max 0
#   capacity-2e63                         capacity 2^63 sectors
# The other fields are honest: blk_size 512, physical_block_exp 3,
# min_io_size 8, opt_io_size 128 (in logical blocks), seg_max 126, size_max
# 64 KiB, 16384 sectors. Sector S of the disk starts with
# "baddev sector SSSSSSSS\n" and is zero after it; the device's serial
# (GET_ID) is the preset's name.
#
# usage: blk_lies.sh [rust|c]   (default: $VRS_BLK_DRIVER, else rust)
#
# The driver (virtio_blk_rs, disks rvdX, or the C virtio_blk, disks vdX) is
# bound to one device at a time (drivers_autoprobe off), and per preset:
# either it refuses the probe cleanly (the write to bind fails, no disk, no
# driver on the device, an error naming the device in dmesg), or the disk
# appears, serial the preset, with sane limits (logical block a power of two
# in 512..4096, physical block a power of two >= it, minimum_io_size and
# optimal_io_size multiples of the logical block, an alignment_offset below
# the physical block, max_segments >= 1, max_segment_size >= 4096, a size
# in bytes that fits a loff_t), and a 4 KiB O_DIRECT read returns the right
# sectors. The honest disk must appear, with exactly the honest values.
# Then rmmod works, a modprobe with automatic binding gives the same
# outcome on every device, a second probe of a refused device fails the same
# way (the first one left the device reset), and rmmod works again. A panic
# or splat fails the run through the host's console scan. C is the reference, but on these
# lies its result is recorded (Documentation/hardening.rst), not required.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

KIND=${1:-${VRS_BLK_DRIVER:-rust}}
case $KIND in
rust) DRV=virtio_blk_rs PAT='rvd[a-z]+' ;;
c) DRV=virtio_blk PAT='vd[a-z]+' ;;
*)
	echo "usage: blk_lies.sh [rust|c] (or VRS_BLK_DRIVER=rust|c)" >&2
	exit 2
	;;
esac

PRESETS="honest blk-size-0 blk-size-3 blk-size-2g pbexp-63 align-255 io-sizes seg-max-0 capacity-2e63"
DD=$VRS_BIN/dd
TMP=${TMPDIR:-/tmp}/blk_lies
BUS=/sys/bus/virtio
# The largest size, in 512-byte sectors, whose byte count fits a loff_t.
MAX_SECTORS=18014398509481983
rm -rf "$TMP"
mkdir -p "$TMP"

# $TMP/map: "PRESET DEVICE-DIR" for every lying disk (lib.sh).
vrs_badblk_map >"$TMP/map"
# dev_of PRESET: the virtio device of badblk:PRESET.
dev_of() { vrs_lookup "$TMP/map" "$1"; }
# The /sys/bus/virtio/drivers entry of module $DRV.
driver_dir() { vrs_driver_dir "$DRV"; }
disk_of() { ls "$1/block" 2>/dev/null | head -n 1; }
alive() { vrs_alive "$1"; }
within() { vrs_within "$@"; }
bound() { test "$(vrs_driver_module "$1")" = "$DRV"; }
# outcome DEV: "disk NAME", "refused", or what else the device looks like.
outcome() {
	n=$(disk_of "$1")
	if bound "$1" && [ -n "$n" ]; then
		echo "disk $n"
	elif ! [ -e "$1/driver" ] && [ -z "$n" ]; then
		echo refused
	else
		echo "broken: driver $(vrs_driver_module "$1"), disk '${n:-none}'"
	fi
}
pow2() { [ "$1" -gt 0 ] && [ $(($1 & ($1 - 1))) -eq 0 ]; }
# fits_loff SECTORS: SECTORS * 512 fits a loff_t (compared as strings: the
# shell's arithmetic is 64-bit signed).
fits_loff() {
	awk -v s="$1" -v m=$MAX_SECTORS 'BEGIN {
		if (s !~ /^[0-9]+$/) exit 1
		sub(/^0+/, "", s)
		exit !(length(s) < length(m) || (length(s) == length(m) && s <= m)) }'
}
# limits DISK: "lbs pbs io_min io_opt align max_segments max_segment_size size".
limits() {
	b=/sys/block/$1
	echo "$(cat "$b/queue/logical_block_size") $(cat "$b/queue/physical_block_size")" \
		"$(cat "$b/queue/minimum_io_size") $(cat "$b/queue/optimal_io_size")" \
		"$(cat "$b/alignment_offset") $(cat "$b/queue/max_segments")" \
		"$(cat "$b/queue/max_segment_size") $(cat "$b/size")"
}
# sane DISK: its limits are ones the block layer and its users can work with.
sane() {
	# shellcheck disable=SC2046
	set -- $(limits "$1")
	echo "logical_block_size $1 physical_block_size $2 minimum_io_size $3" \
		"optimal_io_size $4 alignment_offset $5 max_segments $6 max_segment_size $7 size $8"
	ok=0
	{ pow2 "$1" && [ "$1" -ge 512 ] && [ "$1" -le 4096 ]; } ||
		{ echo "logical block size $1: not a power of two in 512..4096"; ok=1; }
	{ pow2 "$2" && [ "$2" -ge "$1" ]; } ||
		{ echo "physical block size $2: not a power of two >= $1"; ok=1; }
	{ [ "$3" -ge "$2" ] && [ $(($3 % $1)) -eq 0 ]; } ||
		{ echo "minimum_io_size $3: not a multiple of $1 >= $2"; ok=1; }
	[ $(($4 % $1)) -eq 0 ] || { echo "optimal_io_size $4: not a multiple of $1"; ok=1; }
	{ [ "$5" -ge 0 ] && [ "$5" -lt "$2" ] && [ $(($5 % $1)) -eq 0 ]; } ||
		{ echo "alignment_offset $5: not a multiple of $1 below $2"; ok=1; }
	[ "$6" -ge 1 ] || { echo "max_segments $6: none"; ok=1; }
	[ "$7" -ge 4096 ] || { echo "max_segment_size $7: below a page"; ok=1; }
	{ [ "$8" != 0 ] && fits_loff "$8"; } ||
		{ echo "size $8 sectors: empty, or its byte count does not fit a loff_t"; ok=1; }
	return $ok
}
# sectors FIRST COUNT: what the device holds in those 512-byte sectors.
sectors() {
	s=$1
	while [ "$s" -lt $(($1 + $2)) ]; do
		printf 'baddev sector %08d\n' "$s"
		head -c 489 /dev/zero
		s=$((s + 1))
	done
}
# read_4k DISK: 4 KiB at byte 8192, with O_DIRECT, are sectors 16..23.
read_4k() {
	sectors 16 8 >"$TMP/want"
	$DD if="/dev/$1" of="$TMP/got" bs=4096 skip=2 count=1 iflag=direct 2>"$TMP/dd.err" ||
		{ cat "$TMP/dd.err"; return 1; }
	echo "read $(wc -c <"$TMP/got") bytes"
	cmp "$TMP/want" "$TMP/got" || { od -A d -c "$TMP/got" | head -n 4; return 1; }
}
# errno_of DEV DMESG-FILE: the error the driver core logged for DEV's probe.
errno_of() {
	sed -n "s/.* ${1##*/}: probe with driver .* failed with error \(-[0-9]*\)$/\1/p" "$2" |
		tail -n 1
}
# refused_cleanly DEV PRESET: the probe returned an error (the write to bind
# failed, status 1: not killed by an oops), left nothing behind, and said why.
refused_cleanly() {
	n=${1##*/}
	why=$(grep -Ew "$n" "$TMP/dmesg.$n" | grep -Ei 'fail|invalid|error|refus|too|bad|unsupported' |
		head -n 2)
	echo "dmesg: ${why:-nothing about $n}"
	echo "device status $(cat "$1/status" 2>/dev/null)"
	! grep -E 'Oops|BUG|panicked|Call Trace' "$TMP/dmesg.$n" &&
		[ "$rc" -eq 1 ] && [ -n "$why" ] && ! [ -e "$1/driver" ] && [ -z "$(disk_of "$1")" ] &&
		! grep -qx "$2" /sys/block/*/serial 2>/dev/null
}

ktap_print_header
ktap_set_plan $((1 + 3 * $(echo "$PRESETS" | wc -w) + 4))

vrs_test "every preset has a lying disk, and $DRV loads with automatic binding off" '
	for p in $PRESETS; do
		d=$(dev_of $p) || { echo "no virtio device for badblk:$p in VRS_DEVICES=$VRS_DEVICES"; exit 1; }
		echo "$p: ${d##*/} ($(basename "$(readlink -f $d/..)"))"
	done
	echo 0 >$BUS/drivers_autoprobe && within 120 modprobe $DRV && driver_dir >/dev/null &&
	for p in $PRESETS; do ! [ -e "$(dev_of $p)/driver" ] || exit 1; done'

for p in $PRESETS; do
	D=$(dev_of "$p") || D=/nonexistent
	N=${D##*/}
	# One probe: a failed one makes the write to bind fail.
	dmesg -c >/dev/null
	out=$(within 60 sh -c "echo $N >'$(driver_dir)/bind'" 2>&1)
	rc=$?
	dmesg >"$TMP/dmesg.$N"
	O=$(outcome "$D")
	echo "$p $O" >>"$TMP/round1"
	ktap_print_msg "$p ($N): bind status $rc${out:+ ($out)}: $O"
	case $O in disk*) ktap_print_msg "$p: $(sane "${O#disk }" | head -n 1)" ;; esac
	[ "$rc" -eq 124 ] && O="broken: the probe hung"
	DISK=${O#disk }
	if [ "$p" = honest ]; then
		vrs_test "$p: the disk appears, named ${PAT%\[*}X, its serial the preset" '
			echo "$O"; test "$rc" -eq 0 && echo "$DISK" | grep -Eqx "$PAT" &&
			test "$(cat /sys/block/$DISK/serial)" = $p'
		vrs_test "$p: the limits are the honest ones" '
			sane $DISK && l=$(limits $DISK) && echo "$l" &&
			test "$l" = "512 4096 4096 65536 0 126 65536 16384"'
	else
		case $O in
		disk*)
			vrs_test "$p: refused cleanly, or the disk appears with its serial" '
				echo "clamped: $O"; test "$rc" -eq 0 && echo "$DISK" | grep -Eqx "$PAT" &&
				test "$(cat /sys/block/$DISK/serial)" = $p'
			vrs_test "$p: the limits are sane" 'sane $DISK'
			;;
		refused)
			vrs_test "$p: refused cleanly, or the disk appears with its serial" '
				echo "refused: bind status $rc"; refused_cleanly $D $p'
			vrs_skip "$p: the limits are sane" "the probe was refused"
			;;
		*)
			vrs_test "$p: refused cleanly, or the disk appears with its serial" 'echo "$O"; false'
			ktap_test_fail "$p: the limits are sane"
			;;
		esac
	fi
	case $O in
	disk*) vrs_test "$p: a 4 KiB O_DIRECT read returns the right sectors" 'read_4k $DISK' ;;
	refused) vrs_skip "$p: a 4 KiB O_DIRECT read returns the right sectors" "no disk" ;;
	*) ktap_test_fail "$p: a 4 KiB O_DIRECT read returns the right sectors" ;;
	esac
done

vrs_test "rmmod $DRV removes its disks and leaves every device unbound" '
	echo 1 >$BUS/drivers_autoprobe
	within 60 rmmod $DRV && ! test -d /sys/module/$DRV || exit 1
	for p in $PRESETS; do
		d=$(dev_of $p); test -z "$(disk_of $d)" && ! test -e $d/driver || { echo "$p: left behind"; exit 1; }
	done'
vrs_test "modprobe $DRV with automatic binding: the same outcome on every device" '
	! test -d /sys/module/$DRV || { echo "$DRV is still loaded: nothing to probe again"; exit 1; }
	dmesg -c >/dev/null
	within 120 modprobe $DRV || exit 1
	dmesg >$TMP/dmesg.round2
	for p in $PRESETS; do echo "$p $(outcome $(dev_of $p))"; done >$TMP/round2
	sed "s/ disk [a-z]*$/ disk/" $TMP/round1 >$TMP/r1
	sed "s/ disk [a-z]*$/ disk/" $TMP/round2 >$TMP/r2
	paste -d"|" $TMP/r1 $TMP/r2
	cmp -s $TMP/r1 $TMP/r2'
# GUIDE: a driver whose probe fails leaves the device reset. If it did, the
# second probe fails the same way; if the queues were left enabled, virtio
# PCI refuses to set them up again (-ENOENT) before the driver sees a lie.
vrs_test "a second probe of each refused device fails the same way (the first reset it)" '
	ok=0
	while read -r p d; do
		grep -q "^$p refused$" $TMP/round1 || continue
		e1=$(errno_of $d $TMP/dmesg.${d##*/}) e2=$(errno_of $d $TMP/dmesg.round2)
		echo "$p (${d##*/}): first probe error ${e1:-none}, second ${e2:-none}"
		[ -n "$e1" ] && [ "$e1" = "$e2" ] || ok=1
	done <$TMP/map
	exit $ok'
vrs_test "rmmod $DRV again, and the guest is still up" '
	within 60 rmmod $DRV && ! test -d /sys/module/$DRV && ls /sys/block | tr "\n" " " &&
	cat /proc/uptime >/dev/null'

ktap_finished
