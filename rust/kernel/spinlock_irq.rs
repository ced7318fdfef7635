// SPDX-License-Identifier: GPL-2.0

//! An interrupt-safe spinlock.
//!
//! [`SpinLockIrq`] is the kernel's `spinlock_t` taken with local interrupts disabled. Use it for
//! state shared between process context and a hard-IRQ handler, such as a virtqueue callback
//! (see [`crate::virtio`]). A plain [`SpinLock`](crate::sync::SpinLock) there would deadlock when
//! the interrupt arrives on the CPU that holds the lock.
//!
//! Guards may be dropped in any order. Interrupts are disabled with the counted
//! `local_interrupt_disable()` (`rust/patches/0011`), not with `spin_lock_irqsave()`: they come
//! back on only when the last `SpinLockIrq` guard of this CPU is dropped. With `irqsave` flags in
//! each guard, dropping an outer guard before an inner one would turn interrupts on while the
//! inner lock is still held:
//!
//! ```
//! use kernel::spinlock_irq::{new_spinlock_irq, SpinLockIrq};
//!
//! let a = KBox::pin_init(new_spinlock_irq!(0u32), GFP_KERNEL)?;
//! let b = KBox::pin_init(new_spinlock_irq!(0u32), GFP_KERNEL)?;
//! let ga = a.lock();
//! let gb = b.lock();
//! drop(ga);
//! // `b` is still held: interrupts must still be off.
//! assert!(kernel::spinlock_irq::irqs_disabled());
//! drop(gb);
//! # Ok::<(), Error>(())
//! ```
//!
//! The lock works with [`CondVar`](crate::sync::CondVar): waiting releases the lock (and, if it
//! is the last one, turns interrupts back on) before sleeping, and takes it again afterwards.
//!
//! C headers: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h),
//! [`include/linux/interrupt_rc.h`](srctree/include/linux/interrupt_rc.h)

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

/// Whether local interrupts are disabled on this CPU.
pub fn irqs_disabled() -> bool {
    // SAFETY: Reading the interrupt state has no requirements.
    unsafe { bindings::irqs_disabled() }
}

/// A kernel `spinlock_t` lock backend that disables local interrupts, counted per CPU.
pub struct SpinLockIrqBackend;

// SAFETY: The underlying kernel `spinlock_t` object ensures mutual exclusion. Interrupts are
// disabled by `lock` (counted per CPU) and enabled again by the `unlock` that brings the count
// back to zero, so they stay off while any guard of this backend is alive on this CPU, in
// whatever order the guards are dropped.
unsafe impl Backend for SpinLockIrqBackend {
    type State = bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The safety requirements of this function ensure that `ptr` points to valid
        // memory, and that it has been initialised before.
        unsafe { bindings::spin_lock_irq_disable(ptr) }
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The safety requirements of this function ensure that `ptr` is valid and that the
        // caller owns the lock, which it took with `spin_lock_irq_disable`.
        unsafe { bindings::spin_unlock_irq_enable(ptr) }
    }
}
