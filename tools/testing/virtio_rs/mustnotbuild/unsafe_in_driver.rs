// SPDX-License-Identifier: GPL-2.0

//! Must not build: `unsafe` in a driver ("zero unsafe in drivers/").
//!
//! Every case, and the control, is under `#![forbid(unsafe_code)]`; the
//! control builds, so nothing the API offers needs `unsafe`, and the module
//! macros do not trip the lint. This case proves that the lint is in force
//! for the driver's own code: one `unsafe` block does not build.
//
// expect: usage of an `unsafe` block

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::virtio::{self, Device, Probe};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "unsafe_in_driver",
    author: "virtio-rs authors",
    description: "mustnotbuild: unsafe in a driver",
    license: "GPL",
}

struct Mnb;

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        // forbidden: an `unsafe` block in a driver
        // SAFETY: None needed: reading a local `u32`.
        let id = unsafe { core::ptr::read(&dev.id()) };
        pr_info!("device id {}\n", id);
        Ok(Mnb)
    }
}
