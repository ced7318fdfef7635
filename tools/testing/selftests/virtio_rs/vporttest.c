// SPDX-License-Identifier: GPL-2.0
/*
 * vporttest: one operation on an already open file descriptor of a virtio
 * console port (the shell keeps it open across calls with `exec 5<>PORT`),
 * printing what happened, for tests of poll and O_NONBLOCK.
 *
 * usage: vporttest FD COMMAND [ARG]
 *
 *   poll MS      poll for POLLIN|POLLOUT for at most MS milliseconds (-1:
 *                forever); print the events that came, among "in out hup
 *                err", or "none"
 *   pollin MS    the same, for POLLIN only
 *   read N       read at most N bytes, O_NONBLOCK off; print "data K" (K
 *                bytes came), "eof", or "error ERRNO-NAME"
 *   readnb N     the same with O_NONBLOCK on
 *   writenb N    write N bytes with O_NONBLOCK on; print "wrote K" or
 *                "error ERRNO-NAME"
 *   sigio MS     ask for SIGIO on the file (F_SETOWN, O_ASYNC), print
 *                "armed", wait at most MS milliseconds for a SIGIO, print
 *                "sigio" or "none", and turn O_ASYNC off again
 *
 * A call that blocks for more than a minute (a wake-up the driver never
 * sends) is killed by SIGALRM: its output stays empty, and the test fails
 * instead of hanging the run.
 *
 * Exit status: 0, or 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *errname(int e)
{
	switch (e) {
	case EAGAIN: return "EAGAIN";
	case ENODEV: return "ENODEV";
	case ENXIO: return "ENXIO";
	case EBUSY: return "EBUSY";
	case EINTR: return "EINTR";
	default: return strerror(e);
	}
}

static volatile sig_atomic_t got_sigio;

static void on_sigio(int sig)
{
	(void)sig;
	got_sigio = 1;
}

static void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	int fd;
	long n;

	if (argc != 4)
		goto usage;
	alarm(60);
	fd = atoi(argv[1]);
	n = atol(argv[3]);
	if (!strcmp(argv[2], "poll") || !strcmp(argv[2], "pollin")) {
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
		int r;

		if (!strcmp(argv[2], "pollin"))
			p.events = POLLIN;
		r = poll(&p, 1, (int)n);

		if (r < 0) {
			printf("error %s\n", errname(errno));
			return 0;
		}
		if (!r || !p.revents) {
			printf("none\n");
			return 0;
		}
		printf("%s%s%s%s\n", p.revents & POLLIN ? "in " : "",
		       p.revents & POLLOUT ? "out " : "",
		       p.revents & POLLHUP ? "hup " : "",
		       p.revents & POLLERR ? "err " : "");
		return 0;
	}
	if (!strcmp(argv[2], "sigio")) {
		struct sigaction sa = { .sa_handler = on_sigio };
		int fl = fcntl(fd, F_GETFL);
		long waited = 0;

		sigaction(SIGIO, &sa, NULL);
		if (fcntl(fd, F_SETOWN, getpid()) < 0 ||
		    fcntl(fd, F_SETFL, fl | O_ASYNC) < 0) {
			printf("error %s\n", errname(errno));
			return 0;
		}
		printf("armed\n");
		fflush(stdout);
		while (!got_sigio && waited < n) {
			usleep(10000);
			waited += 10;
		}
		printf("%s\n", got_sigio ? "sigio" : "none");
		fcntl(fd, F_SETFL, fl & ~O_ASYNC);
		return 0;
	}
	if (n < 0 || n > (long)sizeof(buf))
		goto usage;
	if (!strcmp(argv[2], "read") || !strcmp(argv[2], "readnb")) {
		ssize_t r;

		set_nonblock(fd, !strcmp(argv[2], "readnb"));
		r = read(fd, buf, n);
		if (r < 0)
			printf("error %s\n", errname(errno));
		else if (!r)
			printf("eof\n");
		else
			printf("data %zd\n", r);
		return 0;
	}
	if (!strcmp(argv[2], "writenb")) {
		ssize_t r;

		memset(buf, 'x', n);
		set_nonblock(fd, 1);
		r = write(fd, buf, n);
		if (r < 0)
			printf("error %s\n", errname(errno));
		else
			printf("wrote %zd\n", r);
		return 0;
	}
usage:
	fprintf(stderr, "usage: vporttest FD poll|pollin MS|read N|readnb N|writenb N|sigio MS\n");
	return 2;
}
