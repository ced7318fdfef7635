// SPDX-License-Identifier: GPL-2.0

#include <linux/interrupt_rc.h>

void rust_helper_spin_lock_irq_disable(spinlock_t *lock)
{
	spin_lock_irq_disable(lock);
}

void rust_helper_spin_unlock_irq_enable(spinlock_t *lock)
{
	spin_unlock_irq_enable(lock);
}

bool rust_helper_irqs_disabled(void)
{
	return irqs_disabled();
}
