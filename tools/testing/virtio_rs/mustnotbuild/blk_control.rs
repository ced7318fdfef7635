// SPDX-License-Identifier: GPL-2.0

//! Must-not-build control for block::mq: the blk-mq driver that
//! `blk_queue_rq_question_mark`, `blk_request_second_owner` and
//! `blk_complete_without_callback` break, built whole.
//!
//! Its `queue_rq` turns the request it owns into a virtio-blk command, moves
//! that into a virtqueue, and on every error path hands the request back to
//! blk-mq unended (blk-mq then requeues or ends it, once); an empty request
//! goes through `blk_mq_complete_request` to its `complete`, all under
//! `#![forbid(unsafe_code)]`. If this does not build, the other results are
//! void: the setup is broken, not the API.
//
// expect: builds

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
    name: "blk_control",
    author: "virtio-rs authors",
    description: "mustnotbuild: block::mq control",
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

    fn complete(_q: ArcBorrow<'_, Queue>, rq: OwnedRequest<Self>) {
        rq.end_ok();
    }
}
