// SPDX-License-Identifier: GPL-2.0
/*
 * blkhold: open a block device, keep the fd open until SIGUSR1, then ask
 * it for its geometry (HDIO_GETGEO) on that same fd. Tests use it to check
 * what a disk that went away (device_del, unbind) answers on an fd that was
 * open across the removal: the busybox tools reopen the device by path.
 *
 * usage: blkhold DEVICE SECONDS
 *
 * Prints "ready" once the device is open, waits up to SECONDS for SIGUSR1
 * (sent at any time since start), then prints either
 * "getgeo ok heads H sectors S cylinders C" or "getgeo errno N NAME"
 * (NAME: ENXIO, ENODEV, EIO or ?), and exits 0; 1 if it could not open the
 * device or no signal came. Output is flushed line by line.
 */
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

int main(int argc, char **argv)
{
	struct hd_geometry geo;
	struct timespec ts;
	sigset_t set;
	int fd, sig;

	if (argc != 3) {
		fprintf(stderr, "usage: blkhold DEVICE SECONDS\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	fd = open(argv[1], O_RDONLY);
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
	close(fd);
	return 0;
}
