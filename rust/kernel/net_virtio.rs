// SPDX-License-Identifier: GPL-2.0

//! Socket buffers as virtqueue buffers, and the virtio-net config space.
//!
//! virtio-net moves packets in buffers that the driver owns while the device uses them. Here
//! an skb is such a buffer, still with exactly one owner:
//!
//! - [`RxSmall`]: a page fragment the device writes a received packet into (the virtio-net
//!   header, then the frame), after some headroom and before room for the `struct
//!   skb_shared_info` of an skb: a [`DeviceWritable`] for
//!   [`Virtqueue::add`](crate::virtio::Virtqueue::add). When the device gives it back,
//!   [`RxSmall::build_skb`] builds the [`SkBuff`] on the buffer (`build_skb()`, as C's
//!   `receive_small`), of the length the device wrote (which the queue has already checked
//!   against the writable part).
//! - [`TxSkb`]: an skb to send, with the virtio-net header that describes its offloads: a
//!   [`DeviceReadable`] of several segments (header, linear part, paged fragments). When the
//!   device is done, [`TxSkb::into_skb`] gives the skb back, to be consumed.
//!
//! - [`RxFrag`] and [`RxPages`]: receive buffers made of pages, and [`RxPacket`] and
//!   [`RxHdr`] to turn them into skbs with their offload metadata (see the `rx` module).
//!
//! Dropping any of them (for example with a queue torn down while they are in its ring, after
//! the device was reset) frees its skb or its pages.
//!
//! C header: [`include/uapi/linux/virtio_net.h`](srctree/include/uapi/linux/virtio_net.h)

#![cfg(CONFIG_NET)]

use crate::{
    bindings,
    net::skb::{skb_data_align, PageFrag, SkBuff, NET_IP_ALIGN, NET_SKB_PAD, SHINFO_SIZE},
    page::PAGE_SIZE,
    prelude::*,
    virtio::{
        config::{Gated, Layout},
        DeviceReadable, DeviceWritable, MAX_SEGMENTS,
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

/// The largest virtio-net header (`struct virtio_net_hdr_v1_hash`, with
/// `VIRTIO_NET_F_HASH_REPORT`).
pub const MAX_HDR_LEN: usize = core::mem::size_of::<bindings::virtio_net_hdr_v1_hash>();

/// The headroom a small buffer leaves before the header the device writes, as C's
/// `VIRTNET_RX_PAD`: `NET_IP_ALIGN + NET_SKB_PAD`. It becomes the headroom of the skb built on
/// the buffer.
pub const RX_PAD: usize = NET_IP_ALIGN + NET_SKB_PAD;

/// A small receive buffer, as C's `add_recvbuf_small`: a page fragment of
/// `SKB_DATA_ALIGN(RX_PAD + len) + SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` bytes, of
/// which the device may write exactly the `len` bytes after the first [`RX_PAD`]: the header,
/// then the frame. When the device gives it back, [`RxSmall::build_skb`] builds the skb on
/// it (`build_skb()`, no copy), its shared info in the tail the device could not write.
///
/// # Invariants
///
/// `frag` has `skb_data_align(RX_PAD + cap) + SHINFO_SIZE` bytes, so at least
/// `RX_PAD + cap + SHINFO_SIZE`.
pub struct RxSmall {
    frag: PageFrag,
    cap: usize,
}

impl RxSmall {
    /// Allocates a buffer into which the device may write `len` bytes (the header and a
    /// frame). Any context (`GFP_ATOMIC`).
    pub fn alloc(len: usize) -> Result<Self> {
        let size = RX_PAD
            .checked_add(len)
            .filter(|&n| n <= PAGE_SIZE)
            .map(|n| skb_data_align(n) + SHINFO_SIZE)
            .ok_or(EINVAL)?;
        let frag = PageFrag::alloc_frag(size)?;
        if frag.len() != size {
            return Err(ENOMEM);
        }
        // INVARIANT: `size` bytes, as computed.
        Ok(Self { frag, cap: len })
    }

    /// The room the device may write.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The skb of the `len` bytes the device wrote (at most the capacity: more is clamped),
    /// built on the buffer with [`RX_PAD`] bytes of headroom. `ENOMEM` if no skb could be
    /// allocated (the buffer is freed).
    pub fn build_skb(self, len: usize) -> Result<SkBuff> {
        // The buffer has room for `RX_PAD`, `cap` and the shared info (type invariant).
        self.frag
            .build_skb(RX_PAD, len.min(self.cap))
            .map_err(|_| ENOMEM)
    }
}

// SAFETY: The one segment is `cap` bytes of the fragment from `RX_PAD` on, which are in it
// (type invariant): bytes of a page allocation in the linear mapping that are ours alone
// (invariant of `PageFrag`), which do not move when the handle moves and hold plain bytes, so
// any value written there is fine. The device never gets the tail, where `build_skb` puts the
// shared info.
unsafe impl DeviceWritable for RxSmall {
    fn segments(&mut self, f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result {
        f(self.frag.as_ptr().wrapping_add(RX_PAD), self.cap)
    }
}

/// The largest number of paged fragments a [`TxSkb`] carries as they are: the queue takes
/// [`MAX_SEGMENTS`] segments per request, two of which are the header and the linear part. An
/// skb with more is made linear.
pub const TX_MAX_FRAGS: usize = MAX_SEGMENTS - 2;

/// An skb to send, with the virtio-net header that describes its offloads (checksum,
/// segmentation: `virtio_net_hdr_from_skb()`).
///
/// As C's `xmit_skb`, the header goes right before the data, in the skb's headroom, where
/// the device takes any layout and the headroom is the skb's own (its head not shared with
/// clones), has room and keeps the header aligned: then the header and the linear part are
/// one segment, and a linear packet takes one descriptor, with no indirect table to allocate.
/// Otherwise the header goes in the control buffer, a segment of its own. Each paged fragment
/// is a segment. `skb->data` and `skb->len` do not change.
///
/// # Invariants
///
/// - `skb` has one user, this handle (it is not shared); `hdr_len <= MAX_HDR_LEN`.
/// - If `pushed`, the `hdr_len` bytes before `skb->data` are in the skb's head, which is not
///   shared with clones (`!skb_header_cloned()`), and hold the header; else the first
///   `hdr_len` bytes of the control buffer, which nobody else writes, hold it.
/// - `skb` has no frag list, its fragments are readable, and it has at most
///   [`TX_MAX_FRAGS`] of them.
pub struct TxSkb {
    skb: SkBuff,
    hdr_len: usize,
    pushed: bool,
}

/// A packet [`TxSkb::new`] could not prepare: why, and the skb (to drop, or hand back).
pub struct TxError {
    /// `EPROTO` for an offload the header cannot describe, `ENOMEM` if making the skb
    /// unshared or linear failed, `EINVAL` for a bad header length.
    pub error: Error,
    /// The skb, unchanged if the error is `EINVAL`.
    pub skb: SkBuff,
}

const _: () = assert!(MAX_HDR_LEN <= SkBuff::CB_LEN);

/// The header of a transmitted packet, as long as the longest (`struct virtio_net_hdr_v1_hash`):
/// `struct virtio_net_hdr_mrg_rxbuf`, then the hash fields, zero on transmit.
#[repr(C)]
#[derive(Default)]
struct TxHdr {
    hdr: bindings::virtio_net_hdr_mrg_rxbuf,
    hash: [u8; 8],
}

const _: () = assert!(core::mem::size_of::<TxHdr>() == MAX_HDR_LEN);

impl TxSkb {
    /// Prepares `skb` for the device: a header of `hdr_len` bytes (that of the device: 10 or
    /// 12, or 20 with hash reports: [`MAX_HDR_LEN`] at most) describing its offloads, in the
    /// byte order the device uses (`little_endian`, as `virtio_is_little_endian()`). A shared
    /// skb is cloned first; one with a frag list, unreadable or too many fragments is made
    /// linear. `any_layout`: the device takes the header and the frame in one buffer
    /// (`VIRTIO_F_VERSION_1` or `VIRTIO_F_ANY_LAYOUT`, C's `any_header_sg`), so the header may
    /// go in the headroom.
    pub fn new(
        skb: SkBuff,
        hdr_len: usize,
        little_endian: bool,
        any_layout: bool,
    ) -> Result<Self, TxError> {
        if !(core::mem::size_of::<bindings::virtio_net_hdr>()..=MAX_HDR_LEN).contains(&hdr_len) {
            return Err(TxError { error: EINVAL, skb });
        }
        let mut skb = skb
            .share_check()
            .map_err(|skb| TxError { error: ENOMEM, skb })?;
        if (skb.has_frag_list() || !skb.frags_readable() || skb.nr_frags() > TX_MAX_FRAGS)
            && skb.linearize().is_err()
        {
            return Err(TxError { error: ENOMEM, skb });
        }
        // All zero: `num_buffers` (of the 12-byte header) is 0 on transmit, and so are the hash
        // fields of the 20-byte one.
        let mut hdr = TxHdr::default();
        // SAFETY: `skb` is valid; `hdr.hdr.hdr` is a `virtio_net_hdr` valid for writes.
        if unsafe {
            bindings::virtio_net_hdr_from_skb(
                skb.as_raw(),
                &mut hdr.hdr.hdr,
                little_endian,
                false,
                0,
            )
        } != 0
        {
            let error = Error::from_errno(-(bindings::EPROTO as i32));
            return Err(TxError { error, skb });
        }
        let raw = skb.as_raw();
        // SAFETY: `raw` is valid (type invariant of `SkBuff`).
        let data = unsafe { (*raw).data };
        // As C's `can_push`: the header aligned before the data, in a head that is ours.
        let pushed = any_layout
            && (data as usize) % core::mem::align_of::<bindings::virtio_net_hdr_mrg_rxbuf>() == 0
            && skb.headroom() >= hdr_len
            // SAFETY: `raw` is valid.
            && unsafe { bindings::skb_header_cloned(raw) } == 0;
        let dst = if pushed {
            // The `hdr_len` bytes before the data: in the head, since the headroom holds them.
            data.wrapping_sub(hdr_len)
        } else {
            skb.cb_ptr()
        };
        // SAFETY: `hdr` has `MAX_HDR_LEN >= hdr_len` bytes (checked at compile time). `dst` is
        // valid for `hdr_len` bytes that only we may write: if `pushed`, the end of the
        // headroom of a head that no clone shares (checked just above), of an skb that nobody
        // else holds (`share_check`), as C's `xmit_skb` writes it; else the control buffer of
        // that skb, `CB_LEN >= MAX_HDR_LEN` bytes (checked at compile time).
        unsafe {
            core::ptr::copy_nonoverlapping(core::ptr::addr_of!(hdr).cast::<u8>(), dst, hdr_len)
        };
        // INVARIANT: unshared; the header where `pushed` says; frags checked or linearised.
        Ok(Self {
            skb,
            hdr_len,
            pushed,
        })
    }

    /// The length of the packet (`skb->len`), without the header.
    pub fn packet_len(&self) -> usize {
        self.skb.len()
    }

    /// The skb: to consume once sent, or to hand back to the stack.
    pub fn into_skb(self) -> SkBuff {
        self.skb
    }
}

// SAFETY: The segments are the header, then the linear data, then each paged fragment. The
// header is either in the skb's control buffer (inside the `struct sk_buff`, a slab object
// that stays in place while we hold our reference, and that only we write, the skb not being
// shared: type invariant), or, if `pushed`, the `hdr_len` bytes of the head right before the
// data (type invariant), which then make one segment with the linear data. The head is slab
// or page memory, never `vmalloc`, and a head that no clone shares is written by nobody but
// its one holder, us. Then each paged fragment (pages the skb holds a reference
// to, at their linear-map address; readable memory by the type invariant). All of it is
// initialised and stays in place while we hold our reference, and nothing writes it through
// the handle meanwhile: data shared with clones is read-only under the skb rules, and the
// handle offers no way to write. Empty parts are left out.
unsafe impl DeviceReadable for TxSkb {
    fn segments(&self, f: &mut dyn FnMut(*const u8, usize) -> Result) -> Result {
        let data = self.skb.data();
        if self.pushed {
            // The header in the headroom, then the linear part, in one piece.
            f(
                data.as_ptr().wrapping_sub(self.hdr_len),
                self.hdr_len + data.len(),
            )?;
        } else {
            // SAFETY: `skb` is valid (type invariant of `SkBuff`); this computes a field address.
            let cb = unsafe { core::ptr::addr_of!((*self.skb.as_raw()).cb) };
            f(cb.cast(), self.hdr_len)?;
            if !data.is_empty() {
                f(data.as_ptr(), data.len())?;
            }
        }
        for i in 0..self.skb.nr_frags() {
            let (addr, len) = self.skb.frag(i).ok_or(EINVAL)?;
            if len > 0 {
                f(addr, len)?;
            }
        }
        Ok(())
    }
}
