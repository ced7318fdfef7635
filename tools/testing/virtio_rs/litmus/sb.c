// SPDX-License-Identifier: GPL-2.0
/*
 * sb: the store-buffering litmus test between a guest vCPU and a host thread.
 *
 * It is the pattern that virtio's notification suppression relies on. The
 * driver re-enables callbacks with "store used_event; smp_mb(); load used->idx",
 * the device (QEMU, another host thread) completes with "store used->idx;
 * smp_mb(); load used_event". With full barriers on both sides, at least one of
 * them sees the other's store: either the driver finds the new used entries, or
 * the device sends the interrupt. If both loads see the old value, the
 * interrupt is lost and the guest waits for work the device has finished.
 *
 * Here the two sides share an ivshmem-plain BAR, backed by a host file:
 *
 *   guest (vCPU)              host (like a QEMU I/O thread)
 *   x = i                     y = i
 *   fence                     mfence
 *   r1 = y                    r2 = x
 *
 * r1 < i && r2 < i is forbidden when both fences are real. The guest's fence is
 * the x86 kernel's smp_mb() ("lock; addl $0,-4(%rsp)"), or mfence, or none (a
 * control that must show the reordering, so that a zero count means something).
 * The host picks the guest's fence for each run of iterations and prints one
 * line per fence; the guest just follows.
 *
 * usage: sb host SHMFILE ITERATIONS FENCE...  (start first; FENCE: lock, mfence, none)
 *        sb guest                             (in the guest; finds the ivshmem BAR)
 * SB_HOST_DELAY and SB_GUEST_DELAY (host environment) bound the random delays.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SHM_SIZE (1 << 20)
#define LINE 128

struct shm {
	/* Set by the guest when it has mapped the BAR. */
	volatile uint32_t guest_ready __attribute__((aligned(LINE)));
	/* The iteration the host has opened (0: none yet; ~0: stop). */
	volatile uint32_t go __attribute__((aligned(LINE)));
	/* For that iteration: the guest's fence, and a random delay. */
	volatile uint32_t fence;
	volatile uint32_t guest_delay;
	/* The last iteration the guest finished, and what it read. */
	volatile uint32_t done __attribute__((aligned(LINE)));
	volatile uint32_t r1;
	volatile uint32_t x __attribute__((aligned(LINE)));
	volatile uint32_t y __attribute__((aligned(LINE)));
};

static const char *const fences[] = { "lock", "mfence", "none" };

static inline void cpu_relax(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

static void spin(uint32_t n)
{
	for (volatile uint32_t i = 0; i < n; i++)
		;
}

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static int fence_index(const char *name)
{
	for (int f = 0; f < 3; f++)
		if (!strcmp(name, fences[f]))
			return f;
	return -1;
}

static int host(const char *path, unsigned long iters, int nfences, char **names)
{
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	struct shm *s;
	uint32_t seed = 2463534242u, i = 0;
	uint32_t hdelay = getenv("SB_HOST_DELAY") ? strtoul(getenv("SB_HOST_DELAY"), NULL, 0) : 256;
	uint32_t gdelay = getenv("SB_GUEST_DELAY") ? strtoul(getenv("SB_GUEST_DELAY"), NULL, 0) : 8;
	time_t t0;

	for (int n = 0; n < nfences; n++) {
		if (fence_index(names[n]) < 0) {
			fprintf(stderr, "sb host: unknown fence %s (lock, mfence, none)\n", names[n]);
			return 2;
		}
	}
	if (!hdelay || !gdelay || fd < 0 || ftruncate(fd, SHM_SIZE)) {
		perror(path);
		return 2;
	}
	s = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	memset((void *)s, 0, sizeof(*s));
	__sync_synchronize();
	fprintf(stderr, "sb host: waiting for the guest on %s\n", path);
	t0 = time(NULL);
	while (!s->guest_ready) {
		if (time(NULL) - t0 > 600) {
			fprintf(stderr, "sb host: no guest after 600 s\n");
			return 2;
		}
		usleep(1000);
	}
	for (int n = 0; n < nfences; n++) {
		unsigned long both_old = 0, r1_old = 0, r2_old = 0;

		for (unsigned long k = 0; k < iters; k++) {
			uint32_t r2;

			i++;
			s->fence = fence_index(names[n]);
			/* The guest (TCG) is slower, so the host waits longer. */
			s->guest_delay = xorshift(&seed) % gdelay;
			__sync_synchronize();
			s->go = i;
			spin(xorshift(&seed) % hdelay);
			s->y = i;
			__asm__ __volatile__("mfence" ::: "memory");
			r2 = s->x;
			while (s->done != i)
				cpu_relax();
			__sync_synchronize();
			r1_old += s->r1 < i;
			r2_old += r2 < i;
			both_old += s->r1 < i && r2 < i;
		}
		printf("fence=%s iterations=%lu guest_read_old=%lu host_read_old=%lu both_old=%lu\n",
		       names[n], iters, r1_old, r2_old, both_old);
		fflush(stdout);
	}
	s->go = ~0u;
	return 0;
}

static struct shm *find_bar(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char p[512], v[32] = "", dev[32] = "";
		FILE *f;

		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (!fgets(v, sizeof(v), f))
			v[0] = 0;
		fclose(f);
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/device", e->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (!fgets(dev, sizeof(dev), f))
			dev[0] = 0;
		fclose(f);
		if (strncmp(v, "0x1af4", 6) || strncmp(dev, "0x1110", 6))
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/resource2", e->d_name);
		int fd = open(p, O_RDWR | O_SYNC);
		if (fd < 0) {
			perror(p);
			return NULL;
		}
		void *m = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED) {
			perror("mmap resource2");
			return NULL;
		}
		return m;
	}
	fprintf(stderr, "sb guest: no ivshmem-plain device (1af4:1110)\n");
	return NULL;
}

static int guest(void)
{
	struct shm *s = find_bar();
	uint32_t i = 0;

	if (!s)
		return 2;
	s->guest_ready = 1;
	for (;;) {
		uint32_t go, r1, f;

		while ((go = s->go) == i)
			cpu_relax();
		if (go == ~0u)
			break;
		i = go;
		f = s->fence;
		spin(s->guest_delay);
		s->x = i;
		if (f == 0)
			__asm__ __volatile__("lock; addl $0,-4(%%rsp)" ::: "memory", "cc");
		else if (f == 1)
			__asm__ __volatile__("mfence" ::: "memory");
		else
			__asm__ __volatile__("" ::: "memory");
		r1 = s->y;
		s->r1 = r1;
		__asm__ __volatile__("" ::: "memory");
		s->done = i;
	}
	printf("sb guest: %u iterations\n", i);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "host"))
		return host(argv[2], strtoul(argv[3], NULL, 0), argc - 4, argv + 4);
	if (argc == 2 && !strcmp(argv[1], "guest"))
		return guest();
	fprintf(stderr, "usage: sb host SHMFILE ITERATIONS FENCE... | sb guest\n");
	return 2;
}
