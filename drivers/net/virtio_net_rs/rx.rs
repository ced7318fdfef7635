// SPDX-License-Identifier: GPL-2.0

//! The receive side of `virtio_net_rs`: the receive queue, its buffers and its NAPI poll.

use super::BUF_LEN;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    net::{
        dev::NetDevice,
        napi::{NapiPoll, Poll},
        skb::ETH_HLEN,
    },
    net_virtio::RxSkb,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::Virtqueue,
};

/// The receive queue and its counters.
#[pin_data]
pub(crate) struct RxQueue {
    #[pin]
    pub(crate) vq: SpinLockIrq<Virtqueue<(), RxSkb>>,
    hdr_len: usize,
    pub(crate) packets: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) length_errors: AtomicU64,
}

/// Fills the free slots of `vq` with empty buffers; returns how many it added.
pub(crate) fn fill(
    vq: &mut Virtqueue<(), RxSkb>,
    dev: &NetDevice,
    gfp: kernel::alloc::Flags,
) -> usize {
    let mut added = 0;
    while vq.num_free() > 0 {
        let Ok(buf) = RxSkb::alloc(dev, BUF_LEN) else {
            break;
        };
        if vq.add((), buf, gfp).is_err() {
            break;
        }
        added += 1;
    }
    added
}

impl RxQueue {
    pub(crate) fn new(vq: Virtqueue<(), RxSkb>, hdr_len: usize) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            vq <- new_spinlock_irq!(vq, "virtio_net_rs_rx"),
            hdr_len,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            length_errors: AtomicU64::new(0),
        }? Error)
    }

    /// Hands the frame in `buf` (`len` bytes from the device, header included) to the stack.
    fn receive(&self, napi: &mut NapiPoll<'_>, buf: RxSkb, len: usize) {
        if len < self.hdr_len + ETH_HLEN {
            // As C: a length error, not a drop.
            self.length_errors.fetch_add(1, Relaxed);
            return;
        }
        let mut skb = buf.finish(len);
        if skb.pull(self.hdr_len).is_err() {
            self.length_errors.fetch_add(1, Relaxed);
            return;
        }
        let bytes = skb.len() as u64;
        skb.record_rx_queue(0);
        if napi.gro_receive(skb).is_ok() {
            self.packets.fetch_add(1, Relaxed);
            self.bytes.fetch_add(bytes, Relaxed);
        } else {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

impl Poll for RxQueue {
    fn poll(&self, mut napi: NapiPoll<'_>, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            // Not under the lock while the stack runs: take one buffer at a time.
            let Some(used) = self.vq.lock().get_buf() else {
                break;
            };
            done += 1;
            self.receive(&mut napi, used.writable, used.len);
        }
        {
            let mut vq = self.vq.lock();
            if fill(&mut vq, napi.dev(), GFP_ATOMIC) > 0 {
                vq.kick();
            }
        }
        if let Some(completed) = napi.complete_done(done) {
            let mut vq = self.vq.lock();
            if !vq.enable_cb() {
                // Buffers came back meanwhile: poll again, without interrupts.
                vq.disable_cb();
                drop(vq);
                completed.reschedule();
            }
        }
        done
    }
}
