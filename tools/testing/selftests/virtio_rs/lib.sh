# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# Shared helpers for the virtio_rs selftests. Source it after setting nothing;
# it brings in the kernel's ktap_helpers.sh.
. "$(dirname "$0")/../kselftest/ktap_helpers.sh"

# The real tools (fio, dd, blkdiscard, ...) live here. busybox ash runs its
# own applet of the same name in preference to PATH, so call them by path.
export VRS_BIN=/usr/local/bin

# vrs_test DESCRIPTION SHELL-CODE: one KTAP test, passing if the code succeeds.
# Its output goes to the log as KTAP diagnostics.
vrs_test() {
	desc=$1
	shift
	if out=$(eval "$*" 2>&1); then
		ktap_test_pass "$desc"
	else
		[ -n "$out" ] && echo "$out" | sed 's/^/# /' | tail -n 20
		ktap_test_fail "$desc"
	fi
}

# vrs_skip DESCRIPTION REASON: one skipped KTAP test, "ok N DESCRIPTION # SKIP
# REASON". make check lists the reason, and fails a SKIP that has none.
vrs_skip() {
	__ktap_test ok "$1" "SKIP $2"
	KTAP_CNT_SKIP=$((KTAP_CNT_SKIP + 1))
}

# vrs_feature DEVICE-DIR BIT: the negotiated value (0 or 1) of a feature bit.
vrs_feature() { cut -c$(($2 + 1)) "$1/features"; }

# vrs_devices_of ID: the sysfs directories of every virtio device with that id.
vrs_devices_of() {
	for d in /sys/bus/virtio/devices/*; do
		[ -e "$d" ] && [ $(($(cat "$d/device"))) -eq "$1" ] && echo "$d"
	done
}

# vrs_driver_module DEVICE-DIR: the module of the driver bound to it, or "-".
vrs_driver_module() {
	if [ -e "$1/driver/module" ]; then
		basename "$(readlink -f "$1/driver/module")"
	else
		echo -
	fi
}
