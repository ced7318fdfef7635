// SPDX-License-Identifier: GPL-2.0

#include <linux/cpumask.h>
#include <linux/sched.h>
#include <linux/mutex.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

void rust_helper_virtio_device_ready(struct virtio_device *vdev)
{
	virtio_device_ready(vdev);
}

void rust_helper_virtio_synchronize_cbs(struct virtio_device *vdev)
{
	virtio_synchronize_cbs(vdev);
}

int rust_helper_virtio_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
				struct virtqueue *vqs[],
				struct virtqueue_info vqs_info[],
				struct irq_affinity *desc)
{
	return virtio_find_vqs(vdev, nvqs, vqs, vqs_info, desc);
}

bool rust_helper_virtio_is_little_endian(struct virtio_device *vdev)
{
	return virtio_is_little_endian(vdev);
}

bool rust_helper_cpumask_test_cpu(int cpu, const struct cpumask *cpumask)
{
	return cpumask_test_cpu(cpu, cpumask);
}

void rust_helper_cond_resched(void)
{
	cond_resched();
}

void rust_helper_cpu_relax(void)
{
	cpu_relax();
}

const char *rust_helper_virtio_bus_name(struct virtio_device *vdev)
{
	return virtio_bus_name(vdev);
}

/*
 * virtqueue_set_affinity() through one lock: the transport keeps one affinity
 * mask per interrupt vector, which queues may share (virtio-pci without a vector
 * per queue), and copies the new mask into it; C callers serialise with the CPU
 * hotplug lock and RTNL, Rust callers here. Process context: virtio-pci sleeps
 * (pci_irq_vector() takes the MSI descriptors' mutex).
 */
static DEFINE_MUTEX(rust_vq_affinity_lock);

int rust_helper_virtqueue_set_affinity(struct virtqueue *vq,
				       const struct cpumask *cpu_mask)
{
	int ret;

	mutex_lock(&rust_vq_affinity_lock);
	ret = virtqueue_set_affinity(vq, cpu_mask);
	mutex_unlock(&rust_vq_affinity_lock);
	return ret;
}
