// SPDX-License-Identifier: GPL-2.0

//! Block requests as virtqueue buffers.
//!
//! A block driver on virtio hands the data pages of a [`Request`] to the device. Those pages
//! are not owned by Rust: they belong to whoever submitted the I/O (the page cache, a user
//! buffer pinned by `O_DIRECT`...). What keeps them valid is the request itself: the block layer
//! does not release them before the request is ended, and a request can only be ended through
//! the unique [`ARef`] the driver holds ([`Request::end`] refuses while another exists).
//!
//! [`RequestBuf`] is that owned token. It implements
//! [`DeviceReadable`] (for requests whose data goes to the device: writes) and
//! [`DeviceWritable`] (for requests whose data comes from it: reads), so it is *moved* into a
//! [`Virtqueue`](crate::virtio::Virtqueue) with [`add`](crate::virtio::Virtqueue::add) like any
//! other buffer and comes back from [`get_buf`](crate::virtio::Virtqueue::get_buf). While the
//! queue holds it, nobody can end the request, so the pages stay put. The direction is checked
//! from the request's operation: a read request on the readable side (or a write on the
//! writable side) is refused with `EINVAL`, so the device can never write into the pages of a
//! write.
//!
//! A `RequestBuf` dropped while it still holds a request (a queue torn down with requests in
//! its ring) ends the request with `EIO`, so no request is ever lost.
//!
//! A request with more data segments than [`MAX_SEGMENTS`] minus the driver's own segments is
//! refused with `E2BIG`: cap the queue's `max_segments` limit accordingly.

use crate::{
    block::mq::{Op, Operations, Request},
    prelude::*,
    types::ARef,
    virtio::{DeviceReadable, DeviceWritable, MAX_SEGMENTS},
};

/// `EOPNOTSUPP`, which 6.12's `kernel::error::code` lacks: the errno that ends a request with
/// `BLK_STS_NOTSUPP`.
pub fn eopnotsupp() -> Error {
    Error::from_errno(-(crate::bindings::EOPNOTSUPP as i32))
}

/// A block request moved into a virtqueue, or nothing.
///
/// # Invariants
///
/// While `self` holds a request, that request is owned by the driver (started, not ended).
pub struct RequestBuf<T: Operations + 'static>(Option<ARef<Request<T>>>);

impl<T: Operations + 'static> RequestBuf<T> {
    /// No data: no segments, in either direction.
    pub fn none() -> Self {
        Self(None)
    }

    /// The data of `rq`.
    pub fn new(rq: ARef<Request<T>>) -> Self {
        Self(Some(rq))
    }

    /// Takes the request out, to end it.
    pub fn take(&mut self) -> Option<ARef<Request<T>>> {
        self.0.take()
    }

    /// The request, if any.
    pub fn request(&self) -> Option<&Request<T>> {
        self.0.as_deref()
    }
}

impl<T: Operations + 'static> Drop for RequestBuf<T> {
    fn drop(&mut self) {
        if let Some(rq) = self.0.take() {
            // A request dropped unanswered (queue teardown, failed add) must not hang its
            // submitter. If another reference exists, its owner ends it.
            let _ = Request::end_err(rq, EIO);
        }
    }
}

/// Whether the device reads (`Some(true)`) or writes (`Some(false)`) the data of `op`.
fn data_out(op: Op) -> Option<bool> {
    match op {
        Op::Write | Op::DrvOut => Some(true),
        Op::Read | Op::DrvIn => Some(false),
        _ => None,
    }
}

// SAFETY: The segments are the request's data pages, in the linear map (`for_each_segment`
// refuses `CONFIG_HIGHMEM`). They stay valid and in place until the request is ended, which
// needs the unique `ARef` that `self` owns (so not before `self` is dropped or the request
// taken out, which needs `&mut self`, i.e. after the queue gave `self` back). Rust never writes
// them through `self`. Only requests whose data goes to the device are reported here.
unsafe impl<T: Operations + 'static> DeviceReadable for RequestBuf<T> {
    fn segments(&self, f: &mut dyn FnMut(*const u8, usize) -> Result) -> Result {
        let Some(rq) = self.request() else {
            return Ok(());
        };
        if rq.data_len() == 0 {
            return Ok(());
        }
        if data_out(rq.op()) != Some(true) {
            return Err(EINVAL);
        }
        rq.for_each_segment(MAX_SEGMENTS, &mut |p, len| f(p.cast_const(), len))
    }
}

// SAFETY: As above; the pages are plain bytes, so any pattern the device writes leaves `self`
// valid. Only requests whose data comes from the device are reported here.
unsafe impl<T: Operations + 'static> DeviceWritable for RequestBuf<T> {
    fn segments(&mut self, f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result {
        let Some(rq) = self.request() else {
            return Ok(());
        };
        if rq.data_len() == 0 {
            return Ok(());
        }
        if data_out(rq.op()) != Some(false) {
            return Err(EINVAL);
        }
        rq.for_each_segment(MAX_SEGMENTS, f)
    }
}
