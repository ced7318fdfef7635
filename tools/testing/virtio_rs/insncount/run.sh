#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh: which kernel functions execute the instructions of a virtio-blk
# I/O, C driver (virtio_blk) vs Rust (virtio_blk_rs), per I/O (issue 13).
#
# Builds the insncount QEMU plugin (insncount.c) and the guest's window
# marker (marker.c), boots one release guest (TCG, 1 vCPU, -icount
# shift=0,sleep=off, a null-co virtio-blk disk) with the plugin, and runs
# insncount-guest in it: per driver, REPS times fio 4k randread QD32 of N
# and then 2N I/Os, each in its own counting window; then analyse.py
# subtracts the N windows from the 2N windows function by function (exactly N I/Os: boot, module load, fio's
# start and end cancel) and prints instructions per I/O, C vs Rust, sorted
# by |Rust - C|, with totals (kernel by module, user space, whole guest).
#
# usage: tools/testing/virtio_rs/insncount/run.sh [N [REPS]]  (default 8000 4;
#        2N must stay within the 64 MiB fio region: N <= 8192)
# environment: INSNCOUNT_OUT  output directory (default build/insncount)
#              INSNCOUNT_TOP  rows of the table (default 25)
# Outputs in INSNCOUNT_OUT: counts.txt (the plugin's windows), guest.txt
# (the guest's output: window labels and /proc/kallsyms), table.txt.
# Uses the already built release kernel and initramfs (make FLAVOUR=release
# guest). The counts are of guest instructions, so the host's load does not
# change them, only how long the run takes (about 2 minutes).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
N=${1:-8000}
REPS=${2:-4}
OUT=${INSNCOUNT_OUT:-$ROOT/build/insncount}
mkdir -p "$OUT"

gcc -shared -fPIC -O2 -Wall -Wextra -fvisibility=hidden -o "$OUT/insncount.so" "$HERE/insncount.c" -lpthread
gcc -static -nostdlib -O2 -Wall -o "$OUT/insncount-marker" "$HERE/marker.c"

rm -f "$OUT/counts.txt" "$OUT/guest.txt"
cd "$ROOT"
scripts/vm --flavour release --accel tcg --smp 1 --devices blk \
	--drive-props blk=driver=null-co,read-zeroes=on --drivers none --quiet \
	--timeout 1800 --log "$OUT/console.log" --output "$OUT/guest.txt" \
	--qemu-arg=-icount --qemu-arg=shift=0,sleep=off \
	--qemu-arg=-plugin --qemu-arg="$OUT/insncount.so,out=$OUT/counts.txt" \
	--add-bin "$HERE/insncount-guest" --add-bin "$OUT/insncount-marker" \
	-- "sh /usr/local/bin/insncount-guest $N $REPS virtio_blk virtio_blk_rs" >/dev/null || {
	echo "run.sh: the guest failed; see $OUT/console.log and $OUT/guest.txt" >&2
	exit 1
}

"$ROOT/build/venv/bin/python3" "$HERE/analyse.py" --top "${INSNCOUNT_TOP:-25}" \
	"$OUT/counts.txt" "$OUT/guest.txt" | tee "$OUT/table.txt"
