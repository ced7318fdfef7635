// SPDX-License-Identifier: GPL-2.0

//! The ethtool side of `virtio_net_rs`: C's `virtnet_get_drvinfo`, `ethtool_op_get_link`,
//! `virtnet_get_ringparam` and `virtnet_get_link_ksettings`, with the link's speed and duplex
//! (`VIRTIO_NET_F_SPEED_DUPLEX`) kept up to date as C's `virtnet_update_settings` does.

use super::{f, Nic};
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};
use kernel::{
    c_str,
    net::dev::{
        ethtool::{self, DrvInfo, Duplex, LinkSettings, RingParam, SPEED_UNKNOWN},
        NetDevice,
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
        let (rx_max, rx) = {
            let vq = self.rx.data().vq.lock();
            (vq.max_size(), vq.size())
        };
        let (tx_max, tx) = self.tx.data().ring_sizes();
        ring.set_rx(rx_max as u32, rx as u32);
        ring.set_tx(tx_max as u32, tx as u32);
    }

    fn get_link_ksettings(&self, _dev: &NetDevice, ks: &mut LinkSettings<'_>) -> Result {
        ks.set_speed(self.settings.speed.load(Relaxed));
        ks.set_duplex(self.settings.duplex());
        ks.set_port_other();
        Ok(())
    }
}
