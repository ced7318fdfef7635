// SPDX-License-Identifier: GPL-2.0

//! Must not build: `OwnedRequest::complete` in a driver without
//! `Operations::complete`.
//!
//! `complete` hands the request to `blk_mq_complete_request`, which calls
//! the driver's `->complete` to end it. Without one, blk-mq would call a
//! null pointer (or, had the abstraction kept its empty `->complete`, the
//! request would stay in flight for ever). The control case
//! (`blk_control`) is the same driver with its `complete`.
//
// expect: E0080

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    blk_virtio::{Command, CommandData, Payload},
    block::mq::{DeviceByte, Operations, OwnedRequest},
    spinlock_irq::SpinLockIrq,
    sync::{Arc, ArcBorrow},
    virtio::Virtqueue,
};

module! {
    type: Mnb,
    name: "blk_complete_without_callback",
    author: "virtio-rs authors",
    description: "mustnotbuild: complete() without Operations::complete",
    license: "GPL",
}

struct Mnb;

impl kernel::Module for Mnb {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Mnb)
    }
}

/// The queue data: one request virtqueue behind an IRQ-safe lock.
#[allow(dead_code)]
struct Queue {
    vq: SpinLockIrq<Option<Virtqueue<Command<Blk>>>>,
}

/// The per-request data: a header and a status byte for the device.
struct Pdu {
    hdr: [DeviceByte; 16],
    status: [DeviceByte; 1],
}

impl CommandData for Pdu {
    fn header(&self) -> &[DeviceByte] {
        &self.hdr
    }
    fn inline(&self) -> &[DeviceByte] {
        &[]
    }
    fn status(&self) -> &[DeviceByte] {
        &self.status
    }
}

/// The driver: a type only, never constructed.
#[allow(dead_code)]
struct Blk;

#[vtable]
impl Operations for Blk {
    type QueueData = Arc<Queue>;
    type RequestData = Pdu;

    fn new_request_data() -> impl PinInit<Pdu, Error> {
        Pdu {
            hdr: [const { DeviceByte::new(0) }; 16],
            status: [DeviceByte::new(0)],
        }
    }

    fn queue_rq(
        q: ArcBorrow<'_, Queue>,
        rq: OwnedRequest<Self>,
        _is_last: bool,
    ) -> Result<(), (Error, OwnedRequest<Self>)> {
        if rq.data_len() == 0 {
            // forbidden: blk-mq would call a `->complete` that the driver does not have
            rq.complete();
            return Ok(());
        }
        DeviceByte::set_all(&rq.data().hdr, &[4, 0, 0, 0]);
        let cmd = Command::new(rq, Payload::None)?;
        let mut guard = q.vq.lock();
        let Some(vq) = guard.as_mut() else {
            return Err((EBUSY, cmd.finish()));
        };
        match vq.add_request(cmd, GFP_ATOMIC) {
            Ok(()) => Ok(()),
            // Full ring or broken queue: the request goes back to blk-mq, unended.
            Err(e) => Err((e.error, e.readable.finish())),
        }
    }

    fn commit_rqs(_q: ArcBorrow<'_, Queue>, _hw_queue: u32) {}
}
