// SPDX-License-Identifier: GPL-2.0

//! Receive buffers made of pages, and received packets built from them.
//!
//! Besides [`RxSmall`](super::RxSmall) ("small buffers"), virtio-net receives into pages, in two
//! ways that C's `virtio_net` chooses between at probe:
//!
//! - [`RxFrag`] (`VIRTIO_NET_F_MRG_RXBUF`, "mergeable buffers"): one page fragment per buffer.
//!   A packet may span several buffers: the first one's header says how many
//!   (`num_buffers`), and the driver takes the following ones from the queue.
//! - [`RxPages`] ("big packets", for guest GSO without mergeable buffers, or a large MTU): a
//!   chain of whole pages per buffer, the header at the start of the first page.
//!
//! Each is a separately owned buffer: the device writes its bytes only, whatever lengths it
//! reports (the queue clamps the used length to the buffer). When the device gives a buffer
//! back, it becomes [`PageFrag`]s, which [`RxPacket`] turns into an skb as C's `page_to_skb`
//! does: the start of the frame copied into a fresh skb, the rest attached as fragments, in a
//! `frag_list` of further skbs when one skb's fragments are full. Or, for a mergeable buffer
//! whose frame is longer than [`GOOD_COPY_LEN`] and leaves room for the skb's shared info at
//! its end, as C's `page_to_skb` does too: the skb built on the first buffer itself
//! ([`RxFrag::build_skb`], `build_skb()`), the following buffers attached as fragments
//! ([`RxPacket::from_skb`]). A big packet whose frame fits in its first page likewise
//! ([`RxPages::build_skb`]).
//!
//! [`RxHdr`] reads the virtio-net header of a received packet and applies its offload
//! metadata (checksum state, GSO type and size) to the skb, with the kernel's own
//! `virtio_net_hdr_to_skb()`.

use crate::{
    alloc::{flags::GFP_ATOMIC, Flags},
    bindings,
    net::{
        napi::NapiPoll,
        skb::{PageFrag, SkBuff, ETH_HLEN, MAX_SKB_FRAGS},
    },
    page::PAGE_SIZE,
    prelude::*,
    virtio::{DeviceRequest, DeviceWritable, SgSink},
};
use core::mem::ManuallyDrop;

/// How much of a packet C copies into the head of a new skb (`GOOD_COPY_LEN`): all of it if
/// it fits, else the Ethernet header, the rest staying in the pages.
pub const GOOD_COPY_LEN: usize = 128;

/// A mergeable receive buffer: a fragment of a page from the page-fragment cache
/// (`netdev_alloc_frag()`), which the device writes.
pub struct RxFrag {
    frag: PageFrag,
}

impl RxFrag {
    /// Allocates a buffer of `len` bytes, starting on a cache line. Any context
    /// (`GFP_ATOMIC`).
    pub fn alloc(len: usize) -> Result<Self> {
        Ok(Self {
            frag: PageFrag::alloc_frag(len)?,
        })
    }

    /// The bytes the device may write.
    pub fn capacity(&self) -> usize {
        self.frag.len()
    }

    /// The first `len` bytes (at most the capacity), which the device wrote.
    pub fn data(&self, len: usize) -> &[u8] {
        let data = self.frag.data();
        &data[..len.min(data.len())]
    }

    /// The first `len` bytes, which the device wrote (the queue has clamped `len` to the
    /// capacity).
    pub fn finish(self, len: usize) -> PageFrag {
        let mut frag = self.frag;
        frag.truncate(len);
        frag
    }

    /// Builds an skb on the buffer, as C's `page_to_skb` when the frame is long and the
    /// buffer has room after it: its data the `len` bytes after the first `headroom` (the
    /// header), its shared info in the last
    /// [`SHINFO_SIZE`](crate::net::skb::SHINFO_SIZE) bytes of the buffer (see
    /// [`PageFrag::build_skb`]). Gives the buffer back if `headroom + len + SHINFO_SIZE` is
    /// more than its capacity (the device wrote into that tail), or if no skb can be
    /// allocated.
    pub fn build_skb(self, headroom: usize, len: usize) -> Result<SkBuff, Self> {
        self.frag
            .build_skb(headroom, len)
            .map_err(|frag| Self { frag })
    }
}

// SAFETY: The one segment is the fragment: bytes of a page allocation in the linear mapping
// that are ours alone (invariant of `PageFrag`), which do not move when the handle moves and
// hold plain bytes, so any value written there is fine.
unsafe impl DeviceWritable for RxFrag {
    fn segments(&mut self, f: &mut dyn FnMut(*mut u8, usize) -> Result) -> Result {
        f(self.frag.as_ptr(), self.frag.len())
    }
}

/// Where the packet starts in the first page of an [`RxPages`]: after the header (up to the
/// 20 bytes of `struct virtio_net_hdr_v1_hash`), padded as C's `struct padded_vnet_hdr`.
pub const PADDED_HDR_LEN: usize = 32;

/// A big-packet receive buffer, as C's `add_recvbuf_big`: a chain of whole pages. The device
/// writes the header at the start of the first page, the packet from
/// [`PADDED_HDR_LEN`] on in that page, then on through the following pages.
///
/// # Invariants
///
/// `pages` holds at least one page, each a whole page of [`PAGE_SIZE`] bytes; `hdr_len` is at
/// most [`PADDED_HDR_LEN`]; `sg` has `pages.len() + 1` entries.
pub struct RxPages {
    pages: KVec<PageFrag>,
    sg: KVec<bindings::scatterlist>,
    hdr_len: usize,
}

impl RxPages {
    /// Allocates a buffer for a header of `hdr_len` bytes and a packet in `1 + frags` pages.
    pub fn alloc(hdr_len: usize, frags: usize, gfp: Flags) -> Result<Self> {
        if hdr_len == 0 || hdr_len > PADDED_HDR_LEN || frags > MAX_SKB_FRAGS {
            return Err(EINVAL);
        }
        let mut pages = KVec::with_capacity(frags + 1, gfp)?;
        for _ in 0..=frags {
            pages.push(PageFrag::alloc_page(gfp)?, gfp)?;
        }
        let mut sg = KVec::with_capacity(frags + 2, gfp)?;
        for _ in 0..frags + 2 {
            // SAFETY: An all-zero scatterlist entry is valid (it is what `sg_init_table`
            // starts from).
            sg.push(unsafe { core::mem::zeroed() }, gfp)?;
        }
        // INVARIANT: `frags + 1 >= 1` whole pages, `frags + 2` entries, `hdr_len` checked.
        Ok(Self { pages, sg, hdr_len })
    }

    /// The bytes the device may write: the header, then the packet.
    pub fn capacity(&self) -> usize {
        self.hdr_len + self.pages.len() * PAGE_SIZE - PADDED_HDR_LEN
    }

    /// The header, as the device wrote it.
    pub fn header(&self) -> &[u8] {
        &self.pages[0].data()[..self.hdr_len]
    }

    /// The packet built on the first page, after the device wrote `len` bytes (header
    /// included), as C's `page_to_skb` for a big packet whose frame is long and leaves room in
    /// that page: the skb's head is the page (`build_skb()`, no copy), its data the frame from
    /// [`PADDED_HDR_LEN`] on, its shared info in the last
    /// [`SHINFO_SIZE`](crate::net::skb::SHINFO_SIZE) bytes; the other pages are freed.
    /// `EINVAL` if the frame does not end `SHINFO_SIZE` bytes before the end of the first
    /// page, `ENOMEM` if no skb can be allocated; the buffer is freed then too.
    pub fn build_skb(self, len: usize) -> Result<SkBuff> {
        let frame = len.min(self.capacity()).saturating_sub(self.hdr_len);
        let first = self.pages.into_iter().next().ok_or(EINVAL)?;
        // A whole page (type invariant), so `PageFrag::build_skb` checks the room.
        first.build_skb(PADDED_HDR_LEN, frame).map_err(|_| EINVAL)
    }

    /// The packet, as page fragments, after the device wrote `len` bytes (header included):
    /// the pages it did not reach are freed.
    pub fn into_frags(self, len: usize) -> impl Iterator<Item = PageFrag> {
        let mut left = len.min(self.capacity()).saturating_sub(self.hdr_len);
        let mut first = true;
        self.pages.into_iter().map_while(move |mut page| {
            if first {
                first = false;
                page.advance(PADDED_HDR_LEN);
            }
            if left == 0 {
                return None;
            }
            page.truncate(left);
            left -= page.len();
            Some(page)
        })
    }
}

// SAFETY: `map` reports one writable list: entry 0 is the first `hdr_len` bytes of the first
// page, entry 1 the rest of that page from `PADDED_HDR_LEN` on (disjoint, as `hdr_len` is at
// most that), then one entry per further page. The pages are whole pages of the linear
// mapping that we own alone (invariants of `PageFrag`; they never shrink before
// `into_frags`), which do not move with the handle and hold plain bytes. The list lives in
// `sg`, a heap allocation of ours that stays in place until the handle is dropped, so past
// `add_request`.
unsafe impl DeviceRequest for RxPages {
    fn map(&mut self, sink: &mut SgSink) -> Result {
        let n = self.sg.len();
        let sg = self.sg.as_mut_ptr();
        // SAFETY: `sg` has `n` entries (type invariant: `pages.len() + 1`); each page is
        // valid and has `PAGE_SIZE` bytes, and the offsets and lengths stay in it.
        unsafe {
            bindings::sg_init_table(sg, n as u32);
            let first = self.pages[0].page_ptr();
            bindings::sg_set_page(sg, first, self.hdr_len as u32, 0);
            bindings::sg_set_page(
                sg.add(1),
                first,
                (PAGE_SIZE - PADDED_HDR_LEN) as u32,
                PADDED_HDR_LEN as u32,
            );
            for (i, page) in self.pages.iter().enumerate().skip(1) {
                bindings::sg_set_page(sg.add(i + 1), page.page_ptr(), PAGE_SIZE as u32, 0);
            }
        }
        let cap = self.capacity();
        // SAFETY: See the `unsafe impl`: a terminated list (`sg_init_table` marks the last
        // entry) of writable segments that we own, alive until the handle is dropped.
        unsafe { sink.list(sg, cap, true) }
    }
}

/// A received packet being built: an skb with the start of the frame in its head, then page
/// fragments, then (when its fragments are full) further skbs on its `frag_list` holding more
/// fragments, as C's `virtnet_skb_append_frag`.
///
/// # Invariants
///
/// `head` is private (not cloned, not shared). `tail` is null, or the last skb of `head`'s
/// `frag_list`, which `head` owns and which nobody else knows; `head`'s `len`, `data_len` and
/// `truesize` include those of the skbs on its `frag_list`.
pub struct RxPacket {
    head: SkBuff,
    tail: *mut bindings::sk_buff,
}

// SAFETY: The packet owns its skbs; they can be handed between contexts as skbs are.
unsafe impl Send for RxPacket {}

impl RxPacket {
    /// Starts a packet received in the poll `napi` with its first bytes, `first` (the frame,
    /// without the virtio-net header), as C's `page_to_skb`: a new skb (`napi_alloc_skb()`)
    /// with room for [`GOOD_COPY_LEN`]
    /// bytes takes all of them if they fit, else the Ethernet header; the rest is attached as a
    /// fragment that accounts for `truesize` bytes.
    pub fn new(napi: &NapiPoll<'_>, mut first: PageFrag, truesize: usize) -> Result<Self> {
        let mut skb = napi.alloc_skb(GOOD_COPY_LEN)?;
        let copy = if first.len() <= skb.tailroom() {
            first.len()
        } else {
            ETH_HLEN
        };
        skb.put_data(first.data().get(..copy).ok_or(EINVAL)?)?;
        first.advance(copy);
        // INVARIANT: a new skb, ours alone, without a `frag_list`.
        let mut pkt = Self {
            head: skb,
            tail: core::ptr::null_mut(),
        };
        pkt.push(first, truesize).map_err(|_| ENOMEM)?;
        Ok(pkt)
    }

    /// Starts a packet with `skb`, as C's `receive_mergeable` continues the skb that
    /// `page_to_skb` built on the first buffer: the following buffers are attached to it as
    /// fragments. Gives the skb back if it is shared or cloned, or already has a `frag_list`.
    pub fn from_skb(skb: SkBuff) -> Result<Self, SkBuff> {
        if !skb.is_private() || skb.has_frag_list() {
            return Err(skb);
        }
        // INVARIANT: private (checked), without a `frag_list` (checked).
        Ok(Self {
            head: skb,
            tail: core::ptr::null_mut(),
        })
    }

    /// Appends the bytes of `frag`, accounting `truesize` bytes of memory. An empty fragment is
    /// dropped. Fails, handing the fragment back, if no skb can be allocated for a longer
    /// `frag_list`.
    pub fn push(&mut self, frag: PageFrag, truesize: usize) -> Result<(), PageFrag> {
        if frag.is_empty() {
            return Ok(());
        }
        let res = if self.tail.is_null() {
            self.head.add_rx_frag(frag, truesize)
        } else {
            self.add_to_tail(frag, truesize)
        };
        let Err(frag) = res else {
            return Ok(());
        };
        // The last skb is full: chain a new one, as C does.
        // SAFETY: Plain allocation, any context (`NUMA_NO_NODE` is -1).
        let nskb = unsafe { bindings::__alloc_skb(0, GFP_ATOMIC.as_raw(), 0, -1) };
        if nskb.is_null() {
            return Err(frag);
        }
        let head = self.head.as_raw();
        // SAFETY: `head` is ours and private, `tail` null or the last skb of its `frag_list`
        // (type invariant); `nskb` is new and ours, and `head` takes it over (freeing it with
        // itself).
        unsafe {
            if self.tail.is_null() {
                (*bindings::skb_shinfo(head)).frag_list = nskb;
            } else {
                bindings::skb_set_next(self.tail, nskb);
            }
            (*head).truesize += (*nskb).truesize;
        }
        // INVARIANT: `nskb` is the last skb of the `frag_list` now; `head` accounts for it.
        self.tail = nskb;
        self.add_to_tail(frag, truesize)
    }

    /// Adds `frag` to the last skb of the `frag_list`, which must exist.
    fn add_to_tail(&mut self, frag: PageFrag, truesize: usize) -> Result<(), PageFrag> {
        // SAFETY: A non-null `tail` is an skb of our `frag_list`, which only we know (type
        // invariant); the handle is never dropped, so it does not free it.
        let Some(tail) = (unsafe { SkBuff::from_raw(self.tail) }) else {
            return Err(frag);
        };
        let mut tail = ManuallyDrop::new(tail);
        let len = frag.len() as u32;
        tail.add_rx_frag(frag, truesize)?;
        self.account(len, truesize as u32);
        Ok(())
    }

    /// Counts `len` bytes added to an skb of the `frag_list` in the head's totals.
    fn account(&mut self, len: u32, truesize: u32) {
        let head = self.head.as_raw();
        // SAFETY: `head` is ours and private (type invariant).
        unsafe {
            (*head).len += len;
            (*head).data_len += len;
            (*head).truesize += truesize;
        }
    }

    /// The packet so far.
    pub fn skb(&self) -> &SkBuff {
        &self.head
    }

    /// The finished packet.
    pub fn into_skb(self) -> SkBuff {
        self.head
    }
}

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the packet's checksum is partial (`csum_start`,
/// `csum_offset`).
pub const HDR_F_NEEDS_CSUM: u8 = bindings::VIRTIO_NET_HDR_F_NEEDS_CSUM as u8;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the device checked the packet's checksum.
pub const HDR_F_DATA_VALID: u8 = bindings::VIRTIO_NET_HDR_F_DATA_VALID as u8;

/// The virtio-net header of a received packet, as the device wrote it: `struct
/// virtio_net_hdr` and, when the header has it, `num_buffers`.
pub struct RxHdr {
    hdr: bindings::virtio_net_hdr,
    num_buffers: u16,
    little_endian: bool,
    /// `hash_value` and `hash_report` of a `struct virtio_net_hdr_v1_hash`, if the header has
    /// them (20 bytes).
    hash: Option<(u32, u16)>,
}

impl RxHdr {
    /// Reads a header from `bytes` (10 bytes at least; `num_buffers` from bytes 10 and 11 if
    /// there are 12, the hash from bytes 12 to 19 if there are 20), in little-endian byte order if `little_endian` (a modern device, or a
    /// legacy one on a little-endian machine), else in the machine's. `None` if too short.
    pub fn parse(bytes: &[u8], little_endian: bool) -> Option<Self> {
        let b = bytes.get(..10)?;
        let raw = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        let hdr = bindings::virtio_net_hdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: raw(2),
            gso_size: raw(4),
            csum_start: raw(6),
            csum_offset: raw(8),
        };
        let num_buffers = bytes.get(10..12).map_or(1, |n| {
            if little_endian {
                u16::from_le_bytes([n[0], n[1]])
            } else {
                u16::from_ne_bytes([n[0], n[1]])
            }
        });
        // Only a modern device (little-endian) reports hashes.
        let hash = bytes.get(12..20).map(|h| {
            (
                u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
                u16::from_le_bytes([h[4], h[5]]),
            )
        });
        Some(Self {
            hdr,
            num_buffers,
            little_endian,
            hash,
        })
    }

    /// The flags (`HDR_F_*`).
    pub fn flags(&self) -> u8 {
        self.hdr.flags
    }

    /// The GSO type (`VIRTIO_NET_HDR_GSO_*`).
    pub fn gso_type(&self) -> u8 {
        self.hdr.gso_type
    }

    /// The GSO segment size, in the machine's byte order.
    pub fn gso_size(&self) -> u16 {
        if self.little_endian {
            u16::from_le(self.hdr.gso_size)
        } else {
            self.hdr.gso_size
        }
    }

    /// The hash the device computed and what it covers (`hash_value`, `hash_report`: one of
    /// `VIRTIO_NET_HASH_REPORT_*`), if the header has them (`VIRTIO_NET_F_HASH_REPORT`).
    pub fn hash(&self) -> Option<(u32, u16)> {
        self.hash
    }

    /// How many buffers the packet spans (`num_buffers`, mergeable buffers only; 1 for a
    /// shorter header). The device may lie: the caller checks it against what it finds.
    pub fn num_buffers(&self) -> u16 {
        self.num_buffers
    }

    /// Applies the header's offload metadata to `skb` (the frame, without the header), as C's
    /// `virtnet_receive_done`: a checksum the device validated (`DATA_VALID`) makes it
    /// `CHECKSUM_UNNECESSARY`; then `virtio_net_hdr_to_skb()` sets a partial checksum
    /// (`NEEDS_CSUM`) and the GSO type and size, pulling headers into the head as it needs
    /// them. `EINVAL` for a header that does not match the packet (the caller drops it, as a
    /// frame error), or an skb that is shared.
    pub fn apply(&self, skb: &mut SkBuff) -> Result {
        if !skb.is_private() {
            return Err(EINVAL);
        }
        let raw = skb.as_raw();
        if self.hdr.flags & HDR_F_DATA_VALID != 0 {
            // SAFETY: The skb is ours and private.
            unsafe { bindings::skb_set_csum_unnecessary(raw) };
        }
        // SAFETY: The skb is ours and private (pulling may reallocate its head, which needs
        // that); `virtio_net_hdr_to_skb` checks every field of the header against the packet,
        // as it does for headers from user space.
        crate::error::to_result(unsafe {
            bindings::virtio_net_hdr_to_skb(raw, &self.hdr, self.little_endian)
        })
    }
}
