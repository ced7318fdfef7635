#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build every out-of-tree Rust module in this repository against one kernel
# flavour. A module directory is any directory with a Kbuild file (outside
# build/, rust/, scripts/, tools/ and Documentation/); each is built on its
# own with M=. The sources are mirrored into build/modules-<flavour>/ so
# that build outputs never land in the repository; unchanged files keep
# their mtimes, so rebuilds are incremental. Modules that build with a
# warning count as failed.
#
# usage: scripts/modules.sh [release|debug]...   (default: both)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

module_dirs() {
	# The drivers and samples, and the selftests' test modules; nothing else
	# under tools/ (the must-not-build cases are built by their own runner).
	(cd "$ROOT" && { find . -name Kbuild \
		-not -path './build/*' -not -path './rust/*' -not -path './scripts/*' \
		-not -path './tools/*' -not -path './Documentation/*' -not -path './.git/*'
		find ./tools/testing/selftests/virtio_rs/test_modules -name Kbuild; } |
		sed 's|^\./||; s|/Kbuild$||' | sort)
}

build_modules() {
	local flavour=$1 kb out dirs d kver failed=()
	kb=$(kbuild_dir "$flavour")
	[ -f "$kb/vmlinux" ] || die "the $flavour kernel is not built: run scripts/kernel.sh $flavour (or make kernel)"
	out=$BUILD/modules-$flavour
	mapfile -t dirs < <(module_dirs)
	step "building ${#dirs[@]} out-of-tree module dir(s) for $flavour: ${dirs[*]}"
	kver=$(cat "$kb/include/config/kernel.release")
	rm -rf "$kb/staging/lib/modules/$kver/extra"
	mkdir -p "$kb/staging/lib/modules/$kver/extra"
	# One M= build per directory, so that one broken driver does not hide
	# the others; the step still fails if any directory failed.
	for d in "${dirs[@]}"; do
		mkdir -p "$out/$d"
		rsync -rc --delete --include='*/' --include='*.rs' --include='*.c' --include='*.h' \
			--include='Kbuild' --exclude='*' "$ROOT/$d/" "$out/$d/"
		if ! kmake "$flavour" M="$out/$d" -j"$JOBS" modules >"$out/$d/build.log" 2>&1; then
			grep -E -A7 '^(error|warning)|Error' "$out/$d/build.log" | head -40 >&2 || true
			failed+=("$d")
			continue
		fi
		if grep -q '^warning' "$out/$d/build.log"; then
			grep -A7 '^warning' "$out/$d/build.log" | head -40 >&2
			failed+=("$d")
			continue
		fi
		find "$out/$d" -maxdepth 1 -name '*.ko' -exec cp -p {} "$kb/staging/lib/modules/$kver/extra/" \;
	done
	depmod -b "$kb/staging" "$kver"
	info "installed: $(find "$kb/staging/lib/modules/$kver/extra" -name '*.ko' -printf '%f ' | sort)"
	[ ${#failed[@]} -eq 0 ] ||
		die "module build failed for $flavour in: ${failed[*]} (logs: $out/<dir>/build.log)"
}

parse_flavours "$@"
for f in "${flavours[@]}"; do build_modules "$f"; done
