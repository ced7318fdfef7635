// SPDX-License-Identifier: GPL-2.0

/*
 * CPU hotplug notifications for Rust (kernel::cpuhp): one pair of
 * multi-instance states shared by every Rust user, set up at boot, so that
 * users need neither a state of their own nor module init code.
 *
 * "rust/cpuhp:online" (CPUHP_AP_ONLINE_DYN) reports a CPU that came online
 * and one about to go down; "rust/cpuhp:dead" (CPUHP_BP_PREPARE_DYN, whose
 * teardown runs on a surviving CPU once the CPU is dead) a dead one, as C's
 * drivers use CPUHP_AP_ONLINE_DYN and their own *_DEAD state. Each instance
 * is a struct rust_cpuhp_node whose event function the Rust side sets; the
 * callbacks run with the CPU hotplug lock held for writing, so removing an
 * instance (which takes it for reading) waits for them.
 */

#include <linux/cpuhotplug.h>
#include <linux/init.h>
#include <linux/stddef.h>

struct rust_cpuhp_node {
	struct hlist_node online;
	struct hlist_node dead;
	void (*event)(struct hlist_node *online, unsigned int event,
		      unsigned int cpu);
};

/* The layout kernel::cpuhp mirrors: two nodes, then the event function. */
static_assert(offsetof(struct rust_cpuhp_node, dead) == sizeof(struct hlist_node));
static_assert(offsetof(struct rust_cpuhp_node, event) == 2 * sizeof(struct hlist_node));

/* The events, as kernel::cpuhp numbers them. */
enum { RUST_CPUHP_ONLINE, RUST_CPUHP_DOWN_PREP, RUST_CPUHP_DEAD };

static int rust_cpuhp_online_state = -1;
static int rust_cpuhp_dead_state = -1;

static int rust_cpuhp_online(unsigned int cpu, struct hlist_node *node)
{
	struct rust_cpuhp_node *n = hlist_entry(node, struct rust_cpuhp_node, online);

	n->event(&n->online, RUST_CPUHP_ONLINE, cpu);
	return 0;
}

static int rust_cpuhp_down_prep(unsigned int cpu, struct hlist_node *node)
{
	struct rust_cpuhp_node *n = hlist_entry(node, struct rust_cpuhp_node, online);

	n->event(&n->online, RUST_CPUHP_DOWN_PREP, cpu);
	return 0;
}

static int rust_cpuhp_dead(unsigned int cpu, struct hlist_node *node)
{
	struct rust_cpuhp_node *n = hlist_entry(node, struct rust_cpuhp_node, dead);

	n->event(&n->online, RUST_CPUHP_DEAD, cpu);
	return 0;
}

static int __init rust_cpuhp_init(void)
{
	int ret;

	ret = cpuhp_setup_state_multi(CPUHP_AP_ONLINE_DYN, "rust/cpuhp:online",
				      rust_cpuhp_online, rust_cpuhp_down_prep);
	if (ret < 0)
		return ret;
	rust_cpuhp_online_state = ret;
	ret = cpuhp_setup_state_multi(CPUHP_BP_PREPARE_DYN, "rust/cpuhp:dead",
				      NULL, rust_cpuhp_dead);
	if (ret < 0) {
		cpuhp_remove_multi_state(rust_cpuhp_online_state);
		rust_cpuhp_online_state = -1;
		return ret;
	}
	rust_cpuhp_dead_state = ret;
	return 0;
}
subsys_initcall(rust_cpuhp_init);

/*
 * Adds the instance whose first node is @online, without calling it for the
 * CPUs online now. -ENODEV if the states could not be set up at boot.
 */
int rust_helper_cpuhp_node_add(struct hlist_node *online)
{
	struct rust_cpuhp_node *n = container_of(online, struct rust_cpuhp_node, online);
	int ret;

	if (rust_cpuhp_online_state < 0 || rust_cpuhp_dead_state < 0)
		return -ENODEV;
	ret = cpuhp_state_add_instance_nocalls(rust_cpuhp_online_state, &n->online);
	if (ret)
		return ret;
	ret = cpuhp_state_add_instance_nocalls(rust_cpuhp_dead_state, &n->dead);
	if (ret)
		cpuhp_state_remove_instance_nocalls(rust_cpuhp_online_state, &n->online);
	return ret;
}

/* Removes an instance added by rust_helper_cpuhp_node_add(); waits for its callbacks. */
void rust_helper_cpuhp_node_remove(struct hlist_node *online)
{
	struct rust_cpuhp_node *n = container_of(online, struct rust_cpuhp_node, online);

	cpuhp_state_remove_instance_nocalls(rust_cpuhp_online_state, &n->online);
	cpuhp_state_remove_instance_nocalls(rust_cpuhp_dead_state, &n->dead);
}
