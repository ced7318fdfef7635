#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The build pipeline works end to end: the sample out-of-tree Rust module,
# built against the overlaid kernel crate, loads and unloads cleanly, and its
# module parameters (the `params:` of `module!`) behave as C ones do.
. "$(dirname "$0")/lib.sh"

MOD=rust_minimal_vrs
ktap_print_header
ktap_set_plan 27

vrs_test "modinfo: $MOD is GPL" 'modinfo -F license $MOD | grep -qx GPL'
dmesg -C
vrs_test "modprobe $MOD" 'modprobe $MOD'
vrs_test "$MOD is live in /sys/module" 'test -d /sys/module/$MOD'
vrs_test "$MOD init ran" 'dmesg | grep -q "$MOD: loaded (4 numbers), first 0"'
vrs_test "rmmod $MOD" 'rmmod $MOD'
vrs_test "$MOD drop ran and the module is gone" \
	'dmesg | grep -q "$MOD: unloaded (sum 42)" && ! test -e /sys/module/$MOD'

# Module parameters. modinfo lists them as it does C ones.
# shellcheck disable=SC2034 # used in the test strings
P=/sys/module/$MOD/parameters
vrs_test "modinfo: $MOD parm descriptions" \
	'modinfo -F parm $MOD | grep -qx "numbers:How many numbers to allocate on load (at most 1024)" &&
	 modinfo -F parm $MOD | grep -qx "first:The first number; each next one is 7 more"'
vrs_test "modinfo: $MOD parm types" \
	'modinfo -F parmtype $MOD | grep -qx numbers:uint && modinfo -F parmtype $MOD | grep -qx first:int'
vrs_test "params: defaults in sysfs, read-only" \
	'modprobe $MOD && test "$(cat $P/numbers)" = 4 && test "$(cat $P/first)" = 0 &&
	 test "$(stat -c %a $P/numbers)" = 444 && ! echo 5 2>/dev/null >$P/numbers &&
	 test "$(cat $P/numbers)" = 4 && rmmod $MOD'
dmesg -C
vrs_test "params: modprobe $MOD numbers=6 first=-10" 'modprobe $MOD numbers=6 first=-10'
vrs_test "params: values in sysfs" 'test "$(cat $P/numbers)" = 6 && test "$(cat $P/first)" = -10'
vrs_test "params: values seen by init" 'dmesg | grep -q "$MOD: loaded (6 numbers), first -10"'
vrs_test "params: values used until unload" \
	'rmmod $MOD && dmesg | grep -q "$MOD: unloaded (sum 45)"'
# C's parsing (kstrtouint() and friends): base prefixes work.
vrs_test "params: insmod numbers=0x10" \
	'KO=$(find /lib/modules -name $MOD.ko) && insmod $KO numbers=0x10 &&
	 test "$(cat $P/numbers)" = 16 && rmmod $MOD'

# A value that does not parse fails the load with EINVAL (ERANGE if too big),
# and leaves nothing behind, as for a C module.
vrs_refused() { # PARAM=VALUE ERROR-TEXT
	ko=$(find /lib/modules -name $MOD.ko)
	if out=$(insmod "$ko" "$1" 2>&1); then
		rmmod $MOD
		echo "insmod $1 succeeded"
		return 1
	fi
	echo "$out"
	echo "$out" | grep -q "$2" && ! test -e /sys/module/$MOD
}
vrs_test "params: numbers=abc is refused with EINVAL" 'vrs_refused numbers=abc "Invalid argument"'
vrs_test "params: numbers=-1 is refused with EINVAL" 'vrs_refused numbers=-1 "Invalid argument"'
vrs_test "params: first=1.5 is refused with EINVAL" 'vrs_refused first=1.5 "Invalid argument"'
vrs_test "params: numbers=4294967296 is refused with ERANGE" \
	'vrs_refused numbers=4294967296 "out of range"'
vrs_test "params: numbers=2000 is refused by init with EINVAL" \
	'vrs_refused numbers=2000 "Invalid argument" && dmesg | grep -q "$MOD: numbers=2000 is more than 1024"'
vrs_test "params: $MOD loads again after the refusals" \
	'modprobe $MOD && test "$(cat $P/numbers)" = 4 && rmmod $MOD'

# The real tools the suites use start in the guest (their shared libraries
# made it into the image).
for t in "fio --version" "iperf3 --version" "rngtest --version" "mkfs.ext4 -V" \
	"e2fsck -V" "stress-ng --version" "blkdiscard --version"; do
	vrs_test "tool runs: $t" "$VRS_BIN/$t"
done
ktap_finished
