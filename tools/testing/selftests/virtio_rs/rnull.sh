#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# rnull (drivers/block/rnull.rs, CONFIG_BLK_DEV_RUST_NULL), 6.12's in-tree
# Rust null block driver, on our block::mq (rust/patches): it loads, its
# disk rnullb0 takes a few seconds of fio random reads and writes (without
# verify: 6.12's rnull stores no data, it ends every request at once), and
# it unloads. Needs no device (scripts/vm --devices none).
# Variables below are read by the code strings vrs_test evaluates.
# shellcheck disable=SC2034
. "$(dirname "$0")/lib.sh"

MOD=rnull_mod
FIO=$VRS_BIN/fio
TMP=${TMPDIR:-/tmp}

ktap_print_header
ktap_set_plan 4

vrs_test "modprobe $MOD: the disk rnullb0 appears" '
	modprobe $MOD || exit 1
	i=0; while ! [ -b /dev/rnullb0 ] && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done
	cat /sys/block/rnullb0/size; test -b /dev/rnullb0'
vrs_test "fio randrw on rnullb0 for 5 s (libaio, depth 16, 2 jobs): no error" '
	"$FIO" --name=rnull --filename=/dev/rnullb0 --rw=randrw --bs=4k --size=64M \
		--direct=1 --ioengine=libaio --iodepth=16 --numjobs=2 --time_based --runtime=5 \
		--group_reporting --output-format=terse >$TMP/rnull.out 2>&1; rc=$?
	awk -F";" "/^3;/ { print \"fio: error \" \$5 \", read \" \$6 \" KiB, written \" \$47 \" KiB\" }" $TMP/rnull.out
	[ $rc -eq 0 ] || tail -n 5 $TMP/rnull.out | cut -c1-200
	test $rc -eq 0 && awk -F";" "/^3;/ { exit !(\$5 == 0 && \$6 > 0 && \$47 > 0) }" $TMP/rnull.out'
vrs_test "buffered dd through the page cache on rnullb0" '
	$VRS_BIN/dd if=/dev/zero of=/dev/rnullb0 bs=64k count=64 2>/dev/null &&
	$VRS_BIN/dd if=/dev/rnullb0 of=/dev/null bs=64k count=64 2>/dev/null'
vrs_test "rmmod $MOD: the disk goes" 'rmmod $MOD && ! test -e /sys/block/rnullb0'

ktap_finished
