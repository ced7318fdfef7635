// SPDX-License-Identifier: GPL-2.0

//! The control queue (`VIRTIO_NET_F_CTRL_VQ`): commands that set the device's receive filter,
//! VLAN table, address and queue pairs in use (`MQ`), and acknowledge announcements, as C's `virtnet_send_command`.
//!
//! A command is one request: a readable buffer with the class, the command and its data, and
//! a writable status byte. As in C, one command is in flight at a time (under a mutex, in
//! process context), and the queue has no callback: the sender polls for the answer. Unlike C,
//! it does not wait forever: a device that does not answer within [`TIMEOUT_MS`] gets the
//! command counted as failed, and the buffers stay with the queue; a late answer is skipped
//! when the next command looks for its own.

use kernel::{
    net::dev::{RxMode, ETH_ALEN},
    new_mutex,
    prelude::*,
    sync::Mutex,
    virtio::Virtqueue,
};

/// Command classes and commands (`include/uapi/linux/virtio_net.h`).
pub(crate) mod cmd {
    pub(crate) const RX_PROMISC: (u8, u8) = (0, 0);
    pub(crate) const RX_ALLMULTI: (u8, u8) = (0, 1);
    pub(crate) const MAC_TABLE_SET: (u8, u8) = (1, 0);
    pub(crate) const MAC_ADDR_SET: (u8, u8) = (1, 1);
    pub(crate) const VLAN_ADD: (u8, u8) = (2, 0);
    pub(crate) const VLAN_DEL: (u8, u8) = (2, 1);
    pub(crate) const ANNOUNCE_ACK: (u8, u8) = (3, 0);
    pub(crate) const MQ_VQ_PAIRS_SET: (u8, u8) = (4, 0);
    pub(crate) const GUEST_OFFLOADS_SET: (u8, u8) = (5, 0);
}

/// `VIRTIO_NET_OK`, the status of a command that worked.
const OK: u8 = 0;

/// How long a command may take. QEMU answers as the notification traps, so this is only for a
/// device that never does.
pub(crate) const TIMEOUT_MS: u32 = 5000;

/// The control queue of a device: one request of a readable command and a writable status.
#[pin_data]
pub(crate) struct Ctrl {
    #[pin]
    vq: Mutex<Virtqueue<KVec<u8>, KBox<u8>>>,
    /// Whether multi-byte fields are little-endian (modern devices) or in the guest's order.
    le: bool,
}

impl Ctrl {
    pub(crate) fn new(vq: Virtqueue<KVec<u8>, KBox<u8>>, le: bool) -> impl PinInit<Self> {
        pin_init!(Self {
            vq <- new_mutex!(vq, "virtio_net_rs_ctrl"),
            le,
        })
    }

    fn put16(&self, v: u16) -> [u8; 2] {
        if self.le {
            v.to_le_bytes()
        } else {
            v.to_ne_bytes()
        }
    }

    fn put32(&self, v: u32) -> [u8; 4] {
        if self.le {
            v.to_le_bytes()
        } else {
            v.to_ne_bytes()
        }
    }

    /// Sends `command` with `data`, and waits for the device's answer. Process context. `EIO`
    /// if the device answered with an error (or wrote no status) or did not answer in time,
    /// `ENODEV` once it is gone.
    pub(crate) fn send(&self, command: (u8, u8), data: &[u8]) -> Result {
        let mut buf = KVec::with_capacity(2 + data.len(), GFP_KERNEL)?;
        buf.extend_from_slice(&[command.0, command.1], GFP_KERNEL)?;
        buf.extend_from_slice(data, GFP_KERNEL)?;
        // Only an answer from the device makes the status `OK`.
        let status = KBox::new(!OK, GFP_KERNEL)?;
        let ours = buf.as_ptr();
        let mut vq = self.vq.lock();
        vq.add(buf, status, GFP_KERNEL)?;
        if !vq.kick() {
            return Err(ENODEV);
        }
        loop {
            let used = vq.wait_buf(TIMEOUT_MS).ok_or(EIO)?;
            if used.readable.as_ptr() != ours {
                // The late answer to a command that timed out.
                continue;
            }
            return if used.len >= 1 && *used.writable == OK {
                Ok(())
            } else {
                Err(EIO)
            };
        }
    }

    /// Programs the receive filter (C's `virtnet_rx_mode_work`): promiscuous and all-multicast
    /// modes, then the unicast and multicast address tables. Failures are reported, as in C,
    /// not returned: the stack has nothing to retry.
    pub(crate) fn set_rx_mode(&self, mode: &RxMode) {
        if let Err(e) = self.send(cmd::RX_PROMISC, &[u8::from(mode.promisc)]) {
            pr_warn!(
                "virtio_net_rs: failed to {}able promisc mode: {:?}\n",
                if mode.promisc { "en" } else { "dis" },
                e
            );
        }
        if let Err(e) = self.send(cmd::RX_ALLMULTI, &[u8::from(mode.allmulti)]) {
            pr_warn!(
                "virtio_net_rs: failed to {}able allmulti mode: {:?}\n",
                if mode.allmulti { "en" } else { "dis" },
                e
            );
        }
        if let Err(e) = self.send_mac_table(mode) {
            pr_warn!("virtio_net_rs: failed to set MAC filter table: {:?}\n", e);
        }
    }

    /// `VIRTIO_NET_CTRL_MAC_TABLE_SET`: two `struct virtio_net_ctrl_mac`, unicast then multicast.
    fn send_mac_table(&self, mode: &RxMode) -> Result {
        let n = 8 + (mode.uc.len() + mode.mc.len()) * ETH_ALEN;
        let mut t = KVec::with_capacity(n, GFP_KERNEL)?;
        for list in [&mode.uc, &mode.mc] {
            let count = u32::try_from(list.len()).map_err(|_| EINVAL)?;
            t.extend_from_slice(&self.put32(count), GFP_KERNEL)?;
            for mac in list.iter() {
                t.extend_from_slice(mac, GFP_KERNEL)?;
            }
        }
        self.send(cmd::MAC_TABLE_SET, &t)
    }

    /// Adds (`add`) or removes VLAN `vid` from the device's VLAN filter.
    pub(crate) fn vlan(&self, add: bool, vid: u16) -> Result {
        let c = if add { cmd::VLAN_ADD } else { cmd::VLAN_DEL };
        self.send(c, &self.put16(vid))
    }

    /// Sets the device's address (`VIRTIO_NET_CTRL_MAC_ADDR_SET`).
    pub(crate) fn set_mac(&self, mac: &[u8; ETH_ALEN]) -> Result {
        self.send(cmd::MAC_ADDR_SET, mac)
    }

    /// Sets the guest offloads the device may use (`VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET`), as
    /// `VIRTIO_NET_F_GUEST_*` bits.
    pub(crate) fn set_guest_offloads(&self, offloads: u64) -> Result {
        let v = if self.le {
            offloads.to_le_bytes()
        } else {
            offloads.to_ne_bytes()
        };
        self.send(cmd::GUEST_OFFLOADS_SET, &v)
    }

    /// Puts a new queue in place of the old one (restore, after the device was reset); the
    /// old one's buffers are freed with it.
    pub(crate) fn replace(&self, vq: Virtqueue<KVec<u8>, KBox<u8>>) {
        let old = core::mem::replace(&mut *self.vq.lock(), vq);
        drop(old);
    }

    /// Tells the device how many queue pairs to use (`VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET`).
    pub(crate) fn set_queue_pairs(&self, pairs: u16) -> Result {
        self.send(cmd::MQ_VQ_PAIRS_SET, &self.put16(pairs))
    }

    /// Acknowledges an announcement request (`VIRTIO_NET_CTRL_ANNOUNCE_ACK`).
    pub(crate) fn ack_announce(&self) -> Result {
        self.send(cmd::ANNOUNCE_ACK, &[])
    }
}
