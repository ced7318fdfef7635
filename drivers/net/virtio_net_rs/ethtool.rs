// SPDX-License-Identifier: GPL-2.0

//! The ethtool side of `virtio_net_rs`: C's `virtnet_get_drvinfo`, `ethtool_op_get_link`,
//! `virtnet_get_ringparam` and `virtnet_get_link_ksettings`, with the link's speed and duplex
//! (`VIRTIO_NET_F_SPEED_DUPLEX`) kept up to date as C's `virtnet_update_settings` does; the
//! queue pairs (`virtnet_get_channels`, `virtnet_set_channels`: `ethtool -l`, `-L combined N`);
//! and the driver's per-queue statistics (`ethtool -S`), named and ordered as C 6.12 shows
//! them on a device without `VIRTIO_NET_F_DEVICE_STATS`.

use super::{f, Nic, RxQueue, SendQueue};
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};
use kernel::{
    c_str,
    cpumask::cpus_read_locked,
    net::dev::{
        ethtool::{
            self, Channels, ChannelsRequest, DrvInfo, Duplex, LinkSettings, RealQueues, RingParam,
            RxfhSet, Stats, StatsStrings, RSS_HASH_TOP, SPEED_UNKNOWN,
        },
        Features, NetDevice,
    },
    net_virtio::NetConfig,
    prelude::*,
    str::CString,
    virtio::{config_field, Device},
};

/// C's `VIRTNET_DRIVER_VERSION`.
const VERSION: &CStr = c_str!("1.0.0");

/// What ethtool reports of the device beyond its queues: its bus name and the link's settings.
pub(crate) struct Settings {
    /// `virtio_bus_name()`, taken at probe.
    bus_info: CString,
    /// Mb/s, or `SPEED_UNKNOWN`.
    speed: AtomicU32,
    /// A `Duplex`.
    duplex: AtomicU8,
}

impl Settings {
    /// The settings of `dev`: its bus name, and the speed and duplex it reports, if it does.
    pub(crate) fn new(dev: &Device) -> Result<Self> {
        let this = Self {
            bus_info: CString::try_from_fmt(kernel::fmt!("{}", dev.bus_name()))?,
            speed: AtomicU32::new(SPEED_UNKNOWN),
            duplex: AtomicU8::new(Duplex::Unknown as u8),
        };
        this.update(dev);
        Ok(this)
    }

    /// Re-reads speed and duplex (C's `virtnet_update_settings`), if the device reports them;
    /// a value that is not valid leaves the old one.
    pub(crate) fn update(&self, dev: &Device) {
        if !dev.has_feature(f::SPEED_DUPLEX) {
            return;
        }
        if let Ok(Some(speed)) = dev.read_opt(config_field!(NetConfig, speed)) {
            if ethtool::valid_speed(speed) {
                self.speed.store(speed, Relaxed);
            }
        }
        if let Ok(Some(duplex)) = dev.read_opt(config_field!(NetConfig, duplex)) {
            if let Some(d) = Duplex::from_raw(duplex) {
                self.duplex.store(d as u8, Relaxed);
            }
        }
    }

    fn duplex(&self) -> Duplex {
        Duplex::from_raw(self.duplex.load(Relaxed)).unwrap_or(Duplex::Unknown)
    }
}

#[vtable]
impl ethtool::Operations for Nic {
    fn get_drvinfo(&self, _dev: &NetDevice, info: &mut DrvInfo<'_>) {
        // C reports "virtio_net": this is the Rust module.
        info.set_driver(c_str!("virtio_net_rs"));
        info.set_version(VERSION);
        info.set_bus_info(&self.settings.bus_info);
    }

    fn get_ringparam(&self, _dev: &NetDevice, ring: &mut RingParam<'_>) {
        // As C: the first pair's (all have the same sizes).
        let (Some(rxq), Some(txq)) = (self.rx.get(0), self.tx.get(0)) else {
            return;
        };
        let (rx_max, rx) = {
            let vq = rxq.data().vq.lock();
            (vq.max_size(), vq.size())
        };
        let (tx_max, tx) = txq.data().ring_sizes();
        ring.set_rx(rx_max as u32, rx as u32);
        ring.set_tx(tx_max as u32, tx as u32);
    }

    fn get_link_ksettings(&self, _dev: &NetDevice, ks: &mut LinkSettings<'_>) -> Result {
        ks.set_speed(self.settings.speed.load(Relaxed));
        ks.set_duplex(self.settings.duplex());
        ks.set_port_other();
        Ok(())
    }

    fn get_channels(&self, _dev: &NetDevice, ch: &mut Channels<'_>) {
        ch.set_combined(self.rx.len() as u32, self.pairs() as u32);
    }

    fn set_channels(
        &self,
        dev: &NetDevice,
        req: ChannelsRequest,
        queues: &RealQueues<'_>,
    ) -> Result {
        // As C: only combined channels, at least one, at most the device's pairs.
        if req.rx != 0 || req.tx != 0 || req.other != 0 {
            return Err(EINVAL);
        }
        let pairs = req.combined as usize;
        if pairs == 0 || pairs > self.rx.len() {
            return Err(EINVAL);
        }
        self.set_queues(dev, pairs)?;
        // As C: the pairs in use spread over the CPUs, then the stack's queues follow.
        cpus_read_locked(|cpus| self.set_affinity(dev, cpus));
        queues.set(pairs as u32, pairs as u32)
    }

    fn get_stats_count(&self, _dev: &NetDevice) -> usize {
        // As C: the totals, then each pair in use.
        (RQ_STATS.len() + SQ_STATS.len()) * (1 + self.pairs())
    }

    fn get_stats_strings(&self, _dev: &NetDevice, out: &mut StatsStrings<'_>) {
        let pairs = self.pairs();
        for name in RQ_STATS {
            out.push(kernel::fmt!("rx_{}", name));
        }
        for name in SQ_STATS {
            out.push(kernel::fmt!("tx_{}", name));
        }
        for i in 0..pairs {
            for name in RQ_STATS {
                out.push(kernel::fmt!("rx{}_{}", i, name));
            }
        }
        for i in 0..pairs {
            for name in SQ_STATS {
                out.push(kernel::fmt!("tx{}_{}", i, name));
            }
        }
    }

    fn get_rx_rings(&self, _dev: &NetDevice) -> Result<u32> {
        Ok(self.pairs() as u32)
    }

    fn get_rxfh_fields(&self, _dev: &NetDevice, flow_type: u32) -> Result<u64> {
        // As C: nothing hashed without `RSS` or `HASH_REPORT`.
        Ok(self.rss.as_ref().map_or(0, |r| r.get_fields(flow_type)))
    }

    fn set_rxfh_fields(&self, dev: &NetDevice, flow_type: u32, fields: u64) -> Result {
        let rxhash = dev.features().intersects(Features::RXHASH);
        match (&self.rss, &self.ctrl) {
            (Some(rss), Some(ctrl)) => rss.set_fields(ctrl, flow_type, fields, rxhash),
            _ => Err(EINVAL),
        }
    }

    fn get_rxfh(
        &self,
        _dev: &NetDevice,
        indir: Option<&mut [u32]>,
        key: Option<&mut [u8]>,
    ) -> Result<u8> {
        if let Some(rss) = &self.rss {
            rss.get(indir, key);
        }
        Ok(RSS_HASH_TOP)
    }

    fn set_rxfh(&self, _dev: &NetDevice, req: RxfhSet<'_>) -> Result {
        match (&self.rss, &self.ctrl) {
            (Some(rss), Some(ctrl)) => rss.set(ctrl, req),
            // As C: only the hash function may be "set", to Toeplitz.
            _ if req.indir.is_some() || req.key.is_some() => Err(ethtool::eopnotsupp()),
            _ if req.hfunc != ethtool::RSS_HASH_NO_CHANGE && req.hfunc != RSS_HASH_TOP => {
                Err(ethtool::eopnotsupp())
            }
            _ => Ok(()),
        }
    }

    fn get_stats(&self, _dev: &NetDevice, out: &mut Stats<'_>) {
        let pairs = self.pairs();
        let rq = |i: usize| self.rx.get(i).map_or([0; 6], |q| rq_stats(q.data()));
        let sq = |i: usize| self.tx.get(i).map_or([0; 4], |q| sq_stats(q.data()));
        // The totals: sums over the pairs in use, as C's `virtnet_fill_total_fields`.
        let mut rx_total = [0u64; 6];
        let mut tx_total = [0u64; 4];
        for i in 0..pairs {
            for (t, v) in rx_total.iter_mut().zip(rq(i)) {
                *t += v;
            }
            for (t, v) in tx_total.iter_mut().zip(sq(i)) {
                *t += v;
            }
        }
        for &v in Iterator::chain(rx_total.iter(), tx_total.iter()) {
            out.push(v);
        }
        for i in 0..pairs {
            for v in rq(i) {
                out.push(v);
            }
        }
        for i in 0..pairs {
            for v in sq(i) {
                out.push(v);
            }
        }
    }
}

/// C's `virtnet_rq_stats_desc` (6.12): the driver's receive statistics per queue. No XDP here,
/// so those stay 0.
const RQ_STATS: [&str; 6] = [
    "drops",
    "xdp_packets",
    "xdp_tx",
    "xdp_redirects",
    "xdp_drops",
    "kicks",
];

/// C's `virtnet_sq_stats_desc` (6.12): the driver's transmit statistics per queue.
const SQ_STATS: [&str; 4] = ["xdp_tx", "xdp_tx_drops", "kicks", "tx_timeouts"];

/// The values of [`RQ_STATS`] for `rq`.
fn rq_stats(rq: &RxQueue) -> [u64; 6] {
    [rq.drops(), 0, 0, 0, 0, rq.kicks.load(Relaxed)]
}

/// The values of [`SQ_STATS`] for `sq`.
fn sq_stats(sq: &SendQueue) -> [u64; 4] {
    [0, 0, sq.kicks.load(Relaxed), sq.timeouts()]
}
