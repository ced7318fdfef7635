#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the guest initramfs for one flavour with the kernel's own
# usr/gen_init_cpio: busybox, the guest scripts (scripts/guest: init, the
# vrs-* helpers, and /etc/os-release, which qemu-ga's guest-get-osinfo
# reads), the selftests, the C and Rust modules, and the real tools the
# tests use (qemu-ga among them) with their shared libraries. Rebuilt only
# when one of its inputs changes.
#
# usage: scripts/initramfs.sh [release|debug]...   (default: both)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Real tools the tests use (the busybox applets are not enough).
TOOLS=(fio iperf3 sockperf rngtest mke2fs e2fsck stress-ng blkdiscard dd sha256sum ip ethtool tcpdump
	qemu-ga)
# More host tools for ad hoc work, e.g. VRS_EXTRA_TOOLS=perf for a profile
# (Documentation/benchmarks.rst); the image is rebuilt when the list changes.
read -r -a extra <<<"${VRS_EXTRA_TOOLS:-}"
TOOLS+=("${extra[@]}")

gen_init_cpio() {
	local bin=$BUILD/gen_init_cpio
	if [ ! -x "$bin" ] || [ "$KSRC/usr/gen_init_cpio.c" -nt "$bin" ]; then
		cc -O2 -o "$bin" "$KSRC/usr/gen_init_cpio.c" || die "cannot build usr/gen_init_cpio"
	fi
	echo "$bin"
}

# Build a selftest's helper program (a .c file next to the scripts),
# statically linked; print the binary's path.
selftest_prog() {
	local src=$1 bin
	bin=$BUILD/selftests/$(basename "$src" .c)
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		mkdir -p "$BUILD/selftests"
		cc -static -O2 -Wall -Werror -o "$bin.tmp" "$src" >&2 &&
			mv "$bin.tmp" "$bin" || die "cannot build $src (needs a static libc: libc6-dev)"
	fi
	echo "$bin"
}

# Emit gen_init_cpio lines for a host binary and its shared libraries.
add_binary() {
	local src=$1 dst=$2 lib
	echo "file $dst $src 755 0 0"
	ldd "$src" 2>/dev/null | awk '/=>/ { print $3 } /^\t\/.*ld-linux/ { print $1 }' |
		while read -r lib; do
			[ -n "$lib" ] && [ -e "$lib" ] || continue
			echo "file $lib $(readlink -f "$lib") 755 0 0"
		done
}

list() {
	local flavour=$1 kb kver t p f
	kb=$(kbuild_dir "$flavour")
	kver=$(cat "$kb/include/config/kernel.release")
	for d in /bin /sbin /usr /usr/bin /usr/sbin /usr/local /usr/local/bin \
		/usr/local/sbin /lib /lib64 /lib/x86_64-linux-gnu /usr/lib \
		/usr/lib/x86_64-linux-gnu /etc /proc /sys /dev /tmp /run /root /mnt \
		/var /vrs /selftests /selftests/kselftest /selftests/virtio_rs; do
		echo "dir $d 755 0 0"
	done
	echo "nod /dev/console 600 0 0 c 5 1"
	echo "nod /dev/null 666 0 0 c 1 3"
	echo "file /bin/busybox /bin/busybox 755 0 0"
	for p in $(/bin/busybox --list-full); do
		[ "$p" = bin/busybox ] || echo "slink /$p /bin/busybox 777 0 0"
	done
	for f in "$ROOT"/scripts/guest/*; do
		case ${f##*/} in
		init) echo "file /init $f 755 0 0" ;;
		os-release) echo "file /etc/os-release $f 644 0 0" ;;
		*) echo "file /usr/local/bin/${f##*/} $f 755 0 0" ;;
		esac
	done
	for t in "${TOOLS[@]}"; do
		p=$(PATH=/usr/sbin:/sbin:$PATH command -v "$t") || die "$t is missing: run scripts/deps.sh"
		add_binary "$p" "/usr/local/bin/$t"
	done
	echo "slink /usr/local/bin/mkfs.ext4 mke2fs 777 0 0"
	echo "file /etc/mke2fs.conf /etc/mke2fs.conf 644 0 0"
	f=$KSRC/tools/testing/selftests/kselftest/ktap_helpers.sh
	echo "file /selftests/kselftest/ktap_helpers.sh $f 644 0 0"
	for f in "$ROOT"/tools/testing/selftests/virtio_rs/*; do
		case $f in
		*.c)
			p=$(selftest_prog "$f")
			echo "file /selftests/virtio_rs/$(basename "$f" .c) $p 755 0 0"
			;;
		*) [ -f "$f" ] && echo "file /selftests/virtio_rs/${f##*/} $f 755 0 0" ;;
		esac
	done
	echo "dir /lib/modules 755 0 0"
	(cd "$kb/staging" && find "lib/modules/$kver" -type d) | sed 's|^|dir /|; s|$| 755 0 0|'
	(cd "$kb/staging" && find "lib/modules/$kver" -type f) | while read -r f; do
		echo "file /$f $kb/staging/$f 644 0 0"
	done
}

build_image() {
	local flavour=$1 kb out lst hash
	kb=$(kbuild_dir "$flavour")
	[ -d "$kb/staging/lib/modules" ] || die "no modules for $flavour: run scripts/kernel.sh $flavour"
	out=$BUILD/initramfs-$flavour.cpio
	lst=$BUILD/initramfs-$flavour.list
	# Every parent directory of every entry, then directories first
	# (shortest path first), then everything else.
	list "$flavour" | awk '{ print } $1 != "dir" {
		n = split($2, p, "/"); d = ""
		for (i = 2; i < n; i++) { d = d "/" p[i]; print "dir " d " 755 0 0" }
	}' | sort -u -k2,2 |
		awk '{ print ($1 == "dir" ? 0 : 1), length($2), $0 }' | sort -s -n -k1,1 -k2,2 |
		cut -d' ' -f3- >"$lst.new"
	# The image depends on the list and on every file it names.
	hash=$( (cat "$lst.new"; awk '$1 == "file" { print $3 }' "$lst.new" | xargs stat -L -c '%n %s %Y') | sha256sum | cut -c1-16)
	if [ -f "$out" ] && [ "$(cat "$out.hash" 2>/dev/null)" = "$hash" ]; then
		rm -f "$lst.new"
		return 0
	fi
	step "building the $flavour initramfs"
	mv "$lst.new" "$lst"
	"$(gen_init_cpio)" "$lst" >"$out.tmp" || die "gen_init_cpio failed on $lst"
	mv "$out.tmp" "$out"
	echo "$hash" >"$out.hash"
	info "$out: $(du -h "$out" | cut -f1)"
}

parse_flavours "$@"
for f in "${flavours[@]}"; do build_image "$f"; done
