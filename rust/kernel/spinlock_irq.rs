// SPDX-License-Identifier: GPL-2.0

//! An interrupt-safe spinlock.
//!
//! [`SpinLockIrq`] is the kernel's `spinlock_t` taken with `spin_lock_irqsave()`: local interrupts
//! stay disabled while the guard lives and are restored to their previous state when it drops.
//! Use it for state shared between process context and a hard-IRQ handler, such as a virtqueue
//! callback (see [`crate::virtio`]). A plain [`SpinLock`](crate::sync::SpinLock) there would
//! deadlock when the interrupt arrives on the CPU that holds the lock.
//!
//! The lock works with [`CondVar`](crate::sync::CondVar): waiting releases the lock (and restores
//! interrupts) before sleeping, and takes it again afterwards.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)

use crate::{bindings, sync::lock::Backend};

/// Creates a [`SpinLockIrq`] initialiser with the given name and a newly-created lock class.
///
/// It uses the name if one is given, otherwise it generates one based on the file name and line
/// number.
#[macro_export]
macro_rules! new_spinlock_irq {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::spinlock_irq::SpinLockIrq::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_spinlock_irq;

/// A spinlock that disables local interrupts while it is held.
///
/// Exposes the kernel's `spinlock_t` through `spin_lock_irqsave()` and
/// `spin_unlock_irqrestore()`. It can be taken from any context, including hard-IRQ handlers.
/// Code holding the guard runs in atomic context: it must not sleep, and the kernel's
/// `CONFIG_DEBUG_ATOMIC_SLEEP` reports it if it does.
///
/// # Examples
///
/// ```
/// use kernel::spinlock_irq::{new_spinlock_irq, SpinLockIrq};
///
/// #[pin_data]
/// struct Counter {
///     #[pin]
///     events: SpinLockIrq<u64>,
/// }
///
/// let c = KBox::pin_init(pin_init!(Counter { events <- new_spinlock_irq!(0) }), GFP_KERNEL)?;
/// // What an interrupt handler would do:
/// *c.events.lock() += 1;
/// assert_eq!(*c.events.lock(), 1);
/// # Ok::<(), Error>(())
/// ```
pub type SpinLockIrq<T> = crate::sync::lock::Lock<T, SpinLockIrqBackend>;

/// A kernel `spinlock_t` lock backend that saves and disables local interrupts.
pub struct SpinLockIrqBackend;

// SAFETY: The underlying kernel `spinlock_t` object ensures mutual exclusion. `GuardState` holds
// the interrupt flags saved by `lock` (or `relock`) and handed back to `unlock`, so every unlock
// restores exactly the state its lock saved.
unsafe impl Backend for SpinLockIrqBackend {
    type State = bindings::spinlock_t;
    type GuardState = crate::ffi::c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The safety requirements of this function ensure that `ptr` points to valid
        // memory, and that it has been initialised before.
        unsafe { bindings::spin_lock_irqsave(ptr) }
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: The safety requirements of this function ensure that `ptr` is valid and that the
        // caller owns the lock; `guard_state` holds the flags its `lock` saved.
        unsafe { bindings::spin_unlock_irqrestore(ptr, *guard_state) }
    }
}
