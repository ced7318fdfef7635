// SPDX-License-Identifier: GPL-2.0

//! Must not build: an skb used after it was handed to the stack.
//!
//! `NapiPoll::gro_receive` takes the `SkBuff` by value: from then on the stack
//! owns it (and may have freed it already). Reading its length afterwards is a
//! use after free in C; here the handle is gone.
//
// expect: E0382

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    net::{
        dev::{NetDevice, Operations, Registration},
        napi::{Napi, NapiPoll, Poll},
        skb::SkBuff,
    },
    virtio::{self, Device, Probe},
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "net_skb_after_gro",
    author: "virtio-rs authors",
    description: "mustnotbuild: skb used after gro_receive",
    license: "GPL",
}

struct Rx;

impl Poll for Rx {
    fn poll(&self, mut napi: NapiPoll<'_>, budget: usize) -> usize {
        let Ok(skb) = napi.alloc_skb(64) else {
            return 0;
        };
        let _ = napi.gro_receive(skb);
        // forbidden: the skb belongs to the stack now
        let _ = skb.len();
        if let Some(done) = napi.complete_done(1) {
            done.reschedule();
        }
        budget.min(1)
    }
}

#[pin_data]
struct Nic {
    #[pin]
    rx: Napi<Rx>,
}

#[vtable]
impl Operations for Nic {
    fn start_xmit(&self, _dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff> {
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
        let reg = Registration::<Nic>::new(dev.as_dev(), |_ndev| {
            Ok(try_pin_init!(Nic { rx <- Napi::new(Rx) }? Error))
        })?;
        Ok(try_pin_init!(Self { netdev: reg }? Error))
    }

    fn ready(&self, _dev: &Device) -> Result {
        self.netdev.register()
    }

    fn queue_event(&self, _queue: usize) {
        self.netdev.data().rx.schedule();
    }

    fn remove(&self, _dev: &Device) {
        self.netdev.unregister();
    }
}
