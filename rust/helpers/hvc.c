// SPDX-License-Identifier: GPL-2.0

#include <linux/spinlock.h>
#include "../../drivers/tty/hvc/hvc_console.h"

/* Guards the table of `kernel::hvc`'s consoles (`rust/kernel/hvc.rs`). */
static DEFINE_SPINLOCK(rust_hvc_table_lock);

unsigned long rust_helper_rust_hvc_table_lock(void)
{
	unsigned long flags;

	spin_lock_irqsave(&rust_hvc_table_lock, flags);
	return flags;
}

void rust_helper_rust_hvc_table_unlock(unsigned long flags)
{
	spin_unlock_irqrestore(&rust_hvc_table_lock, flags);
}

void rust_helper_hvc_resize(struct hvc_struct *hp, struct winsize ws)
{
	hvc_resize(hp, ws);
}
