// SPDX-License-Identifier: GPL-2.0
/*
 * blkhold: open a block device, keep the fd open until SIGUSR1, then ask
 * it for its geometry (HDIO_GETGEO) on that same fd. Tests use it to check
 * what a disk that went away (device_del, unbind) answers on an fd that was
 * open across the removal: the busybox tools reopen the device by path.
 *
 * With OFFSET-MIB and FILE, it also reads: the device is opened with
 * O_DIRECT, and after HDIO_GETGEO the 1 MiB at OFFSET-MIB is read through the
 * held fd (from the device, not the page cache) and written to FILE. Tests
 * use that to check that an fd held across a freeze/restore still reads.
 *
 * usage: blkhold DEVICE SECONDS [OFFSET-MIB FILE]
 *
 * Prints "ready" once the device is open, waits up to SECONDS for SIGUSR1
 * (sent at any time since start), then prints either
 * "getgeo ok heads H sectors S cylinders C" or "getgeo errno N NAME"
 * (NAME: ENXIO, ENODEV, EIO or ?), then, with OFFSET-MIB, "read ok BYTES"
 * or "read errno N NAME", and exits 0; 1 if it could not open the device
 * or FILE, or no signal came. Output is flushed line by line.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <linux/hdreg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
	switch (e) {
	case ENXIO:
		return "ENXIO";
	case ENODEV:
		return "ENODEV";
	case EIO:
		return "EIO";
	default:
		return "?";
	}
}

#define MIB (1024 * 1024)

/* Read the 1 MiB at offset_mib through fd into the file path. */
static int read_to(int fd, long offset_mib, const char *path)
{
	void *buf;
	ssize_t n;
	int out;

	if (posix_memalign(&buf, 4096, MIB)) {
		printf("error read: no memory\n");
		return 1;
	}
	n = pread(fd, buf, MIB, (off_t)offset_mib * MIB);
	if (n < 0) {
		printf("read errno %d %s\n", errno, errname(errno));
		free(buf);
		return 0;
	}
	printf("read ok %zd\n", n);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0 || write(out, buf, n) != n) {
		printf("error write %s: %s\n", path, strerror(errno));
		n = -1;
	}
	if (out >= 0)
		close(out);
	free(buf);
	return n < 0;
}

int main(int argc, char **argv)
{
	struct hd_geometry geo;
	struct timespec ts;
	sigset_t set;
	int fd, sig, rc = 0;

	if (argc != 3 && argc != 5) {
		fprintf(stderr, "usage: blkhold DEVICE SECONDS [OFFSET-MIB FILE]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	fd = open(argv[1], argc == 5 ? O_RDONLY | O_DIRECT : O_RDONLY);
	if (fd < 0) {
		printf("error open: %s\n", strerror(errno));
		return 1;
	}
	printf("ready\n");

	ts.tv_sec = atol(argv[2]);
	ts.tv_nsec = 0;
	sig = sigtimedwait(&set, NULL, &ts);
	if (sig != SIGUSR1) {
		printf("error wait: no SIGUSR1\n");
		return 1;
	}

	memset(&geo, 0, sizeof(geo));
	if (ioctl(fd, HDIO_GETGEO, &geo) == 0)
		printf("getgeo ok heads %u sectors %u cylinders %u\n",
		       geo.heads, geo.sectors, geo.cylinders);
	else
		printf("getgeo errno %d %s\n", errno, errname(errno));
	if (argc == 5)
		rc = read_to(fd, atol(argv[3]), argv[4]);
	close(fd);
	return rc;
}
