// SPDX-License-Identifier: GPL-2.0

//! Must not build: a second owner of a request (invariant 8).
//!
//! A request has one owner in C; in 6.12's block::mq it was an
//! `ARef<Request>`, `Clone + Send`, so two commands could own, map and end one
//! request. The control case, with a second handle made from the
//! `OwnedRequest` in `queue_rq`: by `clone()`, which it does not have, or as
//! an `ARef<Request>`, which needs `Request: AlwaysRefCounted`, which it is
//! not.
//
// expect: E0599
// expect: E0277

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    blk_virtio::{Command, CommandData, Payload},
    block::mq::{DeviceByte, Operations, OwnedRequest, Request},
    spinlock_irq::SpinLockIrq,
    sync::{Arc, ArcBorrow},
    types::ARef,
    virtio::Virtqueue,
};

module! {
    type: Mnb,
    name: "blk_request_second_owner",
    author: "virtio-rs authors",
    description: "mustnotbuild: a second owner of a request",
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
        // forbidden: an owned request is not `Clone`
        let _second = rq.clone();
        // forbidden: nor reference-counted: no `ARef<Request>` to share it
        let _shared: ARef<Request<Self>> = ARef::from(&*rq);
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
