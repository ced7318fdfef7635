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
//! A queue never outlives its device in any way that matters: when the device is removed, frozen
//! or unplugged, the driver adapter resets it, revokes every queue (operations on a leftover
//! [`Virtqueue`] or [`Notifier`] then fail without touching the device), detaches the buffers
//! still in the rings and deletes the queues. Dropping a queue while the device may still use its
//! buffers hands them to the adapter, which frees them after the reset; a queue never resets the
//! device itself.
//!
//! C header: [`include/linux/virtio.h`](srctree/include/linux/virtio.h)

use super::gate::{Gate, Pass};
use crate::{
    alloc::{Flags, KBox, KVec},
    bindings,
    error::to_result,
    prelude::*,
    scatterlist::SgEntry,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    sync::Arc,
    types::{AsBytes, FromBytes},
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::MaybeUninit,
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};

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
    /// The length the device reported, unclamped: `len`, unless the device claimed to have
    /// written more than `writable` holds (then larger: a device that lies, whose packet a
    /// driver may want to drop, as C drivers that check the used length do). Only to compare
    /// with: never a bound for reading `writable`, which has `len` bytes.
    pub device_len: usize,
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

/// The slots of a [`Virtqueue`] dropped while the device could still use their buffers, kept
/// (type-erased, as the parts of their `KVec`) until the adapter has reset the device.
struct Grave {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    drop: unsafe fn(*mut u8, usize, usize),
}

impl Drop for Grave {
    fn drop(&mut self) {
        // SAFETY: `ptr`, `len` and `cap` are the parts of a `KVec` whose element type `drop`
        // was instantiated with (see `Virtqueue::drop`); each grave is dropped once.
        unsafe { (self.drop)(self.ptr, self.len, self.cap) }
    }
}

/// # Safety
///
/// `ptr`, `len` and `cap` come from `KVec::<Slot<R, W>>::into_raw_parts`, used once.
unsafe fn drop_slots<R, W>(ptr: *mut u8, len: usize, cap: usize) {
    // SAFETY: By the safety requirements.
    drop(unsafe { KVec::<Slot<R, W>>::from_raw_parts(ptr.cast(), len, cap) });
}

/// What happens to the buffers of a dropped [`Virtqueue`].
struct Tomb {
    /// The adapter reset the device and detached every buffer: they can be freed at once.
    detached: bool,
    /// The buffers of the queue's [`Virtqueue`], dropped before that.
    grave: Option<Grave>,
}

// SAFETY: A `Grave` owns `Send` buffers (the `Virtqueue` it came from is `Send`).
unsafe impl Send for Tomb {}

/// One virtqueue of a device, shared by the adapter and the handles on it ([`Virtqueue`],
/// [`Notifier`]). The adapter revokes it (see [`QueueShared::revoke`]) before it deletes the
/// queues, so a handle that outlives its device touches no C object.
///
/// # Invariants
///
/// - While `gate` is open, `vq` is a live virtqueue of the device.
/// - `gate` is closed only after the device was reset, and never reopens.
/// - `live` is set once the device has `DRIVER_OK`.
#[pin_data]
pub(crate) struct QueueShared {
    vq: NonNull<bindings::virtqueue>,
    index: usize,
    #[pin]
    gate: Gate,
    live: AtomicBool,
    /// Whether [`Virtqueue::set_affinity`] gave the queue's interrupt an affinity hint, which
    /// points into the transport's masks: [`QueueShared::revoke`] clears it before the
    /// transport frees them.
    hinted: AtomicBool,
    #[pin]
    tomb: SpinLockIrq<Tomb>,
}

// SAFETY: `vq` is only used inside the gate, through C functions that may be called from any
// thread (ring operations are serialised by the `&mut` of the one `Virtqueue`).
unsafe impl Send for QueueShared {}
// SAFETY: As above; the rest is atomics and a lock.
unsafe impl Sync for QueueShared {}

impl QueueShared {
    /// # Safety
    ///
    /// `vq` is a live virtqueue of a device bound to the adapter, which revokes the result
    /// (after resetting the device) before it deletes `vq`.
    pub(super) unsafe fn new(vq: NonNull<bindings::virtqueue>) -> impl PinInit<Self> {
        // SAFETY: `vq` is valid (safety requirement); `index` never changes.
        let index = unsafe { (*vq.as_ptr()).index } as usize;
        pin_init!(Self {
            vq,
            index,
            gate <- Gate::new(true),
            live: AtomicBool::new(false),
            hinted: AtomicBool::new(false),
            tomb <- new_spinlock_irq!(Tomb { detached: false, grave: None }, "virtio_rs_tomb"),
        })
    }

    /// The device is live (`DRIVER_OK`): notifications reach it from now on. Notifies the
    /// device once, for the requests added before.
    pub(super) fn set_live(&self) {
        self.live.store(true, Ordering::SeqCst);
        if let Some(_pass) = self.gate.enter() {
            // SAFETY: `vq` is live while the gate is open (type invariant).
            unsafe { bindings::virtqueue_notify(self.vq.as_ptr()) };
        }
    }

    /// Revokes the queue: closes the gate, waiting for the users inside, detaches every buffer
    /// still in the ring (unmapping it) and frees the buffers of a dropped [`Virtqueue`]. The
    /// device must be reset already; the adapter calls this once, before it deletes the queues.
    /// Process context.
    pub(super) fn revoke(&self) {
        self.gate.close();
        if self.hinted.load(Ordering::SeqCst) {
            // The interrupt's affinity hint points into the transport's mask for its vector,
            // which `del_vqs` frees: clear it first, as C drivers do before deleting their
            // queues (virtio-pci clears only the hints of per-queue vectors itself).
            // SAFETY: The queue is not deleted yet; nobody else uses it (the gate is closed).
            unsafe { bindings::virtqueue_set_affinity(self.vq.as_ptr(), core::ptr::null()) };
        }
        loop {
            // SAFETY: Nobody else uses the ring (the gate is closed), the device is reset, and
            // the queue is not deleted yet. The token is a slot number, owned by the queue's
            // `Virtqueue`, which frees its buffers when dropped.
            let token = unsafe { bindings::virtqueue_detach_unused_buf(self.vq.as_ptr()) };
            if token.is_null() {
                break;
            }
        }
        let grave = {
            let mut tomb = self.tomb.lock();
            tomb.detached = true;
            tomb.grave.take()
        };
        drop(grave);
    }

    /// Notifies the device, from inside the gate: `true` unless the queue is broken. Before
    /// `DRIVER_OK` nothing is sent; [`QueueShared::set_live`] notifies then.
    fn notify_inside(&self, _pass: &Pass<'_>) -> bool {
        if !self.live.load(Ordering::SeqCst) {
            return true;
        }
        // SAFETY: `vq` is live while the gate is open (type invariant), and `_pass` shows that
        // the caller is inside; notifying is safe concurrently with ring operations.
        unsafe { bindings::virtqueue_notify(self.vq.as_ptr()) }
    }
}

/// A virtqueue carrying requests made of device-readable buffers `R` and device-writable
/// buffers `W`.
///
/// Obtain one with [`Queues::take`] during probe and keep it in the driver data, usually behind a
/// [`SpinLockIrq`](crate::spinlock_irq::SpinLockIrq) shared with the queue callback: the ring
/// operations need exclusive access (`&mut self`), as in C.
///
/// A `Virtqueue` can outlive its device (kept in a work item, leaked, caught in a cycle): once
/// the device is removed, frozen or unplugged, every operation fails (`ENODEV`, `None`,
/// `false`) without touching the device, and dropping it frees the buffers it still holds.
///
/// # Invariants
///
/// - `q` is the shared state of this queue; no other `Virtqueue` has it.
/// - `slots.len()` is the ring size. Every buffer in the ring has a token `i + 1` where
///   `slots[i]` is `Busy` and holds its buffers; `Free` slots form a list from `free`.
pub struct Virtqueue<R = (), W = ()> {
    q: Arc<QueueShared>,
    slots: KVec<Slot<R, W>>,
    free: u32,
    /// How many oversized used lengths were reported (the first few are printed).
    lies: u32,
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
        if gfp.as_raw() & (1 << bindings::___GFP_DIRECT_RECLAIM_BIT) != 0 {
            // The ring may allocate with `gfp`: catch a sleeping allocation in atomic context
            // on debug kernels, even when this add happens not to allocate.
            super::might_sleep();
        }
        let _pass = self.q.gate.enter().ok_or(ENODEV)?;
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
        // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`), and
        // `&mut self` serialises ring operations. `ptrs[..n]` point to terminated, initialised
        // scatterlists (`out` readable, then `n - out` writable) that live until the call
        // returns (the sink's own entries, or lists the request keeps alive); the C ring copies
        // them.
        to_result(unsafe {
            bindings::virtqueue_add_sgs(
                self.q.vq.as_ptr(),
                ptrs.as_mut_ptr(),
                sink.out as u32,
                (n - sink.out) as u32,
                token,
                gfp.as_raw(),
            )
        })?;
        Ok((slot, sink.cap))
    }

    /// Wraps the queue `q`.
    fn new(q: Arc<QueueShared>) -> Result<Self> {
        let size = {
            let _pass = q.gate.enter().ok_or(ENODEV)?;
            // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`).
            unsafe { bindings::virtqueue_get_vring_size(q.vq.as_ptr()) }
        };
        if size == 0 || size == NO_SLOT {
            return Err(EINVAL);
        }
        let mut slots = KVec::with_capacity(size as usize, GFP_KERNEL)?;
        for i in 0..size {
            let next = if i + 1 == size { NO_SLOT } else { i + 1 };
            slots.push(Slot::Free { next }, GFP_KERNEL)?;
        }
        // INVARIANT: all slots are free and linked from 0; `q` comes from `Queues::take`, which
        // hands each queue out once.
        Ok(Self {
            q,
            slots,
            free: 0,
            lies: 0,
        })
    }

    /// Takes back a request that the device has finished with, if there is one.
    ///
    /// The length the device reports is checked: if it exceeds the size of the writable
    /// buffers, it is clamped to that size and a warning is printed (the first few times);
    /// [`Used::device_len`] keeps what the device said.
    pub fn get_buf(&mut self) -> Option<Used<R, W>> {
        let mut len: u32 = 0;
        let token = {
            let _pass = self.q.gate.enter()?;
            // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`),
            // and `&mut self` serialises ring operations.
            unsafe { bindings::virtqueue_get_buf(self.q.vq.as_ptr(), &mut len) }
        };
        // The slot table is ours alone: taking the buffers back needs no gate.
        let (readable, writable, cap) = self.release(token)?;
        let device_len = len as usize;
        let len = if cap == 0 {
            // Nothing was writable, so there is nothing to hand back. Some devices (QEMU's
            // virtio-input status queue) report the readable length here; that is harmless.
            0
        } else if len as usize > cap {
            self.lie(len, cap);
            cap
        } else {
            len as usize
        };
        Some(Used {
            readable,
            writable,
            len,
            device_len,
        })
    }

    /// Waits for the device to finish a request, in process context, the way C drivers wait on
    /// a queue without a callback (virtio-net's control queue): polls [`get_buf`](Self::get_buf),
    /// letting other tasks run in between. Gives up after `timeout_ms` milliseconds, or as soon
    /// as the queue is broken or the device gone, returning `None`: the requests stay in the
    /// ring, owned by the queue, until the device gives them back or the queue is dropped.
    /// C waits forever; a device that never answers would hang the caller (and RTNL with it).
    pub fn wait_buf(&mut self, timeout_ms: u32) -> Option<Used<R, W>> {
        super::might_sleep();
        // SAFETY: Reads the monotonic clock; any context.
        let deadline = unsafe { bindings::ktime_get() } + i64::from(timeout_ms) * 1_000_000;
        loop {
            if let Some(used) = self.get_buf() {
                return Some(used);
            }
            // SAFETY: As above.
            if self.is_broken() || unsafe { bindings::ktime_get() } > deadline {
                return None;
            }
            // SAFETY: Process context (`might_sleep` above checks it on debug kernels): we may
            // be rescheduled here.
            unsafe {
                bindings::cond_resched();
                bindings::cpu_relax();
            }
        }
    }

    /// Waits for the device to finish a request in any context, spinning, the way C's virtio
    /// console waits for kernel console output (`put_chars`). Gives up after `timeout_us`
    /// microseconds, or as soon as the queue is broken or the device gone, returning `None`;
    /// the requests stay in the ring, owned by the queue, as with [`wait_buf`](Self::wait_buf).
    /// C spins forever: a device that never answers would stop the CPU.
    pub fn spin_buf(&mut self, timeout_us: u32) -> Option<Used<R, W>> {
        // SAFETY: Reads the monotonic clock; any context.
        let deadline = unsafe { bindings::ktime_get() } + i64::from(timeout_us) * 1_000;
        loop {
            if let Some(used) = self.get_buf() {
                return Some(used);
            }
            // SAFETY: As above.
            if self.is_broken() || unsafe { bindings::ktime_get() } > deadline {
                return None;
            }
            // SAFETY: A pause hint; any context.
            unsafe { bindings::cpu_relax() };
        }
    }

    /// Reports an oversized used length, the first few times.
    #[cold]
    fn lie(&mut self, len: u32, cap: usize) {
        const SHOWN: u32 = 8;
        if self.lies < SHOWN {
            self.lies += 1;
            pr_warn!(
                "virtio: queue {}: device used {} bytes of a {}-byte buffer, clamped{}\n",
                self.q.index,
                len,
                cap,
                if self.lies == SHOWN {
                    " (not shown again)"
                } else {
                    ""
                }
            );
        }
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
    /// Before the device is ready (`DRIVER_OK`), nothing is sent: the driver adapter notifies
    /// every queue right after setting `DRIVER_OK`. A driver therefore cannot notify a device
    /// that is not ready, whatever it does.
    pub fn kick(&mut self) -> bool {
        let Some(pass) = self.q.gate.enter() else {
            return false;
        };
        // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`), and
        // `&mut self` serialises ring operations.
        if unsafe { bindings::virtqueue_kick_prepare(self.q.vq.as_ptr()) } {
            self.q.notify_inside(&pass)
        } else {
            // SAFETY: As above.
            !unsafe { bindings::virtqueue_is_broken(self.q.vq.as_ptr()) }
        }
    }

    /// The first half of [`kick`](Self::kick): returns whether the device needs a notification.
    /// Send it with [`notify`](Self::notify) or a [`Notifier`], for example after dropping the
    /// lock that protects the queue. `false` once the device is gone.
    pub fn kick_prepare(&mut self) -> bool {
        let Some(_pass) = self.q.gate.enter() else {
            return false;
        };
        // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`), and
        // `&mut self` serialises ring operations.
        unsafe { bindings::virtqueue_kick_prepare(self.q.vq.as_ptr()) }
    }

    /// Notifies the device (see [`kick`](Self::kick) for what happens before `DRIVER_OK`).
    /// `false` if the queue is broken or the device is gone.
    pub fn notify(&self) -> bool {
        self.q
            .gate
            .enter()
            .is_some_and(|pass| self.q.notify_inside(&pass))
    }

    /// Returns a handle that can notify the device without access to the queue.
    pub fn notifier(&self) -> Notifier {
        Notifier { q: self.q.clone() }
    }

    /// Re-enables callbacks. Returns `false` if requests were completed meanwhile: the caller
    /// should process them (and may disable callbacks again) to avoid missing an event. `true`
    /// once the device is gone (there is nothing left to process).
    pub fn enable_cb(&mut self) -> bool {
        let Some(_pass) = self.q.gate.enter() else {
            return true;
        };
        // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`), and
        // `&mut self` serialises ring operations.
        unsafe { bindings::virtqueue_enable_cb(self.q.vq.as_ptr()) }
    }

    /// Like [`enable_cb`](Self::enable_cb), but asks the device to delay the callback until most
    /// outstanding requests are done.
    pub fn enable_cb_delayed(&mut self) -> bool {
        let Some(_pass) = self.q.gate.enter() else {
            return true;
        };
        // SAFETY: As in `enable_cb`.
        unsafe { bindings::virtqueue_enable_cb_delayed(self.q.vq.as_ptr()) }
    }

    /// Asks the device not to call back (a hint: callbacks may still arrive).
    pub fn disable_cb(&mut self) {
        if let Some(_pass) = self.q.gate.enter() {
            // SAFETY: As in `enable_cb`.
            unsafe { bindings::virtqueue_disable_cb(self.q.vq.as_ptr()) }
        }
    }

    /// The number of free descriptors in the ring; 0 once the device is gone.
    pub fn num_free(&self) -> usize {
        let Some(_pass) = self.q.gate.enter() else {
            return 0;
        };
        // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`);
        // `num_free` only changes in `&mut self` methods, which cannot run while `&self` is
        // borrowed.
        unsafe { (*self.q.vq.as_ptr()).num_free as usize }
    }

    /// The ring size: the largest number of requests in flight.
    pub fn size(&self) -> usize {
        self.slots.len()
    }

    /// The largest ring size the device allows for this queue (`num_max`); 0 once the device
    /// is gone.
    pub fn max_size(&self) -> usize {
        let Some(_pass) = self.q.gate.enter() else {
            return 0;
        };
        // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`);
        // `num_max` is set when the queue is created and never changes.
        unsafe { (*self.q.vq.as_ptr()).num_max as usize }
    }

    /// The queue's index, as passed to [`Driver::queue_event`](super::Driver::queue_event).
    pub fn index(&self) -> usize {
        self.q.index
    }

    /// Whether the ring has detected a device error and stopped working, or the device is gone.
    pub fn is_broken(&self) -> bool {
        let Some(_pass) = self.q.gate.enter() else {
            return true;
        };
        // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`).
        unsafe { bindings::virtqueue_is_broken(self.q.vq.as_ptr()) }
    }

    /// Sets the CPUs the queue's interrupt goes to: see [`Affinity::set`].
    pub fn set_affinity(&self, mask: Option<&crate::cpumask::Cpumask>) -> Result {
        self.q.set_affinity(mask)
    }

    /// Returns a handle that sets where the queue's interrupt goes without access to the
    /// queue, whose lock a driver may hold with interrupts off while setting the affinity
    /// sleeps.
    pub fn affinity(&self) -> Affinity {
        Affinity { q: self.q.clone() }
    }
}

impl QueueShared {
    fn set_affinity(&self, mask: Option<&crate::cpumask::Cpumask>) -> Result {
        let _pass = self.gate.enter().ok_or(ENODEV)?;
        if mask.is_some() {
            // Before the hint is set: `revoke` closes the gate, then reads this.
            self.hinted.store(true, Ordering::SeqCst);
        }
        let mask = mask.map_or(core::ptr::null(), |m| m.as_raw());
        // SAFETY: `vq` is live while we are inside the gate (invariant of `QueueShared`);
        // `mask` is null or a valid cpumask for the call, which the transport copies. The
        // helper serialises the callers (the transport's masks may be shared by queues).
        // Process context, as documented on `Affinity::set`.
        to_result(unsafe { bindings::virtqueue_set_affinity(self.vq.as_ptr(), mask) })
    }
}

/// A handle that sets where one queue's interrupt goes, without access to the queue (see
/// [`Virtqueue::affinity`]). Like a [`Virtqueue`], it becomes inert once the device is gone.
#[derive(Clone)]
pub struct Affinity {
    q: Arc<QueueShared>,
}

impl Affinity {
    /// Sets the CPUs the queue's interrupt goes to, and the affinity hint user space sees
    /// (`virtqueue_set_affinity()`); `None` clears the hint (the interrupt stays where it is),
    /// as C's `virtqueue_set_affinity(vq, NULL)`. The transport copies the mask: it need not
    /// outlive the call.
    ///
    /// Only virtio-pci with MSI-X spreads interrupts: elsewhere (one interrupt for the device,
    /// virtio-mmio) this does nothing and succeeds, as in C. `EINVAL` for a queue without a
    /// callback on virtio-pci, `ENODEV` once the device is gone. Process context: it sleeps.
    pub fn set(&self, mask: Option<&crate::cpumask::Cpumask>) -> Result {
        self.q.set_affinity(mask)
    }
}

impl<R, W> Drop for Virtqueue<R, W> {
    fn drop(&mut self) {
        if !self.slots.iter().any(|s| matches!(s, Slot::Busy { .. })) {
            return;
        }
        // Buffers are in the ring: the device may still use them until the adapter resets it.
        // This is not the place to reset (a driver may drop a queue in any context), so hand
        // them to the adapter, which frees them after the reset; or free them now if that
        // already happened.
        let slots = core::mem::take(&mut self.slots);
        let mut tomb = self.q.tomb.lock();
        if tomb.detached {
            drop(tomb);
            drop(slots);
            return;
        }
        let (ptr, len, cap) = slots.into_raw_parts();
        let grave = Grave {
            ptr: ptr.cast(),
            len,
            cap,
            drop: drop_slots::<R, W>,
        };
        // There is one `Virtqueue` per queue (type invariant), so one grave at most.
        let old = tomb.grave.replace(grave);
        drop(tomb);
        drop(old);
    }
}

/// A handle that notifies the device of new requests in one queue, without access to the queue:
/// for example after dropping the lock that protects it (see [`Virtqueue::kick_prepare`]).
/// Like a [`Virtqueue`], it becomes inert once the device is gone.
#[derive(Clone)]
pub struct Notifier {
    q: Arc<QueueShared>,
}

impl Notifier {
    /// Notifies the device (see [`Virtqueue::kick`] for what happens before `DRIVER_OK`).
    /// `false` if the queue is broken or the device is gone.
    pub fn notify(&self) -> bool {
        self.q
            .gate
            .enter()
            .is_some_and(|pass| self.q.notify_inside(&pass))
    }
}

/// The virtqueues found by [`Device::find_vqs`](super::Device::find_vqs), to be taken one by one
/// with their buffer types. They cannot outlive probe (`'a`).
///
/// # Invariants
///
/// Each `Some` entry is a queue of the device not yet wrapped by a [`Virtqueue`].
pub struct Queues<'a> {
    vqs: KVec<Option<Arc<QueueShared>>>,
    _probe: PhantomData<&'a ()>,
}

impl Queues<'_> {
    /// # Safety
    ///
    /// See the type invariants.
    pub(super) unsafe fn new(vqs: KVec<Option<Arc<QueueShared>>>) -> Self {
        Self {
            vqs,
            _probe: PhantomData,
        }
    }

    /// Takes queue `index` (its position in the list given to `find_vqs`), for requests made of
    /// readable buffers `R` and writable buffers `W`.
    ///
    /// Fails with `EINVAL` if there is no such queue or it was already taken.
    pub fn take<R, W>(&mut self, index: usize) -> Result<Virtqueue<R, W>> {
        let q = self
            .vqs
            .get_mut(index)
            .and_then(Option::take)
            .ok_or(EINVAL)?;
        // It was just removed from `self`, so it will not be wrapped again.
        Virtqueue::new(q)
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
