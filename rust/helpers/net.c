// SPDX-License-Identifier: GPL-2.0

#include <linux/etherdevice.h>
#include <linux/list.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/sched.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/virtio_net.h>
#include <net/dst.h>
#include <net/netdev_rx_queue.h>

void *rust_helper_netdev_priv(const struct net_device *dev)
{
	return netdev_priv(dev);
}

void rust_helper_eth_hw_addr_set(struct net_device *dev, const u8 *addr)
{
	eth_hw_addr_set(dev, addr);
}

void rust_helper_eth_hw_addr_random(struct net_device *dev)
{
	eth_hw_addr_random(dev);
}

void rust_helper_netif_start_queue(struct net_device *dev)
{
	netif_start_queue(dev);
}

void rust_helper_netif_stop_queue(struct net_device *dev)
{
	netif_stop_queue(dev);
}

void rust_helper_netif_wake_queue(struct net_device *dev)
{
	netif_wake_queue(dev);
}

bool rust_helper_netif_queue_stopped(const struct net_device *dev)
{
	return netif_queue_stopped(dev);
}

void rust_helper_netif_napi_del(struct napi_struct *napi)
{
	netif_napi_del(napi);
}

bool rust_helper_napi_schedule(struct napi_struct *n)
{
	return napi_schedule(n);
}

void rust_helper_dev_kfree_skb_any(struct sk_buff *skb)
{
	dev_kfree_skb_any(skb);
}

void rust_helper_dev_consume_skb_any(struct sk_buff *skb)
{
	dev_consume_skb_any(skb);
}

unsigned char *rust_helper_skb_tail_pointer(const struct sk_buff *skb)
{
	return skb_tail_pointer(skb);
}

int rust_helper_skb_tailroom(const struct sk_buff *skb)
{
	return skb_tailroom(skb);
}

unsigned int rust_helper_skb_headroom(const struct sk_buff *skb)
{
	return skb_headroom(skb);
}

int rust_helper_skb_header_cloned(const struct sk_buff *skb)
{
	return skb_header_cloned(skb);
}

bool rust_helper_skb_is_nonlinear(const struct sk_buff *skb)
{
	return skb_is_nonlinear(skb);
}

int rust_helper_skb_linearize(struct sk_buff *skb)
{
	return skb_linearize(skb);
}

int rust_helper_skb_cow_head(struct sk_buff *skb, unsigned int headroom)
{
	return skb_cow_head(skb, headroom);
}

void *rust_helper___skb_push(struct sk_buff *skb, unsigned int len)
{
	return __skb_push(skb, len);
}

void *rust_helper___skb_pull(struct sk_buff *skb, unsigned int len)
{
	return __skb_pull(skb, len);
}

void rust_helper_skb_record_rx_queue(struct sk_buff *skb, u16 rx_queue)
{
	skb_record_rx_queue(skb, rx_queue);
}

void rust_helper_skb_orphan(struct sk_buff *skb)
{
	skb_orphan(skb);
}

void rust_helper_skb_eth_type_trans(struct sk_buff *skb, struct net_device *dev)
{
	skb->protocol = eth_type_trans(skb, dev);
}

/*
 * Copies up to @uc_max unicast and @mc_max multicast addresses of @dev into @uc and @mc
 * (ETH_ALEN bytes each), under the device's address lock, and stores the lists' lengths in
 * @uc_n and @mc_n (which may exceed what was copied).
 */
void rust_helper_vrs_netdev_rx_addrs(struct net_device *dev, u8 *uc, unsigned int uc_max,
				     unsigned int *uc_n, u8 *mc, unsigned int mc_max,
				     unsigned int *mc_n)
{
	struct netdev_hw_addr *ha;
	unsigned int i;

	netif_addr_lock_bh(dev);
	*uc_n = netdev_uc_count(dev);
	*mc_n = netdev_mc_count(dev);
	i = 0;
	netdev_for_each_uc_addr(ha, dev) {
		if (i == uc_max)
			break;
		memcpy(uc + i++ * ETH_ALEN, ha->addr, ETH_ALEN);
	}
	i = 0;
	netdev_for_each_mc_addr(ha, dev) {
		if (i == mc_max)
			break;
		memcpy(mc + i++ * ETH_ALEN, ha->addr, ETH_ALEN);
	}
	netif_addr_unlock_bh(dev);
}

/* priv_flags is a bitfield, which bindgen makes awkward to reach. */
void rust_helper_vrs_netdev_add_priv_flags(struct net_device *dev, u64 flags)
{
	dev->priv_flags |= flags;
}

void rust_helper_vrs_rtnl_lock(void)
{
	rtnl_lock();
}

void rust_helper_vrs_rtnl_unlock(void)
{
	rtnl_unlock();
}

/* Transmit: offloads, paged fragments, batching. */

bool rust_helper_skb_shared(const struct sk_buff *skb)
{
	return skb_shared(skb);
}

bool rust_helper_skb_has_frag_list(const struct sk_buff *skb)
{
	return skb_has_frag_list(skb);
}

bool rust_helper_skb_frags_readable(const struct sk_buff *skb)
{
	return skb_frags_readable(skb);
}

unsigned int rust_helper_skb_nr_frags(const struct sk_buff *skb)
{
	return skb_shinfo(skb)->nr_frags;
}

/*
 * The address and size of paged fragment @i of @skb, which has more than @i
 * fragments; NULL for a fragment without a page.
 */
void *rust_helper_skb_frag_address_of(const struct sk_buff *skb, unsigned int i,
				      unsigned int *size)
{
	const skb_frag_t *frag = &skb_shinfo(skb)->frags[i];

	*size = skb_frag_size(frag);
	return skb_frag_address(frag);
}

int rust_helper_virtio_net_hdr_from_skb(const struct sk_buff *skb,
					struct virtio_net_hdr *hdr,
					bool little_endian, bool has_data_valid,
					int vlan_hlen)
{
	return virtio_net_hdr_from_skb(skb, hdr, little_endian, has_data_valid,
				       vlan_hlen);
}

bool rust_helper_netdev_xmit_more(void)
{
	return netdev_xmit_more();
}

void rust_helper_skb_tx_timestamp(struct sk_buff *skb)
{
	skb_tx_timestamp(skb);
}

int rust_helper_skb_orphan_frags(struct sk_buff *skb, gfp_t gfp_mask)
{
	return skb_orphan_frags(skb, gfp_mask);
}

void rust_helper_skb_dst_drop(struct sk_buff *skb)
{
	skb_dst_drop(skb);
}

void rust_helper_nf_reset_ct(struct sk_buff *skb)
{
	nf_reset_ct(skb);
}

bool rust_helper_netif_xmit_stopped(const struct net_device *dev)
{
	return netif_xmit_stopped(netdev_get_tx_queue(dev, 0));
}

/* Transmit: the queue lock, and byte queue limits (BQL). */

/*
 * Whether the current context holds the transmit lock of @txq: its
 * owner is this CPU, and we are not in an interrupt that came on top of the
 * holder. Preemption is off while we look, so the CPU cannot change under us.
 */
bool rust_helper_vrs_tx_lock_held(struct netdev_queue *txq)
{
	bool held;

	if (in_hardirq() || in_nmi())
		return false;
	preempt_disable();
	held = READ_ONCE(txq->xmit_lock_owner) == smp_processor_id();
	preempt_enable();
	return held;
}

void rust_helper_vrs_tx_lock_bh(struct netdev_queue *txq)
{
	local_bh_disable();
	__netif_tx_lock(txq, smp_processor_id());
}

void rust_helper_vrs_tx_unlock_bh(struct netdev_queue *txq)
{
	__netif_tx_unlock(txq);
	local_bh_enable();
}

bool rust_helper_vrs_tx_sent_queue(struct netdev_queue *txq, unsigned int bytes,
				   bool xmit_more)
{
	return __netdev_tx_sent_queue(txq, bytes, xmit_more);
}

/*
 * netdev_tx_completed_queue(), with @bytes clamped to what is in flight:
 * dql_completed() BUGs on more. The transmit lock is held, so nobody queues or
 * completes meanwhile.
 */
void rust_helper_vrs_tx_completed_queue(struct netdev_queue *txq,
					unsigned int pkts, unsigned int bytes)
{
#ifdef CONFIG_BQL
	bytes = min(bytes, READ_ONCE(txq->dql.num_queued) - txq->dql.num_completed);
#endif
	netdev_tx_completed_queue(txq, pkts, bytes);
}

void rust_helper_vrs_tx_reset_queue(struct netdev_queue *txq)
{
	netdev_tx_reset_queue(txq);
}

unsigned int rust_helper_vrs_tx_stalled_usecs(struct netdev_queue *txq)
{
	return jiffies_to_usecs(jiffies - READ_ONCE(txq->trans_start));
}

void rust_helper_netif_tx_start_queue(struct netdev_queue *txq)
{
	netif_tx_start_queue(txq);
}

void rust_helper_netif_tx_stop_queue(struct netdev_queue *txq)
{
	netif_tx_stop_queue(txq);
}

bool rust_helper_netif_tx_queue_stopped(const struct netdev_queue *txq)
{
	return netif_tx_queue_stopped(txq);
}

bool rust_helper_vrs_txq_xmit_stopped(const struct netdev_queue *txq)
{
	return netif_xmit_stopped(txq);
}

struct netdev_queue *rust_helper_netdev_get_tx_queue(const struct net_device *dev,
						     unsigned int index)
{
	return netdev_get_tx_queue(dev, index);
}

u16 rust_helper_skb_get_queue_mapping(const struct sk_buff *skb)
{
	return skb_get_queue_mapping(skb);
}

bool rust_helper_netif_running(const struct net_device *dev)
{
	return netif_running(dev);
}

/*
 * The net devices being set up, each by one task inside the Rust
 * `Registration::new`: a NAPI context may be built only in the private area
 * of one of them, by the task that sets it up, which keeps the device alive
 * while it does (see `kernel::net::napi::Napi::new`).
 */
struct vrs_netdev_setup {
	struct list_head node;
	struct task_struct *task;
	struct net_device *dev;
};

static LIST_HEAD(vrs_netdev_setups);
static DEFINE_SPINLOCK(vrs_netdev_setups_lock);

void *rust_helper_vrs_netdev_setup_begin(struct net_device *dev)
{
	struct vrs_netdev_setup *s = kmalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->task = current;
	s->dev = dev;
	spin_lock(&vrs_netdev_setups_lock);
	list_add(&s->node, &vrs_netdev_setups);
	spin_unlock(&vrs_netdev_setups_lock);
	return s;
}

void rust_helper_vrs_netdev_setup_end(void *setup)
{
	struct vrs_netdev_setup *s = setup;

	spin_lock(&vrs_netdev_setups_lock);
	list_del(&s->node);
	spin_unlock(&vrs_netdev_setups_lock);
	kfree(s);
}

/*
 * The device that the current task is setting up and whose private area
 * holds [slot, slot + size), or NULL.
 */
struct net_device *rust_helper_vrs_netdev_setup_find(const void *slot,
						     size_t size)
{
	struct vrs_netdev_setup *s;
	struct net_device *found = NULL;
	uintptr_t at = (uintptr_t)slot;

	spin_lock(&vrs_netdev_setups_lock);
	list_for_each_entry(s, &vrs_netdev_setups, node) {
		uintptr_t start = (uintptr_t)netdev_priv(s->dev);

		if (s->task == current && at >= start &&
		    size <= s->dev->priv_len && at - start <= s->dev->priv_len - size) {
			found = s->dev;
			break;
		}
	}
	spin_unlock(&vrs_netdev_setups_lock);
	return found;
}

unsigned int rust_helper_num_online_cpus(void)
{
	return num_online_cpus();
}

/* The device of a receive queue, and the queue's index (get_netdev_rx_queue_index()). */
struct net_device *rust_helper_vrs_rx_queue_dev(struct netdev_rx_queue *queue,
						unsigned int *index)
{
	*index = get_netdev_rx_queue_index(queue);
	return queue->dev;
}
