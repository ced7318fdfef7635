// SPDX-License-Identifier: GPL-2.0

//! Block requests as virtqueue requests, whatever the device's protocol.
//!
//! Many block devices take each request as a header the device reads, then the request's data
//! (read by the device for a write, written by it for a read) or some other payload the device
//! reads, then a status the device writes. A [`Command`] is such a request, ready for a
//! [`Virtqueue`](crate::virtio::Virtqueue): it owns the request (as a [`MappedRequest`], its data
//! mapped into its own scatterlist) and is *moved* into the queue with
//! [`add_request`](crate::virtio::Virtqueue::add_request). The header and the status live in
//! the request's private data, as [`DeviceByte`]s that the driver's
//! [`Operations::RequestData`] exposes through [`CommandData`]; so the driver, which knows the
//! protocol, fills in the header and reads the status without `unsafe`, and sending a command
//! allocates nothing in the common case.
//!
//! The command comes back from [`get_buf`](crate::virtio::Virtqueue::get_buf), or, unsent, in
//! the [`AddError`](crate::virtio::AddError) of a failed `add_request`; [`Command::finish`] then
//! unmaps it and gives the request back, unended: the driver ends it (after reading the status),
//! or hands it back to blk-mq from `queue_rq`. A command dropped while the device may still have
//! it (a queue torn down with commands in its ring) drops its request, which ends it with an I/O
//! error, so no request is ever lost.

use crate::{
    alloc::KVec,
    bindings,
    block::mq::{DeviceByte, MappedRequest, Operations, OwnedRequest, Request},
    prelude::*,
    virtio::{DeviceRequest, SgSink},
};

/// `EOPNOTSUPP`, which 6.12's `kernel::error::code` lacks: the errno that ends a request with
/// `BLK_STS_NOTSUPP`.
pub fn eopnotsupp() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// The number of possible CPU ids (`nr_cpu_ids`): an upper bound for the number of queues worth
/// having.
pub fn nr_cpu_ids() -> u32 {
    // SAFETY: `nr_cpu_ids` is set during boot and never changes afterwards.
    unsafe { bindings::nr_cpu_ids }
}

/// The parts of a driver's per-request data that a [`Command`] hands to the device. Each must
/// be a field of the request data itself (a [`Command`] refuses bytes outside it, with
/// `EINVAL`).
pub trait CommandData: Send + Sync {
    /// The bytes the device reads first (a command header).
    fn header(&self) -> &[DeviceByte];
    /// Bytes the device reads after the header, for [`Payload::Inline`].
    fn inline(&self) -> &[DeviceByte];
    /// The bytes the device writes last (a status).
    fn status(&self) -> &[DeviceByte];
}

/// What a command carries between its header and its status.
pub enum Payload {
    /// Nothing (a flush).
    None,
    /// The request's data: read by the device for a write (`REQ_OP_WRITE`, `REQ_OP_DRV_OUT`),
    /// written by it otherwise.
    Data,
    /// The request data's [`CommandData::inline`] bytes, for the device to read.
    Inline,
    /// These bytes, for the device to read (a list of ranges, say).
    Bytes(KVec<u8>),
}

/// A block request as a virtqueue request (see the module documentation).
///
/// # Invariants
///
/// If `payload` is [`Payload::Data`], `rq` has its data mapped; otherwise it has nothing mapped.
pub struct Command<T: Operations + 'static>
where
    T::RequestData: CommandData,
{
    rq: MappedRequest<T>,
    payload: Payload,
}

impl<T: Operations + 'static> Command<T>
where
    T::RequestData: CommandData,
{
    /// The command for `rq`, whose header (and inline payload) the driver has written into the
    /// request's data, with `payload`. In atomic context. On failure (`ENOMEM`: retry later),
    /// the request is handed back, unended.
    pub fn new(rq: OwnedRequest<T>, payload: Payload) -> Result<Self, (Error, OwnedRequest<T>)> {
        let rq = match payload {
            Payload::Data => MappedRequest::map(rq)?,
            _ => MappedRequest::unmapped(rq),
        };
        // INVARIANT: Mapped exactly for `Payload::Data`.
        Ok(Self { rq, payload })
    }

    /// The request.
    pub fn request(&self) -> &Request<T> {
        &self.rq
    }

    /// Unmaps the request and gives it back, unended, for the driver to read the status and end
    /// it, or to hand back to blk-mq.
    pub fn finish(self) -> OwnedRequest<T> {
        self.rq.unmap()
    }
}

/// Whether `cells` lie within `data`.
fn within<D>(data: &D, cells: &[DeviceByte]) -> bool {
    let start = data as *const D as usize;
    let end = start + core::mem::size_of::<D>();
    let p = cells.as_ptr() as usize;
    p >= start && p.checked_add(cells.len()).is_some_and(|e| e <= end)
}

// SAFETY: The header, inline payload and status are bytes of the request's private data (checked
// against its bounds in `map`): memory of the request, which blk-mq allocated from the page
// allocator (the linear map), that does not move and stays valid until the request is freed,
// which needs it ended first, which needs the `OwnedRequest` that the command owns. They are
// `DeviceByte`s (atomics), so the device may write any value, and Rust only accesses them
// atomically. While the queue holds the command, nobody can reach the request's data to write
// the header: the request is only reachable through the command (`RequestRef` gives no data).
// The data pages are the request's, mapped by `blk_rq_map_sg` into the request's own
// scatterlist, valid until the request ends, likewise. Only data the device may read is
// reported readable (writes), only data it may write is reported writable (reads). A `Bytes`
// payload is a `KVec` the command owns.
unsafe impl<T: Operations + 'static> DeviceRequest for Command<T>
where
    T::RequestData: CommandData,
{
    fn map(&mut self, sink: &mut SgSink) -> Result {
        let data = self.rq.data();
        let (header, status) = (data.header(), data.status());
        if !within(data, header) || !within(data, status) {
            return Err(EINVAL);
        }
        let write = self.rq.op().is_write();
        let list = self.rq.sg_list();
        // SAFETY: See the `impl` comment; each pointer is to memory described there.
        unsafe {
            sink.segment(DeviceByte::as_ptr(header), header.len(), false)?;
            match &self.payload {
                Payload::Data if write => {
                    if let Some((sgl, len)) = list {
                        sink.list(sgl, len, false)?;
                    }
                }
                Payload::Inline => {
                    let inline = data.inline();
                    if !within(data, inline) {
                        return Err(EINVAL);
                    }
                    sink.segment(DeviceByte::as_ptr(inline), inline.len(), false)?;
                }
                Payload::Bytes(v) => sink.segment(v.as_ptr(), v.len(), false)?,
                _ => {}
            }
            if matches!(self.payload, Payload::Data) && !write {
                if let Some((sgl, len)) = list {
                    sink.list(sgl, len, true)?;
                }
            }
            sink.segment(DeviceByte::as_ptr(status), status.len(), true)?;
        }
        Ok(())
    }
}
