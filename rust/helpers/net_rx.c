// SPDX-License-Identifier: GPL-2.0

#include <linux/mm.h>
#include <linux/netdevice.h>
#include <linux/scatterlist.h>
#include <linux/skbuff.h>
#include <linux/virtio_net.h>

struct page *rust_helper_virt_to_head_page(const void *x)
{
	return virt_to_head_page(x);
}

void *rust_helper_page_address(const struct page *page)
{
	return page_address(page);
}

unsigned long rust_helper_page_size(struct page *page)
{
	return page_size(page);
}

void rust_helper_put_page(struct page *page)
{
	put_page(page);
}

void rust_helper_sg_set_page(struct scatterlist *sg, struct page *page,
			     unsigned int len, unsigned int offset)
{
	sg_set_page(sg, page, len, offset);
}

struct skb_shared_info *rust_helper_skb_shinfo(const struct sk_buff *skb)
{
	return skb_shinfo(skb);
}

int rust_helper_skb_cloned(const struct sk_buff *skb)
{
	return skb_cloned(skb);
}

bool rust_helper_skb_can_coalesce(struct sk_buff *skb, int i,
				  const struct page *page, int off)
{
	return skb_can_coalesce(skb, i, page, off);
}

void rust_helper_skb_add_rx_frag(struct sk_buff *skb, int i, struct page *page,
				 int off, int size, unsigned int truesize)
{
	skb_add_rx_frag(skb, i, page, off, size, truesize);
}

void rust_helper_skb_set_csum_unnecessary(struct sk_buff *skb)
{
	skb->ip_summed = CHECKSUM_UNNECESSARY;
}

int rust_helper_virtio_net_hdr_to_skb(struct sk_buff *skb,
				      const struct virtio_net_hdr *hdr,
				      bool little_endian)
{
	return virtio_net_hdr_to_skb(skb, hdr, little_endian);
}

/* rust_helper_skb_shared is in net.c. */

void rust_helper_skb_set_next(struct sk_buff *skb, struct sk_buff *next)
{
	skb->next = next;
}

void rust_helper_init_delayed_work(struct delayed_work *dwork, work_func_t func)
{
	INIT_DELAYED_WORK(dwork, func);
}

void rust_helper_skb_reserve(struct sk_buff *skb, int len)
{
	/* The kernel crate's NET_SKB_PAD (rust/kernel/net/skb.rs) is this formula. */
	BUILD_BUG_ON(NET_SKB_PAD != (L1_CACHE_BYTES > 32 ? L1_CACHE_BYTES : 32));
	skb_reserve(skb, len);
}

void rust_helper_skb_set_hash(struct sk_buff *skb, __u32 hash,
			      enum pkt_hash_types type)
{
	skb_set_hash(skb, hash, type);
}

bool rust_helper_netif_is_rxfh_configured(const struct net_device *dev)
{
	return netif_is_rxfh_configured(dev);
}
