// SPDX-License-Identifier: GPL-2.0

//! Socket buffers (`struct sk_buff`), with exactly one owner.
//!
//! An [`SkBuff`] is the one reference to a socket buffer that its holder must eventually hand
//! on or free, as C code holds an `struct sk_buff *` it was given by `ndo_start_xmit` or got
//! from an allocator. It is not [`Clone`], and every way of giving it up consumes it:
//!
//! - to the stack: [`NapiPoll::gro_receive`](super::napi::NapiPoll::gro_receive);
//! - back to the core from `start_xmit`, as `NETDEV_TX_BUSY`
//!   ([`Operations::start_xmit`](super::dev::Operations::start_xmit) returns `Err(skb)`);
//! - into a device: a type that owns it while a queue holds it (for virtio-net, the buffers of
//!   [`crate::net_virtio`]), which gives it back when the device is done;
//! - freed: [`consume`](SkBuff::consume) when the packet was sent, or dropping the handle
//!   (`dev_kfree_skb_any`, which counts as a drop), in any context.
//!
//! So safe code can neither free an skb twice, nor use it after giving it away, nor leak it
//! except with [`core::mem::forget`] (which is safe, and only leaks).
//!
//! C header: [`include/linux/skbuff.h`](srctree/include/linux/skbuff.h)

use super::dev::NetDevice;
use crate::{bindings, prelude::*};
use core::ptr::NonNull;

/// The length of an Ethernet header (`ETH_HLEN`).
pub const ETH_HLEN: usize = bindings::ETH_HLEN as usize;

/// A socket buffer with one owner: the holder of this handle.
///
/// # Invariants
///
/// `ptr` is a valid `struct sk_buff` of which this handle owns one reference (`users`): the
/// one its holder must hand on or free. Nobody else frees it through this reference.
pub struct SkBuff {
    ptr: NonNull<bindings::sk_buff>,
}

// SAFETY: An skb may be handed from one context or CPU to another (the stack does so all the
// time); the handle is the only owner of its reference.
unsafe impl Send for SkBuff {}
// SAFETY: The `&self` methods only read fields that the `&mut self` methods change.
unsafe impl Sync for SkBuff {}

/// What a packet's receive hash covers (`enum pkt_hash_types`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum HashType {
    /// No hash.
    None = bindings::pkt_hash_types_PKT_HASH_TYPE_NONE,
    /// Layer 2 (addresses).
    L2 = bindings::pkt_hash_types_PKT_HASH_TYPE_L2,
    /// Layer 3 (IP addresses).
    L3 = bindings::pkt_hash_types_PKT_HASH_TYPE_L3,
    /// Layer 4 (IP addresses and ports).
    L4 = bindings::pkt_hash_types_PKT_HASH_TYPE_L4,
}

impl SkBuff {
    /// Takes ownership of `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is a valid skb, and the caller gives its reference to the new handle.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::sk_buff) -> Option<Self> {
        // INVARIANT: By the safety requirements.
        NonNull::new(ptr).map(|ptr| Self { ptr })
    }

    /// Gives up ownership: the caller now holds the reference.
    pub(crate) fn into_raw(self) -> *mut bindings::sk_buff {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::sk_buff {
        self.ptr.as_ptr()
    }

    /// The length of the packet (`skb->len`), fragments included.
    pub fn len(&self) -> usize {
        // SAFETY: `ptr` is valid (type invariant); we only read.
        unsafe { (*self.as_raw()).len as usize }
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The length of the linear part (`skb_headlen()`).
    pub fn head_len(&self) -> usize {
        // SAFETY: `ptr` is valid (type invariant); we only read.
        let (len, data_len) = unsafe { ((*self.as_raw()).len, (*self.as_raw()).data_len) };
        len.saturating_sub(data_len) as usize
    }

    /// Whether all of the data is in the linear part.
    pub fn is_linear(&self) -> bool {
        // SAFETY: `ptr` is valid (type invariant).
        !unsafe { bindings::skb_is_nonlinear(self.as_raw()) }
    }

    /// The linear part of the data.
    pub fn data(&self) -> &[u8] {
        // SAFETY: `ptr` is valid (type invariant); `data` points to `head_len()` initialised
        // bytes, which nobody writes while they are shared (the skb rules: data shared between
        // clones is read-only) and which stay in place while we hold the reference.
        unsafe { core::slice::from_raw_parts((*self.as_raw()).data, self.head_len()) }
    }

    /// Free room after the data (`skb_tailroom()`); 0 for a non-linear skb.
    pub fn tailroom(&self) -> usize {
        // SAFETY: `ptr` is valid (type invariant).
        unsafe { bindings::skb_tailroom(self.as_raw()) }.max(0) as usize
    }

    /// Free room before the data (`skb_headroom()`).
    pub fn headroom(&self) -> usize {
        // SAFETY: `ptr` is valid (type invariant).
        unsafe { bindings::skb_headroom(self.as_raw()) as usize }
    }

    /// Removes `len` bytes from the start of the data (`skb_pull()`). Fails with `EINVAL`,
    /// changing nothing, if the linear part is shorter.
    pub fn pull(&mut self, len: usize) -> Result {
        if len > self.head_len() {
            return Err(EINVAL);
        }
        // SAFETY: `ptr` is valid and ours (type invariant); `len` fits in the linear part, so
        // this only moves `data` forward.
        unsafe { bindings::__skb_pull(self.as_raw(), len as u32) };
        Ok(())
    }

    /// Moves all the data into the linear part (`skb_linearize()`).
    pub fn linearize(&mut self) -> Result {
        // SAFETY: `ptr` is valid and ours (type invariant); process or atomic context both
        // work (it allocates with `GFP_ATOMIC`).
        crate::error::to_result(unsafe { bindings::skb_linearize(self.as_raw()) })
    }

    /// Detaches the skb from its socket (`skb_orphan()`), so that the socket's send budget no
    /// longer waits for it: for a driver that frees sent packets late.
    pub fn orphan(&mut self) {
        // SAFETY: `ptr` is valid and ours (type invariant).
        unsafe { bindings::skb_orphan(self.as_raw()) }
    }

    /// Records the receive queue the packet came from (`skb_record_rx_queue()`).
    pub fn record_rx_queue(&mut self, queue: u16) {
        // SAFETY: `ptr` is valid and ours (type invariant).
        unsafe { bindings::skb_record_rx_queue(self.as_raw(), queue) }
    }

    /// Sets the packet's receive hash (`skb_set_hash()`): `hash`, computed over the layers
    /// `kind` says (a device's RSS hash, say).
    pub fn set_hash(&mut self, hash: u32, kind: HashType) {
        // SAFETY: `ptr` is valid and ours (type invariant); `kind` is a `pkt_hash_types`.
        unsafe { bindings::skb_set_hash(self.as_raw(), hash, kind as _) }
    }

    /// Sets the packet's protocol from its Ethernet header and its device to `dev`, and pulls
    /// the header (`eth_type_trans()`). Fails with `EINVAL`, changing nothing, if the linear part
    /// is shorter than an Ethernet header.
    pub(crate) fn eth_type_trans(&mut self, dev: &NetDevice) -> Result {
        if self.head_len() < ETH_HLEN {
            return Err(EINVAL);
        }
        // SAFETY: `ptr` is valid and ours, `dev` is a valid net_device, and the linear part
        // holds an Ethernet header.
        unsafe { bindings::skb_eth_type_trans(self.as_raw(), dev.as_raw()) };
        Ok(())
    }

    /// Frees the skb as a packet that was handled successfully (`dev_consume_skb_any()`): a sent
    /// packet, say. Any context.
    pub fn consume(self) {
        // SAFETY: We own the reference (type invariant), and give it up here.
        unsafe { bindings::dev_consume_skb_any(self.into_raw()) }
    }
}

impl Drop for SkBuff {
    /// Frees the skb as a dropped packet (`dev_kfree_skb_any()`), in any context.
    fn drop(&mut self) {
        // SAFETY: We own the reference (type invariant) and nobody uses the handle after this.
        unsafe { bindings::dev_kfree_skb_any(self.as_raw()) }
    }
}

/// Part of a page, owned: one reference to the page, and a range of it that nobody else uses.
///
/// Received data often lives in pages rather than in an skb's head: a driver that fills
/// page fragments, or whole pages, hands the part the device wrote to an skb as a fragment
/// ([`SkBuff::add_rx_frag`]), which takes the reference over. Dropping a `PageFrag` puts the
/// reference (`put_page()`), in any context.
///
/// # Invariants
///
/// - `page` is the head page of a page allocation (order 0 or compound) in the kernel's linear
///   mapping, of which we own one reference;
/// - `offset + len` is at most the size of that allocation;
/// - the bytes `offset..offset + len` are ours alone: whoever else holds a reference to the
///   page uses other bytes of it, and nobody writes ours while we hold the handle;
/// - if `skb_head`, the allocation came from the page allocator (`alloc_pages()`) or the
///   page-fragment cache (`netdev_alloc_frag()`), so that `skb_free_frag()` (which
///   `put_page()`s the head page) is the right way to free our reference, and an skb may take
///   our bytes as its head ([`PageFrag::build_skb`]).
pub struct PageFrag {
    page: NonNull<bindings::page>,
    offset: u32,
    len: u32,
    skb_head: bool,
}

// SAFETY: A page reference may be put from any context and CPU; the bytes are ours alone.
unsafe impl Send for PageFrag {}
// SAFETY: `&self` only reads our bytes.
unsafe impl Sync for PageFrag {}

impl PageFrag {
    /// Allocates `len` bytes (at most a page) from the page-fragment cache
    /// (`netdev_alloc_frag()`), starting on a cache line (`SMP_CACHE_BYTES`), as receive
    /// buffers are. Any context (the cache allocates with `GFP_ATOMIC`).
    pub(crate) fn alloc_frag(len: usize) -> Result<Self> {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        if len == 0 || len as usize > crate::page::PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: Plain allocation, any context; the mask asks for a cache-line-aligned start.
        let p = unsafe { bindings::__netdev_alloc_frag_align(len, !(SMP_CACHE_BYTES as u32 - 1)) };
        if p.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `p` is a fragment of a page allocation in the linear mapping (the page
        // fragment cache allocates without `__GFP_HIGHMEM`), so it has a head page and that
        // page has an address.
        let (page, offset) = unsafe {
            let page = bindings::virt_to_head_page(p);
            let base = bindings::page_address(page).cast::<u8>();
            (page, p.cast::<u8>().offset_from(base) as u32)
        };
        let Some(page) = NonNull::new(page) else {
            // Cannot happen: a fragment has a head page. Keep the allocation rather than
            // guess how to free it.
            return Err(ENOMEM);
        };
        // INVARIANT: The cache gave us one reference to the head page and `len` bytes at
        // `offset`, which it hands to nobody else (it frees the page when all references are
        // put); it is the page-fragment cache, so `skb_head` holds.
        Ok(Self {
            page,
            offset,
            len,
            skb_head: true,
        })
    }

    /// Allocates a whole page (`alloc_page()`), zeroed if `gfp` asks; never a high-memory
    /// page (`__GFP_HIGHMEM` is ignored). Only for buffers a device fills: without
    /// `__GFP_ZERO` the page holds whatever the allocator left, as any receive buffer does
    /// where the device wrote less than it said.
    pub(crate) fn alloc_page(gfp: crate::alloc::Flags) -> Result<Self> {
        let gfp = gfp & !crate::alloc::flags::__GFP_HIGHMEM;
        // SAFETY: Plain allocation; without `__GFP_HIGHMEM`, the page is in the linear
        // mapping.
        let page = unsafe { bindings::alloc_pages(gfp.as_raw(), 0) };
        let page = NonNull::new(page).ok_or(ENOMEM)?;
        // INVARIANT: A new order-0 page from the page allocator, whose one reference is ours;
        // all of it is ours.
        Ok(Self {
            page,
            offset: 0,
            len: crate::page::PAGE_SIZE as u32,
            skb_head: true,
        })
    }

    /// The address of the first byte.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        // SAFETY: `page` is valid (type invariant) and in the linear mapping, so it has an
        // address; `offset` is within the allocation.
        unsafe {
            bindings::page_address(self.page.as_ptr())
                .cast::<u8>()
                .add(self.offset as usize)
        }
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: The range is in the allocation, ours alone and not written while we hold
        // it (type invariant); the shared borrow of `self` keeps the reference.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }

    /// Keeps the first `len` bytes (all of them if there are fewer).
    pub fn truncate(&mut self, len: usize) {
        // INVARIANT: the range only shrinks.
        self.len = self.len.min(len as u32);
    }

    /// Drops the first `n` bytes (all of them if there are fewer).
    pub fn advance(&mut self, n: usize) {
        let n = self.len.min(n as u32);
        // INVARIANT: the range only shrinks.
        self.offset += n;
        self.len -= n;
    }

    /// The page.
    pub(crate) fn page_ptr(&self) -> *mut bindings::page {
        self.page.as_ptr()
    }

    /// Builds an skb on the bytes, as C drivers do with `build_skb()`: the first `headroom`
    /// bytes are the skb's headroom, the next `len` its data (which the device wrote), and
    /// the last [`SHINFO_SIZE`] bytes hold its `struct skb_shared_info`; the bytes in between
    /// are its tailroom. The skb takes the page reference over (its head is a page fragment,
    /// `head_frag`, freed with `skb_free_frag()`), and accounts all the bytes as its
    /// `truesize`. Any context.
    ///
    /// Gives the fragment back, unchanged, if the bytes are too few for `headroom + len +`
    /// [`SHINFO_SIZE`], if the shared info would not be aligned for its type, if the fragment
    /// does not come from the page allocator or the page-fragment cache (only their memory
    /// may be an skb's head), or if no skb can be allocated.
    pub fn build_skb(self, headroom: usize, len: usize) -> Result<SkBuff, Self> {
        let need = headroom
            .checked_add(len)
            .and_then(|n| n.checked_add(SHINFO_SIZE));
        if !self.skb_head || !need.is_some_and(|need| need <= self.len()) {
            return Err(self);
        }
        let Ok(reserve) = i32::try_from(headroom) else {
            return Err(self);
        };
        let data = self.as_ptr();
        let shinfo = data as usize + (self.len() - SHINFO_SIZE);
        if shinfo % core::mem::align_of::<bindings::skb_shared_info>() != 0 {
            return Err(self);
        }
        // SAFETY: `data` is our `self.len` bytes (type invariant), in the linear mapping, of an
        // allocation from the page allocator or the page-fragment cache (`skb_head`, checked),
        // so `build_skb` may take them as a page-fragment head, whose head page
        // (`virt_to_head_page(data)`, our page) it frees with `skb_free_frag()`; the shared
        // info goes to the last `SHINFO_SIZE` bytes, aligned (checked). On failure it takes
        // nothing.
        let skb = unsafe { bindings::build_skb(data.cast(), self.len) };
        // SAFETY: A non-null result is a new skb whose one reference is ours.
        let Some(skb) = (unsafe { SkBuff::from_raw(skb) }) else {
            return Err(self);
        };
        // The skb holds the page reference and the bytes now.
        let _ = self.into_parts();
        // SAFETY: The skb is new, ours, linear and empty, with room for `headroom + len` bytes
        // before its shared info (checked above), so reserving `headroom` and putting `len`
        // (less than the fragment's `u32` length) stay in its head.
        unsafe {
            bindings::skb_reserve(skb.as_raw(), reserve);
            bindings::skb_put(skb.as_raw(), len as u32);
        }
        Ok(skb)
    }

    /// Gives up the handle: the caller now owns the reference.
    fn into_parts(self) -> (NonNull<bindings::page>, u32, u32) {
        let parts = (self.page, self.offset, self.len);
        core::mem::forget(self);
        parts
    }
}

impl Drop for PageFrag {
    fn drop(&mut self) {
        // SAFETY: We own one reference (type invariant), and give it up here.
        unsafe { bindings::put_page(self.page.as_ptr()) }
    }
}

/// The size of a level-1 cache line (`L1_CACHE_BYTES`).
pub const L1_CACHE_BYTES: usize = bindings::L1_CACHE_BYTES as usize;

/// The cache line size (`SMP_CACHE_BYTES`), to which `SKB_DATA_ALIGN` rounds.
pub const SMP_CACHE_BYTES: usize = bindings::SMP_CACHE_BYTES as usize;

/// `len` rounded up to a cache line (`SKB_DATA_ALIGN()`).
pub const fn skb_data_align(len: usize) -> usize {
    len.next_multiple_of(SMP_CACHE_BYTES)
}

/// The room an skb built on a buffer ([`PageFrag::build_skb`]) takes at the end of the buffer
/// for its `struct skb_shared_info`: `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`.
pub const SHINFO_SIZE: usize = skb_data_align(core::mem::size_of::<bindings::skb_shared_info>());

/// The bytes a driver leaves before a received frame so that its IP header is aligned
/// (`NET_IP_ALIGN`): 0 where the CPU does not mind (x86), 2 elsewhere.
pub const NET_IP_ALIGN: usize = bindings::NET_IP_ALIGN as usize;

/// The headroom an skb for a received packet gets (`NET_SKB_PAD`), for headers pushed later:
/// `max(32, L1_CACHE_BYTES)`, as `<linux/skbuff.h>` defines it unless the architecture does
/// (`rust/helpers/net_rx.c` checks at build time that the two agree).
pub const NET_SKB_PAD: usize = if bindings::L1_CACHE_BYTES > 32 {
    bindings::L1_CACHE_BYTES as usize
} else {
    32
};

/// The most fragments an skb holds in its own `skb_shared_info` (`MAX_SKB_FRAGS`).
pub const MAX_SKB_FRAGS: usize = bindings::MAX_SKB_FRAGS as usize;

/// Building a received packet: a linear head, then page fragments.
impl SkBuff {
    /// Whether the skb's head is private: not cloned, and the only reference is ours. Only
    /// then may the driver add data to it.
    pub(crate) fn is_private(&self) -> bool {
        // SAFETY: `ptr` is valid (type invariant); we only read.
        unsafe { bindings::skb_cloned(self.as_raw()) == 0 && !bindings::skb_shared(self.as_raw()) }
    }

    /// Appends `data` to the linear part (`skb_put_data()`). `EINVAL` if the skb has
    /// fragments or is shared with a clone, `ENOSPC` if the tailroom is short; then nothing
    /// changes.
    pub fn put_data(&mut self, data: &[u8]) -> Result {
        if !self.is_linear() || !self.is_private() {
            return Err(EINVAL);
        }
        if data.len() > self.tailroom() {
            return Err(ENOSPC);
        }
        // SAFETY: The skb is ours, linear, private, and has `data.len()` bytes of tailroom, so
        // `skb_put` stays in its head and returns where they go, which nobody else uses.
        unsafe {
            let p = bindings::skb_put(self.as_raw(), data.len() as u32).cast::<u8>();
            core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len());
        }
        Ok(())
    }

    /// The number of page fragments (`skb_shinfo(skb)->nr_frags`).
    pub fn nr_frags(&self) -> usize {
        // SAFETY: `ptr` is valid (type invariant), so is its shared info; we only read.
        unsafe { (*bindings::skb_shinfo(self.as_raw())).nr_frags as usize }
    }

    /// Appends `frag` to the packet's fragments (`skb_add_rx_frag()`), accounting `truesize`
    /// bytes of memory to the skb; if it continues the last fragment in the same page, merges
    /// it into that one (`skb_coalesce_rx_frag()`). The skb takes the page reference over.
    /// Fails, handing the fragment back, if the skb is shared or already has
    /// [`MAX_SKB_FRAGS`] fragments that `frag` does not continue, or if `frag` is empty.
    pub fn add_rx_frag(&mut self, frag: PageFrag, truesize: usize) -> Result<(), PageFrag> {
        let n = self.nr_frags();
        if frag.is_empty() || !self.is_private() || truesize > u32::MAX as usize {
            return Err(frag);
        }
        let skb = self.as_raw();
        // SAFETY: The skb is valid and private; `n` is its fragment count, so the last
        // fragment is `n - 1`; this only compares pages and offsets.
        let coalesce = n > 0
            && unsafe {
                bindings::skb_can_coalesce(skb, n as i32, frag.page.as_ptr(), frag.offset as i32)
            };
        if !coalesce && n >= MAX_SKB_FRAGS {
            return Err(frag);
        }
        let (page, offset, len) = frag.into_parts();
        if coalesce {
            // SAFETY: Fragment `n - 1` ends in `page` right where ours starts, so growing it
            // by `len` covers exactly our bytes, which we give to the skb; it holds a
            // reference to the page already, so ours is put.
            unsafe {
                bindings::skb_coalesce_rx_frag(skb, n as i32 - 1, len as i32, truesize as u32);
                bindings::put_page(page.as_ptr());
            }
        } else {
            // SAFETY: There is room for fragment `n`; the page reference and the bytes are
            // ours (invariants of `PageFrag`) and go to the skb, which puts the reference when
            // it is freed.
            unsafe {
                bindings::skb_add_rx_frag(
                    skb,
                    n as i32,
                    page.as_ptr(),
                    offset as i32,
                    len as i32,
                    truesize as u32,
                )
            };
        }
        Ok(())
    }
}

/// Transmit: what a driver needs to hand an skb to a device that takes paged fragments and
/// offloads (checksum, segmentation) as they are.
impl SkBuff {
    /// Makes sure this handle is the skb's only user (`skb_share_check()`): a shared skb (one
    /// that somebody else holds a reference to, as pktgen does) is replaced by a clone, which
    /// has its own `struct sk_buff` (control buffer included) and shares the data. On failure
    /// (no memory for the clone) the skb comes back unchanged. Any context.
    pub fn share_check(self) -> Result<Self, Self> {
        // SAFETY: `ptr` is valid (type invariant).
        if !unsafe { bindings::skb_shared(self.as_raw()) } {
            return Ok(self);
        }
        // SAFETY: `ptr` is valid; `skb_clone` takes its own reference to the data, and leaves
        // ours alone.
        let clone = unsafe { bindings::skb_clone(self.as_raw(), bindings::GFP_ATOMIC) };
        // SAFETY: A non-null result is a new skb whose one reference is ours.
        match unsafe { Self::from_raw(clone) } {
            Some(clone) => {
                // Not a drop: the packet goes on, as the clone.
                self.consume();
                Ok(clone)
            }
            None => Err(self),
        }
    }

    /// Whether the skb has a list of further skbs (`skb_has_frag_list()`), which only devices
    /// with `NETIF_F_FRAGLIST` get.
    pub fn has_frag_list(&self) -> bool {
        // SAFETY: `ptr` is valid (type invariant).
        unsafe { bindings::skb_has_frag_list(self.as_raw()) }
    }

    /// Whether the paged fragments are memory the CPU can read (`skb_frags_readable()`), not
    /// device memory.
    pub fn frags_readable(&self) -> bool {
        // SAFETY: `ptr` is valid (type invariant).
        unsafe { bindings::skb_frags_readable(self.as_raw()) }
    }

    /// Paged fragment `i`: its address in the kernel's linear map and its length; `None` if
    /// there is no such fragment or it has no page (device memory).
    pub(crate) fn frag(&self, i: usize) -> Option<(*const u8, usize)> {
        if i >= self.nr_frags() {
            return None;
        }
        let mut size = 0u32;
        // SAFETY: `ptr` is valid (type invariant) and has more than `i` fragments.
        let addr = unsafe { bindings::skb_frag_address_of(self.as_raw(), i as u32, &mut size) };
        if addr.is_null() {
            return None;
        }
        Some((addr.cast_const().cast(), size as usize))
    }

    /// The control buffer (`skb->cb`), scratch space of the layer that holds the skb: in
    /// `ndo_start_xmit`, the driver.
    pub(crate) fn cb_ptr(&mut self) -> *mut u8 {
        // SAFETY: `ptr` is valid (type invariant); this only computes a field address.
        unsafe { core::ptr::addr_of_mut!((*self.as_raw()).cb).cast() }
    }

    /// The size of the control buffer, as the bindings have it.
    pub const CB_LEN: usize = {
        const fn len_of<T, const N: usize>(_: fn(&bindings::sk_buff) -> &[T; N]) -> usize {
            N
        }
        len_of(|s| &s.cb)
    };

    /// Takes a software transmit timestamp, if one was asked for (`skb_tx_timestamp()`): call
    /// it just before handing the packet to the device.
    pub fn tx_timestamp(&mut self) {
        // SAFETY: `ptr` is valid and ours (type invariant).
        unsafe { bindings::skb_tx_timestamp(self.as_raw()) }
    }

    /// Copies fragments that belong to user space (zero-copy sends) into kernel pages
    /// (`skb_orphan_frags()`), so that their owner is not held back by a driver that frees
    /// sent packets late. Any context (`GFP_ATOMIC`).
    pub fn orphan_frags(&mut self) -> Result {
        // SAFETY: `ptr` is valid and ours (type invariant).
        crate::error::to_result(unsafe {
            bindings::skb_orphan_frags(self.as_raw(), bindings::GFP_ATOMIC)
        })
    }

    /// Lets go of everything a late-freed sent packet would hold on to: its socket
    /// ([`orphan`](Self::orphan)), its route (`skb_dst_drop()`) and its connection tracking
    /// entry (`nf_reset_ct()`), as C drivers do before keeping a sent skb around.
    pub fn release_for_late_free(&mut self) {
        self.orphan();
        // SAFETY: `ptr` is valid and ours (type invariant).
        unsafe {
            bindings::skb_dst_drop(self.as_raw());
            bindings::nf_reset_ct(self.as_raw());
        }
    }
}
