// SPDX-License-Identifier: GPL-2.0

//! Must not build: a NAPI context of a `NapiVec` kept past its net device.
//!
//! A `NapiVec` lends its contexts (`get`, indexing) and never gives one away:
//! the reference borrows the registration, which owns the device, so it cannot
//! be used once the registration is dropped (the contexts deleted, the device
//! freed).
//
// expect: E0505

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    net::{
        dev::{NetDevice, Operations, Registration},
        napi::{Napi, NapiPoll, NapiVec, Poll},
        skb::SkBuff,
    },
    virtio::{self, Device, Probe},
};

kernel::module_virtio_driver! {
    type: Mnb,
    name: "net_napi_vec_escapes",
    author: "virtio-rs authors",
    description: "mustnotbuild: a NapiVec context kept past its device",
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
    #[pin]
    more: NapiVec<Rx>,
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
        let reg = Registration::<Nic>::new_mq(dev.as_dev(), 3, 3, |_ndev| {
            Ok(try_pin_init!(Nic {
                rx <- Napi::new(Rx),
                more <- NapiVec::new(2, 64, |_| Ok(Rx)),
            }? Error))
        })?;
        let kept = reg.data().more.get(1);
        // forbidden: the registration (and the device) go while `kept` borrows them
        drop(reg);
        if let Some(napi) = kept {
            napi.schedule();
        }
        let reg = Registration::<Nic>::new(dev.as_dev(), |_ndev| {
            Ok(try_pin_init!(Nic {
                rx <- Napi::new(Rx),
                more <- NapiVec::new(2, 64, |_| Ok(Rx)),
            }? Error))
        })?;
        Ok(try_pin_init!(Self { netdev: reg }? Error))
    }

    fn ready(&self, _dev: &Device) -> Result {
        self.netdev.register()
    }

    fn queue_event(&self, queue: usize) {
        let nic = self.netdev.data();
        match queue.checked_sub(1) {
            None => nic.rx.schedule(),
            Some(i) => nic.more.get(i).map_or(false, |napi| napi.schedule()),
        };
    }

    fn remove(&self, _dev: &Device) {
        self.netdev.unregister();
    }
}
