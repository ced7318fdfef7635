// SPDX-License-Identifier: GPL-2.0

//! Must-not-build control: the driver the other cases break, built whole.
//!
//! A minimal virtio-blk driver that does, the allowed way, everything the
//! other cases get wrong: it reads a config field that lies in its layout in
//! probe, takes its queue and keeps it behind an IRQ-safe lock, keeps a
//! `DeviceHandle` (not a `&Device`) for later, and reads config space only in
//! process context, all under `#![forbid(unsafe_code)]` (no `unsafe` needed).
//! If this does not build, the other results are void: the setup is broken,
//! not the API.
//
// expect: builds

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    c_str,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::{
        self, config::BlkConfig, config_field, Atomic, Device, DeviceHandle, Probe, QueueSpec,
        Virtqueue,
    },
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "control",
    author: "virtio-rs authors",
    description: "mustnotbuild: the control case",
    license: "GPL",
}

type Buffer = KBox<[u8; 512]>;

#[pin_data]
struct Mnb {
    handle: DeviceHandle,
    #[pin]
    vq: SpinLockIrq<Virtqueue<(), Buffer>>,
}

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let capacity = dev.read(config_field!(BlkConfig, capacity))?;
        pr_info!("capacity: {} sectors\n", capacity);
        let mut queues = dev.find_vqs(&[QueueSpec::new(c_str!("req"))])?;
        let vq = queues.take::<(), Buffer>(0)?;
        Ok(try_pin_init!(Self {
            handle: dev.handle()?,
            vq <- new_spinlock_irq!(vq),
        }))
    }

    fn queue_event(&self, _queue: usize) {
        let mut vq = self.vq.lock();
        while let Some(used) = vq.get_buf() {
            pr_info!("{} bytes back\n", used.len);
        }
    }

    fn config_changed(&self, dev: &Device<Atomic>) {
        pr_info!("virtio{}: config changed\n", dev.index());
    }

    fn config_work(&self, dev: &Device) {
        if let Ok(capacity) = dev.read(config_field!(BlkConfig, capacity)) {
            pr_info!("capacity: {} sectors\n", capacity);
        }
    }

    fn remove(&self, _dev: &Device) {
        if let Ok(index) = self.handle.with(|dev| dev.index()) {
            pr_info!("virtio{}: removed\n", index);
        }
    }
}
