// SPDX-License-Identifier: GPL-2.0

//! A gate that users pass while an object is usable, and that its owner closes, waiting for the
//! users inside to leave.
//!
//! It is what makes a virtio handle inert once its device is gone (the shape of upstream's
//! `Revocable`, which rests on RCU; ours must allow users that sleep, such as a `GFP_KERNEL`
//! ring allocation, and users in hard-IRQ context, such as a virtqueue callback). Entering and
//! leaving cost one atomic read-modify-write each; closing sleeps on a [`Completion`] until the
//! last user leaves, with no polling.

use crate::{completion::Completion, prelude::*};
use core::sync::atomic::{AtomicUsize, Ordering};

/// The low bit of the gate word: set while the gate is closed. The rest counts the users inside.
const CLOSED: usize = 1;
/// One user, in the gate word.
const USER: usize = 2;

/// A gate; see the [module documentation](self).
///
/// # Invariants
///
/// - `word` is `users * USER | closed`.
/// - Once `closed` is set, `users` only decreases until [`Gate::open`]: [`Gate::enter`] never
///   adds a user to a closed gate.
/// - `done` is completed by the user whose leaving makes a closed gate empty.
#[pin_data]
pub(crate) struct Gate {
    word: AtomicUsize,
    #[pin]
    done: Completion,
}

/// One user inside a [`Gate`]; leaves on drop.
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: what the user did happens before the closer's wake-up.
        let old = self.0.word.fetch_sub(USER, Ordering::Release);
        if old == USER | CLOSED {
            // The last user of a closed gate: wake the closer. Callable from any context.
            self.0.done.complete();
        }
    }
}

impl Gate {
    /// A gate, closed (`open == false`) or open.
    pub(crate) fn new(open: bool) -> impl PinInit<Self> {
        pin_init!(Self {
            word: AtomicUsize::new(if open { 0 } else { CLOSED }),
            done <- Completion::new(),
        })
    }

    /// Enters the gate if it is open; the user stays inside until the [`Pass`] is dropped.
    /// Any context.
    #[inline]
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return None;
            }
            // Acquire: pairs with `open`, so that what was set up before opening is visible.
            match self.word.compare_exchange_weak(
                cur,
                cur + USER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Pass(self)),
                Err(now) => cur = now,
            }
        }
    }

    /// Closes the gate and sleeps until every user has left. Process context. Closing a closed
    /// gate only waits for the users still inside (there are none once a close returned).
    pub(crate) fn close(&self) {
        self.done.reinit();
        // Acquire: what the users did happens before we go on.
        let old = self.word.fetch_or(CLOSED, Ordering::AcqRel);
        if old & !CLOSED != 0 {
            // Users are inside; the last to leave completes `done` (type invariant). A user that
            // left between `reinit` and `fetch_or` saw the gate open, so it did not complete.
            self.done.wait();
        }
    }

    /// Opens a closed gate again. Nobody is inside a closed gate once [`Gate::close`] returned.
    pub(crate) fn open(&self) {
        self.word.fetch_and(!CLOSED, Ordering::Release);
    }
}
