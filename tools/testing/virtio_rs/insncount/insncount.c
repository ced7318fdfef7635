// SPDX-License-Identifier: GPL-2.0
/*
 * insncount: a QEMU (7.2, TCG, plugin API version 1) plugin that counts how
 * often each guest kernel instruction executes, so that the instructions
 * per I/O of a driver can be split by function (issue 13).
 *
 * At translation time every instruction whose guest virtual address is in
 * the kernel half (>= 0xffff800000000000) gets its own 64-bit counter (one
 * per address, shared by every translation of it) and an inline ADD_U64 of
 * 1 on it: no callback per instruction, so the guest runs about as fast as
 * with any inline-counting plugin. User-space instructions are all counted
 * on one counter, reported as address 0 ("user").
 *
 * Windows: the guest marks the start and end of what it wants measured by
 * running tools/testing/virtio_rs/insncount/marker, a static user program
 * whose only work is the magic instruction
 *     nopl 0x21535256(%rax)       (0f 1f 80 56 52 53 21: "VRS!")
 * The plugin calls back on that instruction (found at translation time in
 * user space only) and then appends the counts since the previous marker
 * (or since boot) to the output file as one window, and resets them. At
 * exit it appends the rest as a last window. The output:
 *     window K
 *     ADDRESS COUNT        (hex address, decimal count; counts > 0 only)
 *     ...
 *     end K
 * Window 0 runs from boot to the first marker.
 *
 * Arguments: out=FILE (default insncount.out). The counters are not
 * atomic: exact with one vCPU (scripts/vm --smp 1), approximate with more.
 *
 * Build (no glib, no QEMU headers: the few API declarations below are
 * written from QEMU 7.2's include/qemu/qemu-plugin.h, a stable C ABI):
 *     gcc -shared -fPIC -O2 -Wall -o insncount.so insncount.c -lpthread
 * and the marker:
 *     gcc -static -nostdlib -O2 -o marker marker.c
 * run.sh in this directory does both, boots the guest and makes the table.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The QEMU 7.2 plugin API (version 1): what this plugin uses ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t {
	const char *target_name;
	struct {
		int min;
		int cur;
	} version;
	bool system_emulation;
	union {
		struct {
			int smp_vcpus;
			int max_vcpus;
		} system;
	};
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags {
	QEMU_PLUGIN_CB_NO_REGS,
	QEMU_PLUGIN_CB_R_REGS,
	QEMU_PLUGIN_CB_RW_REGS,
};
enum qemu_plugin_op {
	QEMU_PLUGIN_INLINE_ADD_U64,
};
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
						void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;
EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);
/* ---- end of the API ---- */

#define KERNEL_HALF 0xffff800000000000ULL
static const unsigned char MAGIC[7] = { 0x0f, 0x1f, 0x80, 0x56, 0x52, 0x53, 0x21 };

struct counter {
	uint64_t addr;
	uint64_t count;
};

/* Counters live in chunks that never move (the inline ops point into them). */
#define CHUNK 65536
struct chunk {
	struct chunk *next;
	size_t used;
	struct counter c[CHUNK];
};
static struct chunk *chunks;

/* Open addressing, linear probing, on the address; holds pointers. */
static struct counter **table;
static size_t table_size; /* a power of two */
static size_t table_used;

static struct counter user_counter; /* every user-space instruction */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *out;
static unsigned int window;

static size_t hash(uint64_t a)
{
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdULL;
	a ^= a >> 33;
	return (size_t)a;
}

static void table_put(struct counter **t, size_t size, struct counter *c)
{
	size_t i = hash(c->addr) & (size - 1);

	while (t[i])
		i = (i + 1) & (size - 1);
	t[i] = c;
}

static void *xcalloc(size_t n, size_t s)
{
	void *p = calloc(n, s);

	if (!p) {
		fprintf(stderr, "insncount: out of memory\n");
		abort();
	}
	return p;
}

/* The counter of kernel address ADDR, created if new. Under the lock. */
static struct counter *counter_of(uint64_t addr)
{
	size_t i = hash(addr) & (table_size - 1);
	struct counter *c;

	while ((c = table[i])) {
		if (c->addr == addr)
			return c;
		i = (i + 1) & (table_size - 1);
	}
	if (2 * (table_used + 1) > table_size) {
		size_t nsize = table_size * 2;
		struct counter **nt = xcalloc(nsize, sizeof(*nt));

		for (size_t j = 0; j < table_size; j++)
			if (table[j])
				table_put(nt, nsize, table[j]);
		free(table);
		table = nt;
		table_size = nsize;
	}
	if (!chunks || chunks->used == CHUNK) {
		struct chunk *ch = xcalloc(1, sizeof(*ch));

		ch->next = chunks;
		chunks = ch;
	}
	c = &chunks->c[chunks->used++];
	c->addr = addr;
	table_put(table, table_size, c);
	table_used++;
	return c;
}

/* Append the counts so far as one window and reset them. */
static void dump_window(void)
{
	pthread_mutex_lock(&lock);
	fprintf(out, "window %u\n", window);
	if (user_counter.count)
		fprintf(out, "0 %" PRIu64 "\n", user_counter.count);
	user_counter.count = 0;
	for (struct chunk *ch = chunks; ch; ch = ch->next)
		for (size_t i = 0; i < ch->used; i++)
			if (ch->c[i].count) {
				fprintf(out, "%" PRIx64 " %" PRIu64 "\n", ch->c[i].addr, ch->c[i].count);
				ch->c[i].count = 0;
			}
	fprintf(out, "end %u\n", window);
	fflush(out);
	window++;
	pthread_mutex_unlock(&lock);
}

static void marker_exec(unsigned int vcpu_index, void *userdata)
{
	(void)vcpu_index;
	(void)userdata;
	dump_window();
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);

	(void)id;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint64_t va = qemu_plugin_insn_vaddr(insn);

		if (va >= KERNEL_HALF) {
			qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
								   &counter_of(va)->count, 1);
			continue;
		}
		qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
							   &user_counter.count, 1);
		if (qemu_plugin_insn_size(insn) == sizeof(MAGIC) &&
		    !memcmp(qemu_plugin_insn_data(insn), MAGIC, sizeof(MAGIC)))
			qemu_plugin_register_vcpu_insn_exec_cb(insn, marker_exec, QEMU_PLUGIN_CB_NO_REGS, NULL);
	}
	pthread_mutex_unlock(&lock);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
	(void)id;
	(void)userdata;
	dump_window();
	fclose(out);
	out = NULL;
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	const char *path = "insncount.out";

	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4)) {
			path = argv[i] + 4;
		} else {
			fprintf(stderr, "insncount: unknown argument %s (only out=FILE)\n", argv[i]);
			return -1;
		}
	}
	if (!info->system_emulation || strcmp(info->target_name, "x86_64")) {
		fprintf(stderr, "insncount: needs qemu-system-x86_64\n");
		return -1;
	}
	out = fopen(path, "w");
	if (!out) {
		perror(path);
		return -1;
	}
	table_size = 1 << 20;
	table = xcalloc(table_size, sizeof(*table));
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
