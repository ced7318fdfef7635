// SPDX-License-Identifier: GPL-2.0

//! Must not build: `?` on `add_request` in `queue_rq` (invariant 8).
//!
//! The control case, with the natural line `vq.add_request(cmd, GFP_ATOMIC)?`.
//! In 6.12's shape (`queue_rq` returning `Result`), the `?` dropped the
//! command on a full ring; dropping it ended the request with EIO, and blk-mq,
//! seeing the error, ended it a second time. Now `queue_rq` must give the
//! request back with its error, `Result<(), (Error, OwnedRequest)>`, and an
//! `AddError` that carries the command does not convert to that: the
//! double completion does not compile.
//
// expect: E0277

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
    name: "blk_queue_rq_question_mark",
    author: "virtio-rs authors",
    description: "mustnotbuild: ? on add_request in queue_rq",
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
        DeviceByte::set_all(&rq.data().hdr, &[4, 0, 0, 0]);
        let cmd = Command::new(rq, Payload::None)?;
        let mut guard = q.vq.lock();
        let Some(vq) = guard.as_mut() else {
            return Err((EBUSY, cmd.finish()));
        };
        // forbidden: `?` would drop the command and end the request that blk-mq ends again
        vq.add_request(cmd, GFP_ATOMIC)?;
        Ok(())
    }

    fn commit_rqs(_q: ArcBorrow<'_, Queue>, _hw_queue: u32) {}
}
