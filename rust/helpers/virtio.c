// SPDX-License-Identifier: GPL-2.0

#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/interrupt.h>

void rust_helper_virtio_device_ready(struct virtio_device *vdev)
{
	virtio_device_ready(vdev);
}

void rust_helper_virtio_synchronize_cbs(struct virtio_device *vdev)
{
	virtio_synchronize_cbs(vdev);
}

/* @spread: ask for managed interrupt affinity, spread over the CPUs. */
int rust_helper_virtio_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
				struct virtqueue *vqs[],
				struct virtqueue_info vqs_info[], bool spread)
{
	struct irq_affinity desc = { 0 };

	return virtio_find_vqs(vdev, nvqs, vqs, vqs_info, spread ? &desc : NULL);
}

/*
 * Whether @cpu is in the interrupt affinity of queue @index of @vdev: 1 or 0,
 * or -1 if the transport reports none for it.
 */
int rust_helper_virtio_rs_vq_has_cpu(struct virtio_device *vdev, int index,
				     unsigned int cpu)
{
	const struct cpumask *mask;

	if (!vdev->config->get_vq_affinity)
		return -1;
	mask = vdev->config->get_vq_affinity(vdev, index);
	if (!mask)
		return -1;
	return cpu < nr_cpu_ids && cpumask_test_cpu(cpu, mask);
}

void rust_helper_virtio_del_vqs(struct virtio_device *vdev)
{
	vdev->config->del_vqs(vdev);
}

bool rust_helper_virtio_is_little_endian(struct virtio_device *vdev)
{
	return virtio_is_little_endian(vdev);
}

/*
 * Reads one @len-byte config field (1, 2, 4 or 8 bytes) in a single access,
 * as the spec requires, retrying while the generation changes.
 */
void rust_helper_virtio_cread_field(struct virtio_device *vdev,
				    unsigned int offset, void *buf, size_t len)
{
	__virtio_cread_many(vdev, offset, buf, 1, len);
}

/*
 * Reads @len bytes of config space one byte at a time, retrying while the
 * generation changes: modern transports only do 1, 2, 4 and 8-byte accesses.
 */
void rust_helper_virtio_cread_bytes(struct virtio_device *vdev,
				    unsigned int offset, void *buf, size_t len)
{
	__virtio_cread_many(vdev, offset, buf, len, 1);
}

void rust_helper_virtio_cwrite_bytes(struct virtio_device *vdev,
				     unsigned int offset, const void *buf,
				     unsigned int len)
{
	might_sleep();
	vdev->config->set(vdev, offset, buf, len);
}

/* Notifies every virtqueue of @vdev: flushes kicks deferred before DRIVER_OK. */
void rust_helper_virtio_notify_all(struct virtio_device *vdev)
{
	struct virtqueue *vq;

	virtio_device_for_each_vq(vdev, vq)
		virtqueue_notify(vq);
}

void rust_helper_virtio_warn_used_len(struct virtqueue *vq, unsigned int len,
				      unsigned int max)
{
	dev_warn_ratelimited(&vq->vdev->dev,
			     "vq %s: device used %u bytes of a %u-byte buffer, clamped\n",
			     vq->name, len, max);
}
