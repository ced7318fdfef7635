#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build baddev, the lying vhost-user backends (virtio-rng and virtio-blk) that
# the badrng, blk-lies and blk-reqlies selftests need (tools/testing/virtio_rs/baddev),
# into build/baddev. Idempotent: cargo rebuilds only what changed, and the
# binary is copied only when it differs. scripts/vm runs this itself for
# --devices badrng and badblk:PRESET.
#
# usage: scripts/baddev.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

SRC=$ROOT/tools/testing/virtio_rs/baddev
OUT=$BUILD/baddev
export CARGO_TARGET_DIR=$BUILD/baddev-target

command -v cargo >/dev/null || die "cargo is missing: run scripts/deps.sh (or make check)"
step "building baddev (the lying vhost-user backends) into ${OUT#"$ROOT"/}"
cargo build --quiet --release --locked -j "$JOBS" --manifest-path "$SRC/Cargo.toml"
# A private temporary name: make check runs guests, and so this, in parallel.
if ! cmp -s "$CARGO_TARGET_DIR/release/baddev" "$OUT"; then
	install -m 755 "$CARGO_TARGET_DIR/release/baddev" "$OUT.tmp.$$"
	mv "$OUT.tmp.$$" "$OUT"
fi
