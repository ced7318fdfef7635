// SPDX-License-Identifier: GPL-2.0
/*
 * vrs_badnet: virtio-net devices that lie about used lengths, played inside
 * the guest.
 *
 * A test needs a virtio-net device that reports a wrong used length for a
 * receive buffer. QEMU's devices do not lie, and its vhost-user frontends
 * need KVM (see vrs_badinput.c), while these tests run under TCG. So this
 * module is the transport and the device at once, as vrs_badinput is: for
 * each name in presets= it registers a root device /sys/devices/badnet-PRESET
 * and, under it, a virtio device (VIRTIO_ID_NET) on the virtio bus, which
 * virtio_net_rs or virtio_net binds like any other. The queues (input.0,
 * output.0; no control queue) are split rings from vring_create_virtqueue(),
 * without indirect descriptors; the device side reads the available rings
 * and writes the used rings from a work item (from DRIVER_OK to reset), and
 * raises the queue interrupts from hard-IRQ context (an irq_work).
 *
 * Every preset offers VERSION_1 and MAC (02:00:00:00:0b:NN, NN the preset's
 * number), so the header is 12 bytes; the presets choose the receive buffers:
 *
 *   mrg    MRG_RXBUF: mergeable buffers
 *   big    GUEST_CSUM and GUEST_TSO4, no MRG_RXBUF: big packets (page chains)
 *   small  nothing more: small buffers
 *
 * Transmitted packets are taken and dropped (counted). Writing to
 * /sys/kernel/debug/vrs_badnet/PRESET/control queues one receive packet,
 * sent as soon as the driver has a buffer: a 60-byte broadcast ARP request
 * (who has 10.11.12.100, from 02:00:00:00:0b:ad at 10.11.12.N, N one more
 * than the kind's number below, from 0: the stack takes it without counting
 * a drop, and a packet socket tells the kinds apart) after a header with
 * num_buffers 1, written in full into the buffer, the used length being:
 *
 *   honest  the header and the frame (72)
 *   long    one more than the buffer holds (all its descriptors)
 *   short   hdr_len + ETH_HLEN - 1 (25)
 *   zero    0
 *   long2   (mrg only) a packet of two buffers, num_buffers 2: the first
 *           honest (the header and the frame), the second used with one byte
 *           more than it holds
 *
 * ENODEV if the driver did not make the device live. .../stats has counters:
 * packets sent by kind, transmitted packets taken, packets dropped at reset.
 *
 * usage: modprobe vrs_badnet presets=mrg,big,small
 */
#include <linux/debugfs.h>
#include <linux/etherdevice.h>
#include <linux/device.h>
#include <linux/irq_work.h>
#include <linux/kfifo.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/workqueue.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_net.h>

#define BN_RX		0
#define BN_TX		1
#define BN_QUEUES	2
#define BN_QUEUE_SIZE	256
#define BN_MAX_DEVICES	8
#define BN_HDR_LEN	12
#define BN_FRAME_LEN	60

enum bn_kind { BN_HONEST, BN_LONG, BN_SHORT, BN_ZERO, BN_LONG2, BN_KINDS };

static const char *const bn_kind_names[BN_KINDS] = {
	"honest", "long", "short", "zero", "long2",
};

struct bn_preset {
	const char *name;
	u64 features;
};

static const struct bn_preset bn_presets[] = {
	{ "mrg", BIT_ULL(VIRTIO_NET_F_MRG_RXBUF) },
	{ "big", BIT_ULL(VIRTIO_NET_F_GUEST_CSUM) | BIT_ULL(VIRTIO_NET_F_GUEST_TSO4) },
	{ "small", 0 },
};

struct badnet {
	struct virtio_device vdev;
	struct device *root;
	const struct bn_preset *preset;
	u8 mac[ETH_ALEN];
	struct dentry *dir;

	/* Protects everything below; taken with interrupts off. */
	spinlock_t lock;
	u8 status;
	/* DRIVER_OK is set and the device has not been reset since. */
	bool live;
	struct virtqueue *vqs[BN_QUEUES];
	/* The device's next available entry and its used index, per queue. */
	u16 last_avail[BN_QUEUES], used[BN_QUEUES];
	DECLARE_KFIFO(pending, u8, 64);
	u64 sent[BN_KINDS], tx, dropped, malformed;

	struct work_struct work;
	struct irq_work irq;
};

static char *presets = "mrg";
module_param(presets, charp, 0444);
MODULE_PARM_DESC(presets, "comma-separated presets, one device each: mrg, big, small");

static struct badnet *bn_devs[BN_MAX_DEVICES];
static unsigned int bn_ndevs;
static struct dentry *bn_debugfs;

static struct badnet *to_bn(struct virtio_device *vdev)
{
	return container_of(vdev, struct badnet, vdev);
}

static void bn_get(struct virtio_device *vdev, unsigned int offset, void *buf, unsigned int len)
{
	struct badnet *bn = to_bn(vdev);
	struct virtio_net_config cfg = {};

	memcpy(cfg.mac, bn->mac, ETH_ALEN);
	memset(buf, 0, len);
	if (offset < sizeof(cfg))
		memcpy(buf, (u8 *)&cfg + offset, min_t(size_t, len, sizeof(cfg) - offset));
}

static void bn_set(struct virtio_device *vdev, unsigned int offset, const void *buf,
		   unsigned int len)
{
	/* Nothing in the config space is the driver's to write. */
}

/* The kernel virtual address of @len bytes at guest physical @addr, if it is RAM. */
static void *bn_buf(u64 addr, u32 len)
{
	void *p;

	if (!addr || !len)
		return NULL;
	p = phys_to_virt(addr);
	if (!virt_addr_valid(p) || !virt_addr_valid(p + len - 1))
		return NULL;
	return p;
}

/* The head of the next available chain of queue @q, or -1 if there is none. */
static int bn_pop(struct badnet *bn, int q)
{
	struct virtio_device *vdev = &bn->vdev;
	const struct vring *vr = virtqueue_get_vring(bn->vqs[q]);
	u16 avail = virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx));
	u16 head;

	if (avail == bn->last_avail[q])
		return -1;
	/* Read the entry after the index that made it available. */
	virt_rmb();
	head = virtio16_to_cpu(vdev, vr->avail->ring[bn->last_avail[q] % vr->num]);
	bn->last_avail[q]++;
	return head;
}

/* Uses chain @head of queue @q with length @len; returns whether to interrupt. */
static bool bn_push(struct badnet *bn, int q, int head, u32 len)
{
	struct virtio_device *vdev = &bn->vdev;
	const struct vring *vr = virtqueue_get_vring(bn->vqs[q]);
	struct vring_used_elem *e = &vr->used->ring[bn->used[q] % vr->num];

	e->id = cpu_to_virtio32(vdev, head);
	e->len = cpu_to_virtio32(vdev, len);
	/* The element before the index that shows it. */
	virt_wmb();
	bn->used[q]++;
	WRITE_ONCE(vr->used->idx, cpu_to_virtio16(vdev, bn->used[q]));
	/* The index before the flag that says whether the driver wants to hear of it. */
	virt_mb();
	return !(virtio16_to_cpu(vdev, READ_ONCE(vr->avail->flags)) & VRING_AVAIL_F_NO_INTERRUPT);
}

/*
 * Writes @len bytes of @data across the writable descriptors of chain @head of
 * the receive queue; returns the chain's writable size, or -1 if it is
 * malformed (a readable or unmapped descriptor, or a loop).
 */
static long bn_write_chain(struct badnet *bn, int head, const u8 *data, u32 len)
{
	const struct vring *vr = virtqueue_get_vring(bn->vqs[BN_RX]);
	struct virtio_device *vdev = &bn->vdev;
	unsigned int i = head, n;
	long cap = 0;
	u32 dlen, done = 0, chunk;
	u16 flags;
	void *p;

	for (n = 0; n < vr->num; n++) {
		if (i >= vr->num)
			return -1;
		dlen = virtio32_to_cpu(vdev, vr->desc[i].len);
		flags = virtio16_to_cpu(vdev, vr->desc[i].flags);
		p = bn_buf(virtio64_to_cpu(vdev, vr->desc[i].addr), dlen);
		if (!p || !(flags & VRING_DESC_F_WRITE))
			return -1;
		chunk = min(dlen, len - done);
		memcpy(p, data + done, chunk);
		done += chunk;
		cap += dlen;
		if (!(flags & VRING_DESC_F_NEXT))
			return cap;
		i = virtio16_to_cpu(vdev, vr->desc[i].next);
	}
	return -1;
}

/*
 * The packet of @kind: a header with @num_buffers, then the frame, whose
 * sender address tells the kind (10.11.12.1 + kind).
 */
static void bn_packet(struct badnet *bn, u8 *pkt, u8 kind, u16 num_buffers)
{
	struct virtio_net_hdr_v1 *hdr = (void *)pkt;
	struct ethhdr *eth = (void *)(pkt + BN_HDR_LEN);
	u8 *arp = pkt + BN_HDR_LEN + ETH_HLEN;
	/* Who has 10.11.12.100? Tell 10.11.12.1 (02:00:00:00:0b:ad). */
	static const u8 bn_arp[] = {
		0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0x0b, 0xad, 10, 11, 12, 1,
		0, 0, 0, 0, 0, 0, 10, 11, 12, 100,
	};

	memset(pkt, 0, BN_HDR_LEN + BN_FRAME_LEN);
	hdr->num_buffers = cpu_to_virtio16(&bn->vdev, num_buffers);
	eth_broadcast_addr(eth->h_dest);
	memcpy(eth->h_source, "\x02\x00\x00\x00\x0b\xad", ETH_ALEN);
	eth->h_proto = htons(ETH_P_ARP);
	memcpy(arp, bn_arp, sizeof(bn_arp));
	arp[17] = 1 + kind;
}

/*
 * Sends the pending packets while there are receive buffers; returns whether
 * to interrupt. A packet of two buffers waits until two are there.
 */
static bool bn_pump(struct badnet *bn)
{
	const struct vring *vr = virtqueue_get_vring(bn->vqs[BN_RX]);
	u8 pkt[BN_HDR_LEN + BN_FRAME_LEN];
	bool irq = false;
	int head, head2;
	long cap;
	u8 kind;
	u32 len;
	u16 avail;

	while (kfifo_peek(&bn->pending, &kind)) {
		avail = virtio16_to_cpu(&bn->vdev, READ_ONCE(vr->avail->idx));
		if ((u16)(avail - bn->last_avail[BN_RX]) < (kind == BN_LONG2 ? 2 : 1))
			break;
		head = bn_pop(bn, BN_RX);
		bn_packet(bn, pkt, kind, kind == BN_LONG2 ? 2 : 1);
		cap = bn_write_chain(bn, head, pkt, sizeof(pkt));
		if (cap < (long)sizeof(pkt)) {
			/* Not a buffer this device can use: give it back empty. */
			bn->malformed++;
			irq |= bn_push(bn, BN_RX, head, 0);
			continue;
		}
		kfifo_skip(&bn->pending);
		bn->sent[kind]++;
		switch (kind) {
		case BN_LONG:
			len = cap + 1;
			break;
		case BN_SHORT:
			len = BN_HDR_LEN + ETH_HLEN - 1;
			break;
		case BN_ZERO:
			len = 0;
			break;
		default:
			len = sizeof(pkt);
		}
		irq |= bn_push(bn, BN_RX, head, len);
		if (kind != BN_LONG2)
			continue;
		/* The second buffer: its bytes written, its used length one too many. */
		head2 = bn_pop(bn, BN_RX);
		memset(pkt, 0x5a, sizeof(pkt));
		cap = bn_write_chain(bn, head2, pkt, sizeof(pkt));
		if (cap < 0) {
			bn->malformed++;
			cap = 0;
		}
		irq |= bn_push(bn, BN_RX, head2, cap + 1);
	}
	return irq;
}

/* Takes every transmitted packet; returns whether to interrupt. */
static bool bn_tx(struct badnet *bn)
{
	bool irq = false;
	int head;

	while ((head = bn_pop(bn, BN_TX)) >= 0) {
		bn->tx++;
		irq |= bn_push(bn, BN_TX, head, 0);
	}
	return irq;
}

static void bn_work(struct work_struct *work)
{
	struct badnet *bn = container_of(work, struct badnet, work);
	unsigned long flags;
	bool irq;

	spin_lock_irqsave(&bn->lock, flags);
	if (bn->live) {
		irq = bn_tx(bn);
		irq |= bn_pump(bn);
		/* The callbacks run in hard-IRQ context, as with a real interrupt. */
		if (irq)
			irq_work_queue(&bn->irq);
	}
	spin_unlock_irqrestore(&bn->lock, flags);
}

static void bn_irq(struct irq_work *work)
{
	struct badnet *bn = container_of(work, struct badnet, irq);
	int q;

	for (q = 0; q < BN_QUEUES; q++)
		if (bn->vqs[q])
			vring_interrupt(0, bn->vqs[q]);
}

/* Stops the device side: nothing touches the rings or interrupts after this. */
static void bn_stop(struct badnet *bn)
{
	unsigned long flags;

	spin_lock_irqsave(&bn->lock, flags);
	bn->live = false;
	spin_unlock_irqrestore(&bn->lock, flags);
	cancel_work_sync(&bn->work);
	irq_work_sync(&bn->irq);
}

static bool bn_notify(struct virtqueue *vq)
{
	struct badnet *bn = to_bn(vq->vdev);
	unsigned long flags;

	spin_lock_irqsave(&bn->lock, flags);
	if (bn->live)
		queue_work(system_wq, &bn->work);
	spin_unlock_irqrestore(&bn->lock, flags);
	return true;
}

static u8 bn_get_status(struct virtio_device *vdev)
{
	return READ_ONCE(to_bn(vdev)->status);
}

static void bn_set_status(struct virtio_device *vdev, u8 status)
{
	struct badnet *bn = to_bn(vdev);
	unsigned long flags;

	spin_lock_irqsave(&bn->lock, flags);
	WRITE_ONCE(bn->status, status);
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !bn->live && bn->vqs[BN_RX] &&
	    bn->vqs[BN_TX]) {
		bn->live = true;
		queue_work(system_wq, &bn->work);
	}
	spin_unlock_irqrestore(&bn->lock, flags);
}

static void bn_reset(struct virtio_device *vdev)
{
	struct badnet *bn = to_bn(vdev);
	unsigned long flags;

	bn_stop(bn);
	spin_lock_irqsave(&bn->lock, flags);
	/* What the driver did not take is lost, as with a real device. */
	bn->dropped += kfifo_len(&bn->pending);
	kfifo_reset(&bn->pending);
	WRITE_ONCE(bn->status, 0);
	spin_unlock_irqrestore(&bn->lock, flags);
}

static void bn_del_vqs(struct virtio_device *vdev)
{
	struct badnet *bn = to_bn(vdev);
	struct virtqueue *vq, *n;
	unsigned long flags;

	/* A driver whose probe failed may delete its queues without a reset. */
	bn_stop(bn);
	spin_lock_irqsave(&bn->lock, flags);
	memset(bn->vqs, 0, sizeof(bn->vqs));
	spin_unlock_irqrestore(&bn->lock, flags);
	list_for_each_entry_safe(vq, n, &vdev->vqs, list)
		vring_del_virtqueue(vq);
}

static int bn_find_vqs(struct virtio_device *vdev, unsigned int nvqs, struct virtqueue *vqs[],
		       struct virtqueue_info vqs_info[], struct irq_affinity *desc)
{
	struct badnet *bn = to_bn(vdev);
	unsigned long flags;
	unsigned int i, q = 0;

	for (i = 0; i < nvqs; i++) {
		if (!vqs_info[i].name) {
			vqs[i] = NULL;
			continue;
		}
		if (q >= BN_QUEUES) {
			bn_del_vqs(vdev);
			return -ENOENT;
		}
		vqs[i] = vring_create_virtqueue(q, BN_QUEUE_SIZE, SMP_CACHE_BYTES, vdev, true,
						true, vqs_info[i].ctx, bn_notify,
						vqs_info[i].callback, vqs_info[i].name);
		if (!vqs[i]) {
			bn_del_vqs(vdev);
			return -ENOMEM;
		}
		spin_lock_irqsave(&bn->lock, flags);
		bn->vqs[q] = vqs[i];
		bn->last_avail[q] = 0;
		bn->used[q] = 0;
		spin_unlock_irqrestore(&bn->lock, flags);
		q++;
	}
	return 0;
}

static void bn_synchronize_cbs(struct virtio_device *vdev)
{
	irq_work_sync(&to_bn(vdev)->irq);
}

static u64 bn_get_features(struct virtio_device *vdev)
{
	return BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(VIRTIO_NET_F_MAC) |
	       to_bn(vdev)->preset->features;
}

static int bn_finalize_features(struct virtio_device *vdev)
{
	vring_transport_features(vdev);
	return 0;
}

static const char *bn_bus_name(struct virtio_device *vdev)
{
	return "vrs_badnet";
}

static const struct virtio_config_ops bn_ops = {
	.get = bn_get,
	.set = bn_set,
	.get_status = bn_get_status,
	.set_status = bn_set_status,
	.reset = bn_reset,
	.find_vqs = bn_find_vqs,
	.del_vqs = bn_del_vqs,
	.synchronize_cbs = bn_synchronize_cbs,
	.get_features = bn_get_features,
	.finalize_features = bn_finalize_features,
	.bus_name = bn_bus_name,
};

static ssize_t bn_control_write(struct file *file, const char __user *ubuf, size_t count,
				loff_t *ppos)
{
	struct badnet *bn = file->private_data;
	unsigned long flags;
	char cmd[32], *c;
	int ret = -EINVAL;
	u8 kind;

	if (count >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, count))
		return -EFAULT;
	cmd[count] = 0;
	c = strim(cmd);
	for (kind = 0; kind < BN_KINDS; kind++)
		if (!strcmp(c, bn_kind_names[kind]))
			break;
	if (kind == BN_KINDS)
		return -EINVAL;
	if (kind == BN_LONG2 && !virtio_has_feature(&bn->vdev, VIRTIO_NET_F_MRG_RXBUF))
		return -EINVAL;

	spin_lock_irqsave(&bn->lock, flags);
	if (!bn->live)
		ret = -ENODEV;
	else if (!kfifo_put(&bn->pending, kind))
		ret = -ENOSPC;
	else
		ret = 0;
	if (!ret)
		queue_work(system_wq, &bn->work);
	spin_unlock_irqrestore(&bn->lock, flags);
	return ret ?: count;
}

static const struct file_operations bn_control_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = bn_control_write,
	.llseek = noop_llseek,
};

static int bn_stats_show(struct seq_file *m, void *v)
{
	struct badnet *bn = m->private;
	unsigned long flags;
	u64 sent[BN_KINDS], tx, dropped, malformed;
	unsigned int pending, i;
	bool live;

	spin_lock_irqsave(&bn->lock, flags);
	memcpy(sent, bn->sent, sizeof(sent));
	tx = bn->tx;
	dropped = bn->dropped;
	malformed = bn->malformed;
	pending = kfifo_len(&bn->pending);
	live = bn->live;
	spin_unlock_irqrestore(&bn->lock, flags);
	for (i = 0; i < BN_KINDS; i++)
		seq_printf(m, "%s=%llu ", bn_kind_names[i], sent[i]);
	seq_printf(m, "tx=%llu dropped=%llu malformed=%llu pending=%u live=%d\n", tx, dropped,
		   malformed, pending, live);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(bn_stats);

static void bn_release(struct device *dev)
{
	kfree(to_bn(dev_to_virtio(dev)));
}

static int bn_add(const struct bn_preset *p)
{
	struct badnet *bn;
	struct device *root;
	char name[32];
	int err;

	if (bn_ndevs == BN_MAX_DEVICES)
		return -ENOSPC;
	snprintf(name, sizeof(name), "badnet-%s", p->name);
	root = root_device_register(name);
	if (IS_ERR(root))
		return PTR_ERR(root);
	bn = kzalloc(sizeof(*bn), GFP_KERNEL);
	if (!bn) {
		root_device_unregister(root);
		return -ENOMEM;
	}
	bn->root = root;
	bn->preset = p;
	memcpy(bn->mac, "\x02\x00\x00\x00\x0b\x00", ETH_ALEN);
	bn->mac[5] = p - bn_presets + 1;
	spin_lock_init(&bn->lock);
	INIT_KFIFO(bn->pending);
	INIT_WORK(&bn->work, bn_work);
	init_irq_work(&bn->irq, bn_irq);
	bn->vdev.dev.parent = root;
	bn->vdev.dev.release = bn_release;
	bn->vdev.config = &bn_ops;
	bn->vdev.id.device = VIRTIO_ID_NET;
	bn->vdev.id.vendor = 0x1af4;
	err = register_virtio_device(&bn->vdev);
	if (err) {
		put_device(&bn->vdev.dev);
		root_device_unregister(root);
		return err;
	}
	bn->dir = debugfs_create_dir(p->name, bn_debugfs);
	debugfs_create_file("control", 0200, bn->dir, bn, &bn_control_fops);
	debugfs_create_file("stats", 0400, bn->dir, bn, &bn_stats_fops);
	bn_devs[bn_ndevs++] = bn;
	return 0;
}

static void bn_remove_all(void)
{
	struct device *root;

	/* The debugfs files first: removing them waits for their users. */
	debugfs_remove_recursive(bn_debugfs);
	while (bn_ndevs) {
		struct badnet *bn = bn_devs[--bn_ndevs];

		root = bn->root;
		unregister_virtio_device(&bn->vdev);
		root_device_unregister(root);
	}
}

static const struct bn_preset *bn_preset(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bn_presets); i++)
		if (!strcmp(bn_presets[i].name, name))
			return &bn_presets[i];
	return NULL;
}

static int __init bn_init(void)
{
	char *list, *s, *name;
	const struct bn_preset *p;
	int err = 0;

	list = kstrdup(presets, GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	bn_debugfs = debugfs_create_dir("vrs_badnet", NULL);
	s = list;
	while (!err && (name = strsep(&s, ",")) != NULL) {
		if (!*name)
			continue;
		p = bn_preset(name);
		if (!p) {
			pr_err("vrs_badnet: unknown preset '%s'\n", name);
			err = -EINVAL;
			break;
		}
		err = bn_add(p);
	}
	kfree(list);
	if (err)
		bn_remove_all();
	return err;
}

static void __exit bn_exit(void)
{
	bn_remove_all();
}

module_init(bn_init);
module_exit(bn_exit);
MODULE_DESCRIPTION("virtio-net devices that lie about used lengths, played in the guest, for the selftests");
MODULE_LICENSE("GPL");
