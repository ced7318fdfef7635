// SPDX-License-Identifier: GPL-2.0

//! Must not build: a virtqueue used from its callback without its lock (invariant 4).
//!
//! Queue callbacks run in hard-IRQ context with `&self`, concurrently with the
//! driver's other entry points. Ring operations need `&mut Virtqueue`, so a
//! queue that the callback uses sits behind an IRQ-safe lock (see the control
//! case). This driver keeps the queue bare in its driver data and calls
//! `get_buf` on it from the callback.
//
// expect: E0596

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    c_str,
    virtio::{self, Device, Probe, QueueSpec, Virtqueue},
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "virtqueue_without_lock",
    author: "virtio-rs authors",
    description: "mustnotbuild: a virtqueue used without its lock",
    license: "GPL",
}

type Buffer = KBox<[u8; 512]>;

struct Mnb {
    vq: Virtqueue<(), Buffer>,
}

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let mut queues = dev.find_vqs(&[QueueSpec::new(c_str!("req"))])?;
        Ok(Mnb {
            vq: queues.take(0)?,
        })
    }

    fn queue_event(&self, _queue: usize) {
        // forbidden: `get_buf` needs `&mut`, through `&self`
        while let Some(used) = self.vq.get_buf() {
            pr_info!("{} bytes back\n", used.len);
        }
    }
}
