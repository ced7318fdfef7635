// SPDX-License-Identifier: GPL-2.0

//! Must not build: a device reference kept past `DeviceHandle::with` (invariant 7).
//!
//! `DeviceHandle::with` lends the device to a closure while the device is
//! live and bound. This driver smuggles the `&Device` out of the closure, to
//! use it when the device may be gone.
//
// expect: lifetime may not live long enough

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::virtio::{self, Device, DeviceHandle, Probe};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "device_ref_out_of_handle",
    author: "virtio-rs authors",
    description: "mustnotbuild: a device reference kept past DeviceHandle::with",
    license: "GPL",
}

struct Mnb {
    handle: DeviceHandle,
}

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        Ok(Mnb {
            handle: dev.handle()?,
        })
    }

    fn remove(&self, _dev: &Device) {
        // forbidden: the device, taken out of the closure
        if let Ok(dev) = self.handle.with(|dev| dev) {
            pr_info!("virtio{}: removed\n", dev.index());
        }
    }
}
