#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The build pipeline works end to end: the sample out-of-tree Rust module,
# built against the overlaid kernel crate, loads and unloads cleanly.
. "$(dirname "$0")/../kselftest/ktap_helpers.sh"

MOD=rust_minimal_vrs
ktap_print_header
ktap_set_plan 6

ktap_test_result "modinfo: $MOD is GPL" sh -c "modinfo -F license $MOD | grep -qx GPL"
dmesg -C
ktap_test_result "modprobe $MOD" modprobe $MOD
ktap_test_result "$MOD is live in /sys/module" test -d /sys/module/$MOD
ktap_test_result "$MOD init ran" sh -c "dmesg | grep -q '$MOD: loaded (4 numbers)'"
ktap_test_result "rmmod $MOD" rmmod $MOD
ktap_test_result "$MOD drop ran and the module is gone" \
	sh -c "dmesg | grep -q '$MOD: unloaded (sum 42)' && ! test -e /sys/module/$MOD"
ktap_finished
