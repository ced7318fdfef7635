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

# vrs_dev_at I: the virtio device (a /sys/bus/virtio/devices/virtioN) of the
# I-th (from 1) device of $VRS_DEVICES. The virtio index says nothing about
# it (probes may run in any order); the transport does. On pci, scripts/vm
# puts device I behind the PCIe root port with slot=I, and QEMU gives the
# ports the free slots of bus 0 in order (00:0I.0). On mmio, scripts/vm
# lists device I's window I-th on the kernel command line, which makes it
# the platform device virtio-mmio.(I-1).
vrs_dev_at() {
	for _vd in /sys/bus/virtio/devices/*; do
		_vp=$(readlink -f "$_vd/..")
		case ${_vp##*/} in
		virtio-mmio.*) [ "${_vp##*.}" -eq $(($1 - 1)) ] && echo "$_vd" && return 0 ;;
		*)
			_vp=$(readlink -f "$_vd/../..")
			_vp=${_vp##*/}
			_vp=${_vp#*:*:}
			[ $((0x${_vp%.*})) -eq "$1" ] && echo "$_vd" && return 0 ;;
		esac
	done
	return 1
}

# vrs_badblk_map: print "PRESET DEVICE-DIR" for every badblk:PRESET disk of
# $VRS_DEVICES. scripts/vm puts device I of --devices (counting from 1)
# behind the PCIe root port with slot=I, and QEMU gives the ports the free
# slots of bus 0 in order: 00:01.0, 00:02.0, ... So the root port's device
# number is the disk's place in $VRS_DEVICES (the disks' serials, which are
# the presets, cross-check this).
vrs_badblk_map() {
	for _vd in $(vrs_devices_of 2); do
		_vp=$(readlink -f "$_vd/../..")
		_vp=${_vp##*/}
		_vp=${_vp#*:*:}
		_vn=$(echo "$VRS_DEVICES" | cut -d, -f$((0x${_vp%.*})))
		[ "${_vn#badblk:}" != "$_vn" ] && echo "${_vn#badblk:} $_vd"
	done
	return 0
}

# vrs_pick_driver SCRIPT VAR ARG RUST-MODULE C-MODULE: sets KIND, the driver
# a suite tests (ARG, else the environment variable named VAR, else rust),
# and DRV, its module; exits 2 with a usage line unless KIND is rust or c.
# shellcheck disable=SC2034 # DRV is the calling suite's.
vrs_pick_driver() {
	eval "KIND=\${3:-\${$2:-rust}}"
	case $KIND in
	rust) DRV=$4 ;;
	c) DRV=$5 ;;
	*)
		echo "usage: $1 [rust|c] (or $2=rust|c)" >&2
		exit 2
		;;
	esac
}

# vrs_driver_dir MODULE: the /sys/bus/virtio/drivers entry of module MODULE
# (a driver's name need not be its module's).
vrs_driver_dir() {
	for _dd in /sys/bus/virtio/drivers/*; do
		_dm=$(readlink "$_dd/module" 2>/dev/null) || continue
		[ "${_dm##*/}" = "$1" ] && echo "$_dd" && return 0
	done
	echo "module $1 registered no virtio driver"
	return 1
}

# vrs_lookup FILE KEY: the value of KEY in FILE's "KEY VALUE" lines.
vrs_lookup() {
	while read -r _vk _vv; do
		[ "$_vk" = "$2" ] && echo "$_vv" && return 0
	done <"$1"
	return 1
}

# vrs_alive PID: the process exists and is not a zombie.
vrs_alive() { [ -e "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# vrs_within SECONDS COMMAND...: COMMAND's status and output, or 124 if it
# still runs after SECONDS. A task stuck in the kernel (on the device lock a
# crashed probe still holds, say) cannot be killed: it is left behind,
# detached from the test's output (a pipe that must close), and the tests
# go on.
vrs_within() {
	_wt=$1 _wo=${TMPDIR:-/tmp}/vrs-within.$$
	shift
	"$@" </dev/null >"$_wo" 2>&1 &
	_wp=$!
	_wi=0
	while vrs_alive $_wp && [ $_wi -lt "$_wt" ]; do sleep 1; _wi=$((_wi + 1)); done
	if vrs_alive $_wp; then
		kill -9 $_wp 2>/dev/null
		echo "$*: still running after $_wt s, left behind"
		return 124
	fi
	wait $_wp
	_ws=$?
	cat "$_wo"
	return $_ws
}
