#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything virtio-rs needs on a Debian 12 host. Idempotent: every
# step checks first and only installs what is missing.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

STAMP=$BUILD/.deps-ok

APT_PKGS=(
	# kernel build
	"$KDEB_PKG" clang lld llvm libclang-dev bc flex bison libelf-dev
	libssl-dev cpio kmod rsync make gcc libc6-dev python3 python3-venv xz-utils
	# guest
	qemu-system-x86 busybox-static
	# tools that run inside the guest (qemu-guest-agent: qemu-ga, which the
	# console tests run on a virtio-serial port)
	fio iperf3 sockperf iproute2 rng-tools5 e2fsprogs stress-ng util-linux ethtool tcpdump
	qemu-guest-agent
	# benchmarks
	gnuplot-nox
	# lint
	shellcheck
)

# A fast path, so that a rerun with everything installed costs nothing.
if [ -f "$STAMP" ] && [ "$STAMP" -nt "$0" ] && [ -z "${VRS_DEPS_FORCE:-}" ]; then
	exit 0
fi

step "checking host dependencies"
mkdir -p "$BUILD"
[ "$(id -u)" -eq 0 ] || die "installing packages needs root: rerun as root (sudo make ...)"
[ -r /etc/debian_version ] || die "this script supports Debian 12 only"

missing=()
for p in "${APT_PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	step "apt: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed: check the network, then rerun"
	pins=()
	for p in "${missing[@]}"; do
		if [ "$p" = "$KDEB_PKG" ]; then
			# Not `apt-cache | grep -q`: under pipefail, grep's early exit
			# gives apt-cache a SIGPIPE and fails the whole test.
			if apt-cache madison "$KDEB_PKG" | awk -v v="$KDEB_VER" '$3 == v { f = 1 } END { exit !f }'; then
				pins+=("$KDEB_PKG=$KDEB_VER")
			else
				die "$KDEB_PKG $KDEB_VER is no longer in the Debian archive; update KDEB_VER/KVER in scripts/lib.sh to a version 'apt-cache madison $KDEB_PKG' lists, and retest"
			fi
		else
			pins+=("$p")
		fi
	done
	apt-get install -y -qq --no-install-recommends "${pins[@]}" >"$BUILD/apt.log" 2>&1 ||
		die "apt-get install failed (log: $BUILD/apt.log); run: apt-get install ${pins[*]}"
fi

have_kver=$(dpkg-query -W -f='${Version}' "$KDEB_PKG")
if [ "$have_kver" != "$KDEB_VER" ]; then
	die "$KDEB_PKG $have_kver is installed, but virtio-rs is pinned to $KDEB_VER: run apt-get install $KDEB_PKG=$KDEB_VER"
fi
[ -f "$KTARBALL" ] || die "$KTARBALL is missing: run apt-get install --reinstall $KDEB_PKG=$KDEB_VER"

step "rust: toolchain and rust-src"
command -v rustup >/dev/null ||
	die "rustup not found: install it (https://rustup.rs), or put ~/.cargo/bin on PATH"
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	rustup component add rust-src || die "rustup component add rust-src failed"
fi
info "$(rustc --version)"

if [ "$(bindgen --version 2>/dev/null | awk '{ print $2 }')" != "$BINDGEN_VER" ]; then
	step "cargo: installing bindgen-cli $BINDGEN_VER (about 2 minutes)"
	cargo install --locked "bindgen-cli@$BINDGEN_VER" >"$BUILD/bindgen-install.log" 2>&1 ||
		die "cargo install bindgen-cli failed (log: $BUILD/bindgen-install.log)"
fi
info "$(bindgen --version)"

step "python: venv with qemu.qmp $QEMU_QMP_VER"
if ! "$BUILD/venv/bin/python3" -c 'import qemu.qmp' 2>/dev/null; then
	rm -rf "$BUILD/venv"
	python3 -m venv "$BUILD/venv" || die "python3 -m venv failed: run apt-get install python3-venv"
	"$BUILD/venv/bin/pip" install -q "qemu.qmp==$QEMU_QMP_VER" ||
		die "pip install qemu.qmp failed (is PyPI reachable?)"
fi

touch "$STAMP"
