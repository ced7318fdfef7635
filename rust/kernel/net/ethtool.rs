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
use crate::{bindings, error::from_result, prelude::*};
use core::{ffi::c_int, marker::PhantomData};

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

impl<T: Operations> Registration<T> {
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
