#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Static checks: rustfmt and clippy on the overlay and every module, the
# shell linter on the scripts, and no `unsafe` anywhere under drivers/.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

flavour=${1:-debug}
check_flavour "$flavour"
fail=0

step "no unsafe in drivers/"
# Only the directories that exist: grep exits 2 on a missing one even when it
# found matches in the others, which would hide them.
dirs=()
for d in "$ROOT/drivers" "$ROOT/net"; do [ -d "$d" ] && dirs+=("$d"); done
if [ ${#dirs[@]} -gt 0 ] && grep -rn --include='*.rs' -w unsafe "${dirs[@]}"; then
	warn "drivers must not use unsafe: add the missing safe abstraction instead"
	fail=1
fi

step "rustfmt"
mapfile -t rs < <(cd "$ROOT" && git ls-files '*.rs')
if ! (cd "$ROOT" && rustfmt --check --edition 2021 --config-path "$KSRC/.rustfmt.toml" "${rs[@]}"); then
	warn "run: rustfmt --edition 2021 --config-path $KSRC/.rustfmt.toml <file>"
	fail=1
fi

step "clippy on the kernel crate (with the overlay) and the modules"
"$ROOT/scripts/kernel.sh" "$flavour" >/dev/null
exec 9>"$BUILD/.kernel.lock"
flock 9
if ! kmake "$flavour" -j"$JOBS" CLIPPY=1 rust/ >"$BUILD/clippy-kernel.log" 2>&1 ||
	grep -q '^warning' "$BUILD/clippy-kernel.log"; then
	grep -A7 '^\(warning\|error\)' "$BUILD/clippy-kernel.log" | head -60 >&2
	warn "clippy on the kernel crate: see $BUILD/clippy-kernel.log"
	fail=1
fi
out=$BUILD/modules-$flavour
for d in $(cd "$out" && find . -name Kbuild -printf '%h\n' | sed 's|^\./||' | sort); do
	if ! kmake "$flavour" M="$out/$d" CLIPPY=1 modules >"$out/$d/clippy.log" 2>&1 ||
		grep -q '^warning' "$out/$d/clippy.log"; then
		grep -A7 '^\(warning\|error\)' "$out/$d/clippy.log" | head -40 >&2
		warn "clippy on $d: see $out/$d/clippy.log"
		fail=1
	fi
done
# Put the normal objects back, so the next build does not start from clippy's.
kmake "$flavour" -j"$JOBS" rust/ >/dev/null 2>&1 || true

step "shellcheck"
if command -v shellcheck >/dev/null; then
	mapfile -t sh < <(cd "$ROOT" && git ls-files 'scripts/*.sh' scripts/vm scripts/guest \
		'tools/testing/selftests/virtio_rs/*.sh' .ci/run)
	(cd "$ROOT" && shellcheck -x "${sh[@]}") || fail=1
else
	info "shellcheck not installed (apt-get install shellcheck); skipped"
fi

[ $fail -eq 0 ] || die "lint found problems (above)"
info "lint clean"
