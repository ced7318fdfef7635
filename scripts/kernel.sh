#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the kernel for one flavour: extract the pinned Debian source once,
# overlay rust/, configure (tinyconfig + fragments) and build. Every step is
# incremental and safe to interrupt: a rerun continues where it stopped.
#
# usage: scripts/kernel.sh [release|debug]...   (default: both)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

"$ROOT/scripts/deps.sh"

extract() {
	[ -f "$KSRC/.vrs-extracted" ] && return 0
	need_space 12
	step "extracting $(basename "$KTARBALL") ($KDEB_VER) into $KSRC"
	rm -rf "$KSRC.partial" "$KSRC"
	mkdir -p "$KSRC.partial"
	tar -xf "$KTARBALL" --strip-components=1 -C "$KSRC.partial"
	grep -q "^SUBLEVEL = ${KVER##*.}\$" "$KSRC.partial/Makefile" ||
		die "$KTARBALL is not Linux $KVER: reinstall $KDEB_PKG=$KDEB_VER"
	touch "$KSRC.partial/.vrs-extracted"
	mv "$KSRC.partial" "$KSRC"
}

overlay() {
	step "overlaying rust/ onto the kernel tree"
	python3 "$ROOT/scripts/overlay.py" "$ROOT" "$KSRC"
}

rustavailable() {
	local stamp=$KSRC/.vrs-rustavailable
	[ -f "$stamp" ] && return 0
	step "checking the Rust toolchain (make rustavailable)"
	make -C "$KSRC" LLVM=1 rustavailable >"$BUILD/rustavailable.log" 2>&1 ||
		die "make LLVM=1 rustavailable failed: see $BUILD/rustavailable.log"
	touch "$stamp"
}

configure() {
	local flavour=$1 kb frags hash
	kb=$(kbuild_dir "$flavour")
	frags=("$ROOT/scripts/config/common.config" "$ROOT/scripts/config/$flavour.config")
	hash=$(cat "${frags[@]}" | sha256sum | cut -c1-16)
	if [ -f "$kb/.config" ] && [ "$(cat "$kb/.vrs-config-hash" 2>/dev/null)" = "$hash" ]; then
		return 0
	fi
	step "configuring the $flavour kernel (tinyconfig + ${frags[*]##*/})"
	mkdir -p "$kb"
	rm -f "$kb/.vrs-config-hash"
	kmake "$flavour" -s tinyconfig >/dev/null
	(cd "$kb" && "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$kb" .config "${frags[@]}" >/dev/null)
	kmake "$flavour" -s olddefconfig >/dev/null
	# Every line of the fragments must have taken effect: a dependency
	# that Kconfig silently dropped would otherwise go unnoticed.
	local bad=0 line sym val
	while read -r line; do
		case "$line" in CONFIG_*=*) ;; *) continue ;; esac
		sym=${line%%=*} val=${line#*=}
		if [ "$val" = n ]; then
			grep -q "^$sym=" "$kb/.config" && { warn "$sym is set, fragment wants n"; bad=1; }
		else
			grep -qx "$sym=$val" "$kb/.config" || { warn "$sym=$val did not take effect ($(grep "^$sym=\|# $sym " "$kb/.config" || echo missing))"; bad=1; }
		fi
	done < <(cat "${frags[@]}")
	[ $bad -eq 0 ] || die "the $flavour config fragments do not apply cleanly to $KVER; fix scripts/config/"
	echo "$hash" >"$kb/.vrs-config-hash"
}

build() {
	local flavour=$1 kb start
	kb=$(kbuild_dir "$flavour")
	need_space 4
	step "building the $flavour kernel (first build: about 11 minutes on 2 cores; log: $kb/build.log)"
	start=$(date +%s)
	if ! kmake "$flavour" -j"$JOBS" bzImage modules >"$kb/build.log" 2>&1; then
		grep -E 'error|Error' "$kb/build.log" | head -20 >&2 || true
		die "the $flavour kernel build failed: see $kb/build.log"
	fi
	# modules_install into a staging directory, for the initramfs.
	kmake "$flavour" -s INSTALL_MOD_PATH="$kb/staging" modules_install >/dev/null 2>&1 ||
		die "modules_install failed for $flavour"
	info "$flavour kernel ready in $(($(date +%s) - start)) s: $kb/arch/x86/boot/bzImage"
}

parse_flavours "$@"

# One kernel build at a time: two makes in one tree corrupt it.
mkdir -p "$BUILD"
exec 9>"$BUILD/.kernel.lock"
if ! flock -n 9; then
	info "another kernel build is running; waiting for it"
	flock 9
fi

extract
overlay
rustavailable
for f in "${flavours[@]}"; do
	configure "$f"
	build "$f"
done
