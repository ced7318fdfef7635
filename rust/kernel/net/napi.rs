// SPDX-License-Identifier: GPL-2.0

//! NAPI: receive (and transmit completion) processing by polling, with a budget.
//!
//! A [`Napi<P>`] is a `struct napi_struct` together with the state `P` its poll works on (a
//! driver's receive queue, say). It lives in the private area of a
//! [`Registration`](super::dev::Registration)'s device, and nowhere else: [`Napi::new`] refuses
//! any other place. That gives it the lifetime NAPI needs: added to its device
//! (`netif_napi_add`) when built, disabled if needed and deleted (`netif_napi_del`) when
//! dropped, which happens after the device is unregistered and before it is freed.
//!
//! - [`Napi::schedule`] (any context, typically the device's interrupt) asks for a poll. It does
//!   nothing while the context is disabled, so a poll never runs before [`Napi::enable`] or
//!   after [`Napi::disable`] or deletion.
//! - [`Poll::poll`] runs in softirq context with `&P` and a [`NapiPoll`], through which it
//!   hands packets to GRO; it completes with [`NapiPoll::complete_done`], which consumes the
//!   [`NapiPoll`]: no packet can be passed up after the poll completed (when another CPU may be
//!   polling the same context already), and completion is refused when the whole budget was
//!   used, as the core requires. The value returned to the core is clamped to the budget.
//!
//! A device with several queues, their number known only at probe, keeps its contexts in a
//! [`NapiVec<P>`]: the same rule (built only in the private area of the device being set up),
//! with the contexts in an array of its own that only lends them.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use super::{dev::NetDevice, skb::SkBuff};
use crate::{bindings, init::PinInit, new_mutex, prelude::*, sync::Mutex, types::Opaque};
use core::{cell::Cell, ffi::c_int, marker::PhantomData, ptr};

/// The default poll weight (`NAPI_POLL_WEIGHT`): the budget of one poll.
pub const NAPI_POLL_WEIGHT: u32 = bindings::NAPI_POLL_WEIGHT;

/// The poll function of a [`Napi`] context, implemented by the state it polls.
pub trait Poll: Send + Sync + Sized {
    /// Processes up to `budget` packets and returns how many it processed. To stop polling (no
    /// more work), call [`NapiPoll::complete_done`] with a count below the budget, then re-arm
    /// the device's interrupt; if it refuses, or returns `None`, keep the interrupt off: the
    /// core polls again. Softirq context (or a netpoll caller with IRQs off and a budget of 0).
    fn poll(&self, napi: NapiPoll<'_>, budget: usize) -> usize;
}

/// A NAPI context with its poll state `P`, in the private area of a net device.
///
/// # Invariants
///
/// - `napi` was added (`netif_napi_add_weight`) to the device whose private area holds `self`,
///   or holds the [`NapiVec`] that owns `self`, with `Self::poll_callback` as its poll, and
///   stays added until `drop`, which comes before the device is freed.
/// - `*enabled` says whether `napi_enable` was called more recently than `napi_disable`.
#[pin_data(PinnedDrop)]
pub struct Napi<P: Poll> {
    #[pin]
    napi: Opaque<bindings::napi_struct>,
    #[pin]
    enabled: Mutex<bool>,
    #[pin]
    data: P,
}

// SAFETY: The NAPI functions we call may be called from any thread; `P` is `Send`.
unsafe impl<P: Poll> Send for Napi<P> {}
// SAFETY: `schedule` is safe from any context concurrently; `enable` and `disable` are
// serialised by `enabled`; `P` is `Sync`.
unsafe impl<P: Poll> Sync for Napi<P> {}

impl<P: Poll> Napi<P> {
    /// Builds a NAPI context polling `data`, with the default weight, and adds it, disabled, to
    /// the net device in whose private area it is built. That is only in the initialiser given
    /// to [`Registration::new`](super::dev::Registration::new), by the task that runs it:
    /// `EINVAL` anywhere else or at any other time.
    pub fn new(data: impl PinInit<P, Error>) -> impl PinInit<Self, Error> {
        Self::with_weight(NAPI_POLL_WEIGHT, data)
    }

    /// As [`new`](Self::new), with `weight` as the budget of one poll
    /// (`netif_napi_add_weight()`); the core warns about weights above
    /// [`NAPI_POLL_WEIGHT`], and a weight of 0 means the context is never polled for packets.
    ///
    /// The initialiser holds no device: it may be kept and run anywhere, later, as safe code
    /// may do with any initialiser, and it looks its device up from the slot it is given
    /// instead.
    pub fn with_weight(weight: u32, data: impl PinInit<P, Error>) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| -> Result {
            // The device this task is setting up (inside `Registration::new`), whose private
            // area holds the whole slot; none, if the initialiser runs anywhere else.
            // SAFETY: Only compares addresses with the devices being set up, under a lock.
            let dev = unsafe {
                bindings::vrs_netdev_setup_find(slot.cast(), core::mem::size_of::<Self>())
            };
            if dev.is_null() {
                return Err(EINVAL);
            }
            // SAFETY: `dev` is being set up by this task, in a `Registration::new` that is
            // still running (it is below us on this task's stack, and it ends the setup before
            // it may free the device); the slot is in its private area, dropped before the
            // device is freed. `slot` is valid for writes and pinned (initialiser contract).
            unsafe { Self::init_on(dev, weight, data, slot) }
        };
        // SAFETY: `init` initialises every field on success, and on failure leaves nothing
        // initialised (`init_on` drops `data` if it gets that far); it never moves the slot.
        unsafe { crate::init::pin_init_from_closure(init) }
    }

    /// Initialises `slot` as a context polling `data` with `weight`, added to `dev`.
    ///
    /// # Safety
    ///
    /// `dev` is a valid device that outlives the slot's contents: they are dropped before the
    /// device is freed. `slot` is valid for writes and pinned. On error, nothing in it is left
    /// initialised.
    unsafe fn init_on(
        dev: *mut bindings::net_device,
        weight: u32,
        data: impl PinInit<P, Error>,
        slot: *mut Self,
    ) -> Result {
        let weight = c_int::try_from(weight).unwrap_or(c_int::MAX);
        // SAFETY: `slot` is valid for writes and pinned (safety requirements). `data` is
        // initialised first: the poll may read it once the context is added (it cannot run
        // before it is enabled anyway).
        unsafe { data.__pinned_init(ptr::addr_of_mut!((*slot).data)) }?;
        let enabled = new_mutex!(false, "napi_enabled");
        // SAFETY: As above; `new_mutex!` does not fail.
        let res = unsafe { enabled.__pinned_init(ptr::addr_of_mut!((*slot).enabled)) };
        if let Err(e) = res {
            // SAFETY: `data` was initialised just above and is not used elsewhere.
            unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*slot).data)) };
            return Err(e.into());
        }
        // SAFETY: `slot` is valid (safety requirements); this only computes a field address.
        let napi = Opaque::raw_get(unsafe { ptr::addr_of!((*slot).napi) });
        // SAFETY: `napi` is valid for writes, pinned, and dropped before `dev` is freed (safety
        // requirements). An all-zero `napi_struct` is what `netif_napi_add_weight` expects. It
        // leaves the context disabled (`NAPI_STATE_SCHED` set), so `schedule` does nothing
        // until `enable`.
        unsafe {
            napi.write(core::mem::zeroed());
            bindings::netif_napi_add_weight(dev, napi, Some(Self::poll_callback), weight);
        }
        // INVARIANT: added to `dev`, which outlives it; disabled.
        Ok(())
    }

    /// The state the poll works on.
    pub fn data(&self) -> &P {
        &self.data
    }

    fn as_raw(&self) -> *mut bindings::napi_struct {
        self.napi.get()
    }

    /// Asks for a poll (`napi_schedule()`), unless one is pending or running, or the context is
    /// disabled. Any context. Returns whether this call scheduled it.
    pub fn schedule(&self) -> bool {
        // SAFETY: The context was added and is not deleted while `self` lives (type invariant).
        // A disabled context holds `NAPI_STATE_SCHED`, so this does nothing then.
        unsafe { bindings::napi_schedule(self.as_raw()) }
    }

    /// Enables polling (`napi_enable()`), if it is disabled. Process context (typically
    /// `open`).
    pub fn enable(&self) {
        let mut enabled = self.enabled.lock();
        if !*enabled {
            // SAFETY: The context is added (type invariant) and disabled (`enabled` is false
            // and we hold its lock).
            unsafe { bindings::napi_enable(self.as_raw()) };
            *enabled = true;
        }
    }

    /// Disables polling (`napi_disable()`), if it is enabled, waiting for a running poll to
    /// finish: no poll runs afterwards until [`enable`](Self::enable). Process context; may
    /// sleep.
    pub fn disable(&self) {
        let mut enabled = self.enabled.lock();
        if *enabled {
            // SAFETY: The context is added (type invariant) and enabled: disabling a disabled
            // context would wait forever.
            unsafe { bindings::napi_disable(self.as_raw()) };
            *enabled = false;
        }
    }

    /// # Safety
    ///
    /// Called by the NAPI core with a context added by [`Napi::new`], with `P` as its state.
    unsafe extern "C" fn poll_callback(napi: *mut bindings::napi_struct, budget: c_int) -> c_int {
        // SAFETY: `napi` is the `napi` field of a live `Napi<P>` (safety requirement; the core
        // polls only added, enabled contexts, and `drop` disables and deletes it first).
        let this = unsafe { &*crate::container_of!(napi, Self, napi).cast::<Self>() };
        let budget = budget.max(0) as usize;
        let completed = Cell::new(None);
        let poll = NapiPoll {
            napi,
            budget,
            completed: &completed,
            _not_send: PhantomData,
        };
        let done = P::poll(&this.data, poll, budget).min(budget);
        // A completed poll reports what it completed with (below the budget), whatever it
        // returns: the core warns about a completed context that used its whole budget.
        completed.get().unwrap_or(done) as c_int
    }
}

#[pinned_drop]
impl<P: Poll> PinnedDrop for Napi<P> {
    fn drop(self: Pin<&mut Self>) {
        self.disable();
        // SAFETY: The context was added (type invariant) and is disabled, so no poll runs or
        // will run; `netif_napi_del` waits for an RCU grace period before we free it.
        unsafe { bindings::netif_napi_del(self.as_raw()) };
    }
}

/// A running poll of a [`Napi`] context: passed to [`Poll::poll`], and only valid in it.
///
/// # Invariants
///
/// `napi` is the context being polled by the current call of its poll function, which
/// `completed` belongs to.
pub struct NapiPoll<'a> {
    napi: *mut bindings::napi_struct,
    budget: usize,
    completed: &'a Cell<Option<usize>>,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> NapiPoll<'a> {
    /// The device the context belongs to.
    pub fn dev(&self) -> &NetDevice {
        // SAFETY: `napi->dev` is the device the context was added to, which outlives it.
        unsafe { NetDevice::from_raw((*self.napi).dev) }
    }

    /// The budget of this poll.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Allocates an skb for a packet this poll receives, with room for `len` bytes of data
    /// after `NET_SKB_PAD + NET_IP_ALIGN` bytes of headroom, from the CPU's NAPI cache
    /// (`napi_alloc_skb()`). `EBUSY` in a poll with a budget of 0 (a netpoll caller, with
    /// IRQs off, where the cache may not be used), which must not receive; `ENOMEM`.
    pub fn alloc_skb(&self, len: usize) -> Result<SkBuff> {
        if self.budget == 0 {
            return Err(EBUSY);
        }
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: `napi` is being polled by us (type invariant), with a budget, so in softirq
        // context, as `napi_alloc_skb` requires.
        let skb = unsafe { bindings::napi_alloc_skb(self.napi, len) };
        // SAFETY: A non-null result is a new skb whose one reference is ours.
        unsafe { SkBuff::from_raw(skb) }.ok_or(ENOMEM)
    }

    /// Hands a received Ethernet frame to the stack through GRO (`eth_type_trans()` then
    /// `napi_gro_receive()`). `EINVAL` (the frame is dropped) if it is shorter than an Ethernet
    /// header; `EBUSY` (dropped too) in a poll with a budget of 0, which must not receive.
    pub fn gro_receive(&mut self, mut skb: SkBuff) -> Result {
        if self.budget == 0 {
            return Err(EBUSY);
        }
        skb.eth_type_trans(self.dev())?;
        // SAFETY: `napi` is being polled by us (type invariant), in softirq context; we give
        // our reference to the skb, whose device and protocol are set, to the stack.
        unsafe { bindings::napi_gro_receive(self.napi, skb.into_raw()) };
        Ok(())
    }

    /// Ends the poll (`napi_complete_done()`) after `work_done` packets, fewer than the budget.
    /// Returns `None` if the poll must go on instead: `work_done` reached the budget (then the
    /// core polls again), or the core asked to keep polling (busy polling). On `Some`,
    /// re-enable the device's interrupt; if work arrived meanwhile, call
    /// [`Completed::reschedule`].
    pub fn complete_done(self, work_done: usize) -> Option<Completed<'a>> {
        if work_done >= self.budget {
            return None;
        }
        // SAFETY: `napi` is being polled by us (type invariant) and has not been completed
        // (this consumes the only `NapiPoll`); `work_done` is below the budget.
        if !unsafe { bindings::napi_complete_done(self.napi, work_done as c_int) } {
            return None;
        }
        self.completed.set(Some(work_done));
        Some(Completed {
            napi: self.napi,
            _p: PhantomData,
        })
    }
}

/// A completed poll: the context may be scheduled again.
pub struct Completed<'a> {
    napi: *mut bindings::napi_struct,
    _p: PhantomData<&'a ()>,
}

impl Completed<'_> {
    /// Schedules another poll (`napi_schedule()`), for work that arrived while completing.
    pub fn reschedule(self) {
        // SAFETY: `napi` is added and lives during the poll call this borrows from.
        unsafe { bindings::napi_schedule(self.napi) };
    }
}

/// A fixed number of NAPI contexts, for a device with several queues: like [`Napi`], it lives
/// in the private area of a [`Registration`](super::dev::Registration)'s device and nowhere
/// else ([`NapiVec::new`] refuses any other place), and owns its contexts in an array of its
/// own, built in place and never moved. It hands out only `&Napi<P>`, borrowed from it: no
/// context can leave it, so none outlives the device. Dropping it disables and deletes them
/// all, with the private data, before the device is freed.
///
/// # Invariants
///
/// `items` holds `len` initialised contexts, pinned (never moved, never reallocated: nothing
/// pushes to it), each added to the device whose private area holds `self`. Dropping the vector
/// drops them in place (each disabled and deleted), then frees the array.
#[pin_data]
pub struct NapiVec<P: Poll> {
    items: KVec<Napi<P>>,
    #[pin]
    _pin: core::marker::PhantomPinned,
}

impl<P: Poll> NapiVec<P> {
    /// Builds `n` NAPI contexts with `weight` (see [`Napi::with_weight`]), the `i`-th polling
    /// what `data(i)` initialises (or failing with its error), all added, disabled, to the net device in whose private
    /// area the vector is built: only in the initialiser given to
    /// [`Registration::new`](super::dev::Registration::new), by the task that runs it,
    /// `EINVAL` anywhere else or at any other time. `ENOMEM` if the array cannot be allocated.
    pub fn new<I: PinInit<P, Error>>(
        n: usize,
        weight: u32,
        mut data: impl FnMut(usize) -> Result<I>,
    ) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| -> Result {
            // As in `Napi::with_weight`: the device whose private area holds the slot.
            // SAFETY: Only compares addresses with the devices being set up, under a lock.
            let dev = unsafe {
                bindings::vrs_netdev_setup_find(slot.cast(), core::mem::size_of::<Self>())
            };
            if dev.is_null() {
                return Err(EINVAL);
            }
            let mut items = KVec::<Napi<P>>::with_capacity(n, GFP_KERNEL)?;
            let base = items.as_mut_ptr();
            for i in 0..n {
                // SAFETY: `dev` is being set up by this task in a running
                // `Registration::new`, and its private area holds the vector, which drops
                // these contexts before the device is freed. Element `i` is within the
                // capacity, valid for writes, and never moves: the vector is never grown.
                let res =
                    data(i).and_then(|d| unsafe { Napi::init_on(dev, weight, d, base.add(i)) });
                if let Err(e) = res {
                    // SAFETY: The first `i` elements are initialised: the vector drops them
                    // (disabled, deleted) as it goes.
                    unsafe { items.set_len(i) };
                    return Err(e);
                }
            }
            // SAFETY: All `n` elements are initialised, just above.
            unsafe { items.set_len(n) };
            // SAFETY: `slot` is valid for writes (initialiser contract).
            unsafe {
                ptr::addr_of_mut!((*slot).items).write(items);
                ptr::addr_of_mut!((*slot)._pin).write(core::marker::PhantomPinned);
            }
            // INVARIANT: `n` contexts, added to `dev`, whose private area holds the slot.
            Ok(())
        };
        // SAFETY: `init` initialises every field on success and nothing on failure (the
        // vector drops what it built); it never moves the slot.
        unsafe { crate::init::pin_init_from_closure(init) }
    }

    /// How many contexts there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Context `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&Napi<P>> {
        self.items.get(i)
    }

    /// The contexts, in order.
    pub fn iter(&self) -> core::slice::Iter<'_, Napi<P>> {
        self.items.iter()
    }
}

impl<P: Poll> core::ops::Index<usize> for NapiVec<P> {
    type Output = Napi<P>;

    /// Context `i`; panics if there is none, as a slice does.
    fn index(&self, i: usize) -> &Napi<P> {
        &self.items[i]
    }
}
