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
# Each results file is a complete KTAP document for one suite: drop its
# top-level header and plan, and renumber its top-level result line, so the
# suites become subtests of one document.
echo "KTAP version 1"
echo "1..$(ls "$dir" | wc -l)"
n=0
for s in "$dir"/*; do
	n=$((n + 1))
	sed -e '/^KTAP version/d' -e '/^1\.\.[0-9]*$/d' \
		-e "s/^ok [0-9]* /ok $n /" -e "s/^not ok [0-9]* /not ok $n /" "$s/results"
done
