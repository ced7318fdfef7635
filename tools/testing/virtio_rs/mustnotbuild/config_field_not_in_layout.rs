// SPDX-License-Identifier: GPL-2.0

//! Must not build: a config field that is not in the layout (invariant 9).
//!
//! Drivers name config fields; they never pass raw offsets. `config_field!`
//! takes the offset from `offset_of!` and the type from the field itself, so
//! a field that the layout does not have does not build.
//
// expect: E0609

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::virtio::{self, config::BlkConfig, config_field, Device, Probe};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "config_field_not_in_layout",
    author: "virtio-rs authors",
    description: "mustnotbuild: a config field that is not in the layout",
    license: "GPL",
}

struct Mnb;

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        // forbidden: virtio_blk_config has no such field
        let value = dev.read(config_field!(BlkConfig, no_such_field))?;
        pr_info!("value: {}\n", value);
        Ok(Mnb)
    }
}
