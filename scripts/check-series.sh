#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Check that rust/patches/ is a series that stands on its own: it applies
# with `git am` to the pristine kernel, and the tree builds after each patch.
# Run it by hand, once, after changing the series. It is not part of CI or of
# `make check`, and it does not touch the tree that `make kernel` builds.
#
#   1. Extract the pinned kernel source into build/series/linux, a git
#      repository with one commit, tagged `pristine` (once; reused after).
#   2. `git am` the whole series onto it; stop if a patch does not apply.
#   3. For each patch, check out the commit it made and build rust/,
#      drivers/block/rnull.o and the object of every other .c or .rs file
#      the series changes, in build/series/kbuild: tinyconfig +
#      scripts/config/common.config + scripts/config/debug.config, LLVM=1.
#      The O= directory is shared by all the steps (and kept between runs),
#      so each step rebuilds only what the patch changed.
#
# Prints `ok` or `FAIL` per patch, with its build log under build/series/logs.
# Only the overlay's patches are applied: the new files it copies into the
# tree (rust/kernel/*.rs, rust/helpers/*.c) and the lines it inserts are not,
# so a patch that relies on them fails here.
#
# usage: scripts/check-series.sh [PATCH...]   (default: rust/patches/*.patch)
#        JOBS=N sets make's -j (default 2); make runs under `nice -n 10`.
#        CLIPPY=1 builds the Rust code with clippy (its findings count as
#        warnings).
set -euo pipefail
jobs=${JOBS:-2}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

SERIES=$BUILD/series
TREE=$SERIES/linux
KB=$SERIES/kbuild
LOGS=$SERIES/logs
ID=(-c user.name="virtio-rs series check" -c user.email="series@virtio-rs.invalid")

usage() { die "usage: scripts/check-series.sh [PATCH...] (default: rust/patches/*.patch)"; }

patches=()
for p in "$@"; do
	case "$p" in -h | --help) usage ;; esac
	[ -f "$p" ] || die "no such patch: $p"
	patches+=("$(cd "$(dirname "$p")" && pwd)/$(basename "$p")")
done
if [ ${#patches[@]} -eq 0 ]; then
	for p in "$ROOT"/rust/patches/*.patch; do
		[ -f "$p" ] && patches+=("$p")
	done
fi
[ ${#patches[@]} -gt 0 ] || die "no patches in $ROOT/rust/patches"
[ -f "$KTARBALL" ] || die "$KTARBALL is missing: run scripts/deps.sh (or install $KDEB_PKG=$KDEB_VER)"

mkdir -p "$SERIES" "$LOGS"
exec 9>"$SERIES/.lock"
flock -n 9 || die "another scripts/check-series.sh is running"
start=$(date +%s)

# 1. The pristine tree, as a git repository.
if ! git -C "$TREE" rev-parse -q --verify refs/tags/pristine >/dev/null 2>&1; then
	need_space 4
	step "extracting $(basename "$KTARBALL") into $TREE (one commit, tag 'pristine')"
	rm -rf "$TREE.partial" "$TREE"
	mkdir -p "$TREE.partial"
	tar -xf "$KTARBALL" --strip-components=1 -C "$TREE.partial"
	grep -q "^SUBLEVEL = ${KVER##*.}\$" "$TREE.partial/Makefile" ||
		die "$KTARBALL is not Linux $KVER: reinstall $KDEB_PKG=$KDEB_VER"
	(
		cd "$TREE.partial"
		git init -q -b series
		# Debian's top-level .gitignore ignores everything: add by force.
		git add -f -A
		GIT_AUTHOR_DATE=2025-01-01T00:00:00Z GIT_COMMITTER_DATE=2025-01-01T00:00:00Z git "${ID[@]}" commit -q \
			-m "Linux $KVER ($KDEB_PKG $KDEB_VER), pristine"
		git tag pristine
	)
	mv "$TREE.partial" "$TREE"
fi

# 2. The whole series, with git am.
step "applying ${#patches[@]} patches with git am"
[ -d "$TREE/.git/rebase-apply" ] && git -C "$TREE" am --abort
git -C "$TREE" checkout -q -f -B series pristine
if ! git -C "$TREE" "${ID[@]}" am -q "${patches[@]}" >"$LOGS/am.log" 2>&1; then
	cat "$LOGS/am.log" >&2
	git -C "$TREE" am --abort || true
	die "the series does not apply with git am (log: $LOGS/am.log)"
fi
mapfile -t commits < <(git -C "$TREE" rev-list --reverse pristine..HEAD)
[ ${#commits[@]} -eq ${#patches[@]} ] ||
	die "git am made ${#commits[@]} commits from ${#patches[@]} patches"
info "applied: $(git -C "$TREE" log -1 --format=%s)"

# What to build: the kernel crate, rnull, and every object of a .c or .rs
# file the series changes outside rust/ (rust/ builds its own).
targets=(rust/ drivers/block/rnull.o)
while read -r f; do
	case "$f" in
	rust/*) ;;
	*.c | *.rs) targets+=("${f%.*}.o") ;;
	esac
done < <(git -C "$TREE" diff --name-only pristine HEAD)
mapfile -t targets < <(printf '%s\n' "${targets[@]}" | sort -u)
info "targets: ${targets[*]}"

clippy=()
[ "${CLIPPY:-}" = 1 ] && clippy=(CLIPPY=1)
smake() { nice -n 10 make -C "$TREE" O="$KB" ARCH=x86_64 LLVM=1 "${clippy[@]}" "$@"; }

# 3. The configuration (again only when the fragments change), then one
# build per patch.
frags=("$ROOT/scripts/config/common.config" "$ROOT/scripts/config/debug.config")
hash=$(cat "${frags[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$KB/.config" ] || [ "$(cat "$KB/.vrs-config-hash" 2>/dev/null)" != "$hash" ]; then
	step "configuring $KB (tinyconfig + ${frags[*]##*/})"
	mkdir -p "$KB"
	rm -f "$KB/.vrs-config-hash"
	git -C "$TREE" checkout -q "${commits[0]}"
	smake -s tinyconfig >/dev/null
	(cd "$KB" && "$TREE/scripts/kconfig/merge_config.sh" -m -O "$KB" .config "${frags[@]}" >/dev/null)
	smake -s olddefconfig >/dev/null
	for sym in CONFIG_RUST CONFIG_BLK_DEV_RUST_NULL; do
		grep -q "^$sym=[ym]" "$KB/.config" ||
			die "$sym did not take effect in $KB/.config: check 'make LLVM=1 rustavailable' and the fragments"
	done
	echo "$hash" >"$KB/.vrs-config-hash"
fi

results=()
failed=0
for i in "${!commits[@]}"; do
	c=${commits[$i]}
	name=$(basename "${patches[$i]}" .patch)
	log=$LOGS/$name.log
	git -C "$TREE" checkout -q "$c"
	step "[$((i + 1))/${#commits[@]}] $(git -C "$TREE" log -1 --format=%s "$c")"
	t0=$(date +%s)
	if smake -j"$jobs" "${targets[@]}" >"$log" 2>&1; then
		warnings=$(grep 'warning:' "$log" | grep -cv 'warnings\? emitted' || true)
		status="ok"
		[ "$warnings" -eq 0 ] || status="ok, $warnings warning(s)"
	else
		grep -E '^error(\[|:)|: error:' "$log" | grep -v 'aborting due to' | head -10 >&2 || true
		status="FAIL"
		# Once the tree is broken, later patches inherit the failure.
		[ $failed -eq 0 ] || status="FAIL (an earlier patch failed)"
		failed=$((failed + 1))
	fi
	info "$status in $(($(date +%s) - t0)) s (log: $log)"
	results+=("$(printf '%-31s %s  %s' "$status" "$name" "$log")")
done
git -C "$TREE" checkout -q series

step "results ($(($(date +%s) - start)) s)"
printf '    %s\n' "${results[@]}" >&2
[ $failed -eq 0 ] || die "$failed of ${#commits[@]} patches do not build on their own"
info "every patch applies with git am and builds on its own"
