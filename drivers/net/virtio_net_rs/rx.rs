// SPDX-License-Identifier: GPL-2.0

//! The receive side of `virtio_net_rs`: the receive queue, its buffers and its NAPI poll.
//!
//! The queue's buffers are of one of three kinds, chosen at probe as C chooses them
//! (`virtnet_probe`):
//!
//! - **mergeable buffers** (`VIRTIO_NET_F_MRG_RXBUF`): page fragments of [`Mode::Mergeable`]'s
//!   length. A packet spans `num_buffers` of them (from its header). As C's `page_to_skb`:
//!   if the first one's frame is longer than [`GOOD_COPY_LEN`] and the buffer has room for
//!   the skb's shared info after it, the skb is built on that buffer (`build_skb()`, no
//!   copy); else the frame starts a new skb (copied into its head if small, else from the
//!   Ethernet header on). The other buffers are attached as fragments. As C, new buffers are
//!   sized by an average of the packet lengths (EWMA, weight 1/64), between a full frame and
//!   a page. C also gives the last buffer of each 32 KiB page-fragment page the rest of that
//!   page; here every buffer has the size the average gives.
//! - **big packets** (without mergeable buffers, when the device may send guest GSO packets or
//!   the MTU is above 1500): a chain of pages per buffer (`frags + 1` pages), as C's
//!   `add_recvbuf_big`; as C's `page_to_skb`, a frame longer than [`GOOD_COPY_LEN`] that
//!   leaves room for the skb's shared info in the first page gets its skb built on that page
//!   (`build_skb()`), else the pages the packet reaches become its fragments.
//! - **small buffers** (otherwise): a page fragment per buffer, as C's `add_recvbuf_small`:
//!   headroom, room for the header and a 1518-byte frame (all the device may write), and room
//!   for an skb's shared info, so that the skb is built on the buffer (`build_skb()`, no
//!   copy), as C's `receive_small`.
//!
//! Every packet's virtio-net header then goes to the skb (checksum state, GSO type and size);
//! a header that does not match the packet is a frame error. A device that lies about
//! lengths is caught by the queue (which clamps the used length) and here, as in C: a packet
//! shorter than a header and an Ethernet header, or whose `num_buffers` asks for buffers the
//! queue does not have, is a length error and is dropped; one whose buffer the device says it
//! filled beyond its size (the queue's `device_len`) is dropped, and counted a length error
//! too in small and mergeable buffers (C counts none for big packets).

use super::GOOD_PACKET_LEN;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use kernel::{
    alloc::Flags,
    net::{
        dev::{Features, LinkStats, NetDevice},
        napi::{Napi, NapiPoll, Poll},
        skb::{SkBuff, ETH_HLEN, L1_CACHE_BYTES, NET_IP_ALIGN, SHINFO_SIZE},
    },
    net_virtio::{RxFrag, RxHdr, RxPacket, RxPages, RxSmall, GOOD_COPY_LEN, PADDED_HDR_LEN},
    page::PAGE_SIZE,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::{Affinity, Queues, Virtqueue},
};

/// How the receive buffers are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Small buffers: a page fragment each, with room for a header and [`GOOD_PACKET_LEN`]
    /// bytes, and for an skb built on it.
    Small,
    /// Mergeable buffers: page fragments sized from the average packet length, and at least
    /// `min_len` bytes for the frame (C's `min_buf_len`).
    Mergeable { min_len: usize },
    /// Big packets: `frags + 1` pages per buffer.
    Big { frags: usize },
}

impl Mode {
    /// Mergeable buffers with C's `mergeable_min_buf_len` as their floor: a full Ethernet
    /// frame, or more if the largest packet would not fit in a ring of `ring_size` buffers.
    pub(crate) fn mergeable(hdr_len: usize, ring_size: usize, largest: usize) -> Self {
        let per_buf = (hdr_len + ETH_HLEN + 4 + largest).div_ceil(ring_size.max(1));
        Mode::Mergeable {
            min_len: per_buf.saturating_sub(hdr_len).max(GOOD_PACKET_LEN),
        }
    }
}

/// The average length of the packets received in mergeable buffers, as C's
/// `DECLARE_EWMA(pkt_len, 0, 64)`: each new length weighs 1/64. Updated in the poll, read at
/// refill (which may run elsewhere: a racy read is fine, as in C).
struct AvgPktLen(AtomicUsize);

impl AvgPktLen {
    const WEIGHT_SHIFT: u32 = 6;

    fn add(&self, len: usize) {
        let avg = self.0.load(Relaxed);
        let next = if avg == 0 {
            len
        } else {
            ((avg << Self::WEIGHT_SHIFT) - avg + len) >> Self::WEIGHT_SHIFT
        };
        self.0.store(next, Relaxed);
    }

    /// C's `get_mergeable_buf_len` (without XDP headroom): header and the average packet
    /// length, at least `min_len` and at most what a page holds after the header, rounded up
    /// to a cache line.
    fn buf_len(&self, hdr_len: usize, min_len: usize) -> usize {
        let frame = self.0.load(Relaxed).max(min_len).min(PAGE_SIZE - hdr_len);
        (hdr_len + frame)
            .next_multiple_of(L1_CACHE_BYTES)
            .min(PAGE_SIZE)
    }
}

/// The receive ring, with the buffers of its mode.
pub(crate) enum Ring {
    Small(Virtqueue<(), RxSmall>),
    Mergeable(Virtqueue<(), RxFrag>),
    Big(Virtqueue<RxPages, ()>),
}

/// A buffer the device filled, the length it wrote, and whether the device said it wrote more
/// than the buffer holds (the queue then clamped the length; C drops such a packet).
enum Filled {
    Small(RxSmall, usize, bool),
    Mergeable(RxFrag, usize, bool),
    Big(RxPages, usize, bool),
}

impl Ring {
    /// Takes the receive queue `index` of `queues` and chooses its buffers, as C's probe:
    /// mergeable buffers if `mergeable`, else big packets of `big` fragments if that is
    /// `Some`, else small buffers. `largest` is the longest packet the device may send, which
    /// sizes mergeable buffers.
    pub(crate) fn take(
        queues: &mut Queues<'_>,
        index: usize,
        hdr_len: usize,
        mergeable: bool,
        big: Option<usize>,
        largest: usize,
    ) -> Result<(Self, Mode)> {
        Ok(if mergeable {
            let q: Virtqueue<(), RxFrag> = queues.take(index)?;
            let mode = Mode::mergeable(hdr_len, q.size(), largest);
            (Ring::Mergeable(q), mode)
        } else if let Some(frags) = big {
            (Ring::Big(queues.take(index)?), Mode::Big { frags })
        } else {
            (Ring::Small(queues.take(index)?), Mode::Small)
        })
    }

    fn num_free(&self) -> usize {
        match self {
            Ring::Small(q) => q.num_free(),
            Ring::Mergeable(q) => q.num_free(),
            Ring::Big(q) => q.num_free(),
        }
    }

    pub(crate) fn size(&self) -> usize {
        match self {
            Ring::Small(q) => q.size(),
            Ring::Mergeable(q) => q.size(),
            Ring::Big(q) => q.size(),
        }
    }

    /// The largest ring size the device allows (`num_max`), for ethtool.
    pub(crate) fn max_size(&self) -> usize {
        match self {
            Ring::Small(q) => q.max_size(),
            Ring::Mergeable(q) => q.max_size(),
            Ring::Big(q) => q.max_size(),
        }
    }

    /// Notifies the device if it needs it; whether a notification was sent (C counts those as
    /// `kicks`).
    pub(crate) fn kick(&mut self) -> bool {
        match self {
            Ring::Small(q) => q.kick_prepare() && q.notify(),
            Ring::Mergeable(q) => q.kick_prepare() && q.notify(),
            Ring::Big(q) => q.kick_prepare() && q.notify(),
        }
    }

    /// The handle that sets where the ring's interrupt goes.
    pub(crate) fn affinity(&self) -> Affinity {
        match self {
            Ring::Small(q) => q.affinity(),
            Ring::Mergeable(q) => q.affinity(),
            Ring::Big(q) => q.affinity(),
        }
    }

    pub(crate) fn disable_cb(&mut self) {
        match self {
            Ring::Small(q) => q.disable_cb(),
            Ring::Mergeable(q) => q.disable_cb(),
            Ring::Big(q) => q.disable_cb(),
        }
    }

    fn enable_cb(&mut self) -> bool {
        match self {
            Ring::Small(q) => q.enable_cb(),
            Ring::Mergeable(q) => q.enable_cb(),
            Ring::Big(q) => q.enable_cb(),
        }
    }

    fn get(&mut self) -> Option<Filled> {
        match self {
            Ring::Small(q) => q
                .get_buf()
                .map(|u| Filled::Small(u.writable, u.len, u.device_len > u.len)),
            Ring::Mergeable(q) => q
                .get_buf()
                .map(|u| Filled::Mergeable(u.writable, u.len, u.device_len > u.len)),
            Ring::Big(q) => q
                .get_buf()
                .map(|u| Filled::Big(u.readable, u.len, u.device_len > u.len)),
        }
    }

    /// Adds an empty buffer. `ENOSPC` if the ring is full.
    fn add(&mut self, buf: Empty) -> Result {
        match (self, buf) {
            (Ring::Small(q), Empty::Small(buf)) => q.add((), buf, GFP_ATOMIC)?,
            (Ring::Mergeable(q), Empty::Mergeable(buf)) => q.add((), buf, GFP_ATOMIC)?,
            (Ring::Big(q), Empty::Big(buf)) => q.add_request(buf, GFP_ATOMIC)?,
            _ => return Err(EINVAL),
        }
        Ok(())
    }
}

/// An empty buffer of one of the modes.
enum Empty {
    Small(RxSmall),
    Mergeable(RxFrag),
    Big(RxPages),
}

impl Empty {
    fn alloc(mode: Mode, hdr_len: usize, avg: &AvgPktLen, gfp: Flags) -> Result<Self> {
        Ok(match mode {
            Mode::Small => Empty::Small(RxSmall::alloc(hdr_len + GOOD_PACKET_LEN)?),
            Mode::Mergeable { min_len } => {
                Empty::Mergeable(RxFrag::alloc(avg.buf_len(hdr_len, min_len))?)
            }
            Mode::Big { frags } => Empty::Big(RxPages::alloc(hdr_len, frags, gfp)?),
        })
    }
}

/// The receive queue and its counters.
#[pin_data]
pub(crate) struct RxQueue {
    #[pin]
    pub(crate) vq: SpinLockIrq<Ring>,
    mode: Mode,
    hdr_len: usize,
    /// The header's byte order: little-endian, or (legacy) the machine's.
    little_endian: bool,
    /// The queue's number among the receive queues (`input.N`).
    pub(crate) index: u16,
    /// The average length of the packets in mergeable buffers, which sizes new ones.
    avg_pkt_len: AvgPktLen,
    packets: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    length_errors: AtomicU64,
    frame_errors: AtomicU64,
    /// Notifications sent to the device (C's `kicks`, for `ethtool -S`).
    pub(crate) kicks: AtomicU64,
}

impl RxQueue {
    pub(crate) fn new(
        vq: Ring,
        mode: Mode,
        hdr_len: usize,
        little_endian: bool,
        index: u16,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            vq <- new_spinlock_irq!(vq, "virtio_net_rs_rx"),
            mode,
            hdr_len,
            little_endian,
            index,
            avg_pkt_len: AvgPktLen(AtomicUsize::new(0)),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            length_errors: AtomicU64::new(0),
            frame_errors: AtomicU64::new(0),
            kicks: AtomicU64::new(0),
        }? Error)
    }

    /// The size of the next mergeable buffers (C's `get_mergeable_buf_len`, which its
    /// `mergeable_rx_buffer_size` attribute shows), or `None` without mergeable buffers.
    pub(crate) fn mergeable_buf_len(&self) -> Option<usize> {
        match self.mode {
            Mode::Mergeable { min_len } => Some(self.avg_pkt_len.buf_len(self.hdr_len, min_len)),
            _ => None,
        }
    }

    /// Fills the free slots of the ring with empty buffers, allocated with `gfp` (outside the
    /// ring's lock) where the allocator takes one, and notifies the device of them, as C's
    /// `try_fill_recv`. Returns how many it added, and `false` if it stopped for want of
    /// memory.
    pub(crate) fn fill(&self, gfp: Flags) -> (usize, bool) {
        let mut added = 0;
        let mut ok = true;
        // One look at the free slots, then one lock per buffer: should another filler take
        // some meanwhile, `add` fails with `ENOSPC` and the fill stops there.
        let free = self.vq.lock().num_free();
        for _ in 0..free {
            let Ok(buf) = Empty::alloc(self.mode, self.hdr_len, &self.avg_pkt_len, gfp) else {
                ok = false;
                break;
            };
            if let Err(e) = self.vq.lock().add(buf) {
                ok = e != ENOMEM;
                break;
            }
            added += 1;
        }
        if added > 0 && self.vq.lock().kick() {
            Self::count(&self.kicks);
        }
        (added, ok)
    }

    /// Adds the receive counters to `stats`, as `ndo_get_stats64` reports them.
    pub(crate) fn stats(&self, stats: &mut LinkStats) {
        stats.rx_packets += self.packets.load(Relaxed);
        stats.rx_bytes += self.bytes.load(Relaxed);
        stats.rx_dropped += self.dropped.load(Relaxed);
        // As C: length and frame errors, not counted in `rx_errors` too.
        stats.rx_length_errors += self.length_errors.load(Relaxed);
        stats.rx_frame_errors += self.frame_errors.load(Relaxed);
    }

    /// Packets dropped (C's `drops`, for `ethtool -S`).
    pub(crate) fn drops(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// The header at the start of `bytes`.
    fn header(&self, bytes: &[u8]) -> Option<RxHdr> {
        RxHdr::parse(bytes.get(..self.hdr_len)?, self.little_endian)
    }

    /// Takes the next buffer of a mergeable packet, its length, and whether the device said
    /// it wrote more than the buffer holds.
    fn next_frag(&self) -> Option<(RxFrag, usize, bool)> {
        match self.vq.lock().get()? {
            Filled::Mergeable(buf, len, overlong) => Some((buf, len, overlong)),
            _ => None,
        }
    }

    /// Drops the `n` following buffers of a mergeable packet that is dropped, as C's
    /// `mergeable_buf_free`.
    fn drop_frags(&self, n: usize) {
        for _ in 0..n {
            if self.next_frag().is_none() {
                Self::count(&self.length_errors);
                break;
            }
        }
    }

    /// A small buffer: the skb built on it, header first.
    fn receive_small(&self, buf: RxSmall, len: usize) -> Option<(SkBuff, RxHdr)> {
        let Ok(mut skb) = buf.build_skb(len) else {
            Self::count(&self.dropped);
            return None;
        };
        let hdr = self.header(skb.data())?;
        skb.pull(self.hdr_len).ok()?;
        Some((skb, hdr))
    }

    /// A mergeable packet: its first buffer `buf`, and `num_buffers - 1` more from the ring.
    fn receive_mergeable(
        &self,
        napi: &NapiPoll<'_>,
        buf: RxFrag,
        len: usize,
    ) -> Option<(SkBuff, RxHdr)> {
        let truesize = buf.capacity();
        let hdr = self.header(buf.data(len))?;
        let num = usize::from(hdr.num_buffers());
        if num == 0 {
            // A device bug: every packet takes one buffer at least.
            Self::count(&self.length_errors);
            return None;
        }
        let started = self.start_mergeable(napi, buf, len, truesize);
        let Ok(mut pkt) = started else {
            Self::count(&self.dropped);
            self.drop_frags(num - 1);
            return None;
        };
        for left in (0..num - 1).rev() {
            let Some((buf, len, overlong)) = self.next_frag() else {
                // As C: the device said more buffers than it used.
                Self::count(&self.length_errors);
                Self::count(&self.dropped);
                return None;
            };
            if overlong {
                // As C ("len exceeds truesize"): a length error, and the packet dropped.
                Self::count(&self.length_errors);
                Self::count(&self.dropped);
                self.drop_frags(left);
                return None;
            }
            let truesize = buf.capacity();
            if pkt.push(buf.finish(len), truesize).is_err() {
                Self::count(&self.dropped);
                self.drop_frags(left);
                return None;
            }
        }
        let skb = pkt.into_skb();
        // As C: the packet's length (without the header) sizes the buffers to come.
        self.avg_pkt_len.add(skb.len());
        Some((skb, hdr))
    }

    /// Starts a mergeable packet with its first buffer, as C's `page_to_skb`: on the buffer
    /// itself (`build_skb()`) if the frame is longer than [`GOOD_COPY_LEN`] and the room
    /// after it holds an skb's shared info (and IP headers need no alignment), else copied
    /// into a new skb.
    fn start_mergeable(
        &self,
        napi: &NapiPoll<'_>,
        buf: RxFrag,
        len: usize,
        truesize: usize,
    ) -> Result<RxPacket> {
        let frame = len.saturating_sub(self.hdr_len);
        let tailroom = truesize.saturating_sub(len);
        if NET_IP_ALIGN == 0 && frame > GOOD_COPY_LEN && tailroom >= SHINFO_SIZE {
            let skb = buf.build_skb(self.hdr_len, frame).map_err(|_| ENOMEM)?;
            return RxPacket::from_skb(skb).map_err(|_| EINVAL);
        }
        let mut frag = buf.finish(len);
        frag.advance(self.hdr_len);
        RxPacket::new(napi, frag, truesize)
    }

    /// A big packet: as C's `page_to_skb`, the skb built on the first page of `buf`
    /// (`build_skb()`) if the frame is longer than [`GOOD_COPY_LEN`] and leaves room for the
    /// skb's shared info in that page (and IP headers need no alignment); else the pages of
    /// `buf` that it reaches, the start of the frame copied into a new skb.
    fn receive_big(
        &self,
        napi: &NapiPoll<'_>,
        buf: RxPages,
        len: usize,
    ) -> Option<(SkBuff, RxHdr)> {
        let hdr = self.header(buf.header())?;
        let frame = len.saturating_sub(self.hdr_len);
        let tailroom = PAGE_SIZE.saturating_sub(PADDED_HDR_LEN + frame);
        if NET_IP_ALIGN == 0 && frame > GOOD_COPY_LEN && tailroom >= SHINFO_SIZE {
            let Ok(skb) = buf.build_skb(len) else {
                Self::count(&self.dropped);
                return None;
            };
            return Some((skb, hdr));
        }
        let mut frags = buf.into_frags(len);
        let first = frags.next()?;
        let Ok(mut pkt) = RxPacket::new(napi, first, PAGE_SIZE) else {
            Self::count(&self.dropped);
            return None;
        };
        for frag in frags {
            if pkt.push(frag, PAGE_SIZE).is_err() {
                Self::count(&self.dropped);
                return None;
            }
        }
        Some((pkt.into_skb(), hdr))
    }

    /// Drops a packet whose first buffer the device said it filled beyond its size, as C
    /// (which checks the used length itself; here the queue clamped it): a drop, and a length
    /// error, except for big packets (`receive_big` counts none); a mergeable packet's other
    /// buffers go with it (`mergeable_buf_free`).
    fn receive_overlong(&self, buf: Filled) {
        Self::count(&self.dropped);
        match buf {
            Filled::Small(..) => Self::count(&self.length_errors),
            Filled::Mergeable(buf, len, _) => {
                Self::count(&self.length_errors);
                let num = self.header(buf.data(len)).map_or(0, |h| h.num_buffers());
                drop(buf);
                self.drop_frags(usize::from(num).saturating_sub(1));
            }
            Filled::Big(..) => {}
        }
    }

    /// Hands the packet in `buf` (`len` bytes from the device, header included) to the stack.
    fn receive(&self, napi: &mut NapiPoll<'_>, buf: Filled) {
        let (len, overlong) = match &buf {
            Filled::Small(_, len, o) | Filled::Mergeable(_, len, o) | Filled::Big(_, len, o) => {
                (*len, *o)
            }
        };
        if len < self.hdr_len + ETH_HLEN {
            // As C: a length error, not a drop (and a mergeable packet's other buffers, if
            // any, are taken for packets of their own).
            Self::count(&self.length_errors);
            return;
        }
        if overlong {
            self.receive_overlong(buf);
            return;
        }
        let got = match buf {
            Filled::Small(buf, len, _) => self.receive_small(buf, len),
            Filled::Mergeable(buf, len, _) => self.receive_mergeable(napi, buf, len),
            Filled::Big(buf, len, _) => self.receive_big(napi, buf, len),
        };
        let Some((mut skb, hdr)) = got else {
            return;
        };
        if hdr.apply(&mut skb).is_err() {
            // As C: a header that does not fit the packet ("bad gso") is a frame error.
            Self::count(&self.frame_errors);
            return;
        }
        // As C: the device's hash, with `HASH_REPORT` (a 20-byte header) and `rxhash` on.
        if napi.dev().features().intersects(Features::RXHASH) {
            super::rss::set_skb_hash(&mut skb, &hdr);
        }
        let bytes = skb.len() as u64;
        skb.record_rx_queue(self.index);
        if napi.gro_receive(skb).is_ok() {
            self.packets.fetch_add(1, Relaxed);
            self.bytes.fetch_add(bytes, Relaxed);
        } else {
            Self::count(&self.dropped);
        }
    }
}

impl Poll for RxQueue {
    fn poll(&self, mut napi: NapiPoll<'_>, budget: usize) -> usize {
        let mut done = 0;
        // As C: refill once half of what this poll may take is free, decided under the lock
        // that finds the ring empty (or the budget spent).
        let mut low = false;
        loop {
            // Not under the lock while the stack runs: one buffer at a time, since a
            // mergeable packet takes the buffers that follow it out of the ring itself.
            let got = {
                let mut vq = self.vq.lock();
                let buf = if done < budget { vq.get() } else { None };
                if buf.is_none() {
                    low = vq.num_free() > budget.min(vq.size()) / 2;
                }
                buf
            };
            let Some(buf) = got else {
                break;
            };
            done += 1;
            self.receive(&mut napi, buf);
        }
        // If memory is short, let the refill work try again from process context.
        if low && !self.fill(GFP_ATOMIC).1 {
            napi.dev().schedule_work(0);
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

/// The refill work, as C's `refill_work`: with polling stopped, fills the ring from process
/// context, then lets the poll take what came meanwhile; if memory is still short, tries
/// again in half a second.
pub(crate) fn refill(rx: &Napi<RxQueue>, dev: &NetDevice) {
    rx.disable();
    let (_, ok) = rx.data().fill(GFP_KERNEL);
    rx.enable();
    rx.schedule();
    if !ok {
        dev.schedule_work(kernel::time::msecs_to_jiffies(500));
    }
}
