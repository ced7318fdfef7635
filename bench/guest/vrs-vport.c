// SPDX-License-Identifier: GPL-2.0
/*
 * vrs-vport: the guest half of make bench DEVICE=console's workloads, on a
 * virtio console port whose host side is scripts/port_server.py (started by
 * `vrs-host port console serve`). scripts/bench.py builds it statically and
 * copies it into the guest; bench/guest/vrs-bench-console runs it.
 *
 * usage: vrs-vport PORT write BS BYTES     guest -> host: BYTES in BS-byte
 *                                          write(2)s, then wait for the host's
 *                                          "ok" (it has read them all)
 *        vrs-vport PORT read BS BYTES      host -> guest: BYTES read with a
 *                                          BS-byte buffer per read(2)
 *        vrs-vport PORT pingpong LEN COUNT COUNT round trips of LEN bytes: write
 *                                          LEN, read the LEN the host echoes
 *        vrs-vport PORT stats              print the host side's answer to
 *                                          "stats" ("ok busy=... cpu_s=...")
 *
 * It prints "AMOUNT SECONDS": the bytes (write, read) or round trips
 * (pingpong) and the CLOCK_MONOTONIC time from the command to the host to
 * the last byte (the port's open and close are outside it). Exit status: 0,
 * 1 on an error (a short count, end of file, a bad answer), 2 on a usage
 * error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void fail(const char *what)
{
	fprintf(stderr, "vrs-vport: %s: %s\n", what, errno ? strerror(errno) : "short count");
	exit(1);
}

static void write_all(int fd, const char *p, long n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			fail("write");
		p += k;
		n -= k;
	}
}

/*
 * Read exactly N bytes, at most BS per read(2): into DST one after the other,
 * or, without DST, each read into buf's start (the data is not looked at).
 */
static void read_all(int fd, char *dst, long bs, long n)
{
	while (n > 0) {
		ssize_t k = read(fd, dst ? dst : buf, n < bs ? n : bs);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			fail("read");
		if (k == 0) {
			errno = 0;
			fail("read: end of file (the host side is not connected)");
		}
		if (dst)
			dst += k;
		n -= k;
	}
}

static void command(int fd, const char *cmd, long n)
{
	char line[64];
	int len = snprintf(line, sizeof(line), "%s %ld\n", cmd, n);

	write_all(fd, line, len);
}

int main(int argc, char **argv)
{
	long a, b, amount;
	double t0, t1;
	int fd;

	if (argc == 3 && !strcmp(argv[2], "stats")) {
		char line[256];
		long len = 0;

		fd = open(argv[1], O_RDWR);
		if (fd < 0)
			fail(argv[1]);
		command(fd, "stats", 0);
		/* One line, a byte at a time: it is short. */
		while (len < (long)sizeof(line) - 1) {
			read_all(fd, line + len, 1, 1);
			if (line[len++] == '\n')
				break;
		}
		line[len] = 0;
		fputs(line, stdout);
		return strncmp(line, "ok ", 3) != 0;
	}
	if (argc != 5)
		goto usage;
	a = atol(argv[3]);
	b = atol(argv[4]);
	if (a <= 0 || b <= 0 || a > (long)sizeof(buf))
		goto usage;
	fd = open(argv[1], O_RDWR);
	if (fd < 0)
		fail(argv[1]);
	memset(buf, 0x5a, sizeof(buf));
	t0 = now();
	if (!strcmp(argv[2], "write")) {
		char want[64], got[64];
		long n = b, len;

		command(fd, "sink", b);
		while (n > 0) {
			long k = n < a ? n : a;

			write_all(fd, buf, k);
			n -= k;
		}
		/* The host's answer: "ok BYTES\n". */
		len = snprintf(want, sizeof(want), "ok %ld\n", b);
		read_all(fd, got, len, len);
		got[len] = 0;
		if (strcmp(got, want)) {
			errno = 0;
			fprintf(stderr, "vrs-vport: the host answered '%s'\n", got);
			return 1;
		}
		amount = b;
	} else if (!strcmp(argv[2], "read")) {
		command(fd, "source", b);
		read_all(fd, NULL, a, b);
		amount = b;
	} else if (!strcmp(argv[2], "pingpong")) {
		long i;

		command(fd, "echo", a * b);
		for (i = 0; i < b; i++) {
			write_all(fd, buf, a);
			read_all(fd, NULL, a, a);
		}
		amount = b;
	} else {
		goto usage;
	}
	t1 = now();
	close(fd);
	printf("%ld %.6f\n", amount, t1 - t0);
	return 0;
usage:
	fprintf(stderr, "usage: vrs-vport PORT write|read BS BYTES | PORT pingpong LEN COUNT | "
		"PORT stats\n");
	return 2;
}
