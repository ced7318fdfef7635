// SPDX-License-Identifier: GPL-2.0

//! Receive-side scaling (`VIRTIO_NET_F_RSS`) and hash reports (`VIRTIO_NET_F_HASH_REPORT`), as
//! C's `virtnet_init_default_rss`, `virtnet_commit_rss_command`, `virtnet_get/set_hashflow`
//! and `virtio_skb_set_hash`.
//!
//! With `RSS` the device spreads received packets over the receive queues by a Toeplitz hash
//! of their addresses and ports (the hash types), through an indirection table the driver
//! programs with `VIRTIO_NET_CTRL_MQ_RSS_CONFIG`, with the key. With `HASH_REPORT` the device
//! writes the hash and its type into a 20-byte header (`struct virtio_net_hdr_v1_hash`), which
//! the driver gives the skb (`rxhash`, off by default as in C); without `RSS` the hash types
//! and key go to the device with `VIRTIO_NET_CTRL_MQ_HASH_CONFIG` (same layout, one table
//! entry).
//!
//! The configuration is kept here, under a mutex (the commands are sent from process
//! context: probe, ethtool and `ethtool -L` under RTNL), and sent whole on every change.

use super::{ctrl::Ctrl, f};
use kernel::{
    net::{
        dev::ethtool::{self, flow, rxh},
        skb::{HashType, SkBuff},
    },
    net_virtio::{NetConfig, RxHdr},
    new_mutex,
    prelude::*,
    sync::Mutex,
    virtio::{config_field, Device},
};

/// C's `VIRTIO_NET_RSS_MAX_KEY_SIZE`.
const MAX_KEY_SIZE: usize = 40;
/// The largest indirection table taken (the specification's maximum).
const MAX_INDIR_SIZE: u16 = 1 << 15;

/// `VIRTIO_NET_CTRL_MQ_RSS_CONFIG` and `VIRTIO_NET_CTRL_MQ_HASH_CONFIG`.
const CMD_RSS_CONFIG: (u8, u8) = (4, 1);
const CMD_HASH_CONFIG: (u8, u8) = (4, 2);

/// `VIRTIO_NET_RSS_HASH_TYPE_*`.
mod ht {
    pub(super) const IPV4: u32 = 1 << 0;
    pub(super) const TCPV4: u32 = 1 << 1;
    pub(super) const UDPV4: u32 = 1 << 2;
    pub(super) const IPV6: u32 = 1 << 3;
    pub(super) const TCPV6: u32 = 1 << 4;
    pub(super) const UDPV6: u32 = 1 << 5;
    pub(super) const IP_EX: u32 = 1 << 6;
    pub(super) const TCP_EX: u32 = 1 << 7;
    pub(super) const UDP_EX: u32 = 1 << 8;
}

/// What the device does, read at probe.
pub(crate) struct Rss {
    /// `VIRTIO_NET_F_RSS`: the indirection table is ours to program.
    pub(crate) has_rss: bool,
    /// `rss_max_key_size`.
    pub(crate) key_size: u8,
    /// `rss_max_indirection_table_length` (0 without `RSS`).
    pub(crate) indir_size: u16,
    /// `supported_hash_types`, without the `_EX` ones (as C).
    supported: u32,
    state: Pin<KBox<Mutex<State>>>,
}

/// The configuration sent to the device.
struct State {
    /// The hash types in effect (0 with `rxhash` off and only hash reports).
    hash_types: u32,
    /// The hash types chosen (`ethtool -N rx-flow-hash`), C's `rss_hash_types_saved`.
    saved: u32,
    /// The indirection table, `indir_size` entries.
    indir: KVec<u16>,
    /// `max_tx_vq`: the queue pairs in use.
    max_tx_vq: u16,
    key: [u8; MAX_KEY_SIZE],
}

impl Rss {
    /// Reads what the device offers, with `RSS` or `HASH_REPORT`; `None` without either. The
    /// table starts as C's default for `pairs` pairs, the key as the system's.
    pub(crate) fn probe(dev: &Device, pairs: usize) -> Result<Option<Self>> {
        let has_rss = dev.has_feature(f::RSS);
        let has_hash_report = dev.has_feature(f::HASH_REPORT);
        if !has_rss && !has_hash_report {
            return Ok(None);
        }
        // `validate` keeps `HASH_REPORT` only with `RSS`, which gates these fields.
        let indir_size = if has_rss {
            dev.read_opt(config_field!(NetConfig, rss_max_indirection_table_length))?
                .unwrap_or(0)
        } else {
            0
        };
        let key_size = dev
            .read_opt(config_field!(NetConfig, rss_max_key_size))?
            .unwrap_or(0);
        if usize::from(key_size) > MAX_KEY_SIZE {
            pr_err!(
                "virtio{}: rss_max_key_size={} exceeds the limit {}.\n",
                dev.index(),
                key_size,
                MAX_KEY_SIZE
            );
            return Err(EINVAL);
        }
        if indir_size > MAX_INDIR_SIZE {
            pr_err!(
                "virtio{}: rss_max_indirection_table_length={} exceeds the limit {}.\n",
                dev.index(),
                indir_size,
                MAX_INDIR_SIZE
            );
            return Err(EINVAL);
        }
        let supported = dev
            .read_opt(config_field!(NetConfig, supported_hash_types))?
            .unwrap_or(0)
            & !(ht::IP_EX | ht::TCP_EX | ht::UDP_EX);
        let mut indir = KVec::with_capacity(usize::from(indir_size), GFP_KERNEL)?;
        for _ in 0..indir_size {
            indir.push(0, GFP_KERNEL)?;
        }
        let mut state = State {
            hash_types: supported,
            saved: supported,
            indir,
            max_tx_vq: 0,
            key: [0; MAX_KEY_SIZE],
        };
        state.spread(pairs);
        ethtool::rss_key_fill(&mut state.key[..usize::from(key_size)]);
        Ok(Some(Self {
            has_rss,
            key_size,
            indir_size,
            supported,
            state: KBox::pin_init(new_mutex!(state, "virtio_net_rs_rss"), GFP_KERNEL)?,
        }))
    }

    /// Sends the configuration (C's `virtnet_commit_rss_command`).
    fn commit(&self, ctrl: &Ctrl, st: &State) -> Result {
        // `struct virtio_net_rss_config` (or `virtio_net_hash_config`: one table entry).
        let entries = if self.has_rss { st.indir.len() } else { 1 };
        let key = &st.key[..usize::from(self.key_size)];
        let mut c = KVec::with_capacity(13 + 2 * entries + key.len(), GFP_KERNEL)?;
        c.extend_from_slice(&st.hash_types.to_le_bytes(), GFP_KERNEL)?;
        let mask = self.indir_size.saturating_sub(1);
        c.extend_from_slice(&mask.to_le_bytes(), GFP_KERNEL)?;
        // `unclassified_queue`.
        c.extend_from_slice(&0u16.to_le_bytes(), GFP_KERNEL)?;
        for i in 0..entries {
            let q = st.indir.get(i).copied().unwrap_or(0);
            c.extend_from_slice(&q.to_le_bytes(), GFP_KERNEL)?;
        }
        c.extend_from_slice(&st.max_tx_vq.to_le_bytes(), GFP_KERNEL)?;
        c.push(self.key_size, GFP_KERNEL)?;
        c.extend_from_slice(key, GFP_KERNEL)?;
        let cmd = if self.has_rss {
            CMD_RSS_CONFIG
        } else {
            CMD_HASH_CONFIG
        };
        ctrl.send(cmd, &c).inspect_err(|_| {
            pr_warn!("virtio_net_rs: VIRTIONET issue with committing RSS sgs\n");
        })
    }

    /// Sends the configuration as it is (at probe, and on restore).
    pub(crate) fn commit_current(&self, ctrl: &Ctrl) -> Result {
        let st = self.state.lock();
        self.commit(ctrl, &st)
    }

    /// Spreads the table over `pairs` pairs and sends it, which also sets the pairs in use
    /// (C's `virtnet_set_queues` with `RSS` and a table the user did not set). On failure the
    /// old configuration stays.
    pub(crate) fn set_pairs(&self, ctrl: &Ctrl, pairs: usize) -> Result {
        let mut st = self.state.lock();
        let mut old_indir = KVec::with_capacity(st.indir.len(), GFP_KERNEL)?;
        old_indir.extend_from_slice(&st.indir, GFP_KERNEL)?;
        let old = (old_indir, st.max_tx_vq);
        st.spread(pairs);
        let r = self.commit(ctrl, &st);
        if r.is_err() {
            (st.indir, st.max_tx_vq) = old;
        }
        r
    }

    /// Records the pairs in use set without the table (`VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET`), so
    /// that the next command does not undo it.
    pub(crate) fn note_pairs(&self, pairs: usize) {
        self.state.lock().max_tx_vq = pairs as u16;
    }

    /// Turns the hash on or off (`rxhash`, C's `virtnet_set_features`).
    pub(crate) fn set_rxhash(&self, ctrl: &Ctrl, on: bool) -> Result {
        let mut st = self.state.lock();
        st.hash_types = if on { st.saved } else { 0 };
        self.commit(ctrl, &st)
    }

    /// The table and the key (`ethtool -x`).
    pub(crate) fn get(&self, indir: Option<&mut [u32]>, key: Option<&mut [u8]>) {
        let st = self.state.lock();
        if let Some(indir) = indir {
            for (d, &s) in indir.iter_mut().zip(st.indir.iter()) {
                *d = u32::from(s);
            }
        }
        if let Some(key) = key {
            for (d, &s) in key.iter_mut().zip(st.key.iter()) {
                *d = s;
            }
        }
    }

    /// Sets the table or the key (`ethtool -X`), as C's `virtnet_set_rxfh`.
    pub(crate) fn set(&self, ctrl: &Ctrl, req: ethtool::RxfhSet<'_>) -> Result {
        if req.hfunc != ethtool::RSS_HASH_NO_CHANGE && req.hfunc != ethtool::RSS_HASH_TOP {
            return Err(ethtool::eopnotsupp());
        }
        let mut st = self.state.lock();
        let mut update = false;
        if let Some(indir) = req.indir {
            if !self.has_rss {
                return Err(ethtool::eopnotsupp());
            }
            // The core checked every entry against the receive queues in use.
            for (d, &s) in st.indir.iter_mut().zip(indir.iter()) {
                *d = s as u16;
            }
            update = true;
        }
        if let Some(key) = req.key {
            for (d, &s) in st.key.iter_mut().zip(key.iter()) {
                *d = s;
            }
            update = true;
        }
        // As C: a device that refuses is only reported.
        if update {
            let _ = self.commit(ctrl, &st);
        }
        Ok(())
    }

    /// The fields the hash of `flow_type` covers (C's `virtnet_get_hashflow`).
    pub(crate) fn get_fields(&self, flow_type: u32) -> u64 {
        let saved = self.state.lock().saved;
        let (l4, l3) = match flow_type {
            flow::TCP_V4 => (ht::TCPV4, ht::IPV4),
            flow::TCP_V6 => (ht::TCPV6, ht::IPV6),
            flow::UDP_V4 => (ht::UDPV4, ht::IPV4),
            flow::UDP_V6 => (ht::UDPV6, ht::IPV6),
            flow::IPV4 => (0, ht::IPV4),
            flow::IPV6 => (0, ht::IPV6),
            _ => return 0,
        };
        if saved & l4 != 0 {
            L3 | L4
        } else if saved & l3 != 0 {
            L3
        } else {
            0
        }
    }

    /// Makes the hash of `flow_type` cover `fields` (C's `virtnet_set_hashflow`): `sd`,
    /// `sdfn` or `r` (off) only, and only hash types the device has. As C, the device hears
    /// of it only with `rxhash` on.
    pub(crate) fn set_fields(
        &self,
        ctrl: &Ctrl,
        flow_type: u32,
        fields: u64,
        rxhash: bool,
    ) -> Result {
        let is_disable = fields & rxh::DISCARD != 0;
        let is_l4 = fields == L3 | L4;
        if !(fields == L3 || is_l4 || is_disable) {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let mut new = st.saved;
        match flow_type {
            flow::TCP_V4 | flow::UDP_V4 | flow::TCP_V6 | flow::UDP_V6 => {
                let (l3, l4) = match flow_type {
                    flow::TCP_V4 => (ht::IPV4, ht::TCPV4),
                    flow::UDP_V4 => (ht::IPV4, ht::UDPV4),
                    flow::TCP_V6 => (ht::IPV6, ht::TCPV6),
                    _ => (ht::IPV6, ht::UDPV6),
                };
                new &= !(l3 | l4);
                if !is_disable {
                    new |= l3 | if is_l4 { l4 } else { 0 };
                }
            }
            flow::IPV4 | flow::IPV6 => {
                let l3 = if flow_type == flow::IPV4 {
                    ht::IPV4
                } else {
                    ht::IPV6
                };
                new &= !l3;
                if !is_disable {
                    new = l3;
                }
            }
            _ => return Err(EINVAL),
        }
        if new != new & self.supported {
            return Err(EINVAL);
        }
        if new != st.saved {
            st.saved = new;
            st.hash_types = new;
            // As C: a refusal by the device fails the request, the choice stays recorded.
            if rxhash {
                self.commit(ctrl, &st).map_err(|_| EINVAL)?;
            }
        }
        Ok(())
    }
}

/// `sd` and `fn`: the addresses, and the ports.
const L3: u64 = rxh::IP_SRC | rxh::IP_DST;
const L4: u64 = rxh::L4_B_0_1 | rxh::L4_B_2_3;

impl State {
    /// C's `virtnet_rss_update_by_qpairs`: `ethtool_rxfh_indir_default` over `pairs` pairs.
    fn spread(&mut self, pairs: usize) {
        let pairs = pairs.max(1);
        for (i, q) in self.indir.iter_mut().enumerate() {
            *q = (i % pairs) as u16;
        }
        self.max_tx_vq = pairs as u16;
    }
}

/// Gives `skb` the hash the device reported in `hdr` (C's `virtio_skb_set_hash`).
pub(crate) fn set_skb_hash(skb: &mut SkBuff, hdr: &RxHdr) {
    let Some((value, report)) = hdr.hash() else {
        return;
    };
    // `VIRTIO_NET_HASH_REPORT_*`: 1 IPv4, 2 TCPv4, 3 UDPv4, 4 IPv6, 5 TCPv6, 6 UDPv6,
    // 7 IPv6_EX, 8 TCPv6_EX, 9 UDPv6_EX.
    let kind = match report {
        2 | 3 | 5 | 6 | 8 | 9 => HashType::L4,
        1 | 4 | 7 => HashType::L3,
        _ => HashType::None,
    };
    skb.set_hash(value, kind);
}
