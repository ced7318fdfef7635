// SPDX-License-Identifier: GPL-2.0

//! The transmit side of `virtio_net_rs`: the send queue (`output.0`), as C's `start_xmit`,
//! `xmit_skb`, `free_old_xmit`, `check_sq_full_and_disable`, `skb_xmit_done` and
//! `virtnet_poll_tx`.
//!
//! Each packet goes to the ring as one request of several segments: the virtio-net header,
//! which describes its offloads (checksum, TSO: the device finishes the packet), then its
//! linear part and its paged fragments as they are ([`TxSkb`]). The stack tells the driver when
//! more packets follow (`xmit_more`): the device is notified once for the batch.
//!
//! Sent packets are freed in one of two ways, chosen by the `napi_tx` module parameter:
//!
//! - **NAPI** (the default, as C): the queue's interrupt schedules a NAPI poll that frees
//!   them and wakes the queue; transmit frees what it finds too. Byte queue limits (BQL) see
//!   every packet sent and completed, under the queue's transmit lock.
//! - **Orphans** (`napi_tx=0`): the interrupt stays off, except to wake a queue stopped on a
//!   nearly full ring; sent packets are freed on the next transmit. Since that may be late,
//!   skbs let go of their socket, route and user pages before they go to the device.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    net::{
        dev::{LinkStats, NetDevice, NetdevQueue, TxLocked},
        napi::{Napi, NapiPoll, Poll},
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

/// The send queue and its counters, polled by its NAPI context in `napi_tx` mode.
#[pin_data]
pub(crate) struct SendQueue {
    #[pin]
    tx: SpinLockIrq<TxQueue>,
    hdr_len: usize,
    little_endian: bool,
    /// The device takes the header and the frame in one buffer: the header goes before the
    /// data where it can (C's `any_header_sg`).
    any_layout: bool,
    /// `napi_tx`: completions in NAPI, with BQL; else orphaned skbs, freed late.
    napi: bool,
    /// The queue's number: `output.N`, and the net device's transmit queue N.
    pub(crate) index: u16,
    /// Notifications sent to the device (C's `kicks`, for `ethtool -S`).
    pub(crate) kicks: AtomicU64,
    /// Packets and bytes the device has sent (counted when they come back, as C).
    packets: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    /// Transmit watchdog timeouts.
    timeouts: AtomicU64,
}

impl SendQueue {
    /// The send queue on `vq`, the net device's transmit queue `index`, with headers of
    /// `hdr_len` bytes in the device's byte order (`little_endian`), in the same buffer as the
    /// frame if the device allows (`any_layout`); `napi` for `napi_tx` mode.
    pub(crate) fn new(
        mut vq: Virtqueue<TxSkb, ()>,
        hdr_len: usize,
        little_endian: bool,
        any_layout: bool,
        napi: bool,
        index: u16,
    ) -> impl PinInit<Self, Error> {
        if !napi {
            // Sent packets are reclaimed on transmit; the interrupt is only for a full ring.
            vq.disable_cb();
        }
        try_pin_init!(Self {
            tx <- new_spinlock_irq!(TxQueue { vq }, "virtio_net_rs_tx"),
            hdr_len,
            little_endian,
            any_layout,
            napi,
            index,
            kicks: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        }? Error)
    }

    /// Frees the packets the device has sent, and counts them (for BQL too, in NAPI mode).
    fn free_old(&self, tx: &mut TxQueue, locked: &TxLocked<'_>) {
        let (mut packets, mut bytes) = (0u64, 0u64);
        while let Some(used) = tx.vq.get_buf() {
            let skb = used.readable.into_skb();
            packets += 1;
            bytes += skb.len() as u64;
            skb.consume();
        }
        if packets == 0 {
            return;
        }
        self.packets.fetch_add(packets, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        if self.napi {
            // At most a ring of packets of 64 KiB: no overflow.
            locked.completed(packets as u32, bytes as u32);
        }
    }

    /// Adds `skb` to the ring; its length, or `None` if it was dropped instead.
    fn add(&self, tx: &mut TxQueue, mut skb: SkBuff) -> Option<u32> {
        // Orphans: zero-copy pages go back to their owner now, not when the skb is freed.
        if !self.napi && skb.orphan_frags().is_err() {
            return None;
        }
        skb.tx_timestamp();
        if !self.napi {
            // Freed late (on a later transmit): let their socket go on now.
            skb.release_for_late_free();
        }
        // Dropping an error frees the packet.
        let pkt = TxSkb::new(skb, self.hdr_len, self.little_endian, self.any_layout).ok()?;
        let len = pkt.packet_len() as u32;
        tx.vq.add(pkt, (), GFP_ATOMIC).ok().map(|()| len)
    }

    /// The net device's transmit queue this send queue feeds.
    fn queue<'a>(&self, dev: &'a NetDevice) -> Option<&'a NetdevQueue> {
        dev.tx_queue(u32::from(self.index))
    }

    /// Transmits `skb` (`ndo_start_xmit`) on the send queue of `napi`, the one the stack chose
    /// for it.
    pub(crate) fn xmit(napi: &Napi<Self>, dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff> {
        let this = napi.data();
        let more = dev.xmit_more();
        let Some(txq) = this.queue(dev) else {
            // Not one of the device's queues: cannot happen (one send queue per queue).
            this.dropped.fetch_add(1, Relaxed);
            return Ok(());
        };
        // In `start_xmit`, the transmit lock is held already: this does not take it.
        txq.with_tx_lock(|locked| {
            let mut tx = this.tx.lock();
            // Free what was sent; in NAPI mode, re-arm the interrupt at the end of a batch.
            loop {
                if this.napi {
                    tx.vq.disable_cb();
                }
                this.free_old(&mut tx, locked);
                if !this.napi || more || tx.vq.enable_cb_delayed() {
                    break;
                }
            }
            let sent = this.add(&mut tx, skb);
            if sent.is_none() {
                this.dropped.fetch_add(1, Relaxed);
            }
            if tx.vq.num_free() < ROOM {
                // Nearly full: stop until the device has sent most of it (then its interrupt
                // wakes us).
                txq.stop();
                if !tx.vq.enable_cb_delayed() {
                    // It has sent some already.
                    if this.napi {
                        tx.vq.disable_cb();
                        napi.schedule();
                    } else {
                        this.free_old(&mut tx, locked);
                        if tx.vq.num_free() >= ROOM {
                            txq.start();
                            tx.vq.disable_cb();
                        }
                    }
                }
            }
            // Notify once per batch: on the last packet, or when the queue stopped.
            let kick = match sent {
                Some(len) if this.napi => locked.sent(len, more),
                _ => !more || txq.xmit_stopped(),
            };
            if kick && tx.vq.kick_prepare() && tx.vq.notify() {
                this.kicks.fetch_add(1, Relaxed);
            }
        });
        Ok(())
    }

    /// The queue's interrupt (C's `skb_xmit_done`): hard-IRQ context.
    pub(crate) fn interrupt(napi: &Napi<Self>, dev: &NetDevice) {
        let this = napi.data();
        this.tx.lock().vq.disable_cb();
        if this.napi {
            // The poll frees what was sent, and re-arms the interrupt.
            napi.schedule();
        } else if let Some(txq) = this.queue(dev) {
            // Room in the ring again: the next transmit frees what was sent.
            txq.wake();
        }
    }

    /// Brings the queue up (`ndo_open`): in NAPI mode, enables the poll and runs it once for
    /// what completed while the device was down.
    pub(crate) fn open(napi: &Napi<Self>) {
        if napi.data().napi {
            napi.enable();
            napi.schedule();
        }
    }

    /// Brings the queue down (`ndo_stop`): in NAPI mode, waits for the poll and disables it.
    pub(crate) fn stop(napi: &Napi<Self>) {
        if napi.data().napi {
            napi.disable();
        }
    }

    /// The transmit watchdog fired on queue `queue` (C's `virtnet_tx_timeout`): counts and
    /// reports it; the device is left as it is.
    pub(crate) fn timeout(&self, dev: &NetDevice, queue: u32) {
        self.timeouts.fetch_add(1, Relaxed);
        let vq = self.tx.lock().vq.index();
        let stalled = dev.tx_queue(queue).map_or(0, |q| q.tx_stalled_usecs());
        pr_err!(
            "{}: TX timeout on queue: {}, sq: output.{}, vq: 0x{:x}, name: output.{}, {} usecs ago\n",
            dev.name(),
            queue,
            queue,
            vq,
            queue,
            stalled
        );
    }

    /// Takes `vq`, found again after a freeze, in place of the old ring (revoked, reset): the
    /// packets still in it are freed, and forgotten by BQL, as C's `remove_vq_common`.
    pub(crate) fn restore(&self, dev: &NetDevice, mut vq: Virtqueue<TxSkb, ()>) {
        if !self.napi {
            vq.disable_cb();
        }
        let old = core::mem::replace(&mut self.tx.lock().vq, vq);
        drop(old);
        if let Some(txq) = self.queue(dev) {
            txq.with_tx_lock(|locked| locked.reset());
        }
    }

    /// The ring's largest and current size (`ethtool -g`).
    pub(crate) fn ring_sizes(&self) -> (usize, usize) {
        let tx = self.tx.lock();
        (tx.vq.max_size(), tx.vq.size())
    }

    /// Adds the transmit counters to `stats`.
    pub(crate) fn stats(&self, stats: &mut LinkStats) {
        stats.tx_packets += self.packets.load(Relaxed);
        stats.tx_bytes += self.bytes.load(Relaxed);
        stats.tx_dropped += self.dropped.load(Relaxed);
    }

    /// Transmit watchdog timeouts (C's `tx_timeouts`, for `ethtool -S`).
    pub(crate) fn timeouts(&self) -> u64 {
        self.timeouts.load(Relaxed)
    }
}

/// C's `virtnet_poll_tx`: frees what was sent, wakes the queue if there is room, re-arms the
/// interrupt. Does not count against the budget, as C.
impl Poll for SendQueue {
    fn poll(&self, napi: NapiPoll<'_>, _budget: usize) -> usize {
        if let Some(txq) = self.queue(napi.dev()) {
            txq.with_tx_lock(|locked| {
                let mut tx = self.tx.lock();
                tx.vq.disable_cb();
                self.free_old(&mut tx, locked);
                if tx.vq.num_free() >= ROOM {
                    txq.wake();
                }
            });
        }
        // Re-armed once the poll is complete.
        if let Some(completed) = napi.complete_done(0) {
            let mut tx = self.tx.lock();
            if !tx.vq.enable_cb() {
                // More came back meanwhile: poll again, without interrupts.
                tx.vq.disable_cb();
                drop(tx);
                completed.reschedule();
            }
        }
        0
    }
}
