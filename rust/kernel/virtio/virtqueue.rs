// SPDX-License-Identifier: GPL-2.0

//! Virtqueues that own the buffers they carry.
//!
//! A [`Virtqueue<R, W>`] moves a pair of buffers into the device's ring with
//! [`add`](Virtqueue::add): `R` holds the segments the device reads, `W` the segments it writes.
//! Both are owned, DMA-able allocations ([`KBox`], [`KVec`], or tuples of them): never stack
//! memory, never `vmalloc` memory, never a borrow. The queue keeps them, typed, until the device
//! hands them back, and [`get_buf`](Virtqueue::get_buf) returns them with the number of bytes
//! the device wrote, checked against the size of `W`. A driver never holds a reference to memory
//! the device may write.
//!
//! Dropping a queue first makes sure the device is reset (so it cannot touch the buffers any
//! more), then detaches every buffer still in the ring and drops it. The queues themselves are
//! deleted by the driver adapter once every queue of the device is gone.
//!
//! C header: [`include/linux/virtio.h`](srctree/include/linux/virtio.h)

use super::state::{DevState, State};
use crate::{
    alloc::{Flags, KBox, KVec},
    bindings,
    error::to_result,
    prelude::*,
    scatterlist::SgEntry,
    types::{AsBytes, FromBytes},
};
use core::{ffi::c_void, marker::PhantomData, mem::MaybeUninit, ptr::NonNull};

/// The largest number of segments (readable plus writable) one [`Virtqueue::add`] can carry.
pub const MAX_SEGMENTS: usize = 16;

/// Buffers the device may read.
///
/// # Safety
///
/// Every segment reported by [`segments`](DeviceReadable::segments) must be fully initialised
/// memory owned by `self`, in the kernel's linear mapping (slab or page allocator), that stays
/// valid and at the same address while `self` exists, even when `self` is moved, and that is not
/// written through `self` while the device may read it (the queue holds `self` meanwhile).
pub unsafe trait DeviceReadable: Send + 'static {
    /// Calls `f(address, length)` for each segment, in order.
    fn segments(&self, f: &mut dyn FnMut(*const u8, usize) -> Result) -> Result;
}

/// Buffers the device may write.
///
/// # Safety
///
/// Every segment reported by [`segments`](DeviceWritable::segments) must be memory owned by
/// `self`, in the kernel's linear mapping, that stays valid and at the same address while `self`
/// exists, even when `self` is moved; and any byte pattern the device writes there must leave
/// `self` valid.
pub unsafe trait DeviceWritable: Send + 'static {
    /// Calls `f(address, length)` for each segment, in order.
    fn segments(&mut self, f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result;
}

// SAFETY: No segments.
unsafe impl DeviceReadable for () {
    fn segments(&self, _f: &mut dyn FnMut(*const u8, usize) -> Result) -> Result {
        Ok(())
    }
}

// SAFETY: No segments.
unsafe impl DeviceWritable for () {
    fn segments(&mut self, _f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result {
        Ok(())
    }
}

// SAFETY: The contents of a `KBox` are one `kmalloc` allocation that does not move with the box;
// `T: AsBytes` means it is fully initialised.
unsafe impl<T: AsBytes + Send + 'static> DeviceReadable for KBox<T> {
    fn segments(&self, f: &mut dyn FnMut(*const u8, usize) -> Result) -> Result {
        f((&**self as *const T).cast(), core::mem::size_of::<T>())
    }
}

// SAFETY: As above; `T: FromBytes` means any byte pattern is a valid `T`.
unsafe impl<T: FromBytes + Send + 'static> DeviceWritable for KBox<T> {
    fn segments(&mut self, f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result {
        f((&mut **self as *mut T).cast(), core::mem::size_of::<T>())
    }
}

// SAFETY: The elements of a `KVec` are one `kmalloc` allocation that does not move with the
// vector (the queue owns the vector, so nobody can grow it meanwhile); only the initialised
// elements (`len()`) are reported.
unsafe impl<T: AsBytes + Send + 'static> DeviceReadable for KVec<T> {
    fn segments(&self, f: &mut dyn FnMut(*const u8, usize) -> Result) -> Result {
        f(self.as_ptr().cast(), core::mem::size_of_val(&**self))
    }
}

// SAFETY: As above; `T: FromBytes` means any byte pattern is a valid `T`.
unsafe impl<T: FromBytes + Send + 'static> DeviceWritable for KVec<T> {
    fn segments(&mut self, f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result {
        f(self.as_mut_ptr().cast(), core::mem::size_of_val(&**self))
    }
}

macro_rules! impl_tuples {
    ($(($($t:ident $i:tt),+)),+) => {$(
        // SAFETY: Each element upholds the contract for its own segments.
        unsafe impl<$($t: DeviceReadable),+> DeviceReadable for ($($t,)+) {
            fn segments(&self, f: &mut dyn FnMut(*const u8, usize) -> Result) -> Result {
                $(self.$i.segments(f)?;)+
                Ok(())
            }
        }
        // SAFETY: Each element upholds the contract for its own segments.
        unsafe impl<$($t: DeviceWritable),+> DeviceWritable for ($($t,)+) {
            fn segments(&mut self, f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result {
                $(self.$i.segments(f)?;)+
                Ok(())
            }
        }
    )+};
}
impl_tuples!((A 0, B 1), (A 0, B 1, C 2), (A 0, B 1, C 2, D 3));

/// A request that describes all of its buffers itself: first those the device reads, then
/// those it writes, possibly as prebuilt scatterlists. For requests whose two halves cannot be
/// separate owned values (a block request whose header, data and status live in one place).
/// Added with [`Virtqueue::add_request`].
///
/// # Safety
///
/// Everything reported to the [`SgSink`] must satisfy the contracts of [`DeviceReadable`] (for
/// readable segments) and [`DeviceWritable`] (for writable ones), with `self` as the owner.
pub unsafe trait DeviceRequest: Send + 'static {
    /// Reports the request's segments to `sink`: every readable one before any writable one.
    fn map(&mut self, sink: &mut SgSink) -> Result;
}

/// Collects the segments of one request for [`Virtqueue::add_request`].
///
/// Holds up to [`MAX_SEGMENTS`] single segments and prebuilt scatterlists in all.
pub struct SgSink {
    /// Entries `..n` are initialised where `lists[i]` is null.
    one: [MaybeUninit<SgEntry<'static>>; MAX_SEGMENTS],
    /// Entries `..n` are initialised: a prebuilt list, or null for `one[i]`.
    lists: [MaybeUninit<*mut bindings::scatterlist>; MAX_SEGMENTS],
    n: usize,
    out: usize,
    writing: bool,
    cap: usize,
}

impl SgSink {
    fn new() -> Self {
        // Nothing to zero: entries are written as they are added (this runs for every request).
        Self {
            one: [const { MaybeUninit::uninit() }; MAX_SEGMENTS],
            lists: [const { MaybeUninit::uninit() }; MAX_SEGMENTS],
            n: 0,
            out: 0,
            writing: false,
            cap: 0,
        }
    }

    /// The scatterlist of entry `i < n`.
    fn ptr(&self, i: usize) -> *mut bindings::scatterlist {
        // SAFETY: Entries `..n` of `lists` are initialised, and so is `one[i]` where the list
        // entry is null (type invariant).
        unsafe {
            let list = self.lists[i].assume_init();
            if list.is_null() {
                self.one[i].assume_init_ref().as_raw()
            } else {
                list
            }
        }
    }

    fn direction(&mut self, writable: bool) -> Result {
        if self.n == MAX_SEGMENTS {
            return Err(E2BIG);
        }
        if writable {
            self.writing = true;
        } else if self.writing {
            // A readable segment after a writable one: virtqueues cannot express that.
            return Err(EINVAL);
        } else {
            self.out += 1;
        }
        Ok(())
    }

    /// Adds one segment of `len` bytes at `ptr`, readable or writable by the device.
    ///
    /// # Safety
    ///
    /// As for the segments of [`DeviceReadable`] or [`DeviceWritable`], by direction.
    pub unsafe fn segment(&mut self, ptr: *const u8, len: usize, writable: bool) -> Result {
        // SAFETY: By the safety requirements; the `'static` lifetime is confined to `add_sgs`,
        // which drops the sink before it returns.
        let sg = unsafe { SgEntry::from_raw(ptr, len) }?;
        self.direction(writable)?;
        if writable {
            self.cap += len;
        }
        self.one[self.n].write(sg);
        self.lists[self.n].write(core::ptr::null_mut());
        self.n += 1;
        Ok(())
    }

    /// Adds a terminated scatterlist describing `len` bytes in all, readable or writable by the
    /// device.
    ///
    /// # Safety
    ///
    /// `sgl` is a valid, terminated scatterlist that lives until [`Virtqueue::add_request`]
    /// returns, and whose pages satisfy the contract of [`DeviceReadable`] or
    /// [`DeviceWritable`], by direction.
    pub unsafe fn list(
        &mut self,
        sgl: *mut bindings::scatterlist,
        len: usize,
        writable: bool,
    ) -> Result {
        if sgl.is_null() {
            return Err(EINVAL);
        }
        self.direction(writable)?;
        if writable {
            self.cap += len;
        }
        self.lists[self.n].write(sgl);
        self.n += 1;
        Ok(())
    }
}

/// Buffers the device has finished with, as returned by [`Virtqueue::get_buf`].
pub struct Used<R, W> {
    /// The device-readable buffers given to [`Virtqueue::add`].
    pub readable: R,
    /// The device-writable buffers given to [`Virtqueue::add`].
    pub writable: W,
    /// How many bytes the device wrote at the start of `writable`. Never more than the size of
    /// `writable`: a larger value from the device is clamped, with a rate-limited warning.
    pub len: usize,
}

/// A failed [`Virtqueue::add`]: the error, and the buffers, which the queue hands back.
pub struct AddError<R, W> {
    /// `ENOSPC` if the ring is full, `ENODEV` if the device is gone, `EINVAL` for an empty or
    /// oversized request, `E2BIG` for more than [`MAX_SEGMENTS`] segments, or what the ring
    /// reports (`EIO` if the queue is broken, `ENOMEM`).
    pub error: Error,
    /// The device-readable buffers.
    pub readable: R,
    /// The device-writable buffers.
    pub writable: W,
}

impl<R, W> From<AddError<R, W>> for Error {
    fn from(e: AddError<R, W>) -> Error {
        e.error
    }
}

enum Slot<R, W> {
    Free {
        next: u32,
    },
    Busy {
        readable: R,
        writable: W,
        cap: usize,
    },
}

const NO_SLOT: u32 = u32::MAX;

/// A virtqueue carrying requests made of device-readable buffers `R` and device-writable
/// buffers `W`.
///
/// Obtain one with [`Queues::take`] during probe and keep it in the driver data, usually behind a
/// [`SpinLockIrq`](crate::spinlock_irq::SpinLockIrq) shared with the queue callback: the ring
/// operations need exclusive access (`&mut self`), as in C.
///
/// # Invariants
///
/// - `vq` is a virtqueue of the device of `state`, alive until every handle of that device is
///   dropped (the adapter checks [`DevState`]'s handle count, to which `self` contributes one,
///   before it deletes the queues).
/// - `slots.len()` is the ring size. Every buffer in the ring has a token `i + 1` where
///   `slots[i]` is `Busy` and holds its buffers; `Free` slots form a list from `free`.
pub struct Virtqueue<R = (), W = ()> {
    vq: NonNull<bindings::virtqueue>,
    state: NonNull<DevState>,
    slots: KVec<Slot<R, W>>,
    free: u32,
}

// SAFETY: The queue owns its buffers, which are `Send`; the C ring may be used from any thread as
// long as calls are serialised, which `&mut self` ensures.
unsafe impl<R: Send, W: Send> Send for Virtqueue<R, W> {}
// SAFETY: The `&self` methods only read fields that the `&mut self` methods update, or call C
// functions that are safe to call concurrently with each other (`virtqueue_is_broken`).
unsafe impl<R: Send, W: Send> Sync for Virtqueue<R, W> {}

impl<R: DeviceReadable, W: DeviceWritable> Virtqueue<R, W> {
    /// Makes `readable` and `writable` available to the device, as one request.
    ///
    /// The queue owns both until [`get_buf`](Self::get_buf) returns them (or until the queue is
    /// dropped). On failure, they are handed back in the [`AddError`]. `gfp` is used if the ring
    /// needs an indirect descriptor table: pass [`GFP_ATOMIC`] while holding a spinlock.
    ///
    /// The device does not see the request until [`kick`](Self::kick).
    pub fn add(&mut self, readable: R, mut writable: W, gfp: Flags) -> Result<(), AddError<R, W>> {
        let res = self.add_sgs(gfp, |sink| {
            readable.segments(&mut |ptr, len| {
                // SAFETY: `DeviceReadable` guarantees a linear-map allocation that stays in
                // place while `readable` lives; `add` moves it into the slot on success, and it
                // stays there until `get_buf` or `drop` has taken the request out of the ring.
                unsafe { sink.segment(ptr, len, false) }
            })?;
            writable.segments(&mut |ptr, len| {
                // SAFETY: As above, with `DeviceWritable`.
                unsafe { sink.segment(ptr, len, true) }
            })
        });
        match res {
            Ok((slot, cap)) => {
                self.fill(slot, readable, writable, cap);
                Ok(())
            }
            Err(error) => Err(AddError {
                error,
                readable,
                writable,
            }),
        }
    }
}

impl<T: DeviceRequest> Virtqueue<T, ()> {
    /// Makes `request` available to the device. As [`add`](Virtqueue::add), for a request that
    /// describes its buffers itself; [`get_buf`](Virtqueue::get_buf) returns it as `readable`.
    pub fn add_request(&mut self, mut request: T, gfp: Flags) -> Result<(), AddError<T, ()>> {
        match self.add_sgs(gfp, |sink| request.map(sink)) {
            Ok((slot, cap)) => {
                self.fill(slot, request, (), cap);
                Ok(())
            }
            Err(error) => Err(AddError {
                error,
                readable: request,
                writable: (),
            }),
        }
    }
}

impl<R, W> Virtqueue<R, W> {
    /// Stores the buffers of a request just added to `slot`.
    fn fill(&mut self, slot: usize, readable: R, writable: W, cap: usize) {
        if let Slot::Free { next } = self.slots[slot] {
            self.free = next;
        }
        // INVARIANT: the ring now holds token `slot + 1`, and the slot its buffers.
        self.slots[slot] = Slot::Busy {
            readable,
            writable,
            cap,
        };
    }

    /// Collects the segments with `map` and adds them to the ring; returns the slot and the
    /// writable size.
    fn add_sgs(
        &mut self,
        gfp: Flags,
        map: impl FnOnce(&mut SgSink) -> Result,
    ) -> Result<(usize, usize)> {
        if self.state().get() >= State::Dead {
            return Err(ENODEV);
        }
        if self.free == NO_SLOT {
            return Err(ENOSPC);
        }
        let slot = self.free as usize;
        let mut sink = SgSink::new();
        map(&mut sink)?;
        let n = sink.n;
        if n == 0 {
            return Err(EINVAL);
        }
        let mut ptrs = [core::ptr::null_mut(); MAX_SEGMENTS];
        for (i, p) in ptrs.iter_mut().enumerate().take(n) {
            *p = sink.ptr(i);
        }
        let token = (slot + 1) as *mut c_void;
        // SAFETY: `vq` is valid by the type invariant and `&mut self` serialises ring operations.
        // `ptrs[..n]` point to terminated, initialised scatterlists (`out` readable, then
        // `n - out` writable) that live until the call returns (the sink's own entries, or lists
        // the request keeps alive); the C ring copies them.
        to_result(unsafe {
            bindings::virtqueue_add_sgs(
                self.vq.as_ptr(),
                ptrs.as_mut_ptr(),
                sink.out as u32,
                (n - sink.out) as u32,
                token,
                gfp.as_raw(),
            )
        })?;
        Ok((slot, sink.cap))
    }

    /// # Safety
    ///
    /// `vq` is a virtqueue of the device of `state`, not wrapped by any other [`Virtqueue`].
    pub(super) unsafe fn new(
        vq: NonNull<bindings::virtqueue>,
        state: NonNull<DevState>,
    ) -> Result<Self> {
        // SAFETY: `vq` is valid by the safety requirements.
        let size = unsafe { bindings::virtqueue_get_vring_size(vq.as_ptr()) };
        if size == 0 || size == NO_SLOT {
            return Err(EINVAL);
        }
        let mut slots = KVec::with_capacity(size as usize, GFP_KERNEL)?;
        for i in 0..size {
            let next = if i + 1 == size { NO_SLOT } else { i + 1 };
            slots.push(Slot::Free { next }, GFP_KERNEL)?;
        }
        // SAFETY: `state` is valid by the safety requirements.
        unsafe { state.as_ref() }.get_handle();
        // INVARIANT: all slots are free and linked from 0; the handle is counted.
        Ok(Self {
            vq,
            state,
            slots,
            free: 0,
        })
    }

    fn state(&self) -> &DevState {
        // SAFETY: The device state outlives every handle, by the type invariant.
        unsafe { self.state.as_ref() }
    }

    /// Takes back a request that the device has finished with, if there is one.
    ///
    /// The length the device reports is checked: if it exceeds the size of the writable
    /// buffers, it is clamped to that size and a rate-limited warning is printed.
    pub fn get_buf(&mut self) -> Option<Used<R, W>> {
        if self.state().get() >= State::Dead {
            return None;
        }
        let mut len: u32 = 0;
        // SAFETY: `vq` is valid by the type invariant and `&mut self` serialises ring operations.
        let token = unsafe { bindings::virtqueue_get_buf(self.vq.as_ptr(), &mut len) };
        let (readable, writable, cap) = self.release(token)?;
        let len = if cap == 0 {
            // Nothing was writable, so there is nothing to hand back. Some devices (QEMU's
            // virtio-input status queue) report the readable length here; that is harmless.
            0
        } else if len as usize > cap {
            // SAFETY: `vq` is valid by the type invariant.
            unsafe { bindings::virtio_warn_used_len(self.vq.as_ptr(), len, cap as u32) };
            cap
        } else {
            len as usize
        };
        Some(Used {
            readable,
            writable,
            len,
        })
    }

    /// Frees the slot of `token` and returns its buffers; `None` for a null or unknown token.
    fn release(&mut self, token: *mut c_void) -> Option<(R, W, usize)> {
        if token.is_null() {
            return None;
        }
        let slot = (token as usize).wrapping_sub(1);
        if !matches!(self.slots.get(slot), Some(Slot::Busy { .. })) {
            // The C ring validates ids, so this means memory corruption: refuse the token.
            pr_warn!("virtio: virtqueue returned an unknown token {:p}\n", token);
            return None;
        }
        let old = core::mem::replace(&mut self.slots[slot], Slot::Free { next: self.free });
        self.free = slot as u32;
        match old {
            Slot::Busy {
                readable,
                writable,
                cap,
            } => Some((readable, writable, cap)),
            Slot::Free { .. } => None,
        }
    }

    /// Notifies the device of new requests, if it needs to be. Returns `false` if the queue is
    /// broken or the device is gone.
    ///
    /// Before the device is ready (`DRIVER_OK`), nothing is sent: the notification is deferred,
    /// and the driver adapter notifies every queue right after setting `DRIVER_OK`. A driver
    /// therefore cannot notify a device that is not ready, whatever it does.
    pub fn kick(&mut self) -> bool {
        if self.kick_prepare() {
            self.notify()
        } else {
            !self.is_broken()
        }
    }

    /// The first half of [`kick`](Self::kick): returns whether the device needs a notification.
    /// Send it with [`notify`](Self::notify) or a [`Notifier`], for example after dropping the
    /// lock that protects the queue.
    pub fn kick_prepare(&mut self) -> bool {
        // SAFETY: `vq` is valid by the type invariant and `&mut self` serialises ring operations.
        self.state().get() < State::Dying
            && unsafe { bindings::virtqueue_kick_prepare(self.vq.as_ptr()) }
    }

    /// Notifies the device (see [`kick`](Self::kick) for what happens before `DRIVER_OK`).
    pub fn notify(&self) -> bool {
        notify(self.vq, self.state())
    }

    /// Returns a handle that can notify the device without access to the queue.
    pub fn notifier(&self) -> Notifier {
        self.state().get_handle();
        // INVARIANT: the handle was counted just above.
        Notifier {
            vq: self.vq,
            state: self.state,
        }
    }

    /// Re-enables callbacks. Returns `false` if requests were completed meanwhile: the caller
    /// should process them (and may disable callbacks again) to avoid missing an event.
    pub fn enable_cb(&mut self) -> bool {
        // SAFETY: `vq` is valid by the type invariant and `&mut self` serialises ring operations.
        unsafe { bindings::virtqueue_enable_cb(self.vq.as_ptr()) }
    }

    /// Like [`enable_cb`](Self::enable_cb), but asks the device to delay the callback until most
    /// outstanding requests are done.
    pub fn enable_cb_delayed(&mut self) -> bool {
        // SAFETY: `vq` is valid by the type invariant and `&mut self` serialises ring operations.
        unsafe { bindings::virtqueue_enable_cb_delayed(self.vq.as_ptr()) }
    }

    /// Asks the device not to call back (a hint: callbacks may still arrive).
    pub fn disable_cb(&mut self) {
        // SAFETY: `vq` is valid by the type invariant and `&mut self` serialises ring operations.
        unsafe { bindings::virtqueue_disable_cb(self.vq.as_ptr()) }
    }

    /// The number of free descriptors in the ring.
    pub fn num_free(&self) -> usize {
        // SAFETY: `vq` is valid by the type invariant; `num_free` only changes in `&mut self`
        // methods, which cannot run while `&self` is borrowed.
        unsafe { (*self.vq.as_ptr()).num_free as usize }
    }

    /// The ring size: the largest number of requests in flight.
    pub fn size(&self) -> usize {
        self.slots.len()
    }

    /// The queue's index, as passed to [`Driver::queue_event`](super::Driver::queue_event).
    pub fn index(&self) -> usize {
        // SAFETY: `vq` is valid by the type invariant; `index` never changes.
        unsafe { (*self.vq.as_ptr()).index as usize }
    }

    /// Whether the ring has detected a device error and stopped working.
    pub fn is_broken(&self) -> bool {
        // SAFETY: `vq` is valid by the type invariant.
        unsafe { bindings::virtqueue_is_broken(self.vq.as_ptr()) }
    }
}

impl<R, W> Drop for Virtqueue<R, W> {
    fn drop(&mut self) {
        // The device must not touch the buffers once they are freed: reset it first (a no-op
        // when the adapter already did so, which is the normal case). This may sleep.
        self.state().ensure_reset();
        loop {
            // SAFETY: `vq` is valid by the type invariant, the device is reset, and `&mut self`
            // serialises ring operations. Detaching unmaps the buffer if it was DMA-mapped.
            let token = unsafe { bindings::virtqueue_detach_unused_buf(self.vq.as_ptr()) };
            if token.is_null() {
                break;
            }
            drop(self.release(token));
        }
        // Buffers the ring no longer knows about (impossible unless memory is corrupt) are
        // dropped with `slots`, after this.
        self.state().put_handle();
    }
}

fn notify(vq: NonNull<bindings::virtqueue>, state: &DevState) -> bool {
    match state.get() {
        State::Live => {
            // SAFETY: `vq` is alive while a handle exists; notifying is safe at any time and
            // concurrently with ring operations.
            unsafe { bindings::virtqueue_notify(vq.as_ptr()) }
        }
        s if s < State::Live => {
            state.defer_kick();
            true
        }
        _ => false,
    }
}

/// A handle that notifies the device of new requests in one queue, without access to the queue:
/// for example after dropping the lock that protects it (see [`Virtqueue::kick_prepare`]).
///
/// # Invariants
///
/// `vq` belongs to the device of `state`; `self` counts as one handle of that device, so both
/// stay alive while `self` exists.
pub struct Notifier {
    vq: NonNull<bindings::virtqueue>,
    state: NonNull<DevState>,
}

// SAFETY: `virtqueue_notify` may be called from any thread, concurrently with ring operations.
unsafe impl Send for Notifier {}
// SAFETY: As above; `notify` takes `&self` and touches no Rust state but atomics.
unsafe impl Sync for Notifier {}

impl Notifier {
    /// Notifies the device (see [`Virtqueue::kick`] for what happens before `DRIVER_OK`).
    pub fn notify(&self) -> bool {
        // SAFETY: `state` is alive by the type invariant.
        notify(self.vq, unsafe { self.state.as_ref() })
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // SAFETY: `state` is alive by the type invariant.
        unsafe { self.state.as_ref() }.put_handle();
    }
}

/// The virtqueues found by [`Device::find_vqs`](super::Device::find_vqs), to be taken one by one
/// with their buffer types. They cannot outlive probe (`'a`).
///
/// # Invariants
///
/// Each `Some` entry is a virtqueue of the device of `state`, not yet wrapped by a [`Virtqueue`].
pub struct Queues<'a> {
    vqs: KVec<Option<NonNull<bindings::virtqueue>>>,
    state: NonNull<DevState>,
    _probe: PhantomData<&'a ()>,
}

impl Queues<'_> {
    /// # Safety
    ///
    /// See the type invariants.
    pub(super) unsafe fn new(
        vqs: KVec<Option<NonNull<bindings::virtqueue>>>,
        state: NonNull<DevState>,
    ) -> Self {
        Self {
            vqs,
            state,
            _probe: PhantomData,
        }
    }

    /// Takes queue `index` (its position in the list given to `find_vqs`), for requests made of
    /// readable buffers `R` and writable buffers `W`.
    ///
    /// Fails with `EINVAL` if there is no such queue or it was already taken.
    pub fn take<R, W>(&mut self, index: usize) -> Result<Virtqueue<R, W>> {
        let vq = self
            .vqs
            .get_mut(index)
            .and_then(Option::take)
            .ok_or(EINVAL)?;
        // SAFETY: By the type invariant, `vq` belongs to the device and was not wrapped yet; it
        // was just removed from `self`, so it will not be wrapped again.
        unsafe { Virtqueue::new(vq, self.state) }
    }

    /// The number of queues found.
    pub fn len(&self) -> usize {
        self.vqs.len()
    }

    /// Whether no queue was found (never true after a successful `find_vqs`).
    pub fn is_empty(&self) -> bool {
        self.vqs.is_empty()
    }
}
