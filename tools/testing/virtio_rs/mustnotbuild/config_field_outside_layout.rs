// SPDX-License-Identifier: GPL-2.0

//! Must not build: a config field outside its layout (invariant 9).
//!
//! A config field lies inside its layout, checked at compile time. This
//! driver builds a `Field` by hand, bypassing `config_field!`, for a `u64` at
//! byte 200 of `virtio_blk_config` (96 bytes), and reads it in probe. Even
//! with the `unsafe` that a hand-made field needs (see
//! `config_field_by_hand.rs`), `Field::new` asserts in a constant that the
//! field fits: no offset outside the layout ever reaches the transport.
//
// expect: a config field must lie inside its layout

use kernel::prelude::*;
use kernel::virtio::{
    self,
    config::{BlkConfig, Field},
    Device, Probe,
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "config_field_outside_layout",
    author: "virtio-rs authors",
    description: "mustnotbuild: a config field outside its layout",
    license: "GPL",
}

struct Mnb;

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        // SAFETY: Not true, on purpose: the offset is not `capacity`'s.
        let field = unsafe {
            // forbidden: a u64 at byte 200 of a 96-byte layout
            Field::<BlkConfig, u64, 200>::new(|c: BlkConfig| c.capacity)
        };
        let capacity = dev.read(field)?;
        pr_info!("capacity: {} sectors\n", capacity);
        Ok(Mnb)
    }
}
