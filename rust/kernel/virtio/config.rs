// SPDX-License-Identifier: GPL-2.0

//! Typed access to a device's config space.
//!
//! Drivers never pass a raw offset. Each device type has a `#[repr(C)]` [`Layout`] here (the
//! `struct virtio_*_config` of its uapi header), and a driver names a field of it with
//! [`config_field!`](crate::virtio_config_field):
//!
//! ```
//! use kernel::virtio::{config::BlkConfig, config_field, Device};
//!
//! fn capacity(dev: &Device) -> Result<u64> {
//!     dev.read(config_field!(BlkConfig, capacity))
//! }
//! ```
//!
//! What that guarantees:
//!
//! - **Bounds, at compile time.** A [`Field`] is a byte offset and a value type whose end lies
//!   inside its layout; a field that does not fit does not build. The macro takes the offset
//!   from `offset_of!` and the type from the field itself.
//! - **Feature-gated fields, at run time.** Fields that exist only with a feature (most of
//!   `virtio_blk_config` past `capacity`) are listed in the layout; reading one whose feature was
//!   not negotiated fails with `EOPNOTSUPP` instead of reaching past what the device implements
//!   (which `BUG()`s on modern PCI and reads the next registers on virtio-mmio).
//! - **The right device.** A layout is only read on a device of its type (`ENODEV` otherwise).
//! - **Consistent snapshots, boundedly.** Reads retry while the device's config generation
//!   changes, at most [`GENERATION_TRIES`] times; a device that never settles gets `EIO` and a
//!   warning, not an endless loop.
//! - **Byte order.** Values are converted from little-endian (modern devices) or guest order
//!   (legacy ones).
//!
//! C header: [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)

use crate::{bindings, prelude::*};
use core::{marker::PhantomData, mem::size_of};

/// How many times a config read is tried while the device's config generation keeps changing.
pub const GENERATION_TRIES: u32 = 8;

/// A byte range of a [`Layout`] that exists only if `feature` was negotiated.
#[derive(Clone, Copy)]
pub struct Gated {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// The feature bit the range depends on.
    pub feature: u32,
}

/// The layout of the device-specific config space of one device type.
///
/// # Safety
///
/// `Self` is a `#[repr(C)]` type whose bytes are the config space of devices with id
/// [`DEVICE_ID`](Layout::DEVICE_ID) as the virtio specification defines it: every byte of `Self`
/// outside the ranges in [`GATED`](Layout::GATED) exists on every such device, and each range in
/// `GATED` exists when its feature was negotiated. The transports then bound every access that
/// stays inside `size_of::<Self>()`.
pub unsafe trait Layout: Sized {
    /// The virtio device id (see [`id`](super::id)).
    const DEVICE_ID: u32;
    /// The ranges that exist only with a feature.
    const GATED: &'static [Gated] = &[];
}

/// A value in config space: `u8`, `u16`, `u32`, `u64`, or a byte array (read a byte at a time,
/// as modern transports require).
pub trait ConfigValue: private::Sealed + Copy {
    #[doc(hidden)]
    const SIZE: usize;
    /// The width of one access.
    #[doc(hidden)]
    const WIDTH: usize;
    #[doc(hidden)]
    fn from_raw(b: &[u8], le: bool) -> Self;
    #[doc(hidden)]
    fn to_raw(self, le: bool, out: &mut [u8]);
}

mod private {
    pub trait Sealed {}
}

macro_rules! config_value {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl ConfigValue for $t {
            const SIZE: usize = size_of::<$t>();
            const WIDTH: usize = size_of::<$t>();
            fn from_raw(b: &[u8], le: bool) -> Self {
                let mut v = [0u8; size_of::<$t>()];
                v.copy_from_slice(&b[..Self::SIZE]);
                if le { <$t>::from_le_bytes(v) } else { <$t>::from_ne_bytes(v) }
            }
            fn to_raw(self, le: bool, out: &mut [u8]) {
                out[..Self::SIZE]
                    .copy_from_slice(&if le { self.to_le_bytes() } else { self.to_ne_bytes() });
            }
        }
    )*};
}
config_value!(u8, u16, u32, u64);

impl<const N: usize> private::Sealed for [u8; N] {}
impl<const N: usize> ConfigValue for [u8; N] {
    const SIZE: usize = N;
    const WIDTH: usize = 1;
    fn from_raw(b: &[u8], _le: bool) -> Self {
        let mut v = [0u8; N];
        v.copy_from_slice(&b[..N]);
        v
    }
    fn to_raw(self, _le: bool, out: &mut [u8]) {
        out[..N].copy_from_slice(&self);
    }
}

/// A field of type `F` at byte `OFF` of layout `L`, whose end is inside `L` (checked when the
/// field is built, at compile time). Make one with [`config_field!`](crate::virtio_config_field).
///
/// # Invariants
///
/// `OFF` is the offset of a field of `L` of type `F`, and `OFF + size_of::<F>() <=
/// size_of::<L>()`.
pub struct Field<L, F, const OFF: usize>(PhantomData<fn(L) -> F>);

impl<L, F, const OFF: usize> Clone for Field<L, F, OFF> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<L, F, const OFF: usize> Copy for Field<L, F, OFF> {}

impl<L: Layout, F: ConfigValue, const OFF: usize> Field<L, F, OFF> {
    /// The field. `_project` ties `F` to the type of a field; it is never called. Use
    /// [`config_field!`](crate::virtio_config_field), which takes `OFF` from `offset_of!`.
    ///
    /// # Safety
    ///
    /// `OFF` is the offset of the field that `_project` reads.
    #[doc(hidden)]
    #[inline]
    pub const unsafe fn new(_project: fn(L) -> F) -> Self {
        const {
            assert!(
                OFF + size_of::<F>() <= size_of::<L>(),
                "a config field must lie inside its layout"
            )
        };
        // INVARIANT: the offset is the field's (safety requirement), and it fits (just checked).
        Self(PhantomData)
    }

    /// The byte offset.
    pub const fn offset(self) -> usize {
        OFF
    }
}

/// Names a field of a config [`Layout`], for [`Device::read`](super::Device::read) and
/// [`Device::write`](super::Device::write): `config_field!(BlkConfig, geometry.heads)`.
///
/// The offset comes from `offset_of!` and the value type from the field, so a field that is not
/// in the layout does not build (6.12's doctests cannot say so: the `mustnotbuild` suite of
/// `make check` does).
#[macro_export]
macro_rules! virtio_config_field {
    ($layout:ty, $($field:ident).+ $(,)?) => {
        // SAFETY: The offset is the field's own, from `offset_of!`, and the projection reads that
        // same field.
        unsafe {
            $crate::virtio::config::Field::<
                $layout,
                _,
                { ::core::mem::offset_of!($layout, $($field).+) },
            >::new(|c: $layout| c.$($field).+)
        }
    };
}
pub use virtio_config_field as config_field;

/// The config space of a block device (`struct virtio_blk_config`).
pub type BlkConfig = bindings::virtio_blk_config;

macro_rules! gated {
    ($l:ty, $feature:expr, $first:ident ..= $last:ident : $last_ty:ty) => {
        Gated {
            start: core::mem::offset_of!($l, $first),
            end: core::mem::offset_of!($l, $last) + size_of::<$last_ty>(),
            feature: $feature,
        }
    };
}

// SAFETY: `virtio_blk_config` is the uapi layout of the block device's config space; `capacity`
// always exists, and every later field exists with the feature the specification (5.2.4) ties it
// to, as listed.
unsafe impl Layout for BlkConfig {
    const DEVICE_ID: u32 = bindings::VIRTIO_ID_BLOCK;
    const GATED: &'static [Gated] = &[
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_SIZE_MAX, size_max ..= size_max: u32),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_SEG_MAX, seg_max ..= seg_max: u32),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_GEOMETRY, geometry ..= geometry:
            bindings::virtio_blk_config_virtio_blk_geometry),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_BLK_SIZE, blk_size ..= blk_size: u32),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_TOPOLOGY,
            physical_block_exp ..= opt_io_size: u32),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_CONFIG_WCE, wce ..= wce: u8),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_MQ, num_queues ..= num_queues: u16),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_DISCARD,
            max_discard_sectors ..= discard_sector_alignment: u32),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_WRITE_ZEROES,
            max_write_zeroes_sectors ..= write_zeroes_may_unmap: u8),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_SECURE_ERASE,
            max_secure_erase_sectors ..= secure_erase_sector_alignment: u32),
        gated!(BlkConfig, bindings::VIRTIO_BLK_F_ZONED, zoned ..= zoned:
            bindings::virtio_blk_config_virtio_blk_zoned_characteristics),
    ];
}

/// The size of the union that ends `struct virtio_input_config`.
pub const INPUT_UNION: usize = 128;

/// The config space of an input device (`struct virtio_input_config`), seen as strings and
/// bitmaps: `u` holds the `size` bytes the `select`/`subsel` pair chose.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct InputConfig {
    /// `VIRTIO_INPUT_CFG_*`: what to show in `u`.
    pub select: u8,
    /// The event type or code, for the selects that need one.
    pub subsel: u8,
    /// How many bytes of `u` are valid.
    pub size: u8,
    /// Reserved.
    pub reserved: [u8; 5],
    /// A string or a bitmap.
    pub u: [u8; INPUT_UNION],
}

/// [`InputConfig`] with `select == VIRTIO_INPUT_CFG_ABS_INFO`: the union holds
/// `struct virtio_input_absinfo`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct InputAbsConfig {
    /// As in [`InputConfig`].
    pub header: [u8; 8],
    /// Minimum value.
    pub min: u32,
    /// Maximum value.
    pub max: u32,
    /// Fuzz.
    pub fuzz: u32,
    /// Flat.
    pub flat: u32,
    /// Resolution.
    pub res: u32,
    /// The rest of the union.
    pub rest: [u8; INPUT_UNION - 20],
}

/// [`InputConfig`] with `select == VIRTIO_INPUT_CFG_ID_DEVIDS`: the union holds
/// `struct virtio_input_devids`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct InputDevidsConfig {
    /// As in [`InputConfig`].
    pub header: [u8; 8],
    /// Bus type.
    pub bustype: u16,
    /// Vendor.
    pub vendor: u16,
    /// Product.
    pub product: u16,
    /// Version.
    pub version: u16,
    /// The rest of the union.
    pub rest: [u8; INPUT_UNION - 8],
}

const _: () = {
    assert!(size_of::<InputConfig>() == 136);
    assert!(size_of::<InputAbsConfig>() == size_of::<InputConfig>());
    assert!(size_of::<InputDevidsConfig>() == size_of::<InputConfig>());
};

// SAFETY: These three are the layout of `struct virtio_input_config` (136 bytes, no feature
// gates), with its union seen as bytes, as absinfo and as devids; every input device has all of
// it (specification 5.8.4).
unsafe impl Layout for InputConfig {
    const DEVICE_ID: u32 = bindings::VIRTIO_ID_INPUT;
}
// SAFETY: See `InputConfig`.
unsafe impl Layout for InputAbsConfig {
    const DEVICE_ID: u32 = bindings::VIRTIO_ID_INPUT;
}
// SAFETY: See `InputConfig`.
unsafe impl Layout for InputDevidsConfig {
    const DEVICE_ID: u32 = bindings::VIRTIO_ID_INPUT;
}

/// `VIRTIO_CONSOLE_F_SIZE`: `cols` and `rows` are valid.
pub const CONSOLE_F_SIZE: u32 = 0;
/// `VIRTIO_CONSOLE_F_MULTIPORT`: `max_nr_ports` is valid, and there are control queues.
pub const CONSOLE_F_MULTIPORT: u32 = 1;
/// `VIRTIO_CONSOLE_F_EMERG_WRITE`: `emerg_wr` is valid.
pub const CONSOLE_F_EMERG_WRITE: u32 = 2;

/// The config space of a console device (`struct virtio_console_config`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ConsoleConfig {
    /// Columns of the console port (with `VIRTIO_CONSOLE_F_SIZE`).
    pub cols: u16,
    /// Rows of the console port (with `VIRTIO_CONSOLE_F_SIZE`).
    pub rows: u16,
    /// How many ports the device may have (with `VIRTIO_CONSOLE_F_MULTIPORT`).
    pub max_nr_ports: u32,
    /// Emergency write register (with `VIRTIO_CONSOLE_F_EMERG_WRITE`).
    pub emerg_wr: u32,
}

const _: () = assert!(size_of::<ConsoleConfig>() == 12);

// SAFETY: `struct virtio_console_config` of the uapi header (12 bytes, packed as laid out
// here); every field exists with the feature the specification (5.3.4) ties it to, as listed.
unsafe impl Layout for ConsoleConfig {
    const DEVICE_ID: u32 = bindings::VIRTIO_ID_CONSOLE;
    const GATED: &'static [Gated] = &[
        gated!(ConsoleConfig, CONSOLE_F_SIZE, cols ..= rows: u16),
        gated!(ConsoleConfig, CONSOLE_F_MULTIPORT, max_nr_ports ..= max_nr_ports: u32),
        gated!(ConsoleConfig, CONSOLE_F_EMERG_WRITE, emerg_wr ..= emerg_wr: u32),
    ];
}

/// The error for a field whose feature was not negotiated: `EOPNOTSUPP`.
pub fn not_negotiated() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// Checks that `L` may be accessed on `dev` at `[off, off + size)`.
pub(super) fn check<L: Layout>(dev: &super::Device, off: usize, size: usize) -> Result {
    if dev.id() != L::DEVICE_ID {
        return Err(ENODEV);
    }
    for g in L::GATED {
        if off < g.end && g.start < off + size && !dev.has_feature(g.feature) {
            return Err(not_negotiated());
        }
    }
    Ok(())
}
