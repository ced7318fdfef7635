// SPDX-License-Identifier: GPL-2.0

//! Completions.
//!
//! A [`Completion`] lets one thread wait until another one (or an interrupt handler) says that
//! some work is done. [`Completion::complete`] and [`Completion::complete_all`] may be called from
//! any context, including hard-IRQ handlers such as virtqueue callbacks; the `wait` methods sleep.
//!
//! C header: [`include/linux/completion.h`](srctree/include/linux/completion.h)

use crate::{bindings, error::code::ERESTARTSYS, prelude::*, types::Opaque};

/// A kernel `struct completion`.
///
/// # Invariants
///
/// `inner` was initialised with `init_completion()` and is pinned.
///
/// # Examples
///
/// ```
/// use kernel::completion::Completion;
///
/// let done = KBox::pin_init(Completion::new(), GFP_KERNEL)?;
/// done.complete_all();
/// // Returns at once: the completion is already done.
/// done.wait();
/// assert!(done.wait_interruptible().is_ok());
/// # Ok::<(), Error>(())
/// ```
#[pin_data]
pub struct Completion {
    #[pin]
    inner: Opaque<bindings::completion>,
}

// SAFETY: A `completion` is designed to be used from any thread; its wait queue is protected by
// its own internal lock.
unsafe impl Send for Completion {}
// SAFETY: All methods take `&self` and are safe to call concurrently (see above).
unsafe impl Sync for Completion {}

impl Completion {
    /// Creates an initialiser for a new, not yet completed, completion.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `init_completion` initialises the object in place; `slot` is valid for
            // writes.
            inner <- Opaque::ffi_init(|slot| unsafe { bindings::init_completion(slot) }),
        })
    }

    /// Wakes one waiter (or lets the next `wait` return at once). Callable from any context.
    pub fn complete(&self) {
        // SAFETY: `inner` is valid and initialised by the type invariant.
        unsafe { bindings::complete(self.inner.get()) }
    }

    /// Wakes every waiter, now and in the future, until [`Completion::reinit`].
    /// Callable from any context.
    pub fn complete_all(&self) {
        // SAFETY: `inner` is valid and initialised by the type invariant.
        unsafe { bindings::complete_all(self.inner.get()) }
    }

    /// Marks the completion as not done again.
    pub fn reinit(&self) {
        // SAFETY: `inner` is valid and initialised by the type invariant; `reinit_completion` only
        // stores to `done`, which `complete*` update under the wait-queue lock.
        unsafe { bindings::reinit_completion(self.inner.get()) }
    }

    /// Sleeps (uninterruptibly) until the completion is done.
    pub fn wait(&self) {
        // SAFETY: `inner` is valid and initialised by the type invariant.
        unsafe { bindings::wait_for_completion(self.inner.get()) }
    }

    /// Sleeps (uninterruptibly) until the completion is done, for at most `ms` milliseconds.
    /// Returns whether it is done.
    pub fn wait_timeout_ms(&self, ms: u32) -> bool {
        // SAFETY: `__msecs_to_jiffies` has no requirements.
        let timeout = unsafe { bindings::__msecs_to_jiffies(ms) };
        // SAFETY: `inner` is valid and initialised by the type invariant.
        unsafe { bindings::wait_for_completion_timeout(self.inner.get(), timeout) != 0 }
    }

    /// Sleeps until the completion is done or a signal arrives (then `ERESTARTSYS`).
    pub fn wait_interruptible(&self) -> Result {
        // SAFETY: `inner` is valid and initialised by the type invariant.
        match unsafe { bindings::wait_for_completion_interruptible(self.inner.get()) } {
            0 => Ok(()),
            _ => Err(ERESTARTSYS),
        }
    }
}
