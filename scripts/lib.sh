# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034
# Common helpers for the virtio-rs scripts. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${VRS_BUILD:-$ROOT/build}

# The kernel we build against. Pinned: see Documentation/architecture.rst.
KVER=6.12.117
KDEB_PKG=linux-source-6.12
KDEB_VER=6.12.117-1~deb12u1
KTARBALL=/usr/src/linux-source-6.12.tar.xz
KSRC=$BUILD/linux-$KVER
FLAVOURS="release debug"

# Pinned host tools.
BINDGEN_VER=0.73.0
QEMU_QMP_VER=0.0.6

export PATH="$HOME/.cargo/bin:$PATH"

JOBS=${JOBS:-$(($(nproc) + 1))}

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

kbuild_dir() { echo "$BUILD/kbuild-$1"; }

flavours=()
# Sets the array `flavours` from the arguments (default: every flavour),
# checking each.
parse_flavours() {
	flavours=("$@")
	[ ${#flavours[@]} -gt 0 ] || read -ra flavours <<<"$FLAVOURS"
	for f in "${flavours[@]}"; do check_flavour "$f"; done
}

check_flavour() {
	case " $FLAVOURS " in
	*" $1 "*) ;;
	*) die "unknown flavour '$1' (valid: ${FLAVOURS// /, })" ;;
	esac
}

# Kernel make invocation for flavour $1; the rest are make arguments.
kmake() {
	local flavour=$1
	shift
	make -C "$KSRC" O="$(kbuild_dir "$flavour")" ARCH=x86_64 LLVM=1 "$@"
}

# Fail early, and clearly, when the disk is nearly full (need $1 GiB).
need_space() {
	local want=$1 have
	mkdir -p "$BUILD"
	have=$(df -Pk "$BUILD" | awk 'NR==2 { print int($4 / 1048576) }')
	if [ "$have" -lt "$want" ]; then
		die "only ${have} GiB free under $BUILD, need about ${want} GiB: free some space (or set VRS_BUILD=/path/with/space) and rerun"
	fi
}

# Write $2 to file $1 only if the content differs (keeps mtimes stable).
write_if_changed() {
	local f=$1 content=$2
	if [ -f "$f" ] && [ "$(cat "$f")" = "$content" ]; then
		return 0
	fi
	printf '%s\n' "$content" >"$f.tmp.$$" && mv "$f.tmp.$$" "$f"
}
