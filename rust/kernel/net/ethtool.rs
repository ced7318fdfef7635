// SPDX-License-Identifier: GPL-2.0

//! ethtool operations of a network device (`struct ethtool_ops`).
//!
//! The type `T` a [`Registration<T>`](super::Registration) keeps in the device's private area
//! implements [`Operations`] (a `#[vtable]` trait: what it leaves out, the core answers itself
//! or refuses) and [`Registration::set_ethtool_ops`](super::Registration::set_ethtool_ops)
//! installs them, before registration. The callbacks get `&T` and the device, and fill in
//! typed views of the structures ethtool passes: [`DrvInfo`], [`RingParam`],
//! [`LinkSettings`]. Like the `net_device_ops`, they run only while the device is registered,
//! under RTNL.
//!
//! C header: [`include/linux/ethtool.h`](srctree/include/linux/ethtool.h)

use super::{NetDevice, Priv, Registration, State};
use crate::{
    bindings,
    error::{from_result, to_result},
    prelude::*,
};
use core::{ffi::c_int, marker::PhantomData, sync::atomic::Ordering::Relaxed};

/// Speed unknown (`SPEED_UNKNOWN`), in Mb/s.
pub const SPEED_UNKNOWN: u32 = bindings::SPEED_UNKNOWN as u32;

/// The duplex of a link (`DUPLEX_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Duplex {
    /// Half duplex.
    Half = bindings::DUPLEX_HALF as u8,
    /// Full duplex.
    Full = bindings::DUPLEX_FULL as u8,
    /// Unknown.
    Unknown = bindings::DUPLEX_UNKNOWN as u8,
}

impl Duplex {
    /// The duplex a device reports as `v`, if it is a valid one (`ethtool_validate_duplex()`).
    pub fn from_raw(v: u8) -> Option<Self> {
        match u32::from(v) {
            bindings::DUPLEX_HALF => Some(Self::Half),
            bindings::DUPLEX_FULL => Some(Self::Full),
            bindings::DUPLEX_UNKNOWN => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// Whether `speed` (Mb/s) is a valid speed to report (`ethtool_validate_speed()`): at most
/// `INT_MAX`, or [`SPEED_UNKNOWN`].
pub fn valid_speed(speed: u32) -> bool {
    speed <= i32::MAX as u32 || speed == SPEED_UNKNOWN
}

/// Copies `s` into the C string field `dst`, cut to fit with its NUL (`strscpy()`).
fn copy_str(dst: &mut [crate::ffi::c_char], s: &[u8]) {
    let Some(room) = dst.len().checked_sub(1) else {
        return;
    };
    let n = s.len().min(room);
    for (d, &b) in dst.iter_mut().zip(&s[..n]) {
        *d = b as crate::ffi::c_char;
    }
    dst[n] = 0;
}

/// The driver's description of itself (`struct ethtool_drvinfo`), for `ethtool -i`.
pub struct DrvInfo<'a>(&'a mut bindings::ethtool_drvinfo);

impl DrvInfo<'_> {
    /// The driver's name (at most 31 bytes are kept).
    pub fn set_driver(&mut self, s: &CStr) {
        copy_str(&mut self.0.driver, s.as_bytes());
    }

    /// The driver's version (at most 31 bytes are kept).
    pub fn set_version(&mut self, s: &CStr) {
        copy_str(&mut self.0.version, s.as_bytes());
    }

    /// Where the device is on its bus (at most 31 bytes are kept).
    pub fn set_bus_info(&mut self, s: &CStr) {
        copy_str(&mut self.0.bus_info, s.as_bytes());
    }
}

/// The sizes of the device's rings (`struct ethtool_ringparam`), for `ethtool -g`.
pub struct RingParam<'a>(&'a mut bindings::ethtool_ringparam);

impl RingParam<'_> {
    /// The largest and the current size of the receive ring.
    pub fn set_rx(&mut self, max: u32, current: u32) {
        self.0.rx_max_pending = max;
        self.0.rx_pending = current;
    }

    /// The largest and the current size of the transmit ring.
    pub fn set_tx(&mut self, max: u32, current: u32) {
        self.0.tx_max_pending = max;
        self.0.tx_pending = current;
    }
}

/// The link's settings (the base of `struct ethtool_link_ksettings`), for `ethtool`.
pub struct LinkSettings<'a>(&'a mut bindings::ethtool_link_settings);

impl LinkSettings<'_> {
    /// The speed in Mb/s, or [`SPEED_UNKNOWN`]. An invalid one is reported unknown.
    pub fn set_speed(&mut self, speed: u32) {
        self.0.speed = if valid_speed(speed) {
            speed
        } else {
            SPEED_UNKNOWN
        };
    }

    /// The duplex.
    pub fn set_duplex(&mut self, duplex: Duplex) {
        self.0.duplex = duplex as u8;
    }

    /// The port is not one of the usual kinds (`PORT_OTHER`): a virtual device, say.
    pub fn set_port_other(&mut self) {
        self.0.port = bindings::PORT_OTHER as u8;
    }
}

/// The channels (queue pairs) of a device (`struct ethtool_channels`), for `ethtool -l`.
pub struct Channels<'a>(&'a mut bindings::ethtool_channels);

impl Channels<'_> {
    /// The most and the current combined channels (a receive and a transmit queue each).
    pub fn set_combined(&mut self, max: u32, current: u32) {
        self.0.max_combined = max;
        self.0.combined_count = current;
    }
}

/// What `ethtool -L` asks for (`struct ethtool_channels`): the core checked each count against
/// the maximum [`Operations::get_channels`] reports.
#[derive(Clone, Copy, Debug)]
pub struct ChannelsRequest {
    /// Combined channels.
    pub combined: u32,
    /// Receive-only channels.
    pub rx: u32,
    /// Transmit-only channels.
    pub tx: u32,
    /// Other channels (link interrupts, say).
    pub other: u32,
}

/// The device's queues in use, while RTNL is held (in [`Operations::set_channels`]): what
/// `netif_set_real_num_tx_queues()` and `netif_set_real_num_rx_queues()` need.
pub struct RealQueues<'a> {
    dev: &'a NetDevice,
    _not_send: PhantomData<*mut ()>,
}

impl RealQueues<'_> {
    /// Sets how many of the allocated transmit and receive queues are in use. `EINVAL` if
    /// either is 0 or above what the device has.
    pub fn set(&self, tx: u32, rx: u32) -> Result {
        // SAFETY: The device is valid and registered, and RTNL is held (type invariant: we are
        // in an ethtool callback); the core checks the counts against what it allocated.
        unsafe {
            to_result(bindings::netif_set_real_num_tx_queues(
                self.dev.as_raw(),
                tx,
            ))?;
            to_result(bindings::netif_set_real_num_rx_queues(
                self.dev.as_raw(),
                rx,
            ))
        }
    }
}

/// The names of the statistics (`ethtool -S`): [`Operations::get_stats_strings`] appends them
/// in order, as many as [`Operations::get_stats_count`] said. Extra ones are ignored, missing
/// ones stay empty.
pub struct StatsStrings<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl StatsStrings<'_> {
    /// Appends a name, cut to `ETH_GSTRING_LEN - 1` bytes.
    pub fn push(&mut self, args: core::fmt::Arguments<'_>) {
        const LEN: usize = bindings::ETH_GSTRING_LEN as usize;
        let Some(slot) = self.buf.get_mut(self.at..self.at + LEN) else {
            return;
        };
        self.at += LEN;
        // The slot is zeroed (the NUL), then the name cut to leave its last byte alone.
        slot.fill(0);
        let mut w = SliceWriter {
            buf: &mut slot[..LEN - 1],
            at: 0,
        };
        // Cut when full: what fits is kept.
        let _ = core::fmt::write(&mut w, args);
    }
}

/// Writes formatted text into a byte slice, cutting what does not fit.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.at;
        let n = s.len().min(room);
        self.buf[self.at..self.at + n].copy_from_slice(&s.as_bytes()[..n]);
        self.at += n;
        if n < s.len() {
            return Err(core::fmt::Error);
        }
        Ok(())
    }
}

/// The values of the statistics (`ethtool -S`), in the order of their names:
/// [`Operations::get_stats`] appends them. Extra ones are ignored, missing ones stay 0.
pub struct Stats<'a> {
    buf: &'a mut [u64],
    at: usize,
}

impl Stats<'_> {
    /// Appends a value.
    pub fn push(&mut self, v: u64) {
        if let Some(slot) = self.buf.get_mut(self.at) {
            *slot = v;
            self.at += 1;
        }
    }
}

/// The Toeplitz hash function of RSS (`ETH_RSS_HASH_TOP`), for [`Operations::get_rxfh`] and
/// [`RxfhSet::hfunc`].
pub const RSS_HASH_TOP: u8 = 1 << bindings::ETH_RSS_HASH_TOP_BIT;
/// "Leave the hash function as it is" in [`RxfhSet::hfunc`] (`ETH_RSS_HASH_NO_CHANGE`).
pub const RSS_HASH_NO_CHANGE: u8 = bindings::ETH_RSS_HASH_NO_CHANGE as u8;

/// The flow types of [`Operations::get_rxfh_fields`] and [`Operations::set_rxfh_fields`]
/// (`TCP_V4_FLOW`, ...).
pub mod flow {
    use crate::bindings;
    /// TCP over IPv4.
    pub const TCP_V4: u32 = bindings::TCP_V4_FLOW;
    /// UDP over IPv4.
    pub const UDP_V4: u32 = bindings::UDP_V4_FLOW;
    /// TCP over IPv6.
    pub const TCP_V6: u32 = bindings::TCP_V6_FLOW;
    /// UDP over IPv6.
    pub const UDP_V6: u32 = bindings::UDP_V6_FLOW;
    /// Other IPv4.
    pub const IPV4: u32 = bindings::IPV4_FLOW;
    /// Other IPv6.
    pub const IPV6: u32 = bindings::IPV6_FLOW;
}

/// The header fields a flow hash covers (`RXH_*`), as [`Operations::get_rxfh_fields`] reports
/// them and [`Operations::set_rxfh_fields`] takes them.
pub mod rxh {
    use crate::bindings;
    /// The source address (`s`).
    pub const IP_SRC: u64 = bindings::RXH_IP_SRC as u64;
    /// The destination address (`d`).
    pub const IP_DST: u64 = bindings::RXH_IP_DST as u64;
    /// The first two bytes of the layer 4 header: the source port (`f`).
    pub const L4_B_0_1: u64 = bindings::RXH_L4_B_0_1 as u64;
    /// Its next two: the destination port (`n`).
    pub const L4_B_2_3: u64 = bindings::RXH_L4_B_2_3 as u64;
    /// Drop the flows instead (`r`).
    pub const DISCARD: u64 = bindings::RXH_DISCARD as u64;
}

/// What `set_rxfh` asks for (`struct ethtool_rxfh_param`, for the default context only): a new
/// hash function, indirection table or key, each only if it changes. The table and the key
/// have exactly the sizes the device reported
/// ([`Registration::set_rxfh_sizes`](super::Registration::set_rxfh_sizes)); the core checked
/// that every entry of the table names a receive queue (below `get_rx_rings`).
pub struct RxfhSet<'a> {
    /// The hash function ([`RSS_HASH_TOP`], ...), or [`RSS_HASH_NO_CHANGE`].
    pub hfunc: u8,
    /// The new indirection table.
    pub indir: Option<&'a [u32]>,
    /// The new key.
    pub key: Option<&'a [u8]>,
}

/// `EOPNOTSUPP`: what ethtool answers for an operation the driver does not have.
pub fn eopnotsupp() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// Fills `key` with the system's RSS key (`netdev_rss_key_fill()`): random, the same for every
/// device.
pub fn rss_key_fill(key: &mut [u8]) {
    // SAFETY: `key` is valid for writes of `key.len()` bytes.
    unsafe { bindings::netdev_rss_key_fill(key.as_mut_ptr().cast(), key.len()) }
}

impl NetDevice {
    /// Whether the user set the RSS indirection table (`netif_is_rxfh_configured()`): a driver
    /// then leaves it alone when the queues in use change.
    pub fn is_rxfh_configured(&self) -> bool {
        // SAFETY: The device is valid (type invariant of `NetDevice`).
        unsafe { bindings::netif_is_rxfh_configured(self.as_raw()) }
    }
}

/// The ethtool operations of a device whose private data is `Self`. Each callback runs under
/// RTNL while the device is registered; leave out what the device does not support.
#[vtable]
pub trait Operations: super::Operations {
    /// Describes the driver and the device (`get_drvinfo`).
    fn get_drvinfo(&self, _dev: &NetDevice, _info: &mut DrvInfo<'_>) {}

    /// Whether the link is up (`get_link`). Without it, the carrier says
    /// (`ethtool_op_get_link()`).
    fn get_link(&self, dev: &NetDevice) -> bool {
        // SAFETY: The device is valid (type invariant of `NetDevice`).
        unsafe { bindings::ethtool_op_get_link(dev.as_raw()) != 0 }
    }

    /// Reports the ring sizes (`get_ringparam`).
    fn get_ringparam(&self, _dev: &NetDevice, _ring: &mut RingParam<'_>) {}

    /// Reports the link's speed, duplex and port (`get_link_ksettings`).
    fn get_link_ksettings(&self, _dev: &NetDevice, _ks: &mut LinkSettings<'_>) -> Result {
        Err(EINVAL)
    }

    /// Reports the channels (`get_channels`).
    fn get_channels(&self, _dev: &NetDevice, _ch: &mut Channels<'_>) {}

    /// Changes the channels (`set_channels`); `queues` sets how many of the device's queues
    /// the stack uses.
    fn set_channels(
        &self,
        _dev: &NetDevice,
        _req: ChannelsRequest,
        _queues: &RealQueues<'_>,
    ) -> Result {
        Err(EINVAL)
    }

    /// How many statistics `ethtool -S` shows (`get_sset_count(ETH_SS_STATS)`). It may change
    /// (with the channels, say); the names and values that follow it under the same RTNL
    /// section are cut to it.
    fn get_stats_count(&self, _dev: &NetDevice) -> usize {
        0
    }

    /// The names of the statistics (`get_strings(ETH_SS_STATS)`).
    fn get_stats_strings(&self, _dev: &NetDevice, _out: &mut StatsStrings<'_>) {}

    /// The values of the statistics (`get_ethtool_stats`).
    fn get_stats(&self, _dev: &NetDevice, _out: &mut Stats<'_>) {}

    /// The receive queues RSS may name (`ETHTOOL_GRXRINGS` of `get_rxnfc`): those in use.
    /// With [`Operations::get_rxfh_fields`] (at least one of them) the core gets `get_rxnfc`.
    fn get_rx_rings(&self, _dev: &NetDevice) -> Result<u32> {
        Err(eopnotsupp())
    }

    /// The header fields (`rxh::*`) the hash of flows of type `flow_type` (`flow::*`) covers
    /// (`ETHTOOL_GRXFH` of `get_rxnfc`).
    fn get_rxfh_fields(&self, _dev: &NetDevice, _flow_type: u32) -> Result<u64> {
        Err(eopnotsupp())
    }

    /// Makes the hash of flows of type `flow_type` cover the header fields `fields`
    /// (`ETHTOOL_SRXFH` of `set_rxnfc`).
    fn set_rxfh_fields(&self, _dev: &NetDevice, _flow_type: u32, _fields: u64) -> Result {
        Err(eopnotsupp())
    }

    /// Fills in the RSS indirection table and key that were asked for (each exactly of the
    /// sizes set with [`Registration::set_rxfh_sizes`](super::Registration::set_rxfh_sizes)),
    /// and returns the hash function ([`RSS_HASH_TOP`], ...). With it, the core gets
    /// `get_rxfh_indir_size` and `get_rxfh_key_size`, which report those sizes.
    fn get_rxfh(
        &self,
        _dev: &NetDevice,
        _indir: Option<&mut [u32]>,
        _key: Option<&mut [u8]>,
    ) -> Result<u8> {
        Err(eopnotsupp())
    }

    /// Sets the RSS hash function, indirection table or key.
    fn set_rxfh(&self, _dev: &NetDevice, _req: RxfhSet<'_>) -> Result {
        Err(eopnotsupp())
    }
}

/// Turns [`Operations`] into a `struct ethtool_ops`.
struct Adapter<T: Operations>(PhantomData<T>);

impl<T: Operations> Adapter<T> {
    const OPS: bindings::ethtool_ops = {
        // SAFETY: An all-zero `ethtool_ops` (no callbacks, no capabilities) is valid.
        let mut ops: bindings::ethtool_ops = unsafe { core::mem::zeroed() };
        if T::HAS_GET_DRVINFO {
            ops.get_drvinfo = Some(Self::get_drvinfo);
        }
        ops.get_link = Some(Self::get_link);
        if T::HAS_GET_RINGPARAM {
            ops.get_ringparam = Some(Self::get_ringparam);
        }
        if T::HAS_GET_LINK_KSETTINGS {
            ops.get_link_ksettings = Some(Self::get_link_ksettings);
        }
        if T::HAS_GET_CHANNELS {
            ops.get_channels = Some(Self::get_channels);
        }
        if T::HAS_SET_CHANNELS {
            ops.set_channels = Some(Self::set_channels);
        }
        if T::HAS_GET_STATS_COUNT {
            ops.get_sset_count = Some(Self::get_sset_count);
            ops.get_strings = Some(Self::get_strings);
            ops.get_ethtool_stats = Some(Self::get_ethtool_stats);
        }
        if T::HAS_GET_RX_RINGS || T::HAS_GET_RXFH_FIELDS {
            ops.get_rxnfc = Some(Self::get_rxnfc);
        }
        if T::HAS_SET_RXFH_FIELDS {
            ops.set_rxnfc = Some(Self::set_rxnfc);
        }
        if T::HAS_GET_RXFH {
            ops.get_rxfh_indir_size = Some(Self::get_rxfh_indir_size);
            ops.get_rxfh_key_size = Some(Self::get_rxfh_key_size);
            ops.get_rxfh = Some(Self::get_rxfh);
        }
        if T::HAS_SET_RXFH {
            ops.set_rxfh = Some(Self::set_rxfh);
        }
        ops
    };

    /// # Safety
    ///
    /// `dev` is a registered device of a `Registration<T>`.
    unsafe fn data<'a>(dev: *mut bindings::net_device) -> (&'a T, &'a NetDevice) {
        // SAFETY: By the safety requirements; ethtool calls the ops only on registered devices
        // (it finds them by name or index, under RTNL), while `Priv<T>` lives.
        unsafe {
            (
                &(*bindings::netdev_priv(dev).cast::<Priv<T>>()).data,
                NetDevice::from_raw(dev),
            )
        }
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_drvinfo` of a device of a `Registration<T>`, with a valid
    /// `info`.
    unsafe extern "C" fn get_drvinfo(
        dev: *mut bindings::net_device,
        info: *mut bindings::ethtool_drvinfo,
    ) {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        // SAFETY: `info` is valid and ours for the call (safety requirements).
        T::get_drvinfo(data, dev, &mut DrvInfo(unsafe { &mut *info }));
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_link` of a device of a `Registration<T>`.
    unsafe extern "C" fn get_link(dev: *mut bindings::net_device) -> u32 {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        u32::from(T::get_link(data, dev))
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_ringparam` of a device of a `Registration<T>`, with a valid
    /// `ring`.
    unsafe extern "C" fn get_ringparam(
        dev: *mut bindings::net_device,
        ring: *mut bindings::ethtool_ringparam,
        _kernel_ring: *mut bindings::kernel_ethtool_ringparam,
        _extack: *mut bindings::netlink_ext_ack,
    ) {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        // SAFETY: `ring` is valid and ours for the call (safety requirements).
        T::get_ringparam(data, dev, &mut RingParam(unsafe { &mut *ring }));
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_link_ksettings` of a device of a `Registration<T>`, with a
    /// valid `ks`.
    unsafe extern "C" fn get_link_ksettings(
        dev: *mut bindings::net_device,
        ks: *mut bindings::ethtool_link_ksettings,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        // SAFETY: `ks` is valid and ours for the call (safety requirements); we hand out its
        // base only.
        let base = unsafe { &mut (*ks).base };
        from_result(|| T::get_link_ksettings(data, dev, &mut LinkSettings(base)).map(|()| 0))
    }
}

impl<T: Operations> Adapter<T> {
    /// # Safety
    ///
    /// Called by ethtool as `get_channels` of a device of a `Registration<T>`, with a valid
    /// `ch`.
    unsafe extern "C" fn get_channels(
        dev: *mut bindings::net_device,
        ch: *mut bindings::ethtool_channels,
    ) {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        // SAFETY: `ch` is valid and ours for the call (safety requirements).
        T::get_channels(data, dev, &mut Channels(unsafe { &mut *ch }));
    }

    /// # Safety
    ///
    /// Called by ethtool as `set_channels` of a device of a `Registration<T>`, under RTNL,
    /// with a valid `ch`.
    unsafe extern "C" fn set_channels(
        dev: *mut bindings::net_device,
        ch: *mut bindings::ethtool_channels,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        // SAFETY: `ch` is valid for the call (safety requirements).
        let ch = unsafe { &*ch };
        let req = ChannelsRequest {
            combined: ch.combined_count,
            rx: ch.rx_count,
            tx: ch.tx_count,
            other: ch.other_count,
        };
        // INVARIANT: RTNL is held for the duration of the callback, which `queues` cannot
        // leave (it borrows from here and is not `Send`).
        let queues = RealQueues {
            dev,
            _not_send: PhantomData,
        };
        from_result(|| T::set_channels(data, dev, req, &queues).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_sset_count` of a device of a `Registration<T>`, under RTNL.
    unsafe extern "C" fn get_sset_count(dev: *mut bindings::net_device, sset: c_int) -> c_int {
        if sset != bindings::ethtool_stringset_ETH_SS_STATS as c_int {
            return -(bindings::EOPNOTSUPP as c_int);
        }
        // SAFETY: By the safety requirements.
        let (data, ndev) = unsafe { Self::data(dev) };
        let n = T::get_stats_count(data, ndev).min(STATS_MAX);
        // SAFETY: By the safety requirements, the private area holds a live `Priv<T>`.
        let p = unsafe { &*bindings::netdev_priv(dev).cast::<Priv<T>>() };
        // What the buffer of the `get_strings` that follows has room for (see there).
        p.ethtool_stats.store(n, Relaxed);
        n as c_int
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_strings` of a device of a `Registration<T>`, under RTNL, with
    /// a buffer of as many names as `get_sset_count` returned for `sset` last.
    unsafe extern "C" fn get_strings(dev: *mut bindings::net_device, sset: u32, buf: *mut u8) {
        if sset != bindings::ethtool_stringset_ETH_SS_STATS {
            return;
        }
        // SAFETY: By the safety requirements.
        let (data, ndev) = unsafe { Self::data(dev) };
        // SAFETY: As above.
        let p = unsafe { &*bindings::netdev_priv(dev).cast::<Priv<T>>() };
        let n = p.ethtool_stats.load(Relaxed);
        // SAFETY: The core sized `buf` from the count our `get_sset_count` returned (and
        // stored) just before, in the same RTNL section (ioctl and netlink alike): it has room
        // for `n` names of `ETH_GSTRING_LEN` bytes, and is ours for the call.
        let buf =
            unsafe { core::slice::from_raw_parts_mut(buf, n * bindings::ETH_GSTRING_LEN as usize) };
        T::get_stats_strings(data, ndev, &mut StatsStrings { buf, at: 0 });
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_ethtool_stats` of a device of a `Registration<T>`, under
    /// RTNL, with `stats->n_stats` values at `buf`.
    unsafe extern "C" fn get_ethtool_stats(
        dev: *mut bindings::net_device,
        stats: *mut bindings::ethtool_stats,
        buf: *mut u64,
    ) {
        // SAFETY: By the safety requirements.
        let (data, ndev) = unsafe { Self::data(dev) };
        // SAFETY: `stats` is valid for the call; `buf` has room for `n_stats` values, which the
        // core allocated for this call (safety requirements).
        let buf = unsafe { core::slice::from_raw_parts_mut(buf, (*stats).n_stats as usize) };
        T::get_stats(data, ndev, &mut Stats { buf, at: 0 });
    }
}

/// The most statistics a device reports: far more than any uses, and a buffer the core can
/// allocate (it refuses above `S32_MAX / 8`).
impl<T: Operations> Adapter<T> {
    /// The private area of `dev`.
    ///
    /// # Safety
    ///
    /// As for [`Self::data`].
    unsafe fn priv_<'a>(dev: *mut bindings::net_device) -> &'a Priv<T> {
        // SAFETY: By the safety requirements, the private area holds a live `Priv<T>`.
        unsafe { &*bindings::netdev_priv(dev).cast::<Priv<T>>() }
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_rxnfc` of a device of a `Registration<T>`, with a valid
    /// `info`.
    unsafe extern "C" fn get_rxnfc(
        dev: *mut bindings::net_device,
        info: *mut bindings::ethtool_rxnfc,
        _rule_locs: *mut u32,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, ndev) = unsafe { Self::data(dev) };
        // SAFETY: `info` is valid and ours for the call (safety requirements). The rule
        // locations (`ETHTOOL_GRXCLSRLALL` only) are never touched.
        let info = unsafe { &mut *info };
        from_result(|| {
            info.data = match info.cmd {
                bindings::ETHTOOL_GRXRINGS => u64::from(T::get_rx_rings(data, ndev)?),
                bindings::ETHTOOL_GRXFH => T::get_rxfh_fields(data, ndev, info.flow_type)?,
                _ => return Err(eopnotsupp()),
            };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by ethtool as `set_rxnfc` of a device of a `Registration<T>`, with a valid
    /// `info`.
    unsafe extern "C" fn set_rxnfc(
        dev: *mut bindings::net_device,
        info: *mut bindings::ethtool_rxnfc,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, ndev) = unsafe { Self::data(dev) };
        // SAFETY: `info` is valid for the call (safety requirements).
        let info = unsafe { &*info };
        from_result(|| match info.cmd {
            bindings::ETHTOOL_SRXFH => {
                T::set_rxfh_fields(data, ndev, info.flow_type, info.data).map(|()| 0)
            }
            _ => Err(eopnotsupp()),
        })
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_rxfh_indir_size` of a device of a `Registration<T>`.
    unsafe extern "C" fn get_rxfh_indir_size(dev: *mut bindings::net_device) -> u32 {
        // SAFETY: By the safety requirements.
        unsafe { Self::priv_(dev) }.rxfh_sizes.0.load(Relaxed)
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_rxfh_key_size` of a device of a `Registration<T>`.
    unsafe extern "C" fn get_rxfh_key_size(dev: *mut bindings::net_device) -> u32 {
        // SAFETY: By the safety requirements.
        unsafe { Self::priv_(dev) }.rxfh_sizes.1.load(Relaxed)
    }

    /// The table and the key of `rxfh`, as slices of the sizes we report.
    ///
    /// # Safety
    ///
    /// `dev` as for [`Self::data`]; `rxfh` is valid, and its `indir` and `key`, when not null,
    /// point to buffers the core sized with our `get_rxfh_indir_size` and `get_rxfh_key_size`
    /// (which report the sizes fixed before registration), ours for the call.
    unsafe fn buffers<'a>(
        dev: *mut bindings::net_device,
        rxfh: &bindings::ethtool_rxfh_param,
    ) -> (Option<&'a mut [u32]>, Option<&'a mut [u8]>) {
        // SAFETY: By the safety requirements.
        let p = unsafe { Self::priv_(dev) };
        let (n, k) = (
            p.rxfh_sizes.0.load(Relaxed) as usize,
            p.rxfh_sizes.1.load(Relaxed) as usize,
        );
        // SAFETY: By the safety requirements, a non-null `indir` has room for `n` entries and
        // `key` for `k` bytes (the core allocates them from the sizes we report), disjoint.
        unsafe {
            (
                (!rxfh.indir.is_null()).then(|| core::slice::from_raw_parts_mut(rxfh.indir, n)),
                (!rxfh.key.is_null()).then(|| core::slice::from_raw_parts_mut(rxfh.key, k)),
            )
        }
    }

    /// # Safety
    ///
    /// Called by ethtool as `get_rxfh` of a device of a `Registration<T>`, with a valid
    /// `rxfh` whose buffers the core sized with our `get_rxfh_indir_size` and
    /// `get_rxfh_key_size`.
    unsafe extern "C" fn get_rxfh(
        dev: *mut bindings::net_device,
        rxfh: *mut bindings::ethtool_rxfh_param,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, ndev) = unsafe { Self::data(dev) };
        // SAFETY: `rxfh` is valid and ours for the call (safety requirements).
        let rxfh = unsafe { &mut *rxfh };
        if rxfh.rss_context != 0 {
            // No contexts here (`cap_rss_ctx_supported` is not set): only the default one.
            return -(bindings::EOPNOTSUPP as c_int);
        }
        // SAFETY: The core sizes the buffers of `get_rxfh` from our size callbacks.
        let (indir, key) = unsafe { Self::buffers(dev, rxfh) };
        from_result(|| {
            rxfh.hfunc = T::get_rxfh(data, ndev, indir, key)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by ethtool as `set_rxfh` of a device of a `Registration<T>`, with a valid
    /// `rxfh` whose buffers the core sized with our `get_rxfh_indir_size` and
    /// `get_rxfh_key_size`.
    unsafe extern "C" fn set_rxfh(
        dev: *mut bindings::net_device,
        rxfh: *mut bindings::ethtool_rxfh_param,
        _extack: *mut bindings::netlink_ext_ack,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, ndev) = unsafe { Self::data(dev) };
        // SAFETY: `rxfh` is valid for the call (safety requirements).
        let rxfh = unsafe { &*rxfh };
        if rxfh.rss_context != 0 || rxfh.rss_delete != 0 {
            return -(bindings::EOPNOTSUPP as c_int);
        }
        // SAFETY: The core sizes the buffers of `set_rxfh` from our size callbacks.
        let (indir, key) = unsafe { Self::buffers(dev, rxfh) };
        let req = RxfhSet {
            hfunc: rxfh.hfunc,
            indir: indir.map(|s| &*s),
            key: key.map(|s| &*s),
        };
        from_result(|| T::set_rxfh(data, ndev, req).map(|()| 0))
    }
}

const STATS_MAX: usize = 1 << 16;

impl<T: Operations> Registration<T> {
    /// Sets the sizes of the RSS indirection table (entries) and key (bytes) that ethtool
    /// reports (`get_rxfh_indir_size`, `get_rxfh_key_size`) and the buffers of
    /// [`Operations::get_rxfh`] and [`Operations::set_rxfh`] have. Before registration only:
    /// `EBUSY` after.
    pub fn set_rxfh_sizes(&self, indir: u32, key: u32) -> Result {
        let p = self.priv_();
        let st = p.state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        p.rxfh_sizes.0.store(indir, Relaxed);
        p.rxfh_sizes.1.store(key, Relaxed);
        Ok(())
    }

    /// Gives the device `T`'s ethtool operations. Only before
    /// [`register`](Registration::register): `EBUSY` after.
    pub fn set_ethtool_ops(&self) -> Result {
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        // SAFETY: The device is valid and not registered (we hold the state lock in `New`), so
        // nobody reads its ops meanwhile; the table is a constant, so it lives forever.
        unsafe { (*self.dev.as_ptr()).ethtool_ops = &Adapter::<T>::OPS };
        Ok(())
    }
}
