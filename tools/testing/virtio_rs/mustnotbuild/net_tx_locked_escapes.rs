// SPDX-License-Identifier: GPL-2.0

//! Must not build: BQL accounting after the transmit lock is released.
//!
//! BQL's counters may only change with the queue's transmit lock held. The token that allows
//! it is lent to the closure of `NetDevice::with_tx_lock`, which holds the lock meanwhile: it
//! cannot be kept for later, when the lock is gone.
//
// expect: E0521

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
    name: "net_tx_locked_escapes",
    author: "virtio-rs authors",
    description: "mustnotbuild: BQL token kept past the lock",
    license: "GPL",
}

struct Nic;

#[vtable]
impl Operations for Nic {
    fn start_xmit(&self, dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff> {
        let len = skb.len() as u32;
        let more = dev.xmit_more();
        let mut kept = None;
        dev.with_tx_lock(|locked| {
            // forbidden: the token must not outlive the lock
            kept = Some(locked);
        });
        if let Some(locked) = kept {
            locked.completed(1, len);
        }
        let _ = more;
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
