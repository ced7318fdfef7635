// SPDX-License-Identifier: GPL-2.0

//! Must not build: a config-space read in atomic context (invariant 4).
//!
//! Config-space access may sleep, and `config_changed` runs in atomic
//! context. Its device is a `Device<Atomic>`, with identity and features but
//! no config access; `config_work`, in process context, gets a `Device` that
//! can read (see the control case). This driver reads config space in
//! `config_changed`.
//
// expect: E0599

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::virtio::{self, config::BlkConfig, config_field, Atomic, Device, Probe};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "config_read_in_atomic",
    author: "virtio-rs authors",
    description: "mustnotbuild: a config read in atomic context",
    license: "GPL",
}

struct Mnb;

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(_dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        Ok(Mnb)
    }

    fn config_changed(&self, dev: &Device<Atomic>) {
        // forbidden: a config read in atomic context
        let capacity: Result<u64> = dev.read(config_field!(BlkConfig, capacity));
        pr_info!("capacity: {:?}\n", capacity);
    }
}
