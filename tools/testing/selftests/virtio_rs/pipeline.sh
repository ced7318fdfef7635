#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The build pipeline works end to end: the sample out-of-tree Rust module,
# built against the overlaid kernel crate, loads and unloads cleanly.
. "$(dirname "$0")/lib.sh"

MOD=rust_minimal_vrs
ktap_print_header
ktap_set_plan 13

vrs_test "modinfo: $MOD is GPL" 'modinfo -F license $MOD | grep -qx GPL'
dmesg -C
vrs_test "modprobe $MOD" 'modprobe $MOD'
vrs_test "$MOD is live in /sys/module" 'test -d /sys/module/$MOD'
vrs_test "$MOD init ran" 'dmesg | grep -q "$MOD: loaded (4 numbers)"'
vrs_test "rmmod $MOD" 'rmmod $MOD'
vrs_test "$MOD drop ran and the module is gone" \
	'dmesg | grep -q "$MOD: unloaded (sum 42)" && ! test -e /sys/module/$MOD'

# The real tools the suites use start in the guest (their shared libraries
# made it into the image).
for t in "fio --version" "iperf3 --version" "rngtest --version" "mkfs.ext4 -V" \
	"e2fsck -V" "stress-ng --version" "blkdiscard --version"; do
	vrs_test "tool runs: $t" "$VRS_BIN/$t"
done
ktap_finished
