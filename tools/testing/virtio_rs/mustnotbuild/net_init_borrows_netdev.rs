// SPDX-License-Identifier: GPL-2.0

//! Must not build: a net device initialiser that borrows the device being set up.
//!
//! `Registration::new` hands its closure a `&NetDevice` that is valid only
//! during the call; the initialiser the closure returns runs later and may not
//! capture it (`pin_init!` evaluates `<-` expressions lazily, inside the
//! initialiser). Build what needs the device first, as the control does.
//
// expect: lifetime may not live long enough

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
    name: "net_init_borrows_netdev",
    author: "virtio-rs authors",
    description: "mustnotbuild: initialiser borrows the net device",
    license: "GPL",
}

struct Rx;

impl Poll for Rx {
    fn poll(&self, mut napi: NapiPoll<'_>, budget: usize) -> usize {
        let Ok(skb) = napi.alloc_skb(64) else {
            return 0;
        };
        let _ = napi.gro_receive(skb);
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
        let reg = Registration::<Nic>::new(dev.as_dev(), |ndev| {
            // forbidden: the initialiser would keep the borrowed device
            Ok(try_pin_init!(Nic {
                rx <- {
                    ndev.start_queue();
                    Napi::new(Rx)
                }
            }? Error))
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
