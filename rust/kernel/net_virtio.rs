// SPDX-License-Identifier: GPL-2.0

//! Socket buffers as virtqueue buffers, and the virtio-net config space.
//!
//! virtio-net moves packets in buffers that the driver owns while the device uses them. Here
//! an skb is such a buffer, still with exactly one owner:
//!
//! - [`RxSkb`]: a fresh, empty skb whose tailroom the device writes (a received packet, after
//!   the virtio-net header): a [`DeviceWritable`] for
//!   [`Virtqueue::add`](crate::virtio::Virtqueue::add). When the device gives it back,
//!   [`RxSkb::finish`] turns it into an [`SkBuff`] of the length the device wrote (which the
//!   queue has already checked against the buffer).
//! - [`TxSkb`]: an skb to send, linear, with the virtio-net header pushed in front of its data:
//!   a [`DeviceReadable`]. When the device is done, [`TxSkb::into_skb`] gives the skb back, to
//!   be consumed.
//!
//! - [`RxFrag`] and [`RxPages`]: receive buffers made of pages, and [`RxPacket`] and
//!   [`RxHdr`] to turn them into skbs with their offload metadata (see the `rx` module).
//!
//! Dropping either (for example with a queue torn down while they are in its ring, after the
//! device was reset) frees the skb.
//!
//! C header: [`include/uapi/linux/virtio_net.h`](srctree/include/uapi/linux/virtio_net.h)

#![cfg(CONFIG_NET)]

use crate::{
    bindings,
    net::{dev::NetDevice, skb::SkBuff},
    prelude::*,
    virtio::{
        config::{Gated, Layout},
        DeviceReadable, DeviceWritable,
    },
};
use core::mem::offset_of;

mod rx;
pub use rx::{
    RxFrag, RxHdr, RxPacket, RxPages, GOOD_COPY_LEN, HDR_F_DATA_VALID, HDR_F_NEEDS_CSUM,
    PADDED_HDR_LEN,
};

/// The config space of a network device (`struct virtio_net_config`).
pub type NetConfig = bindings::virtio_net_config;

const fn gated(start: usize, end: usize, feature: u32) -> Gated {
    Gated {
        start,
        end,
        feature,
    }
}

// SAFETY: `virtio_net_config` is the uapi layout of the network device's config space
// (specification 5.1.4): each field exists when the feature the specification ties it to was
// negotiated, as listed (the RSS fields also exist with `HASH_REPORT` alone, which we do not
// count on). Every field is gated, which is correct: none exists without a feature.
unsafe impl Layout for NetConfig {
    const DEVICE_ID: u32 = bindings::VIRTIO_ID_NET;
    const GATED: &'static [Gated] = &[
        gated(
            offset_of!(NetConfig, mac),
            offset_of!(NetConfig, mac) + 6,
            bindings::VIRTIO_NET_F_MAC,
        ),
        gated(
            offset_of!(NetConfig, status),
            offset_of!(NetConfig, status) + 2,
            bindings::VIRTIO_NET_F_STATUS,
        ),
        gated(
            offset_of!(NetConfig, max_virtqueue_pairs),
            offset_of!(NetConfig, max_virtqueue_pairs) + 2,
            bindings::VIRTIO_NET_F_MQ,
        ),
        gated(
            offset_of!(NetConfig, mtu),
            offset_of!(NetConfig, mtu) + 2,
            bindings::VIRTIO_NET_F_MTU,
        ),
        gated(
            offset_of!(NetConfig, speed),
            offset_of!(NetConfig, duplex) + 1,
            bindings::VIRTIO_NET_F_SPEED_DUPLEX,
        ),
        gated(
            offset_of!(NetConfig, rss_max_key_size),
            core::mem::size_of::<NetConfig>(),
            bindings::VIRTIO_NET_F_RSS,
        ),
    ];
}

/// The largest virtio-net header (`struct virtio_net_hdr_mrg_rxbuf`, `virtio_net_hdr_v1`).
pub const MAX_HDR_LEN: usize = core::mem::size_of::<bindings::virtio_net_hdr_mrg_rxbuf>();

/// An empty skb whose tailroom the device fills with a received packet.
///
/// # Invariants
///
/// `skb` was allocated by us and never shared (not cloned, one user), its data is empty, and
/// it has at least `cap` bytes of tailroom.
pub struct RxSkb {
    skb: SkBuff,
    cap: usize,
}

impl RxSkb {
    /// Allocates an skb for `dev` with room for `len` bytes from the device. Any context.
    pub fn alloc(dev: &NetDevice, len: usize) -> Result<Self> {
        let skb = SkBuff::alloc(dev, len)?;
        if skb.tailroom() < len || !skb.is_empty() {
            return Err(ENOMEM);
        }
        // INVARIANT: just allocated, so ours alone and empty; tailroom checked.
        Ok(Self { skb, cap: len })
    }

    /// The room the device may write.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The skb with the `len` bytes the device wrote (at most the capacity: more is clamped).
    pub fn finish(self, len: usize) -> SkBuff {
        let len = len.min(self.cap);
        let skb = self.skb;
        // SAFETY: The skb is ours and linear with `cap >= len` bytes of tailroom (type
        // invariant), so `skb_put` cannot overrun it; the device wrote those bytes (or they
        // hold whatever the allocator left, which is no worse than a short packet).
        unsafe { bindings::skb_put(skb.as_raw(), len as u32) };
        skb
    }
}

// SAFETY: The one segment is the skb's tailroom: `cap` bytes of the skb's head, which
// `netdev_alloc_skb` takes from the page allocator (page fragments) or the slab, never
// `vmalloc`; it does not move when the handle moves, the skb is ours alone (type invariant),
// and bytes past the data are not part of any structure, so any value written there is fine.
unsafe impl DeviceWritable for RxSkb {
    fn segments(&mut self, f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result {
        // SAFETY: The skb is valid (type invariant of `SkBuff`).
        let tail = unsafe { bindings::skb_tail_pointer(self.skb.as_raw()) };
        f(tail, self.cap)
    }
}

/// An skb to send: linear, with a virtio-net header in front of its data.
///
/// # Invariants
///
/// `skb` is linear, its first `hdr_len` bytes are the header we pushed, and its head is not
/// shared with a clone (its data may be).
pub struct TxSkb {
    skb: SkBuff,
    hdr_len: usize,
}

impl TxSkb {
    /// Makes `skb` linear and puts `hdr` in front of its data. On failure (no memory, or a
    /// header longer than [`MAX_HDR_LEN`]) the skb comes back unchanged.
    pub fn new(mut skb: SkBuff, hdr: &[u8]) -> Result<Self, SkBuff> {
        if hdr.len() > MAX_HDR_LEN || skb.linearize().is_err() {
            return Err(skb);
        }
        // SAFETY: The skb is valid and ours; `skb_cow_head` makes its head private and gives it
        // `hdr.len()` bytes of headroom, or fails changing nothing.
        if unsafe { bindings::skb_cow_head(skb.as_raw(), hdr.len() as u32) } != 0 {
            return Err(skb);
        }
        // SAFETY: There is `hdr.len()` bytes of private headroom (just above), so the push
        // stays inside the head and `p` points to `hdr.len()` writable bytes.
        unsafe {
            let p = bindings::__skb_push(skb.as_raw(), hdr.len() as u32).cast::<u8>();
            core::ptr::copy_nonoverlapping(hdr.as_ptr(), p, hdr.len());
        }
        // INVARIANT: linear (linearised above), header pushed into a private head.
        Ok(Self {
            skb,
            hdr_len: hdr.len(),
        })
    }

    /// The length of the packet, without the header.
    pub fn packet_len(&self) -> usize {
        self.skb.len() - self.hdr_len
    }

    /// The skb, with the header removed again: to consume once sent, or to hand back to the
    /// stack.
    pub fn into_skb(self) -> SkBuff {
        let skb = self.skb;
        // SAFETY: The skb is valid and ours, and its first `hdr_len` bytes are the header we
        // pushed into its linear part (type invariant): pulling them only moves `data` back to
        // where it was. No error to discard: the pull cannot fail here.
        unsafe { bindings::__skb_pull(skb.as_raw(), self.hdr_len as u32) };
        skb
    }
}

// SAFETY: The one segment is the skb's linear data, header included: initialised, in the
// skb's head, which is slab or page memory (never `vmalloc`) and stays in place while we hold
// our reference; nothing writes it while the device reads (the handle offers no way to, the
// head is ours, and data shared with clones is read-only under the skb rules).
unsafe impl DeviceReadable for TxSkb {
    fn segments(&self, f: &mut dyn FnMut(*const u8, usize) -> Result) -> Result {
        let data = self.skb.data();
        f(data.as_ptr(), data.len())
    }
}
