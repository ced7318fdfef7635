// SPDX-License-Identifier: GPL-2.0

//! Must not build: a device reference kept in the driver data (invariant 7).
//!
//! The `&Device` a callback gets is good for that callback only. This probe
//! keeps it in the driver data, which outlives probe. rustc refuses it twice:
//! the borrow does not live long enough, and a `Device` is not `Sync`, so a
//! reference to it cannot sit in driver data that is `Send + Sync`. What a
//! driver keeps is a `DeviceHandle` (see the control case).
//
// expect: lifetime may not live long enough
// expect: cannot be shared between threads safely

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::virtio::{self, Device, Probe};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "device_ref_in_driver_data",
    author: "virtio-rs authors",
    description: "mustnotbuild: a device reference kept in the driver data",
    license: "GPL",
}

// forbidden: driver data that holds a device reference
struct Mnb {
    dev: &'static Device,
}

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        // forbidden: probe's `dev`, kept past probe
        Ok(Mnb { dev })
    }

    fn queue_event(&self, _queue: usize) {
        pr_info!("virtio{}: queue event\n", self.dev.index());
    }
}
