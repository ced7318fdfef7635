// SPDX-License-Identifier: GPL-2.0

#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/wait.h>

/* Protects the registry of `kernel::chrdev`: its classes and device nodes. */
static DEFINE_MUTEX(rust_chrdev_mutex);

void rust_helper_chrdev_registry_lock(void)
{
	mutex_lock(&rust_chrdev_mutex);
}

void rust_helper_chrdev_registry_unlock(void)
{
	mutex_unlock(&rust_chrdev_mutex);
}

void rust_helper_poll_wait(struct file *filp, struct wait_queue_head *wq,
			   struct poll_table_struct *p)
{
	poll_wait(filp, wq, p);
}

void rust_helper_init_waitqueue_head(struct wait_queue_head *wq)
{
	init_waitqueue_head(wq);
}
