// SPDX-License-Identifier: GPL-2.0
/*
 * evhold: open one /dev/input/eventN and run commands on that same file
 * descriptor, in order. Tests use it to check what survives on an fd that
 * was open across something (suspend/resume, say): the busybox tools
 * reopen the device by path every time.
 *
 * usage: evhold DEVICE COMMAND...
 *
 *   grab                 take the device for this fd alone (EVIOCGRAB): other
 *                        handlers, such as the VT keyboard, get no events and
 *                        cannot set LEDs; closing the fd (on exit) lets it go
 *   name                 print "name NAME" (EVIOCGNAME)
 *   led                  print "led 0xBITMAP" (EVIOCGLED; bit N is LED N)
 *   setled CODE VALUE    write EV_LED CODE VALUE, then SYN_REPORT, to the fd
 *   ready                print "ready"
 *   wait SECONDS         wait for SIGUSR1 (sent at any time since start)
 *   read TYPE N SECONDS  read until N events of type TYPE arrived, printing
 *                        each as "event TYPE CODE VALUE"; others are skipped
 *   until TYPE CODE VALUE SECONDS
 *                        read every event, printing each as "event TYPE CODE
 *                        VALUE" (SYN_REPORT too), until the event TYPE CODE
 *                        VALUE and the SYN_REPORT after it have been read
 *   count SECONDS        read every event for SECONDS, then print "count N
 *                        dropped D": N events, D of them SYN_DROPPED (printed
 *                        also when the device goes away before)
 *   abs CODE             print "abs CODE VALUE MIN MAX FUZZ FLAT RES"
 *                        (EVIOCGABS)
 *   slots CODE N         print "slots CODE V0 ... VN-1", the values of axis
 *                        CODE in the first N multitouch slots (EVIOCGMTSLOTS)
 *
 * A command that fails prints "error COMMAND: REASON", and the next one runs.
 * Last, "done STATUS" is printed, and STATUS (0 if every command succeeded,
 * else 1) is the exit status. Output is flushed line by line.
 *
 * Example: set Caps Lock, then after SIGUSR1 check that it is still set and
 * that four key events arrive within 20 s:
 *
 *   evhold /dev/input/event0 grab setled 1 1 led ready wait 60 led read 1 4 20
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int fd;

static int fail(const char *cmd, const char *why)
{
	printf("error %s: %s\n", cmd, why);
	return -1;
}

/* Parses a non-negative decimal argument; -1 if it is not one. */
static long number(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	return v;
}

static int cmd_grab(void)
{
	if (ioctl(fd, EVIOCGRAB, 1) < 0)
		return fail("grab", strerror(errno));
	return 0;
}

static int cmd_name(void)
{
	char name[256] = "";

	if (ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name) < 0)
		return fail("name", strerror(errno));
	printf("name %s\n", name);
	return 0;
}

static int cmd_led(void)
{
	unsigned char bits[(LED_CNT + 7) / 8] = { 0 };
	unsigned int map = 0;
	size_t i;

	if (ioctl(fd, EVIOCGLED(sizeof(bits)), bits) < 0)
		return fail("led", strerror(errno));
	for (i = 0; i < sizeof(bits); i++)
		map |= (unsigned int)bits[i] << (8 * i);
	printf("led 0x%04x\n", map);
	return 0;
}

static int write_event(unsigned short type, unsigned short code, int value)
{
	struct input_event ev = { .type = type, .code = code, .value = value };

	return write(fd, &ev, sizeof(ev)) == sizeof(ev) ? 0 : -1;
}

static int cmd_setled(long code, long value)
{
	if (code < 0 || code > LED_MAX || value < 0)
		return fail("setled", "bad arguments");
	if (write_event(EV_LED, code, value) || write_event(EV_SYN, SYN_REPORT, 0))
		return fail("setled", strerror(errno));
	return 0;
}

static int cmd_wait(long seconds, const sigset_t *usr1)
{
	struct timespec ts = { .tv_sec = seconds };

	if (seconds < 0)
		return fail("wait", "bad arguments");
	if (sigtimedwait(usr1, NULL, &ts) < 0)
		return fail("wait", errno == EAGAIN ? "no SIGUSR1" : strerror(errno));
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Reads events for at most @seconds, handing each to @take, until @take
 * returns 1 (done) or -1 (failed). Returns 0 when done (or at the end of
 * @seconds, if @timeout_ok), -1 otherwise.
 */
static int read_events(const char *cmd, long seconds, int (*take)(const struct input_event *),
		       int timeout_ok)
{
	long long deadline = now_ms() + seconds * 1000LL;
	struct input_event ev[64];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (;;) {
		long long left = deadline - now_ms();
		ssize_t n;
		int i, r;

		if (left <= 0)
			return timeout_ok ? 0 : fail(cmd, "timeout");
		r = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			return fail(cmd, strerror(errno));
		if (r <= 0)
			continue;
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
			return fail(cmd, "device gone (POLLERR/POLLHUP)");
		n = read(fd, ev, sizeof(ev));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return fail(cmd, strerror(errno));
		}
		if (n == 0)
			return fail(cmd, "end of file");
		for (i = 0; i < n / (ssize_t)sizeof(ev[0]); i++) {
			r = take(&ev[i]);
			if (r)
				return r > 0 ? 0 : -1;
		}
	}
}

static struct input_event until_ev;
static int until_seen;

static int take_until(const struct input_event *ev)
{
	printf("event %u %u %d\n", ev->type, ev->code, ev->value);
	if (until_seen && ev->type == EV_SYN && ev->code == SYN_REPORT)
		return 1;
	if (ev->type == until_ev.type && ev->code == until_ev.code && ev->value == until_ev.value)
		until_seen = 1;
	return 0;
}

static int cmd_until(long type, long code, const char *value, long seconds)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (type < 0 || type > EV_MAX || code < 0 || code > KEY_MAX || errno || end == value ||
	    *end || seconds < 0)
		return fail("until", "bad arguments");
	until_ev.type = type;
	until_ev.code = code;
	until_ev.value = v;
	until_seen = 0;
	return read_events("until", seconds, take_until, 0);
}

static long counted, dropped;

static int take_count(const struct input_event *ev)
{
	counted++;
	if (ev->type == EV_SYN && ev->code == SYN_DROPPED)
		dropped++;
	return 0;
}

static int cmd_count(long seconds)
{
	int r;

	if (seconds < 0)
		return fail("count", "bad arguments");
	counted = 0;
	dropped = 0;
	/* Only the device going away, or a read error, ends it early. */
	r = read_events("count", seconds, take_count, 1);
	printf("count %ld dropped %ld\n", counted, dropped);
	return r;
}

static int cmd_abs(long code)
{
	struct input_absinfo a;

	if (code < 0 || code > ABS_MAX)
		return fail("abs", "bad arguments");
	if (ioctl(fd, EVIOCGABS(code), &a) < 0)
		return fail("abs", strerror(errno));
	printf("abs %ld %d %d %d %d %d %d\n", code, a.value, a.minimum, a.maximum, a.fuzz,
	       a.flat, a.resolution);
	return 0;
}

static int cmd_slots(long code, long n)
{
	int32_t buf[1 + 1024];
	long i;

	if (code < 0 || code > ABS_MAX || n < 1 || n > 1024)
		return fail("slots", "bad arguments");
	buf[0] = code;
	if (ioctl(fd, EVIOCGMTSLOTS((n + 1) * sizeof(buf[0])), buf) < 0)
		return fail("slots", strerror(errno));
	printf("slots %ld", code);
	for (i = 1; i <= n; i++)
		printf(" %d", buf[i]);
	printf("\n");
	return 0;
}

static int cmd_read(long type, long count, long seconds)
{
	long long deadline = now_ms() + seconds * 1000LL;
	struct input_event ev[64];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	long seen = 0;

	if (type < 0 || type > EV_MAX || count < 0 || seconds < 0)
		return fail("read", "bad arguments");
	while (seen < count) {
		long long left = deadline - now_ms();
		ssize_t n;
		int i, r;

		if (left <= 0)
			return fail("read", "timeout");
		r = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			return fail("read", strerror(errno));
		if (r <= 0)
			continue;
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
			return fail("read", "device gone (POLLERR/POLLHUP)");
		n = read(fd, ev, sizeof(ev));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return fail("read", strerror(errno));
		}
		if (n == 0)
			return fail("read", "end of file");
		for (i = 0; i < n / (ssize_t)sizeof(ev[0]) && seen < count; i++) {
			if (ev[i].type != type)
				continue;
			printf("event %u %u %d\n", ev[i].type, ev[i].code, ev[i].value);
			seen++;
		}
	}
	return 0;
}

/* The number of arguments command NAME takes; -1 if there is no such command. */
static int arity(const char *name)
{
	static const struct {
		const char *name;
		int args;
	} cmds[] = {
		{ "grab", 0 }, { "name", 0 }, { "led", 0 }, { "ready", 0 },
		{ "setled", 2 }, { "wait", 1 }, { "read", 3 }, { "until", 4 },
		{ "count", 1 }, { "abs", 1 }, { "slots", 2 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(name, cmds[i].name))
			return cmds[i].args;
	return -1;
}

static int print_usage(const char *bad)
{
	if (bad)
		fprintf(stderr, "evhold: bad command '%s'\n", bad);
	fprintf(stderr, "usage: evhold DEVICE COMMAND...\n"
		"commands: grab, name, led, setled CODE VALUE, ready, wait SECONDS,\n"
		"          read TYPE N SECONDS, until TYPE CODE VALUE SECONDS,\n"
		"          count SECONDS, abs CODE, slots CODE N\n");
	return 2;
}

static int run(const char *c, char **arg, const sigset_t *usr1)
{
	if (!strcmp(c, "grab"))
		return cmd_grab();
	if (!strcmp(c, "name"))
		return cmd_name();
	if (!strcmp(c, "led"))
		return cmd_led();
	if (!strcmp(c, "ready"))
		return printf("ready\n") < 0;
	if (!strcmp(c, "setled"))
		return cmd_setled(number(arg[0]), number(arg[1]));
	if (!strcmp(c, "wait"))
		return cmd_wait(number(arg[0]), usr1);
	if (!strcmp(c, "until"))
		return cmd_until(number(arg[0]), number(arg[1]), arg[2], number(arg[3]));
	if (!strcmp(c, "count"))
		return cmd_count(number(arg[0]));
	if (!strcmp(c, "abs"))
		return cmd_abs(number(arg[0]));
	if (!strcmp(c, "slots"))
		return cmd_slots(number(arg[0]), number(arg[1]));
	return cmd_read(number(arg[0]), number(arg[1]), number(arg[2]));
}

int main(int argc, char **argv)
{
	sigset_t usr1;
	int status = 0, i, n;

	if (argc < 2)
		return print_usage(NULL);
	/* Check the whole command line first: a typo must not show up halfway. */
	for (i = 2; i < argc; i += n + 1) {
		n = arity(argv[i]);
		if (n < 0 || i + n >= argc)
			return print_usage(argv[i]);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A SIGUSR1 sent before "wait" stays pending until then. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);

	fd = open(argv[1], O_RDWR | O_NONBLOCK);
	if (fd < 0) {
		fprintf(stderr, "evhold: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	for (i = 2; i < argc; i += arity(argv[i]) + 1)
		if (run(argv[i], &argv[i + 1], &usr1))
			status = 1;
	printf("done %d\n", status);
	return status;
}
