// SPDX-License-Identifier: GPL-2.0

//! The transmit side of `virtio_net_rs`: the send queue (`output.0`), as C's `start_xmit`,
//! `free_old_xmit` and `skb_xmit_done`.
//!
//! The header is pushed in front of the frame and the skb goes to the ring as one buffer. Sent
//! skbs are freed on the next transmit, or when the queue, stopped on a full ring, is woken by
//! the device's interrupt (C's `napi_tx=0` mode); so skbs are orphaned first, as C does then,
//! not to hold their sockets back.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    net::{
        dev::{LinkStats, NetDevice},
        skb::SkBuff,
    },
    net_virtio::{TxSkb, MAX_HDR_LEN},
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::Virtqueue,
};

/// The ring of the send queue.
struct TxQueue {
    vq: Virtqueue<TxSkb, ()>,
}

impl TxQueue {
    /// Frees the packets the device has sent.
    fn free_old(&mut self) {
        while let Some(used) = self.vq.get_buf() {
            used.readable.into_skb().consume();
        }
    }
}

/// The send queue and its counters.
#[pin_data]
pub(crate) struct SendQueue {
    #[pin]
    tx: SpinLockIrq<TxQueue>,
    hdr_len: usize,
    packets: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
}

impl SendQueue {
    /// The send queue on `vq`, with headers of `hdr_len` bytes.
    pub(crate) fn new(mut vq: Virtqueue<TxSkb, ()>, hdr_len: usize) -> impl PinInit<Self, Error> {
        // Sent packets are reclaimed on transmit; the interrupt is only for a full ring.
        vq.disable_cb();
        try_pin_init!(Self {
            tx <- new_spinlock_irq!(TxQueue { vq }, "virtio_net_rs_tx"),
            hdr_len,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }? Error)
    }

    /// Transmits `skb` (`ndo_start_xmit`).
    pub(crate) fn xmit(&self, dev: &NetDevice, mut skb: SkBuff) -> Result<(), SkBuff> {
        // Sent packets are freed late (on a later transmit): let their sockets go on now.
        skb.orphan();
        let hdr = [0u8; MAX_HDR_LEN];
        let mut tx = self.tx.lock();
        tx.free_old();
        match TxSkb::new(skb, &hdr[..self.hdr_len]) {
            Ok(pkt) => {
                let len = pkt.packet_len() as u64;
                match tx.vq.add(pkt, (), GFP_ATOMIC) {
                    Ok(()) => {
                        self.packets.fetch_add(1, Relaxed);
                        self.bytes.fetch_add(len, Relaxed);
                    }
                    // Dropping the error frees the packet.
                    Err(_) => {
                        self.dropped.fetch_add(1, Relaxed);
                    }
                }
            }
            Err(_skb) => {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
        if tx.vq.num_free() == 0 {
            // Full: stop until the device has sent most of it (then its interrupt wakes us).
            dev.stop_queue();
            if !tx.vq.enable_cb_delayed() {
                // It has sent some already.
                tx.vq.disable_cb();
                tx.free_old();
                if tx.vq.num_free() > 0 {
                    dev.start_queue();
                }
            }
        }
        tx.vq.kick();
        Ok(())
    }

    /// The queue's interrupt (C's `skb_xmit_done`): hard-IRQ context.
    pub(crate) fn interrupt(&self, dev: &NetDevice) {
        // Room in the ring again: the next transmit frees what was sent.
        self.tx.lock().vq.disable_cb();
        dev.wake_queue();
    }

    /// Adds the transmit counters to `stats`.
    pub(crate) fn stats(&self, stats: &mut LinkStats) {
        stats.tx_packets = self.packets.load(Relaxed);
        stats.tx_bytes = self.bytes.load(Relaxed);
        stats.tx_dropped = self.dropped.load(Relaxed);
    }
}
