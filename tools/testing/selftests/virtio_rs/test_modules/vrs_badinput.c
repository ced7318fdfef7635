// SPDX-License-Identifier: GPL-2.0
/*
 * vrs_badinput: virtio input devices that lie, played inside the guest.
 *
 * A test needs a virtio-input device whose config space it chooses (a
 * multitouch screen, lying absinfo, slot counts) and whose queues it drives
 * (inject events, record what the driver sends on the status queue, short
 * and unasked events). QEMU 7.2 cannot play one: its own virtio-input
 * devices are fixed, and its vhost-user-input frontend, which would take
 * the device from tools/testing/virtio_rs/baddev, refuses to start without
 * KVM ("vhost initialization failed: requires kvm"; QEMU 8.2 dropped that
 * check), while these tests run under TCG.
 *
 * So this module is the transport and the device at once. For each name in
 * presets= it registers a root device /sys/devices/badinput-PRESET and, under
 * it, a virtio device (VIRTIO_ID_INPUT, VERSION_1 only) on the virtio bus;
 * the virtio_input_rs or virtio_input driver binds it like any other. The
 * queues are split rings from vring_create_virtqueue(); the device side
 * reads the available rings and writes the used rings from a work item, as
 * a device would (it starts at DRIVER_OK, and stops at reset), and raises
 * the queue interrupts from hard-IRQ context (an irq_work), where the
 * drivers' callbacks run on a real transport.
 *
 * The honest device, preset "mt", is a touchscreen named "badinput mt"
 * (serial "mt", bus BUS_VIRTUAL, vendor 0x1af4, product 0x0bad, version 1)
 * with INPUT_PROP_DIRECT, BTN_TOUCH, the axes of bi_axes (ABS_X, ABS_Y, and
 * 10 slots of ABS_MT_POSITION_X/Y and ABS_MT_TRACKING_ID), each with a
 * distinctive minimum, maximum, fuzz, flat and resolution, and the LEDs
 * LED_NUML and LED_CAPSL. The other presets change one thing:
 *
 *   abs-min-gt-max  ABS_X and ABS_MT_POSITION_X with minimum and maximum
 *                   swapped (4000 > 17, 4001 > 19)
 *   slots-0, slots-257, slots-1024, slots-1025
 *                   ABS_MT_SLOT's maximum is the slot count less one (-1,
 *                   256, 1023, 1024); input_mt_init_slots() takes up to 1024
 *   short           an injected touch is preceded by BI_SHORT_EVENTS events
 *                   (ABS_X 500, SYN_REPORT, ABS_X 510, ...) whose buffers are
 *                   used with lengths 0, 1, ..., 7, 0, ...: all 8 bytes are
 *                   written, the used length says they were not
 *   flood           from DRIVER_OK, BI_FLOOD_FRAMES frames (ABS_X 100 or 200,
 *                   SYN_REPORT) every millisecond, unasked, buffers allowing
 *   gen-spin        the config generation changes on every read of it, so no
 *                   config read is ever consistent: a driver must give up
 *                   (the C virtio_cread loop never does: do not bind it)
 *
 * /sys/kernel/debug/vrs_badinput/PRESET/ has:
 *
 *   log      every event the driver sent on the status queue, the last
 *            BI_LOG_MAX, one "status type=T code=C value=V" line each (a
 *            buffer that is not one event: "status malformed: N bytes")
 *   control  write "clear" (empty the log), "inject mt" (a two-finger touch,
 *            see bi_touch(); ENODEV unless the driver made the device live),
 *            "flood on" or "flood off"
 *   stats    counters: events sent with an honest length, short, of the
 *            flood, status events, malformed buffers, events dropped at reset
 *
 * usage: modprobe vrs_badinput presets=mt,short
 */
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/hrtimer.h>
#include <linux/input.h>
#include <linux/irq_work.h>
#include <linux/kfifo.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/workqueue.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_input.h>

#define BI_EVENTS	0
#define BI_STATUS	1
#define BI_QUEUES	2
#define BI_QUEUE_SIZE	64
#define BI_LOG_MAX	1024
#define BI_SHORT_EVENTS	192
#define BI_FLOOD_FRAMES	4
#define BI_MAX_DEVICES	16

enum bi_lie { BI_HONEST, BI_SHORT, BI_FLOOD, BI_GEN_SPIN };

struct bi_preset {
	const char *name;
	/* ABS_MT_SLOT's maximum: the slot count less one. */
	int slot_max;
	/* ABS_X and ABS_MT_POSITION_X with minimum and maximum swapped. */
	bool min_gt_max;
	enum bi_lie lie;
};

static const struct bi_preset bi_presets[] = {
	{ "mt", 9, false, BI_HONEST },
	{ "abs-min-gt-max", 9, true, BI_HONEST },
	{ "slots-0", -1, false, BI_HONEST },
	{ "slots-257", 256, false, BI_HONEST },
	{ "slots-1024", 1023, false, BI_HONEST },
	{ "slots-1025", 1024, false, BI_HONEST },
	{ "short", 9, false, BI_SHORT },
	{ "flood", 9, false, BI_FLOOD },
	{ "gen-spin", 9, false, BI_GEN_SPIN },
};

struct bi_abs {
	s32 min, max, fuzz, flat, res;
};

/*
 * The honest axes. ABS_MT_SLOT and ABS_MT_TRACKING_ID say what
 * input_mt_init_slots() sets them to anyway (0..slots-1 and 0..65535, no
 * fuzz or flat), so that every value a driver reads back is the device's.
 */
static const struct {
	u16 code;
	struct bi_abs abs;
} bi_axes[] = {
	{ ABS_X, { 17, 4000, 3, 5, 11 } },
	{ ABS_Y, { 23, 3000, 2, 7, 13 } },
	{ ABS_MT_SLOT, { 0, 9, 0, 0, 0 } },
	{ ABS_MT_POSITION_X, { 19, 4001, 4, 0, 12 } },
	{ ABS_MT_POSITION_Y, { 29, 3001, 6, 0, 14 } },
	{ ABS_MT_TRACKING_ID, { 0, 65535, 0, 0, 0 } },
};

enum bi_kind { BI_TOUCH, BI_MARK, BI_FLOODED };

/* An event waiting for a buffer, and the used length to report for it. */
struct bi_event {
	u16 type;
	u16 code;
	s32 value;
	u8 len;
	u8 kind;
};

struct bi_record {
	u16 type;
	u16 code;
	s32 value;
	u32 len;
};

struct bi_stats {
	u64 sent, short_sent, flood, status, malformed, dropped;
};

struct badinput {
	struct virtio_device vdev;
	struct device *root;
	const struct bi_preset *preset;
	struct dentry *dir;
	/* The config generation of gen-spin: one more at every read. */
	atomic_t generation;

	/* Protects everything below; taken with interrupts off. */
	spinlock_t lock;
	u8 status;
	u8 select, subsel;
	/* DRIVER_OK is set and the device has not been reset since. */
	bool live;
	bool flood, flood_due;
	struct virtqueue *vqs[BI_QUEUES];
	/* The device's next available entry and its used index, per queue. */
	u16 last_avail[BI_QUEUES], used[BI_QUEUES];
	DECLARE_KFIFO(pending, struct bi_event, 1024);
	struct bi_record log[BI_LOG_MAX];
	unsigned int log_start, log_len;
	struct bi_stats stats;
	s32 flood_x;

	struct work_struct work;
	struct irq_work irq;
	struct hrtimer flood_timer;
};

static char *presets = "mt";
module_param(presets, charp, 0444);
MODULE_PARM_DESC(presets, "comma-separated presets, one device each: mt, abs-min-gt-max, slots-0, slots-257, slots-1024, slots-1025, short, flood, gen-spin");

static struct badinput *bi_devs[BI_MAX_DEVICES];
static unsigned int bi_ndevs;
static struct dentry *bi_debugfs;

static struct badinput *to_bi(struct virtio_device *vdev)
{
	return container_of(vdev, struct badinput, vdev);
}

/* The parameters of axis @code, if the device has it. */
static bool bi_axis(const struct bi_preset *p, unsigned int code, struct bi_abs *abs)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bi_axes); i++) {
		if (bi_axes[i].code != code)
			continue;
		*abs = bi_axes[i].abs;
		if (code == ABS_MT_SLOT)
			abs->max = p->slot_max;
		if (p->min_gt_max && (code == ABS_X || code == ABS_MT_POSITION_X))
			swap(abs->min, abs->max);
		return true;
	}
	return false;
}

static u8 bi_bits(u8 *map, const u16 *bits, unsigned int n)
{
	unsigned int i, size = 0;

	for (i = 0; i < n; i++) {
		map[bits[i] / 8] |= BIT(bits[i] % 8);
		size = max(size, bits[i] / 8u + 1);
	}
	return size;
}

/* struct virtio_input_config as the device shows it for select/subsel. */
static void bi_config(struct badinput *bi, struct virtio_input_config *cfg)
{
	static const u16 key[] = { BTN_TOUCH };
	static const u16 led[] = { LED_NUML, LED_CAPSL };
	static const u16 prop[] = { INPUT_PROP_DIRECT };
	const struct bi_preset *p = bi->preset;
	u16 abs[ARRAY_SIZE(bi_axes)];
	struct bi_abs a;
	unsigned int i;
	u8 size = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->select = bi->select;
	cfg->subsel = bi->subsel;
	switch (bi->select) {
	case VIRTIO_INPUT_CFG_ID_NAME:
		size = scnprintf(cfg->u.string, sizeof(cfg->u.string), "badinput %s", p->name);
		break;
	case VIRTIO_INPUT_CFG_ID_SERIAL:
		size = scnprintf(cfg->u.string, sizeof(cfg->u.string), "%s", p->name);
		break;
	case VIRTIO_INPUT_CFG_ID_DEVIDS:
		cfg->u.ids.bustype = cpu_to_le16(BUS_VIRTUAL);
		cfg->u.ids.vendor = cpu_to_le16(0x1af4);
		cfg->u.ids.product = cpu_to_le16(0x0bad);
		cfg->u.ids.version = cpu_to_le16(0x0001);
		size = sizeof(cfg->u.ids);
		break;
	case VIRTIO_INPUT_CFG_PROP_BITS:
		if (!bi->subsel)
			size = bi_bits(cfg->u.bitmap, prop, ARRAY_SIZE(prop));
		break;
	case VIRTIO_INPUT_CFG_EV_BITS:
		if (bi->subsel == EV_KEY) {
			size = bi_bits(cfg->u.bitmap, key, ARRAY_SIZE(key));
		} else if (bi->subsel == EV_LED) {
			size = bi_bits(cfg->u.bitmap, led, ARRAY_SIZE(led));
		} else if (bi->subsel == EV_ABS) {
			for (i = 0; i < ARRAY_SIZE(bi_axes); i++)
				abs[i] = bi_axes[i].code;
			size = bi_bits(cfg->u.bitmap, abs, ARRAY_SIZE(abs));
		}
		break;
	case VIRTIO_INPUT_CFG_ABS_INFO:
		if (bi_axis(p, bi->subsel, &a)) {
			cfg->u.abs.min = cpu_to_le32(a.min);
			cfg->u.abs.max = cpu_to_le32(a.max);
			cfg->u.abs.fuzz = cpu_to_le32(a.fuzz);
			cfg->u.abs.flat = cpu_to_le32(a.flat);
			cfg->u.abs.res = cpu_to_le32(a.res);
			size = sizeof(cfg->u.abs);
		}
		break;
	}
	cfg->size = size;
}

static void bi_get(struct virtio_device *vdev, unsigned int offset, void *buf, unsigned int len)
{
	struct badinput *bi = to_bi(vdev);
	struct virtio_input_config cfg;
	unsigned long flags;

	spin_lock_irqsave(&bi->lock, flags);
	bi_config(bi, &cfg);
	spin_unlock_irqrestore(&bi->lock, flags);
	memset(buf, 0, len);
	if (offset < sizeof(cfg))
		memcpy(buf, (u8 *)&cfg + offset, min_t(size_t, len, sizeof(cfg) - offset));
}

static void bi_set(struct virtio_device *vdev, unsigned int offset, const void *buf,
		   unsigned int len)
{
	struct badinput *bi = to_bi(vdev);
	const u8 *b = buf;
	unsigned long flags;
	unsigned int i;

	/* Only select and subsel are the driver's to write. */
	spin_lock_irqsave(&bi->lock, flags);
	for (i = 0; i < len; i++) {
		if (offset + i == offsetof(struct virtio_input_config, select))
			bi->select = b[i];
		else if (offset + i == offsetof(struct virtio_input_config, subsel))
			bi->subsel = b[i];
	}
	spin_unlock_irqrestore(&bi->lock, flags);
}

/* The kernel virtual address of @len bytes at guest physical @addr, if it is RAM. */
static void *bi_buf(u64 addr, u32 len)
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
static int bi_pop(struct badinput *bi, int q)
{
	struct virtio_device *vdev = &bi->vdev;
	const struct vring *vr = virtqueue_get_vring(bi->vqs[q]);
	u16 avail = virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx));
	u16 head;

	if (avail == bi->last_avail[q])
		return -1;
	/* Read the entry after the index that made it available. */
	virt_rmb();
	head = virtio16_to_cpu(vdev, vr->avail->ring[bi->last_avail[q] % vr->num]);
	bi->last_avail[q]++;
	return head;
}

/* The descriptor @i of queue @q: its buffer, length and flags. */
static void *bi_desc(struct badinput *bi, int q, unsigned int i, u32 *len, u16 *flags)
{
	struct virtio_device *vdev = &bi->vdev;
	const struct vring *vr = virtqueue_get_vring(bi->vqs[q]);

	*len = 0;
	*flags = 0;
	if (i >= vr->num)
		return NULL;
	*len = virtio32_to_cpu(vdev, vr->desc[i].len);
	*flags = virtio16_to_cpu(vdev, vr->desc[i].flags);
	return bi_buf(virtio64_to_cpu(vdev, vr->desc[i].addr), *len);
}

static u16 bi_next(struct badinput *bi, int q, unsigned int i)
{
	const struct vring *vr = virtqueue_get_vring(bi->vqs[q]);

	return virtio16_to_cpu(&bi->vdev, vr->desc[i].next);
}

/* Uses chain @head of queue @q with length @len; returns whether to interrupt. */
static bool bi_push(struct badinput *bi, int q, int head, u32 len)
{
	struct virtio_device *vdev = &bi->vdev;
	const struct vring *vr = virtqueue_get_vring(bi->vqs[q]);
	struct vring_used_elem *e = &vr->used->ring[bi->used[q] % vr->num];

	e->id = cpu_to_virtio32(vdev, head);
	e->len = cpu_to_virtio32(vdev, len);
	/* The element before the index that shows it. */
	virt_wmb();
	bi->used[q]++;
	WRITE_ONCE(vr->used->idx, cpu_to_virtio16(vdev, bi->used[q]));
	/* The index before the flag that says whether the driver wants to hear of it. */
	virt_mb();
	return !(virtio16_to_cpu(vdev, READ_ONCE(vr->avail->flags)) & VRING_AVAIL_F_NO_INTERRUPT);
}

/* Puts pending events in the driver's event buffers; returns whether to interrupt. */
static bool bi_pump(struct badinput *bi)
{
	struct virtio_input_event ev;
	struct bi_event e;
	bool irq = false;
	u16 flags;
	void *buf;
	u32 len;
	int head;

	while (kfifo_peek(&bi->pending, &e)) {
		head = bi_pop(bi, BI_EVENTS);
		if (head < 0)
			break;
		buf = bi_desc(bi, BI_EVENTS, head, &len, &flags);
		if (!buf || !(flags & VRING_DESC_F_WRITE) || len < sizeof(ev)) {
			bi->stats.malformed++;
			irq |= bi_push(bi, BI_EVENTS, head, 0);
			continue;
		}
		ev.type = cpu_to_le16(e.type);
		ev.code = cpu_to_le16(e.code);
		ev.value = cpu_to_le32(e.value);
		memcpy(buf, &ev, sizeof(ev));
		kfifo_skip(&bi->pending);
		if (e.len < sizeof(ev))
			bi->stats.short_sent++;
		else
			bi->stats.sent++;
		if (e.kind == BI_FLOODED)
			bi->stats.flood++;
		irq |= bi_push(bi, BI_EVENTS, head, e.len);
	}
	return irq;
}

static void bi_log(struct badinput *bi, u16 type, u16 code, s32 value, u32 len)
{
	struct bi_record *r;

	if (bi->log_len == BI_LOG_MAX) {
		bi->log_start = (bi->log_start + 1) % BI_LOG_MAX;
		bi->log_len--;
	}
	r = &bi->log[(bi->log_start + bi->log_len++) % BI_LOG_MAX];
	*r = (struct bi_record){ .type = type, .code = code, .value = value, .len = len };
}

/* Records every status event available; returns whether to interrupt. */
static bool bi_status(struct badinput *bi)
{
	struct virtio_input_event ev;
	unsigned int n, i, got;
	bool irq = false;
	u16 flags;
	void *buf;
	u32 len;
	int head;

	while ((head = bi_pop(bi, BI_STATUS)) >= 0) {
		/* Gather the device-readable bytes of the chain, the first 8 of them. */
		got = 0;
		for (n = 0, i = head; n < BI_QUEUE_SIZE; n++, i = bi_next(bi, BI_STATUS, i)) {
			buf = bi_desc(bi, BI_STATUS, i, &len, &flags);
			if (!buf || (flags & VRING_DESC_F_WRITE)) {
				got = U32_MAX;
				break;
			}
			if (got < sizeof(ev))
				memcpy((u8 *)&ev + got, buf, min_t(u32, len, sizeof(ev) - got));
			got += len;
			if (!(flags & VRING_DESC_F_NEXT))
				break;
		}
		if (got == sizeof(ev)) {
			bi->stats.status++;
			bi_log(bi, le16_to_cpu(ev.type), le16_to_cpu(ev.code),
			       le32_to_cpu(ev.value), got);
		} else {
			bi->stats.malformed++;
			bi_log(bi, 0, 0, 0, got);
		}
		irq |= bi_push(bi, BI_STATUS, head, 0);
	}
	return irq;
}

static void bi_queue(struct badinput *bi, u16 type, u16 code, s32 value, u8 len, u8 kind)
{
	struct bi_event e = {
		.type = type, .code = code, .value = value, .len = len, .kind = kind,
	};

	if (!kfifo_put(&bi->pending, e))
		bi->stats.dropped++;
}

static void bi_work(struct work_struct *work)
{
	struct badinput *bi = container_of(work, struct badinput, work);
	unsigned long flags;
	bool irq = false;
	int i;

	spin_lock_irqsave(&bi->lock, flags);
	if (bi->live) {
		if (bi->flood && bi->flood_due &&
		    kfifo_len(&bi->pending) < 2 * BI_FLOOD_FRAMES) {
			for (i = 0; i < BI_FLOOD_FRAMES; i++) {
				bi->flood_x = bi->flood_x == 100 ? 200 : 100;
				bi_queue(bi, EV_ABS, ABS_X, bi->flood_x, 8, BI_FLOODED);
				bi_queue(bi, EV_SYN, SYN_REPORT, 0, 8, BI_FLOODED);
			}
		}
		bi->flood_due = false;
		irq = bi_status(bi);
		irq |= bi_pump(bi);
		/* The callbacks run in hard-IRQ context, as with a real interrupt. */
		if (irq)
			irq_work_queue(&bi->irq);
	}
	spin_unlock_irqrestore(&bi->lock, flags);
}

static void bi_irq(struct irq_work *work)
{
	struct badinput *bi = container_of(work, struct badinput, irq);
	int q;

	for (q = 0; q < BI_QUEUES; q++)
		if (bi->vqs[q])
			vring_interrupt(0, bi->vqs[q]);
}

static enum hrtimer_restart bi_flood_tick(struct hrtimer *t)
{
	struct badinput *bi = container_of(t, struct badinput, flood_timer);

	if (!READ_ONCE(bi->live) || !READ_ONCE(bi->flood))
		return HRTIMER_NORESTART;
	WRITE_ONCE(bi->flood_due, true);
	queue_work(system_wq, &bi->work);
	hrtimer_forward_now(t, ms_to_ktime(1));
	return HRTIMER_RESTART;
}

/* Called with bi->lock held. */
static void bi_start_flood(struct badinput *bi)
{
	if (bi->live && bi->flood && !hrtimer_active(&bi->flood_timer))
		hrtimer_start(&bi->flood_timer, ms_to_ktime(1), HRTIMER_MODE_REL);
}

/* Stops the device side: nothing touches the rings or interrupts after this. */
static void bi_stop(struct badinput *bi)
{
	unsigned long flags;

	spin_lock_irqsave(&bi->lock, flags);
	bi->live = false;
	spin_unlock_irqrestore(&bi->lock, flags);
	hrtimer_cancel(&bi->flood_timer);
	cancel_work_sync(&bi->work);
	irq_work_sync(&bi->irq);
}

static bool bi_notify(struct virtqueue *vq)
{
	struct badinput *bi = to_bi(vq->vdev);
	unsigned long flags;

	/* Before DRIVER_OK the buffers wait; set_status() looks at them. */
	spin_lock_irqsave(&bi->lock, flags);
	if (bi->live)
		queue_work(system_wq, &bi->work);
	spin_unlock_irqrestore(&bi->lock, flags);
	return true;
}

static u8 bi_get_status(struct virtio_device *vdev)
{
	struct badinput *bi = to_bi(vdev);

	return READ_ONCE(bi->status);
}

static void bi_set_status(struct virtio_device *vdev, u8 status)
{
	struct badinput *bi = to_bi(vdev);
	unsigned long flags;

	spin_lock_irqsave(&bi->lock, flags);
	WRITE_ONCE(bi->status, status);
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !bi->live && bi->vqs[BI_EVENTS]) {
		bi->live = true;
		queue_work(system_wq, &bi->work);
		bi_start_flood(bi);
	}
	spin_unlock_irqrestore(&bi->lock, flags);
}

static void bi_reset(struct virtio_device *vdev)
{
	struct badinput *bi = to_bi(vdev);
	unsigned long flags;

	bi_stop(bi);
	spin_lock_irqsave(&bi->lock, flags);
	/* What the driver did not take is lost, as with a real device. */
	bi->stats.dropped += kfifo_len(&bi->pending);
	kfifo_reset(&bi->pending);
	bi->select = 0;
	bi->subsel = 0;
	bi->flood = bi->preset->lie == BI_FLOOD;
	WRITE_ONCE(bi->status, 0);
	spin_unlock_irqrestore(&bi->lock, flags);
}

static void bi_del_vqs(struct virtio_device *vdev)
{
	struct badinput *bi = to_bi(vdev);
	struct virtqueue *vq, *n;
	unsigned long flags;

	/* A driver whose probe failed may delete its queues without a reset. */
	bi_stop(bi);
	spin_lock_irqsave(&bi->lock, flags);
	memset(bi->vqs, 0, sizeof(bi->vqs));
	spin_unlock_irqrestore(&bi->lock, flags);
	list_for_each_entry_safe(vq, n, &vdev->vqs, list)
		vring_del_virtqueue(vq);
}

static int bi_find_vqs(struct virtio_device *vdev, unsigned int nvqs, struct virtqueue *vqs[],
		       struct virtqueue_info vqs_info[], struct irq_affinity *desc)
{
	struct badinput *bi = to_bi(vdev);
	unsigned long flags;
	unsigned int i, q = 0;

	for (i = 0; i < nvqs; i++) {
		if (!vqs_info[i].name) {
			vqs[i] = NULL;
			continue;
		}
		if (q >= BI_QUEUES) {
			bi_del_vqs(vdev);
			return -ENOENT;
		}
		vqs[i] = vring_create_virtqueue(q, BI_QUEUE_SIZE, SMP_CACHE_BYTES, vdev, true,
						true, vqs_info[i].ctx, bi_notify,
						vqs_info[i].callback, vqs_info[i].name);
		if (!vqs[i]) {
			bi_del_vqs(vdev);
			return -ENOMEM;
		}
		spin_lock_irqsave(&bi->lock, flags);
		bi->vqs[q] = vqs[i];
		bi->last_avail[q] = 0;
		bi->used[q] = 0;
		spin_unlock_irqrestore(&bi->lock, flags);
		q++;
	}
	return 0;
}

static void bi_synchronize_cbs(struct virtio_device *vdev)
{
	irq_work_sync(&to_bi(vdev)->irq);
}

static u64 bi_get_features(struct virtio_device *vdev)
{
	return BIT_ULL(VIRTIO_F_VERSION_1);
}

static int bi_finalize_features(struct virtio_device *vdev)
{
	vring_transport_features(vdev);
	return 0;
}

static const char *bi_bus_name(struct virtio_device *vdev)
{
	return "vrs_badinput";
}

static u32 bi_generation(struct virtio_device *vdev)
{
	struct badinput *bi = to_bi(vdev);

	if (bi->preset->lie == BI_GEN_SPIN)
		return atomic_inc_return(&bi->generation);
	return 0;
}

static const struct virtio_config_ops bi_ops = {
	.get = bi_get,
	.generation = bi_generation,
	.set = bi_set,
	.get_status = bi_get_status,
	.set_status = bi_set_status,
	.reset = bi_reset,
	.find_vqs = bi_find_vqs,
	.del_vqs = bi_del_vqs,
	.synchronize_cbs = bi_synchronize_cbs,
	.get_features = bi_get_features,
	.finalize_features = bi_finalize_features,
	.bus_name = bi_bus_name,
};

/*
 * The touch of "inject mt": a first finger down in slot 0, a second in the
 * last slot (slot 1 without slots), both moving, the first lifted, then the
 * second. ABS_X/ABS_Y follow the first finger; BTN_TOUCH is down while any
 * finger is.
 */
static void bi_touch(struct badinput *bi)
{
	static const s32 syn[3] = { EV_SYN, SYN_REPORT, 0 };
	s32 s2 = max(bi->preset->slot_max, 1);
	const s32 touch[][3] = {
		{ EV_ABS, ABS_MT_SLOT, 0 },
		{ EV_ABS, ABS_MT_TRACKING_ID, 100 },
		{ EV_ABS, ABS_MT_POSITION_X, 1000 },
		{ EV_ABS, ABS_MT_POSITION_Y, 2000 },
		{ EV_KEY, BTN_TOUCH, 1 },
		{ EV_ABS, ABS_X, 1000 },
		{ EV_ABS, ABS_Y, 2000 },
		{ syn[0], syn[1], syn[2] },
		{ EV_ABS, ABS_MT_SLOT, s2 },
		{ EV_ABS, ABS_MT_TRACKING_ID, 101 },
		{ EV_ABS, ABS_MT_POSITION_X, 3000 },
		{ EV_ABS, ABS_MT_POSITION_Y, 500 },
		{ syn[0], syn[1], syn[2] },
		{ EV_ABS, ABS_MT_SLOT, 0 },
		{ EV_ABS, ABS_MT_POSITION_X, 1100 },
		{ EV_ABS, ABS_MT_POSITION_Y, 2100 },
		{ EV_ABS, ABS_MT_SLOT, s2 },
		{ EV_ABS, ABS_MT_POSITION_X, 2900 },
		{ EV_ABS, ABS_MT_POSITION_Y, 600 },
		{ EV_ABS, ABS_X, 1100 },
		{ EV_ABS, ABS_Y, 2100 },
		{ syn[0], syn[1], syn[2] },
		{ EV_ABS, ABS_MT_SLOT, 0 },
		{ EV_ABS, ABS_MT_TRACKING_ID, -1 },
		{ syn[0], syn[1], syn[2] },
		{ EV_ABS, ABS_MT_SLOT, s2 },
		{ EV_ABS, ABS_MT_TRACKING_ID, -1 },
		{ EV_KEY, BTN_TOUCH, 0 },
		{ syn[0], syn[1], syn[2] },
	};
	unsigned int i;

	if (bi->preset->lie == BI_SHORT) {
		/* What a driver that ignores the used length would report. */
		for (i = 0; i < BI_SHORT_EVENTS; i++) {
			if (i % 2)
				bi_queue(bi, EV_SYN, SYN_REPORT, 0, i % 8, BI_MARK);
			else
				bi_queue(bi, EV_ABS, ABS_X, 500 + 10 * (i / 2), i % 8, BI_MARK);
		}
	}
	for (i = 0; i < ARRAY_SIZE(touch); i++)
		bi_queue(bi, touch[i][0], touch[i][1], touch[i][2], 8, BI_TOUCH);
}

static ssize_t bi_control_write(struct file *file, const char __user *ubuf, size_t count,
				loff_t *ppos)
{
	struct badinput *bi = file->private_data;
	unsigned long flags;
	char cmd[32], *c;
	int ret = 0;

	if (count >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, count))
		return -EFAULT;
	cmd[count] = 0;
	c = strim(cmd);

	spin_lock_irqsave(&bi->lock, flags);
	if (!strcmp(c, "clear")) {
		bi->log_start = 0;
		bi->log_len = 0;
	} else if (!strcmp(c, "inject mt")) {
		if (bi->live) {
			bi_touch(bi);
			queue_work(system_wq, &bi->work);
		} else {
			ret = -ENODEV;
		}
	} else if (!strcmp(c, "flood on")) {
		bi->flood = true;
		bi_start_flood(bi);
	} else if (!strcmp(c, "flood off")) {
		bi->flood = false;
	} else {
		ret = -EINVAL;
	}
	spin_unlock_irqrestore(&bi->lock, flags);
	return ret ?: count;
}

static const struct file_operations bi_control_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = bi_control_write,
	.llseek = noop_llseek,
};

static int bi_log_show(struct seq_file *m, void *v)
{
	struct badinput *bi = m->private;
	struct bi_record *r;
	unsigned long flags;
	unsigned int i;

	spin_lock_irqsave(&bi->lock, flags);
	for (i = 0; i < bi->log_len; i++) {
		r = &bi->log[(bi->log_start + i) % BI_LOG_MAX];
		if (r->len == sizeof(struct virtio_input_event))
			seq_printf(m, "status type=%u code=%u value=%d\n", r->type, r->code,
				   r->value);
		else
			seq_printf(m, "status malformed: %u bytes\n", r->len);
	}
	spin_unlock_irqrestore(&bi->lock, flags);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(bi_log);

static int bi_stats_show(struct seq_file *m, void *v)
{
	struct badinput *bi = m->private;
	unsigned long flags;
	struct bi_stats s;
	unsigned int pending;
	bool live, flood;

	spin_lock_irqsave(&bi->lock, flags);
	s = bi->stats;
	pending = kfifo_len(&bi->pending);
	live = bi->live;
	flood = bi->flood;
	spin_unlock_irqrestore(&bi->lock, flags);
	seq_printf(m, "sent=%llu short=%llu flood=%llu status=%llu malformed=%llu dropped=%llu pending=%u live=%d flooding=%d\n",
		   s.sent, s.short_sent, s.flood, s.status, s.malformed, s.dropped, pending,
		   live, flood);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(bi_stats);

static void bi_release(struct device *dev)
{
	kfree(to_bi(dev_to_virtio(dev)));
}

static const struct bi_preset *bi_preset(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bi_presets); i++)
		if (!strcmp(bi_presets[i].name, name))
			return &bi_presets[i];
	return NULL;
}

static int bi_add(const struct bi_preset *p)
{
	struct badinput *bi;
	struct device *root;
	char name[32];
	int err;

	if (bi_ndevs == BI_MAX_DEVICES)
		return -ENOSPC;
	snprintf(name, sizeof(name), "badinput-%s", p->name);
	root = root_device_register(name);
	if (IS_ERR(root))
		return PTR_ERR(root);
	bi = kzalloc(sizeof(*bi), GFP_KERNEL);
	if (!bi) {
		root_device_unregister(root);
		return -ENOMEM;
	}
	bi->root = root;
	bi->preset = p;
	bi->flood = p->lie == BI_FLOOD;
	bi->flood_x = 100;
	spin_lock_init(&bi->lock);
	INIT_KFIFO(bi->pending);
	INIT_WORK(&bi->work, bi_work);
	init_irq_work(&bi->irq, bi_irq);
	hrtimer_init(&bi->flood_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	bi->flood_timer.function = bi_flood_tick;
	bi->vdev.dev.parent = root;
	bi->vdev.dev.release = bi_release;
	bi->vdev.config = &bi_ops;
	bi->vdev.id.device = VIRTIO_ID_INPUT;
	bi->vdev.id.vendor = 0x1af4;
	err = register_virtio_device(&bi->vdev);
	if (err) {
		put_device(&bi->vdev.dev);
		root_device_unregister(root);
		return err;
	}
	bi->dir = debugfs_create_dir(p->name, bi_debugfs);
	debugfs_create_file("control", 0200, bi->dir, bi, &bi_control_fops);
	debugfs_create_file("log", 0400, bi->dir, bi, &bi_log_fops);
	debugfs_create_file("stats", 0400, bi->dir, bi, &bi_stats_fops);
	bi_devs[bi_ndevs++] = bi;
	return 0;
}

static void bi_remove_all(void)
{
	struct device *root;

	/* The debugfs files first: removing them waits for their users. */
	debugfs_remove_recursive(bi_debugfs);
	while (bi_ndevs) {
		struct badinput *bi = bi_devs[--bi_ndevs];

		root = bi->root;
		unregister_virtio_device(&bi->vdev);
		root_device_unregister(root);
	}
}

static int __init bi_init(void)
{
	char *list, *s, *name;
	const struct bi_preset *p;
	int err = 0;

	list = kstrdup(presets, GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	bi_debugfs = debugfs_create_dir("vrs_badinput", NULL);
	s = list;
	while (!err && (name = strsep(&s, ",")) != NULL) {
		if (!*name)
			continue;
		p = bi_preset(name);
		if (!p) {
			pr_err("vrs_badinput: unknown preset '%s'\n", name);
			err = -EINVAL;
			break;
		}
		err = bi_add(p);
	}
	kfree(list);
	if (err)
		bi_remove_all();
	return err;
}

static void __exit bi_exit(void)
{
	bi_remove_all();
}

module_init(bi_init);
module_exit(bi_exit);
MODULE_DESCRIPTION("virtio input devices that lie, played in the guest, for the selftests");
MODULE_LICENSE("GPL");
