#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh: which kernel functions execute the instructions of one virtio
# operation, C driver vs Rust, per operation (issues 13 and 15).
#
# Builds the insncount QEMU plugin (insncount.c) and the guest's window
# marker (marker.c), boots one release guest (TCG, 1 vCPU, -icount
# shift=0,sleep=off) with the plugin, and runs the guest half in it; per
# driver, REPS times a run of N and then 2N operations, each in its own
# counting window. Then analyse.py subtracts the N windows from the 2N
# windows function by function (exactly N operations: boot, module load, the
# client's start and end cancel) and prints instructions per operation, C
# vs Rust, sorted by |Rust - C|, with totals (kernel by module, user space,
# whole guest).
#
# usage: tools/testing/virtio_rs/insncount/run.sh [blk|net] [N [REPS]]
#   blk (the default): a null-co virtio-blk disk; an operation is one 4k
#       random read of fio at QD32 (insncount-guest); N defaults to 8000
#       (2N must stay within the 64 MiB fio region: N <= 8192).
#   net: two virtio-net devices on a QEMU hub, one per guest namespace; an
#       operation is one UDP round trip of INSNCOUNT_LEN (default 64) bytes
#       (insncount-guest-net, udp-pingpong.c): two transmits and two
#       receives. N defaults to 2000.
#   REPS defaults to 4.
# environment: INSNCOUNT_OUT  output directory (default build/insncount[-net])
#              INSNCOUNT_TOP  rows of the table (default 25)
# Outputs in INSNCOUNT_OUT: counts.txt (the plugin's windows), guest.txt
# (the guest's output: window labels and /proc/kallsyms), table.txt.
# Uses the already built release kernel and initramfs (make FLAVOUR=release
# guest). The counts are of guest instructions, so the host's load does not
# change them, only how long the run takes (2 to 5 minutes).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
DEV=blk
case ${1:-} in
blk | net) DEV=$1; shift ;;
esac
if [ "$DEV" = blk ]; then N=${1:-8000}; else N=${1:-2000}; fi
REPS=${2:-4}
LEN=${INSNCOUNT_LEN:-64}
if [ "$DEV" = blk ]; then OUT=${INSNCOUNT_OUT:-$ROOT/build/insncount}; else OUT=${INSNCOUNT_OUT:-$ROOT/build/insncount-net}; fi
mkdir -p "$OUT"

gcc -shared -fPIC -O2 -Wall -Wextra -fvisibility=hidden -o "$OUT/insncount.so" "$HERE/insncount.c" -lpthread
gcc -static -nostdlib -O2 -Wall -o "$OUT/insncount-marker" "$HERE/marker.c"

rm -f "$OUT/counts.txt" "$OUT/guest.txt"
cd "$ROOT"
if [ "$DEV" = blk ]; then
	DEVARGS=(--devices blk --drive-props blk=driver=null-co,read-zeroes=on)
	GUEST=(--add-bin "$HERE/insncount-guest" -- "sh /usr/local/bin/insncount-guest $N $REPS virtio_blk virtio_blk_rs")
	MODS=(--c virtio_blk --rust virtio_blk_rs)
else
	gcc -static -O2 -Wall -Wextra -o "$OUT/udp-pingpong" "$HERE/udp-pingpong.c"
	DEVARGS=(--devices net,net1)
	GUEST=(--add-bin "$HERE/insncount-guest-net" --add-bin "$OUT/udp-pingpong"
		-- "sh /usr/local/bin/insncount-guest-net $N $REPS $LEN virtio_net virtio_net_rs")
	MODS=(--c virtio_net --rust virtio_net_rs)
fi
scripts/vm --flavour release --accel tcg --smp 1 "${DEVARGS[@]}" --drivers none --quiet \
	--timeout 1800 --log "$OUT/console.log" --output "$OUT/guest.txt" \
	--qemu-arg=-icount --qemu-arg=shift=0,sleep=off \
	--qemu-arg=-plugin --qemu-arg="$OUT/insncount.so,out=$OUT/counts.txt" \
	--add-bin "$OUT/insncount-marker" "${GUEST[@]}" >/dev/null || {
	echo "run.sh: the guest failed; see $OUT/console.log and $OUT/guest.txt" >&2
	exit 1
}

"$ROOT/build/venv/bin/python3" "$HERE/analyse.py" --top "${INSNCOUNT_TOP:-25}" "${MODS[@]}" \
	"$OUT/counts.txt" "$OUT/guest.txt" | tee "$OUT/table.txt"
