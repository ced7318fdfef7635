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
