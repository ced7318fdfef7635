// SPDX-License-Identifier: GPL-2.0
/*
 * blkuniq: read standard input in blocks and report any block that repeats.
 *
 * An entropy driver that prefetches can hand the same buffer out twice (a
 * completion counted twice, a buffer requeued before it was consumed);
 * rngtest's FIPS checks cannot see that, since a repeated block of good
 * random data is still good random data. Two equal 4 KiB blocks of real
 * entropy, on the other hand, do not happen.
 *
 * usage: blkuniq [BLOCK_SIZE]     (default 4096; a short last block is ignored)
 *
 * Prints "blocks N repeats R" (and the first repeats' block numbers) and
 * exits 0 if R is 0 and N > 0, 1 otherwise, 2 on a usage or read error.
 * Blocks are compared whole: a 64-bit hash finds candidates, memcmp decides.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
	uint64_t hash;
	uint64_t block; /* 1-based; 0: empty slot */
};

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	while (n--) {
		h ^= *p++;
		h *= 1099511628211ull;
	}
	return h;
}

static int read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += r;
	}
	return got == n;
}

int main(int argc, char **argv)
{
	size_t bs = argc > 1 ? strtoul(argv[1], NULL, 0) : 4096;
	size_t cap = 1 << 16, used = 0, nblocks = 0, repeats = 0;
	unsigned char **blocks = NULL;
	struct entry *table;
	unsigned char *buf;
	int r;

	if (argc > 2 || bs == 0 || bs > (1 << 20)) {
		fprintf(stderr, "usage: blkuniq [BLOCK_SIZE]\n");
		return 2;
	}
	table = calloc(cap, sizeof(*table));
	if (!table)
		return 2;
	while ((buf = malloc(bs)) && (r = read_full(0, buf, bs)) == 1) {
		uint64_t h = fnv1a(buf, bs);
		size_t i = h & (cap - 1);
		int dup = 0;

		for (; table[i].block; i = (i + 1) & (cap - 1)) {
			if (table[i].hash == h && !memcmp(blocks[table[i].block - 1], buf, bs)) {
				if (repeats < 5)
					printf("block %zu repeats block %llu\n", nblocks + 1,
					       (unsigned long long)table[i].block);
				repeats++;
				dup = 1;
				break;
			}
		}
		if (used + 1 > cap / 2) {
			fprintf(stderr, "blkuniq: more than %zu blocks\n", cap / 2);
			return 2;
		}
		blocks = realloc(blocks, (nblocks + 1) * sizeof(*blocks));
		if (!blocks)
			return 2;
		blocks[nblocks++] = buf;
		if (!dup) {
			table[i].hash = h;
			table[i].block = nblocks;
			used++;
		}
	}
	if (!buf || r < 0) {
		perror("blkuniq");
		return 2;
	}
	free(buf);
	printf("blocks %zu repeats %zu\n", nblocks, repeats);
	return repeats || !nblocks;
}
