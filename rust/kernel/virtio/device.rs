// SPDX-License-Identifier: GPL-2.0

//! Virtio devices, with the context they are used in encoded in the type.
//!
//! A [`Device<Ctx>`] is a `struct virtio_device` seen from a driver callback. The context decides
//! what the driver may do:
//!
//! - [`Atomic`]: interrupt or atomic context (`config_changed`): identity and negotiated
//!   features only;
//! - [`Bound`]: process context while bound (`ready`, `remove`): also config space, which may
//!   sleep;
//! - [`Validate`]: before features are final: may also clear features;
//! - [`Probe`]: during probe: may also find the virtqueues, once.
//!
//! Each context dereferences to the weaker one, so `&Device<Probe>` can be used where a
//! `&Device` ([`Bound`]) is expected. Drivers never construct a [`Device`]; the adapter hands
//! them out, and never one that allows setting `DRIVER_OK` or resetting: the adapter does both,
//! in the order the virtio specification requires.
//!
//! C header: [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)

use super::{state::DevState, virtqueue::Queues};
use crate::{alloc::KVec, bindings, error::to_result, prelude::*, types::Opaque};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};

mod private {
    pub trait Sealed {}
}

/// The context a [`Device`] is used in. Sealed: see the [module documentation](self).
pub trait DeviceContext: private::Sealed {}

/// Atomic context: identity and features only.
pub struct Atomic;
/// Process context, driver bound: adds config space access.
pub struct Bound;
/// Feature validation, before `FEATURES_OK`: adds clearing features.
pub struct Validate;
/// Probe: adds finding the virtqueues.
pub struct Probe;

impl private::Sealed for Atomic {}
impl private::Sealed for Bound {}
impl private::Sealed for Validate {}
impl private::Sealed for Probe {}
impl DeviceContext for Atomic {}
impl DeviceContext for Bound {}
impl DeviceContext for Validate {}
impl DeviceContext for Probe {}

/// A virtio device (`struct virtio_device`), in context `Ctx`.
///
/// # Invariants
///
/// `self.0` is a valid, registered `struct virtio_device` whose driver is the Rust adapter, for
/// as long as the reference the adapter handed out lives, and the current context is `Ctx`.
#[repr(transparent)]
pub struct Device<Ctx: DeviceContext = Bound>(Opaque<bindings::virtio_device>, PhantomData<Ctx>);

macro_rules! deref_to {
    ($from:ty => $to:ty) => {
        impl Deref for Device<$from> {
            type Target = Device<$to>;
            fn deref(&self) -> &Device<$to> {
                // SAFETY: Same representation; `$to` allows a subset of what `$from` allows.
                unsafe { &*(self as *const Self).cast() }
            }
        }
    };
}
deref_to!(Probe => Bound);
deref_to!(Validate => Bound);
deref_to!(Bound => Atomic);

impl<Ctx: DeviceContext> Device<Ctx> {
    /// # Safety
    ///
    /// `vdev` must satisfy the type invariants for `'a` and the caller must be in context `Ctx`.
    pub(super) unsafe fn from_raw<'a>(vdev: *mut bindings::virtio_device) -> &'a Self {
        // SAFETY: `Device` is a transparent wrapper of `virtio_device`; validity is guaranteed by
        // the caller.
        unsafe { &*vdev.cast() }
    }

    pub(super) fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }
}

impl Device<Atomic> {
    /// The virtio device id (for example `4` for an entropy source).
    pub fn id(&self) -> u32 {
        // SAFETY: `id` is set before the device is registered and never changes.
        unsafe { (*self.as_raw()).id.device }
    }

    /// The subsystem vendor id.
    pub fn vendor(&self) -> u32 {
        // SAFETY: As above.
        unsafe { (*self.as_raw()).id.vendor }
    }

    /// The device index, as in its name `virtioN`; unique among virtio devices.
    pub fn index(&self) -> u32 {
        // SAFETY: `index` is set before the device is registered and never changes.
        unsafe { (*self.as_raw()).index as u32 }
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        // SAFETY: `features` only changes before probe and in `validate`, which runs in the only
        // thread that has a `Device` at that time.
        unsafe { (*self.as_raw()).features }
    }

    /// Whether feature `bit` was negotiated. Unlike the C `virtio_has_feature`, asking about a
    /// feature the driver did not offer is not a bug: the answer is `false`.
    pub fn has_feature(&self, bit: u32) -> bool {
        bit < 64 && self.features() & (1u64 << bit) != 0
    }

    /// Whether the device speaks virtio 1.0 or later (`VIRTIO_F_VERSION_1`), rather than legacy.
    pub fn is_modern(&self) -> bool {
        self.has_feature(bindings::VIRTIO_F_VERSION_1)
    }

    /// The generic device, for `dev_*!` printing and the like.
    pub fn as_dev(&self) -> &crate::device::Device {
        // SAFETY: `dev` is embedded in the valid `virtio_device`, so its refcount is non-zero
        // for as long as `self` lives.
        unsafe { crate::device::Device::as_ref(core::ptr::addr_of_mut!((*self.as_raw()).dev)) }
    }
}

/// A value in device config space: `u8`, `u16`, `u32` or `u64`.
///
/// Modern devices store values little-endian, legacy devices in guest byte order;
/// [`Device::read_config`] converts either way.
pub trait ConfigValue: private::Sealed + Copy {
    #[doc(hidden)]
    const SIZE: usize;
    #[doc(hidden)]
    fn from_bytes(b: &[u8; 8], le: bool) -> Self;
    #[doc(hidden)]
    fn to_bytes(self, le: bool) -> [u8; 8];
}

macro_rules! config_value {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl ConfigValue for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn from_bytes(b: &[u8; 8], le: bool) -> Self {
                let mut v = [0u8; core::mem::size_of::<$t>()];
                v.copy_from_slice(&b[..Self::SIZE]);
                if le { <$t>::from_le_bytes(v) } else { <$t>::from_ne_bytes(v) }
            }
            fn to_bytes(self, le: bool) -> [u8; 8] {
                let mut b = [0u8; 8];
                b[..Self::SIZE].copy_from_slice(&if le { self.to_le_bytes() } else { self.to_ne_bytes() });
                b
            }
        }
    )*};
}
config_value!(u8, u16, u32, u64);

impl Device<Bound> {
    fn little_endian(&self) -> bool {
        // SAFETY: The device is valid by the type invariant.
        unsafe { bindings::virtio_is_little_endian(self.as_raw()) }
    }

    /// Reads `buf.len()` bytes of config space at `offset`, one byte at a time, retrying until
    /// the device's generation counter shows a consistent snapshot. May sleep. For a multi-byte
    /// field, use [`Device::read_config`], which reads it in one access of its width.
    ///
    /// `offset` is relative to the device-specific config space; reading past the end of what
    /// the device implements is a driver bug (transports may `BUG()` on it).
    pub fn read_config_bytes(&self, offset: usize, buf: &mut [u8]) {
        if buf.is_empty() {
            return;
        }
        let Ok(offset) = u32::try_from(offset) else {
            buf.fill(0);
            return;
        };
        // SAFETY: The device is valid and we are in process context (type invariant); `buf` is
        // valid for writes of `buf.len()` bytes.
        unsafe {
            bindings::virtio_cread_bytes(self.as_raw(), offset, buf.as_mut_ptr().cast(), buf.len())
        }
    }

    /// Reads one field of config space at `offset`, in the device's byte order (little-endian
    /// for modern devices, guest order for legacy ones), with the generation-counter retry.
    /// May sleep.
    ///
    /// ```
    /// # use kernel::virtio::Device;
    /// // struct virtio_blk_config { __virtio64 capacity; ... }
    /// fn capacity(dev: &Device) -> u64 {
    ///     dev.read_config::<u64>(0)
    /// }
    /// ```
    pub fn read_config<V: ConfigValue>(&self, offset: usize) -> V {
        let mut b = [0u8; 8];
        if let Ok(offset) = u32::try_from(offset) {
            // SAFETY: The device is valid and we are in process context (type invariant); `b`
            // is valid for writes of `V::SIZE <= 8` bytes, a size transports can access at once.
            unsafe {
                bindings::virtio_cread_field(self.as_raw(), offset, b.as_mut_ptr().cast(), V::SIZE)
            }
        }
        V::from_bytes(&b, self.little_endian())
    }

    /// Reads a field that exists only if `feature` was negotiated; `None` otherwise.
    pub fn read_config_if<V: ConfigValue>(&self, feature: u32, offset: usize) -> Option<V> {
        self.has_feature(feature).then(|| self.read_config(offset))
    }

    /// Writes one field of config space at `offset`, in the device's byte order. May sleep.
    pub fn write_config<V: ConfigValue>(&self, offset: usize, value: V) {
        let Ok(offset) = u32::try_from(offset) else {
            return;
        };
        let b = value.to_bytes(self.little_endian());
        // SAFETY: The device is valid and we are in process context (type invariant); `b` is
        // valid for reads of `V::SIZE <= 8` bytes.
        unsafe {
            bindings::virtio_cwrite_bytes(self.as_raw(), offset, b.as_ptr().cast(), V::SIZE as u32)
        }
    }

    /// The adapter's state for this device; `EINVAL` if there is none, which cannot happen
    /// while the adapter has handed out `self`.
    pub(super) fn state(&self) -> Result<NonNull<DevState>> {
        // SAFETY: The adapter sets `priv` to the device state before it hands out a `Device`
        // and clears it only after the last callback.
        let p = unsafe { (*self.as_raw()).priv_ };
        NonNull::new(p.cast()).ok_or(EINVAL)
    }
}

impl Device<Validate> {
    /// Clears a feature bit the device offered, before the features are final.
    pub fn clear_feature(&self, bit: u32) {
        if bit < 64 {
            // SAFETY: In validation, only the current thread accesses `features` (type
            // invariant); the core writes the new value to the device afterwards.
            unsafe { (*self.as_raw()).features &= !(1u64 << bit) };
        }
    }
}

/// One virtqueue to find with [`Device::find_vqs`].
#[derive(Clone, Copy)]
pub struct QueueSpec {
    name: &'static CStr,
    callback: bool,
}

impl QueueSpec {
    /// A queue named `name` whose used-buffer notifications call
    /// [`Driver::queue_event`](super::Driver::queue_event).
    pub const fn new(name: &'static CStr) -> Self {
        Self {
            name,
            callback: true,
        }
    }

    /// The same queue, without notifications (for a queue the driver polls).
    pub const fn without_callback(self) -> Self {
        Self {
            callback: false,
            ..self
        }
    }
}

impl Device<Probe> {
    /// Finds the device's virtqueues, one per entry of `specs`, in order: queue `i` has index
    /// `i`. Can be called once per probe (`EBUSY` otherwise).
    ///
    /// The queues exist as soon as this returns, so callbacks may run from now on (the adapter
    /// delivers them only once the driver data is in place).
    pub fn find_vqs(&self, specs: &[QueueSpec]) -> Result<Queues<'_>> {
        let state = self.state()?;
        // SAFETY: The state is valid while the adapter hands out `self`.
        let st = unsafe { state.as_ref() };
        if specs.is_empty() {
            return Err(EINVAL);
        }
        if st.vqs_found() {
            return Err(EBUSY);
        }
        let n = specs.len();
        let mut infos = KVec::with_capacity(n, GFP_KERNEL)?;
        for s in specs {
            infos.push(
                bindings::virtqueue_info {
                    name: s.name.as_char_ptr(),
                    callback: if s.callback {
                        Some(super::state::vq_callback)
                    } else {
                        None
                    },
                    ctx: false,
                },
                GFP_KERNEL,
            )?;
        }
        let mut vqs = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            vqs.push(core::ptr::null_mut::<bindings::virtqueue>(), GFP_KERNEL)?;
        }
        // SAFETY: The device is valid and we are in probe (type invariant); `vqs` and `infos`
        // have `n` entries; the names are `'static`.
        to_result(unsafe {
            bindings::virtio_find_vqs(
                self.as_raw(),
                n as u32,
                vqs.as_mut_ptr(),
                infos.as_mut_ptr(),
            )
        })?;
        st.set_vqs_found();
        let mut found = KVec::with_capacity(n, GFP_KERNEL)?;
        for vq in vqs.iter() {
            found.push(NonNull::new(*vq), GFP_KERNEL)?;
        }
        // SAFETY: Every non-null entry is a virtqueue of this device that nothing wraps yet.
        Ok(unsafe { Queues::new(found, state) })
    }
}
