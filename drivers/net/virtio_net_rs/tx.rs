// SPDX-License-Identifier: GPL-2.0

//! The transmit side of `virtio_net_rs`: the send queue (`output.0`), as C's `start_xmit`,
//! `xmit_skb`, `free_old_xmit`, `check_sq_full_and_disable` and `skb_xmit_done`.
//!
//! Each packet goes to the ring as one request of several segments: the virtio-net header,
//! which describes its offloads (checksum, TSO: the device finishes the packet), then its
//! linear part and its paged fragments as they are ([`TxSkb`]).
//!
//! Sent skbs are freed on the next transmit, or when the queue, stopped on a nearly full ring,
//! is woken by the device's interrupt (C's `napi_tx=0` mode); so skbs let go of their socket,
//! route and user pages before they go to the device, as C does then. The stack tells the driver
//! when more packets follow (`xmit_more`): the device is notified once for the batch.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    net::{
        dev::{LinkStats, NetDevice},
        skb::SkBuff,
    },
    net_virtio::TxSkb,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::Virtqueue,
};

/// The ring room a packet may need at most, as C (`2 + MAX_SKB_FRAGS`): below this, the queue
/// stops.
const ROOM: usize = 2 + kernel::bindings::MAX_SKB_FRAGS as usize;

/// The ring of the send queue.
struct TxQueue {
    vq: Virtqueue<TxSkb, ()>,
}

/// The send queue and its counters.
#[pin_data]
pub(crate) struct SendQueue {
    #[pin]
    tx: SpinLockIrq<TxQueue>,
    hdr_len: usize,
    little_endian: bool,
    /// Packets and bytes the device has sent (counted when they come back, as C).
    packets: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
}

impl SendQueue {
    /// The send queue on `vq`, with headers of `hdr_len` bytes in the device's byte order
    /// (`little_endian`).
    pub(crate) fn new(
        mut vq: Virtqueue<TxSkb, ()>,
        hdr_len: usize,
        little_endian: bool,
    ) -> impl PinInit<Self, Error> {
        // Sent packets are reclaimed on transmit; the interrupt is only for a full ring.
        vq.disable_cb();
        try_pin_init!(Self {
            tx <- new_spinlock_irq!(TxQueue { vq }, "virtio_net_rs_tx"),
            hdr_len,
            little_endian,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }? Error)
    }

    /// Frees the packets the device has sent, and counts them.
    fn free_old(&self, tx: &mut TxQueue) {
        let (mut packets, mut bytes) = (0u64, 0u64);
        while let Some(used) = tx.vq.get_buf() {
            let skb = used.readable.into_skb();
            packets += 1;
            bytes += skb.len() as u64;
            skb.consume();
        }
        if packets > 0 {
            self.packets.fetch_add(packets, Relaxed);
            self.bytes.fetch_add(bytes, Relaxed);
        }
    }

    /// Adds `skb` to the ring; `false` if it was dropped instead.
    fn add(&self, tx: &mut TxQueue, mut skb: SkBuff) -> bool {
        // Zero-copy pages go back to their owner now, not when the skb is freed (late).
        if skb.orphan_frags().is_err() {
            return false;
        }
        skb.tx_timestamp();
        // Sent packets are freed late (on a later transmit): let their socket go on now.
        skb.release_for_late_free();
        match TxSkb::new(skb, self.hdr_len, self.little_endian) {
            // Dropping the error frees the packet.
            Ok(pkt) => tx.vq.add(pkt, (), GFP_ATOMIC).is_ok(),
            Err(_) => false,
        }
    }

    /// Transmits `skb` (`ndo_start_xmit`).
    pub(crate) fn xmit(&self, dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff> {
        let more = dev.xmit_more();
        let mut tx = self.tx.lock();
        self.free_old(&mut tx);
        if !self.add(&mut tx, skb) {
            self.dropped.fetch_add(1, Relaxed);
        }
        if tx.vq.num_free() < ROOM {
            // Nearly full: stop until the device has sent most of it (then its interrupt wakes
            // us).
            dev.stop_queue();
            if !tx.vq.enable_cb_delayed() {
                // It has sent some already.
                self.free_old(&mut tx);
                if tx.vq.num_free() >= ROOM {
                    dev.start_queue();
                    tx.vq.disable_cb();
                }
            }
        }
        // Notify once per batch: on the last packet, or when nothing follows soon.
        if !more || dev.xmit_stopped() {
            tx.vq.kick();
        }
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
