// SPDX-License-Identifier: GPL-2.0

//! Must not build: BQL accounting from another thread than the lock holder.
//!
//! The transmit lock belongs to the context that took it: the token of
//! `NetDevice::with_tx_lock` is not `Send`, so it cannot be handed to a work item or another
//! CPU that would update BQL's counters while the holder does too.
//
// expect: E0277

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    net::{
        dev::{NetDevice, Operations, Registration, TxLocked},
        skb::SkBuff,
    },
    virtio::{self, Device, Probe},
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "net_tx_locked_send",
    author: "virtio-rs authors",
    description: "mustnotbuild: BQL token sent to another thread",
    license: "GPL",
}

fn to_other_thread<T: Send>(_t: T) {}

struct Nic;

#[vtable]
impl Operations for Nic {
    fn start_xmit(&self, dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff> {
        let len = skb.len() as u32;
        let more = dev.xmit_more();
        dev.with_tx_lock(|locked: &TxLocked<'_>| {
            let _ = locked.sent(len, more);
            // forbidden: the token stays with the lock holder
            to_other_thread(locked);
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
