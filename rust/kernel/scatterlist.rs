// SPDX-License-Identifier: GPL-2.0

//! Scatter-gather list entries.
//!
//! A [`SgEntry`] is one kernel `struct scatterlist` entry describing one contiguous buffer in the
//! kernel's linear mapping, the form in which buffers are handed to DMA-capable code such as
//! virtqueues ([`crate::virtio`]). The entry borrows the buffer for its lifetime `'a`, so the
//! buffer can neither be freed nor moved while the entry exists.
//!
//! Only memory from the slab allocator ([`KBox`], [`KVec`]) is accepted: stack memory and
//! `vmalloc` memory are not physically contiguous, or not in the linear map, and cannot be
//! described by a single entry.
//!
//! C header: [`include/linux/scatterlist.h`](srctree/include/linux/scatterlist.h)

use crate::{
    alloc::{KBox, KVec},
    bindings,
    error::code::EINVAL,
    prelude::*,
    types::{AsBytes, Opaque},
};
use core::marker::PhantomData;

/// One `struct scatterlist` entry, terminated (it is a list of one).
///
/// # Invariants
///
/// `sg` was initialised by `sg_init_one()` with a non-empty buffer in the kernel's linear mapping
/// that stays valid, and is not freed or moved, for `'a`.
///
/// # Examples
///
/// ```
/// use kernel::scatterlist::SgEntry;
///
/// let buf = KBox::new([0u8; 64], GFP_KERNEL)?;
/// let sg = SgEntry::from_kbox(&buf)?;
/// assert_eq!(sg.len(), 64);
/// # Ok::<(), Error>(())
/// ```
pub struct SgEntry<'a> {
    sg: Opaque<bindings::scatterlist>,
    _buf: PhantomData<&'a [u8]>,
}

impl<'a> SgEntry<'a> {
    /// Describes the contents of a boxed value.
    ///
    /// Fails with `EINVAL` for zero-sized values and values of 4 GiB or more.
    pub fn from_kbox<T: AsBytes>(b: &'a KBox<T>) -> Result<Self> {
        let ptr: *const T = &**b;
        // SAFETY: `KBox` memory comes from `kmalloc`, which is in the linear map; the borrow keeps
        // it alive and in place for `'a`.
        unsafe { Self::from_raw(ptr.cast(), core::mem::size_of::<T>()) }
    }

    /// Describes the initialised elements of a vector (`len()`, not `capacity()`).
    ///
    /// Fails with `EINVAL` for empty vectors and vectors of 4 GiB or more.
    pub fn from_kvec<T: AsBytes>(v: &'a KVec<T>) -> Result<Self> {
        // SAFETY: `KVec` memory comes from `kmalloc`, which is in the linear map; the borrow keeps
        // it alive and in place for `'a`.
        unsafe { Self::from_raw(v.as_ptr().cast(), core::mem::size_of_val(&**v)) }
    }

    /// Describes `len` bytes at `ptr`.
    ///
    /// Fails with `EINVAL` if `len` is zero or does not fit in 32 bits.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` must be one allocation in the kernel's linear mapping (slab or page
    /// allocator memory: not stack, not `vmalloc`), and must stay valid and in place for `'a`.
    pub unsafe fn from_raw(ptr: *const u8, len: usize) -> Result<Self> {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        if len == 0 {
            return Err(EINVAL);
        }
        let this = Self {
            sg: Opaque::uninit(),
            _buf: PhantomData,
        };
        // SAFETY: `this.sg` is valid for writes; the caller guarantees that the buffer is in the
        // linear map, as `sg_init_one` requires (it calls `virt_to_page`).
        unsafe { bindings::sg_init_one(this.sg.get(), ptr.cast(), len) };
        // INVARIANT: initialised just above with a valid, non-empty buffer.
        Ok(this)
    }

    /// The length in bytes of the described buffer.
    pub fn len(&self) -> usize {
        // SAFETY: `sg` is initialised by the type invariant.
        unsafe { (*self.sg.get()).length as usize }
    }

    /// Whether the entry is empty; never true, by the type invariant.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw `struct scatterlist`, for passing to C.
    ///
    /// The entry is a terminated list of one. `sg_init_one` stores no pointer to the entry
    /// itself, so moving an `SgEntry` is fine; the returned pointer is valid while `self` is
    /// neither moved nor dropped.
    pub fn as_raw(&self) -> *mut bindings::scatterlist {
        self.sg.get()
    }
}
