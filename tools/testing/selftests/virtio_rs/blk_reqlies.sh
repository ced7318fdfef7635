#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-blk drivers against a device whose answers to requests lie
# (scripts/vm --devices badblk:req-honest,badblk:req-ioerr,... --drivers
# none; one build/baddev backend per disk, `baddev blk --lie LIE`). Each disk
# is an 8 MiB RAM disk with the honest config plus DISCARD (up to 4 ranges)
# and WRITE_ZEROES; sector S starts with "baddev sector SSSSSSSS\n" and is
# zero after it; the serial is the preset's name. The lies, all on reads at
# or past sector 8192 (half the disk: the probe's partition scan, at sector
# 0, gets the truth) but unsupp's:
#   req-honest          none
#   req-ioerr           the read completes with VIRTIO_BLK_S_IOERR
#   req-unsupp          every DISCARD and WRITE_ZEROES completes with
#                       VIRTIO_BLK_S_UNSUPP
#   req-used-len-huge   right data and status, used length 0xffffffff
#   req-used-len-0      right data and status, used length 0
#   req-bad-id          answered right, then a used element whose id is the
#                       queue size (no such descriptor)
#   req-dup-id          answered right, then the same head used again
#   req-never           never answered (taken from the ring and kept)
#   req-irq-storm       answered right, then 200000 interrupts with nothing
#                       used (the kernel disables the line after 100000
#                       unhandled ones: "irq N: nobody cared")
# Every disk logs its requests; `vrs-host baddev badblk:PRESET log|clear`
# reads or empties the log of one.
#
# usage: blk_reqlies.sh [rust|c]   (default: $VRS_BLK_DRIVER, else rust)
#
# The driver binds every disk. Per lie the userspace-visible result is
# asserted: EIO for ioerr; EOPNOTSUPP for unsupp's hole punch (fallocate
# -p, a WRITE_ZEROES that may not fall back; the host's fallocate, which
# scripts/check.py adds with --add-bin), and success for its blkdiscard (the
# block layer ignores EOPNOTSUPP on a discard); the right data or EIO,
# without a hang, for the used-length and id lies, and the guest keeps
# running. The request log must show a blkdiscard as one DISCARD of that
# sector and length, and a BLKZEROOUT as a WRITE_ZEROES without unmap. Then
# rmmod removes every disk. A panic or splat fails the run through the
# host's console scan (scripts/check.py lets this suite have one report
# per "nobody cared", the kernel's own, from req-irq-storm). What C does
# is recorded in Documentation/hardening.rst.
#
# Rust only (the C driver has no blk-mq timeout handler; C's result is
# measured and recorded in hardening.rst, not asserted): req-never, where
# QMP device_del must still finish, the reader get EIO, and the guest stay
# up (C hangs in del_gendisk); req-irq-storm, where reads must still
# complete once the kernel has disabled the storming interrupt (C's next
# read never returns). Both use a 2 s io_timeout, which exists only with a
# timeout handler: the handler first looks for used buffers an interrupt
# did not announce, and stops a device being removed that left a request
# unanswered for a whole timeout.
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

KIND=${1:-${VRS_BLK_DRIVER:-rust}}
case $KIND in
rust) DRV=virtio_blk_rs PAT='rvd[a-z]+' ;;
c) DRV=virtio_blk PAT='vd[a-z]+' ;;
*)
	echo "usage: blk_reqlies.sh [rust|c] (or VRS_BLK_DRIVER=rust|c)" >&2
	exit 2
	;;
esac

PRESETS="req-honest req-ioerr req-unsupp req-used-len-huge req-used-len-0 req-bad-id req-dup-id"
PRESETS="$PRESETS req-never req-irq-storm"
DD=$VRS_BIN/dd
BLKDISCARD=$VRS_BIN/blkdiscard
TMP=${TMPDIR:-/tmp}/blk_reqlies
# The first sector the read lies are about (LIE_SECTOR in baddev's blk.rs).
LIE=8192
rm -rf "$TMP"
mkdir -p "$TMP"

# $TMP/map: "PRESET DEVICE-DIR" for every lying disk (lib.sh).
vrs_badblk_map >"$TMP/map"
# dev_of PRESET: the virtio device of badblk:PRESET.
dev_of() { vrs_lookup "$TMP/map" "$1"; }
disk_of() { ls "$(dev_of "$1")/block" 2>/dev/null | head -n 1; }
alive() { vrs_alive "$1"; }
within() { vrs_within "$@"; }
# sectors FIRST COUNT: what the device holds in those 512-byte sectors.
sectors() {
	s=$1
	while [ "$s" -lt $(($1 + $2)) ]; do
		printf 'baddev sector %08d\n' "$s"
		head -c 489 /dev/zero
		s=$((s + 1))
	done
}
# read_at DISK SECTOR: 4 KiB at SECTOR (a multiple of 8), with O_DIRECT,
# within 60 s; prints dd's error on a failure, and the data read if wrong.
read_at() {
	sectors "$2" 8 >"$TMP/want"
	rm -f "$TMP/got"
	within 60 "$DD" if="/dev/$1" of="$TMP/got" bs=4096 skip=$(($2 / 8)) count=1 iflag=direct ||
		return $?
	cmp "$TMP/want" "$TMP/got" || { od -A d -c "$TMP/got" | head -n 4; return 3; }
	echo "sectors $2..$(($2 + 7)): right"
}
# eio_at DISK SECTOR: the read fails with EIO.
eio_at() {
	out=$(read_at "$@")
	st=$?
	echo "$out"
	[ $st -ne 0 ] && [ $st -ne 124 ] && [ $st -ne 3 ] && echo "$out" | grep -q 'Input/output error'
}
# right_or_eio DISK SECTOR LABEL: the read returns the right sectors, or fails
# with EIO, within 60 s. Prints which as "RESULT: data" or "RESULT: EIO",
# and adds it, labelled LABEL, to $TMP/results.
right_or_eio() {
	out=$(read_at "$@")
	st=$?
	echo "$out"
	if [ $st -eq 0 ]; then
		r=data
	elif [ $st -ne 124 ] && [ $st -ne 3 ] && echo "$out" | grep -q 'Input/output error'; then
		r=EIO
	else
		echo "$3: sector $2: status $st" >>"$TMP/results"
		return 1
	fi
	echo "RESULT: $r"
	echo "$3: sector $2: $r" >>"$TMP/results"
}
# reqlog PRESET: the request log of that disk's backend.
reqlog() { vrs-host baddev "badblk:$1" log; }
up() { cat /proc/uptime >/dev/null && echo "guest up: $(cut -d' ' -f1 /proc/uptime) s"; }

ktap_print_header
ktap_set_plan 23

dmesg -c >/dev/null
vrs_test "$DRV binds every request-lie disk, its serial the preset" '
	within 120 modprobe $DRV || exit 1
	for p in $PRESETS; do
		n=$(disk_of $p); echo "$p: ${n:-no disk}"
		echo "$n" | grep -Eqx "$PAT" && test "$(cat /sys/block/$n/serial)" = $p || exit 1
	done'

H=$(disk_of req-honest)
vrs_test "req-honest: reads below and past half the disk return the right sectors" '
	read_at $H 16 && read_at $H $LIE'
vrs_test "req-honest: blkdiscard of a range arrives as one DISCARD of that sector and length" '
	vrs-host baddev badblk:req-honest clear &&
	$BLKDISCARD -o 1048576 -l 65536 /dev/$H && reqlog req-honest >$TMP/log.discard || exit 1
	cat $TMP/log.discard
	grep -qx "DISCARD ranges=1 sector=2048 sectors=128 flags=0 status=OK" $TMP/log.discard &&
	test "$(grep -c DISCARD $TMP/log.discard)" -eq 1'
vrs_test "req-honest: BLKZEROOUT of a range arrives as one WRITE_ZEROES, no unmap" '
	vrs-host baddev badblk:req-honest clear &&
	$BLKDISCARD -z -o 2097152 -l 65536 /dev/$H && reqlog req-honest >$TMP/log.zero || exit 1
	cat $TMP/log.zero
	grep -qx "WRITE_ZEROES ranges=1 sector=4096 sectors=128 flags=0 unmap=0 status=OK" \
		$TMP/log.zero && test "$(grep -c WRITE_ZEROES $TMP/log.zero)" -eq 1'

N=$(disk_of req-ioerr)
vrs_test "req-ioerr: a read past half the disk fails with EIO" 'eio_at $N $LIE'
vrs_test "req-ioerr: a read below half still returns the right sectors" 'read_at $N 16 && up'

N=$(disk_of req-unsupp)
# util-linux fallocate words EOPNOTSUPP on a punch (which keeps the size)
# as "keep size mode is unsupported"; it prints no other error that way.
vrs_test "req-unsupp: a hole punch (WRITE_ZEROES, no fallback) fails with EOPNOTSUPP" '
	vrs-host baddev badblk:req-unsupp clear >/dev/null || exit 1
	test -x $VRS_BIN/fallocate || { echo "no $VRS_BIN/fallocate (scripts/vm --add-bin fallocate)"; exit 1; }
	out=$(within 60 $VRS_BIN/fallocate -p -o 1048576 -l 65536 /dev/$N); st=$?
	echo "fallocate status $st: $out"; reqlog req-unsupp | grep -v "^IN "
	test $st -ne 0 && test $st -ne 124 &&
	echo "$out" | grep -Eq "Operation not supported|keep size mode is unsupported" &&
	reqlog req-unsupp | grep -q "^WRITE_ZEROES ranges=1 sector=2048 sectors=128 flags=1 unmap=1 status=UNSUPP lie=unsupp$"'
# BLKDISCARD turns EOPNOTSUPP into success (block/ioctl.c): a discard is a hint.
vrs_test "req-unsupp: blkdiscard succeeds, though its DISCARD was answered UNSUPP" '
	vrs-host baddev badblk:req-unsupp clear >/dev/null || exit 1
	out=$(within 60 $BLKDISCARD -o 0 -l 65536 /dev/$N); st=$?
	echo "blkdiscard status $st: $out"; reqlog req-unsupp | grep -v "^IN "
	test $st -eq 0 &&
	reqlog req-unsupp | grep -q "^DISCARD ranges=1 sector=0 sectors=128 flags=0 status=UNSUPP lie=unsupp$"'
vrs_test "req-unsupp: reads still work, the guest is up" 'read_at $N 16 && read_at $N $LIE && up'

for p in req-used-len-huge req-used-len-0 req-bad-id req-dup-id; do
	N=$(disk_of $p)
	vrs_test "$p: a read past half the disk returns the right sectors or EIO, no hang" '
		vrs-host baddev badblk:$p clear >/dev/null
		right_or_eio $N $LIE "$p, first read" || exit 1
		reqlog $p | grep -q "^IN sector=$LIE len=4096 status=OK lie=" ||
			{ echo "the lie was not told:"; reqlog $p; exit 1; }'
	vrs_test "$p: afterwards reads return the right sectors or EIO, the guest is up" '
		right_or_eio $N 16 "$p, then" && right_or_eio $N $LIE "$p, then" && up'
done

RUST_ONLY="Rust only: C has no timeout handler (its result is in Documentation/hardening.rst)"
N=$(disk_of req-irq-storm)
if [ "$KIND" = c ]; then
	vrs_skip "req-irq-storm: the storm comes, and the kernel disables the interrupt" "$RUST_ONLY"
	vrs_skip "req-irq-storm: reads still return the right sectors, without the interrupt" "$RUST_ONLY"
else
	vrs_test "req-irq-storm: the storm comes, and the kernel disables the interrupt" '
		echo 2000 >/sys/block/$N/queue/io_timeout || exit 1
		right_or_eio $N $LIE "req-irq-storm, first read" || exit 1
		i=0; while ! dmesg | grep -q "nobody cared" && [ $i -lt 90 ]; do sleep 1; i=$((i + 1)); done
		dmesg | grep -E "nobody cared|Disabling IRQ"; reqlog req-irq-storm | grep STORM
		dmesg | grep -q "Disabling IRQ"'
	vrs_test "req-irq-storm: reads still return the right sectors, without the interrupt" '
		read_at $N 16 && read_at $N $LIE && up &&
		dmesg | grep "completed without an interrupt" | tail -n 2'
fi

N=$(disk_of req-never)
D=$(dev_of req-never)
# The QEMU id of the disk: scripts/vm numbers the badblk disks in --devices order.
ID=badblk$(($(echo "$PRESETS" | tr ' ' '\n' | grep -n -x req-never | cut -d: -f1) - 1))
if [ "$KIND" = c ]; then
	vrs_skip "req-never: a read past half the disk waits for the device" "$RUST_ONLY"
	vrs_skip "req-never: device_del finishes, the reader gets EIO" "$RUST_ONLY"
	vrs_skip "req-never: the guest is up, the other disks still read" "$RUST_ONLY"
else
	vrs_test "req-never: a read past half the disk waits for the device" '
		echo 2000 >/sys/block/$N/queue/io_timeout || exit 1
		rm -f $TMP/never.out
		($DD if=/dev/$N of=/dev/null bs=4096 skip=$((LIE / 8)) count=1 iflag=direct \
			>$TMP/never.out 2>&1; echo "status $?" >>$TMP/never.out) </dev/null >/dev/null 2>&1 &
		sleep 6
		reqlog req-never | grep "NEVER ANSWERED" && test ! -s $TMP/never.out &&
		echo "in flight: $(cat /sys/block/$N/inflight)"'
	vrs_test "req-never: device_del finishes, the reader gets EIO" '
		vrs-host "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"$ID\"}}" || exit 1
		i=0; while [ -e "$D" ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
		i=0; while ! grep -q "^status" $TMP/never.out && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
		cat $TMP/never.out; dmesg | grep -E "unanswered|aborting" | tail -n 2
		! test -e "$D" && grep -q "Input/output error" $TMP/never.out'
	vrs_test "req-never: the guest is up, the other disks still read" '
		read_at $(disk_of req-honest) $LIE && read_at $(disk_of req-ioerr) 16 && up'
fi

while IFS= read -r l; do ktap_print_msg "$DRV: $l"; done <"$TMP/results"
dmesg | grep -Ei "virtio|I/O error|not supported|out of range|not a head|token" | tail -n 30 |
	while IFS= read -r l; do ktap_print_msg "dmesg: $l"; done

vrs_test "rmmod $DRV removes every disk, and the guest is still up" '
	within 60 rmmod $DRV && ! test -d /sys/module/$DRV || exit 1
	for p in $PRESETS; do test -z "$(disk_of $p 2>/dev/null)" || { echo "$p: left behind"; exit 1; }; done
	up'

ktap_finished
