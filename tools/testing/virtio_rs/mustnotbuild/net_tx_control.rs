// SPDX-License-Identifier: GPL-2.0

//! Must-not-build control for the transmit side of kernel::net: the driver the net_tx* cases break.
//!
//! Its transmit reports the packet to byte queue limits (BQL) with the queue's transmit lock
//! held, through the token `NetDevice::with_tx_lock` lends its closure, and reports it
//! completed at once.
//
// expect: builds

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    net::{
        dev::{NetDevice, Operations, Registration},
        skb::SkBuff,
    },
    virtio::{self, Device, Probe},
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "net_tx_control",
    author: "virtio-rs authors",
    description: "mustnotbuild: kernel::net transmit control",
    license: "GPL",
}

struct Nic;

#[vtable]
impl Operations for Nic {
    fn start_xmit(&self, dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff> {
        let len = skb.len() as u32;
        let more = dev.xmit_more();
        dev.with_tx_lock(|locked| {
            if locked.sent(len, more) {
                locked.completed(1, len);
            }
        });
        skb.consume();
        Ok(())
    }
}

#[pin_data]
struct Mnb {
    netdev: Registration<Nic>,
}

#[vtable]
impl virtio::Driver for Mnb {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::NET)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let reg = Registration::<Nic>::new(dev.as_dev(), |_ndev| Ok(Nic))?;
        Ok(try_pin_init!(Self { netdev: reg }? Error))
    }

    fn ready(&self, _dev: &Device) -> Result {
        self.netdev.register()
    }

    fn remove(&self, _dev: &Device) {
        self.netdev.unregister();
    }
}
