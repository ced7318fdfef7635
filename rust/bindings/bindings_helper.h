/* SPDX-License-Identifier: GPL-2.0 */
#include <linux/completion.h>
#include <linux/interrupt_rc.h>
#include <linux/hw_random.h>
#include <linux/scatterlist.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <uapi/linux/virtio_ids.h>
#include <linux/input.h>
#include <linux/input/mt.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <uapi/linux/virtio_blk.h>
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/skbuff.h>
#include <net/netdev_rx_queue.h>
#include <uapi/linux/virtio_net.h>
