// SPDX-License-Identifier: GPL-2.0

//! Must not build: a config field made by hand, with an offset of its own (invariant 9).
//!
//! Safe code names config fields only through `config_field!`, which takes the
//! offset from `offset_of!`. Building a `Field` by hand, here a `u64` at byte 4
//! (inside the layout, but not where `capacity` is), needs `unsafe`.
//
// expect: E0133

use kernel::prelude::*;
use kernel::virtio::{
    self,
    config::{BlkConfig, Field},
    Device, Probe,
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "config_field_by_hand",
    author: "virtio-rs authors",
    description: "mustnotbuild: a config field made by hand",
    license: "GPL",
}

struct Mnb;

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        // forbidden: an offset that is not the field's
        let field = Field::<BlkConfig, u64, 4>::new(|c: BlkConfig| c.capacity);
        let capacity = dev.read(field)?;
        pr_info!("capacity: {} sectors\n", capacity);
        Ok(Mnb)
    }
}
