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

    /// Allocates an skb for `dev` with room for `len` bytes of data after `NET_IP_ALIGN` bytes
    /// of headroom (`netdev_alloc_skb_ip_align`). Any context (it allocates with `GFP_ATOMIC`).
    pub fn alloc(dev: &NetDevice, len: usize) -> Result<Self> {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: `dev` is a valid net_device (type invariant of `NetDevice`).
        let skb = unsafe { bindings::netdev_alloc_skb_ip_align(dev.as_raw(), len) };
        // SAFETY: A non-null result is a new skb whose one reference is ours.
        unsafe { Self::from_raw(skb) }.ok_or(ENOMEM)
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

    /// The number of paged fragments (`skb_shinfo(skb)->nr_frags`).
    pub fn nr_frags(&self) -> usize {
        // SAFETY: `ptr` is valid (type invariant).
        unsafe { bindings::skb_nr_frags(self.as_raw()) as usize }
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
