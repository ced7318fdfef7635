// SPDX-License-Identifier: GPL-2.0

//! Must not build: `Queues` kept past probe (invariants 3 and 7).
//!
//! The `Queues` that `find_vqs` returns borrow the probe `Device`: queues are
//! taken from it, typed, in probe, and it cannot outlive probe. This driver
//! keeps the whole `Queues` in its driver data, to take queues later.
//
// expect: lifetime may not live long enough

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    c_str,
    virtio::{self, Device, Probe, QueueSpec, Queues},
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "queues_in_driver_data",
    author: "virtio-rs authors",
    description: "mustnotbuild: Queues kept past probe",
    license: "GPL",
}

struct Mnb {
    queues: Queues<'static>,
}

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let queues = dev.find_vqs(&[QueueSpec::new(c_str!("req"))])?;
        // forbidden: the probe-only `Queues`, kept past probe
        Ok(Mnb { queues })
    }

    fn ready(&self, _dev: &Device) -> Result {
        pr_info!("{} queue(s)\n", self.queues.len());
        Ok(())
    }
}
