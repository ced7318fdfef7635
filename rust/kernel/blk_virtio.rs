// SPDX-License-Identifier: GPL-2.0

//! Block requests as virtio-blk commands.
//!
//! A virtio-blk command is a 16-byte header the device reads (type, priority, sector), then the
//! request's data (read by the device for a write, written by it for a read) or, for discard,
//! write-zeroes and secure erase, a list of ranges, then one status byte the device writes.
//!
//! A driver declares [`BlkPdu`] as its [`Operations::RequestData`]: every request then carries
//! the header, the status, one range and a small scatterlist table, so that sending a command
//! allocates nothing in the common case (only requests with more data segments than
//! [`INLINE_SG`], or with several ranges, allocate, with `GFP_ATOMIC` from a mempool or slab,
//! as `virtio_blk.c` does).
//!
//! [`BlkCmd`] is the command: it owns the request (its unique [`ARef`]) and is *moved* into a
//! [`Virtqueue`](crate::virtio::Virtqueue) with
//! [`add_request`](crate::virtio::Virtqueue::add_request). The data pages stay valid because the
//! block layer does not release them before the request is ended, and nobody can end it while
//! the queue holds the command. The command comes back from
//! [`get_buf`](crate::virtio::Virtqueue::get_buf); [`BlkCmd::finish`] then unmaps it and hands
//! back the request with the device's status. A command dropped while it still holds its
//! request (a queue torn down with commands in its ring) ends the request with `EIO`, so no
//! request is ever lost.

use crate::{
    bindings,
    block::mq::{Operations, Request},
    init::Zeroable,
    prelude::*,
    types::{ARef, Opaque},
    virtio::{DeviceRequest, SgSink},
};

/// `EOPNOTSUPP`, which 6.12's `kernel::error::code` lacks: the errno that ends a request with
/// `BLK_STS_NOTSUPP`.
pub fn eopnotsupp() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// Scatterlist entries kept in each request; more are chained from a mempool.
pub const INLINE_SG: usize = 2;

/// What the status byte holds until the device writes it: not a valid status.
pub const STATUS_UNSET: u8 = 0xff;

/// The per-request data of a virtio-blk driver (see the module documentation).
#[repr(C)]
pub struct BlkPdu {
    /// `struct virtio_blk_outhdr`.
    hdr: Opaque<[u8; 16]>,
    /// One `struct virtio_blk_discard_write_zeroes`.
    range: Opaque<[u8; 16]>,
    status: Opaque<u8>,
    table: Opaque<bindings::sg_table>,
    sg: Opaque<[bindings::scatterlist; INLINE_SG]>,
}

// SAFETY: All-zero bytes are a valid `BlkPdu` (plain bytes and C structures).
unsafe impl Zeroable for BlkPdu {}
// SAFETY: The fields are only accessed through a `BlkCmd`, which owns the request.
unsafe impl Send for BlkPdu {}
// SAFETY: As above: `&BlkPdu` allows nothing.
unsafe impl Sync for BlkPdu {}

/// What a command carries besides its header and status.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Nothing (flush).
    None,
    /// The request's data, for the device to read (write requests).
    DataOut,
    /// The request's data, for the device to fill (read requests, identify).
    DataIn,
    /// The request's ranges (discard, secure erase, write zeroes), with `flags` in each
    /// (`VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP`).
    Ranges {
        /// The range flags.
        flags: u32,
    },
}

/// A block request as a virtio-blk command (see the module documentation).
///
/// # Invariants
///
/// While `rq` is `Some`, the request is owned by the driver, its [`BlkPdu`] holds the command's
/// header and status, and, if `nsg > 0`, its `table` maps the request's data (with a chained
/// allocation to free); `ranges` holds the ranges when there are several.
pub struct BlkCmd<T: Operations<RequestData = BlkPdu> + 'static> {
    rq: Option<ARef<Request<T>>>,
    payload: Payload,
    nsg: usize,
    ranges: Option<KVec<[u8; 16]>>,
}

fn put(le: bool, out: &mut [u8], v: u64, n: usize) {
    let b = if le { v.to_le_bytes() } else { v.to_ne_bytes() };
    if le || cfg!(target_endian = "little") {
        out[..n].copy_from_slice(&b[..n]);
    } else {
        out[..n].copy_from_slice(&b[8 - n..]);
    }
}

fn range(le: bool, sector: u64, sectors: u32, flags: u32) -> [u8; 16] {
    let mut r = [0u8; 16];
    put(le, &mut r[0..8], sector, 8);
    put(le, &mut r[8..12], u64::from(sectors), 4);
    put(le, &mut r[12..16], u64::from(flags), 4);
    r
}

impl<T: Operations<RequestData = BlkPdu> + 'static> BlkCmd<T> {
    /// Builds the command of type `ty` for `rq`, at `sector`, with `payload`, in the device's
    /// byte order (little-endian if `le`, else the guest's, for legacy devices). In atomic
    /// context. On failure (`ENOMEM`: retry later; `EINVAL`: a request that cannot be sent),
    /// the request is handed back.
    pub fn new(
        rq: ARef<Request<T>>,
        ty: u32,
        sector: u64,
        payload: Payload,
        le: bool,
    ) -> Result<Self, (Error, ARef<Request<T>>)> {
        let pdu = rq.data();
        let mut hdr = [0u8; 16];
        put(le, &mut hdr[0..4], u64::from(ty), 4);
        put(le, &mut hdr[4..8], u64::from(rq.ioprio()), 4);
        put(le, &mut hdr[8..16], sector, 8);
        // SAFETY: We own the request, so nobody else accesses its data; the device does not
        // see the header before the command is added.
        unsafe {
            pdu.hdr.get().write(hdr);
            pdu.status.get().write(STATUS_UNSET);
        }
        let mut cmd = Self {
            rq: None,
            payload,
            nsg: 0,
            ranges: None,
        };
        match payload {
            Payload::DataOut | Payload::DataIn if rq.data_len() > 0 => {
                // SAFETY: We own the request; `table` and `sg` are ours to fill, and the
                // mapping is undone before the request is ended (`finish`, `drop`).
                let n = unsafe { map_sg(rq.as_raw(), pdu.table.get(), pdu.sg.get().cast()) };
                match n {
                    Ok(n) => cmd.nsg = n,
                    Err(e) => return Err((e, rq)),
                }
            }
            Payload::Ranges { flags } => {
                let n = usize::from(rq.nr_discard_segments()).max(1);
                if n == 1 {
                    let r = range(le, rq.sector(), rq.data_len() >> 9, flags);
                    // SAFETY: As for the header.
                    unsafe { pdu.range.get().write(r) };
                } else {
                    let mut v = match KVec::with_capacity(n, GFP_ATOMIC) {
                        Ok(v) => v,
                        Err(_) => return Err((ENOMEM, rq)),
                    };
                    rq.for_each_range(&mut |sector, sectors| {
                        // Never more than `n` ranges (the block layer's count); capacity is
                        // reserved, so this does not allocate.
                        if v.len() < n {
                            let _ = v.push(range(le, sector, sectors, flags), GFP_ATOMIC);
                        }
                    });
                    if v.is_empty() {
                        return Err((EINVAL, rq));
                    }
                    cmd.ranges = Some(v);
                }
            }
            _ => {}
        }
        // INVARIANT: header and status are written, the data mapped if any.
        cmd.rq = Some(rq);
        Ok(cmd)
    }

    /// The request, while the command holds it.
    pub fn request(&self) -> Option<&Request<T>> {
        self.rq.as_deref()
    }

    fn unmap(&mut self) {
        if let Some(rq) = &self.rq {
            if self.nsg > 0 {
                // SAFETY: The table was mapped in `new` and the device is done with it (the
                // queue handed the command back, or was reset before dropping it).
                unsafe { bindings::sg_free_table_chained(rq.data().table.get(), INLINE_SG as u32) };
                self.nsg = 0;
            }
        }
    }

    /// Takes the request back, with the status byte the device wrote ([`STATUS_UNSET`] if it
    /// wrote none). `None` if the command was already finished.
    pub fn finish(mut self) -> Option<(ARef<Request<T>>, u8)> {
        self.unmap();
        let rq = self.rq.take()?;
        // SAFETY: The device is done with the command; the status byte is plain memory that
        // it may have written.
        let status = unsafe { core::ptr::read_volatile(rq.data().status.get()) };
        Some((rq, status))
    }
}

impl<T: Operations<RequestData = BlkPdu> + 'static> Drop for BlkCmd<T> {
    fn drop(&mut self) {
        self.unmap();
        if let Some(rq) = self.rq.take() {
            // A command dropped unanswered (queue teardown) must not hang its submitter.
            let _ = Request::end_err(rq, EIO);
        }
    }
}

// SAFETY: The header, range and status live in the request's private data, the data pages are
// the request's, mapped by `blk_rq_map_sg` into the request's own table (linear-map pages). All
// stay valid and in place until the request is ended, which needs the unique `ARef` the command
// owns: not before the command is finished or dropped, after the queue handed it back. Only
// data the device may read is reported readable (writes), only data it may write is reported
// writable (reads); Rust does not touch any of it meanwhile.
unsafe impl<T: Operations<RequestData = BlkPdu> + 'static> DeviceRequest for BlkCmd<T> {
    fn map(&mut self, sink: &mut SgSink) -> Result {
        let Some(rq) = self.rq.as_deref() else {
            return Err(EINVAL);
        };
        let pdu = rq.data();
        let len = rq.data_len() as usize;
        // SAFETY: See the `impl` comment; each pointer is to memory described there.
        unsafe {
            sink.segment(pdu.hdr.get().cast(), 16, false)?;
            match self.payload {
                Payload::DataOut if self.nsg > 0 => {
                    sink.list((*pdu.table.get()).sgl, len, false)?;
                }
                Payload::Ranges { .. } => match &self.ranges {
                    Some(v) => sink.segment(v.as_ptr().cast(), v.len() * 16, false)?,
                    None => sink.segment(pdu.range.get().cast(), 16, false)?,
                },
                _ => {}
            }
            if self.payload == Payload::DataIn && self.nsg > 0 {
                sink.list((*pdu.table.get()).sgl, len, true)?;
            }
            sink.segment(pdu.status.get().cast_const(), 1, true)?;
        }
        Ok(())
    }
}

/// The number of possible CPU ids (`nr_cpu_ids`): an upper bound for the number of queues worth
/// having.
pub fn nr_cpu_ids() -> u32 {
    // SAFETY: `nr_cpu_ids` is set during boot and never changes afterwards.
    unsafe { bindings::nr_cpu_ids }
}

/// Maps the data of `rq` into `table`, using the `INLINE_SG` entries at `first` first and
/// chaining a `GFP_ATOMIC` allocation for more, as `virtio_blk.c` does. Returns the number of
/// entries used (0 for no data); with entries, free them with `sg_free_table_chained`.
///
/// # Safety
///
/// The caller owns `rq`, and `table` and `first` (`INLINE_SG` entries) are its to fill.
unsafe fn map_sg(
    rq: *mut bindings::request,
    table: *mut bindings::sg_table,
    first: *mut bindings::scatterlist,
) -> Result<usize> {
    // SAFETY: By the safety requirements.
    unsafe {
        let segs = bindings::blk_rq_nr_phys_segments(rq);
        (*table).sgl = first;
        (*table).nents = 0;
        (*table).orig_nents = 0;
        if segs == 0 {
            return Ok(0);
        }
        if bindings::sg_alloc_table_chained(table, segs.into(), first, INLINE_SG as u32) != 0 {
            return Err(ENOMEM);
        }
        let n = bindings::blk_rq_map_sg((*rq).q, rq, (*table).sgl);
        if n <= 0 {
            bindings::sg_free_table_chained(table, INLINE_SG as u32);
            return Err(if n < 0 { Error::from_errno(n) } else { EINVAL });
        }
        Ok(n as usize)
    }
}
