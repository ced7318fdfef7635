#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Report the KUnit suites that ran at boot (kunit.enable=1), among them the
# doctests of the kernel crate and of kernel::virtio, as one KTAP document.
# A suite that crashed or never finished shows up as a failure.
. "$(dirname "$0")/../kselftest/ktap_helpers.sh"

dir=/sys/kernel/debug/kunit
if [ ! -d "$dir" ] || [ -z "$(ls "$dir" 2>/dev/null)" ]; then
	ktap_print_header
	ktap_set_plan 1
	ktap_test_fail "kunit: no suites ran (is kunit.enable=1 on the command line?)"
	ktap_finished
fi
echo "KTAP version 1"
echo "1..$(ls "$dir" | wc -l)"
for s in "$dir"/*; do
	# Each results file is a complete, indented KTAP subtest.
	cat "$s/results"
done
