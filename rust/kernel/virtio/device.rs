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

    /// For `count` queues from index `first`, the queue each CPU should submit to, following
    /// the interrupt affinity the transport gave the queues (what `blk_mq_virtio_map_queues`
    /// does): entry `cpu` is a queue number relative to `first`. `None` if the transport does
    /// not report an affinity for one of the queues (then spread the CPUs some other way).
    /// The affinity exists only for queues found with [`QueueSpec::spread`].
    pub fn queue_cpu_map(&self, first: usize, count: usize) -> Result<Option<KVec<u16>>> {
        // SAFETY: Reading `nr_cpu_ids` has no requirements.
        let cpus = unsafe { bindings::vrs_nr_cpu_ids() } as usize;
        let mut map = KVec::with_capacity(cpus, GFP_KERNEL)?;
        for _ in 0..cpus {
            map.push(0u16, GFP_KERNEL)?;
        }
        for q in 0..count {
            let index = i32::try_from(first + q).map_err(|_| EINVAL)?;
            let q16 = u16::try_from(q).map_err(|_| EINVAL)?;
            for (cpu, slot) in map.iter_mut().enumerate() {
                // SAFETY: The device is valid and bound (type invariant) and its queues exist
                // while the adapter hands out a bound `Device` after probe.
                match unsafe { bindings::virtio_rs_vq_has_cpu(self.as_raw(), index, cpu as u32) } {
                    r if r < 0 => return Ok(None),
                    0 => {}
                    _ => *slot = q16,
                }
            }
        }
        Ok(Some(map))
    }

    /// The largest DMA mapping the device can take in one segment (`virtio_max_dma_size`),
    /// capped at `u32::MAX`.
    pub fn max_dma_size(&self) -> u32 {
        // SAFETY: The device is valid by the type invariant.
        let n = unsafe { bindings::virtio_max_dma_size(self.as_raw()) };
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// A handle to this device that can be kept in the driver data, to reach the device
    /// outside of the driver's callbacks (sysfs attributes, work items).
    pub fn handle(&self) -> Result<DeviceHandle> {
        let state = self.state()?;
        // SAFETY: The state is valid while the adapter hands out `self`.
        unsafe { state.as_ref() }.get_ref();
        // INVARIANT: the handle was just counted.
        Ok(DeviceHandle { state })
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
    spread: bool,
}

impl QueueSpec {
    /// A queue named `name` whose used-buffer notifications call
    /// [`Driver::queue_event`](super::Driver::queue_event).
    pub const fn new(name: &'static CStr) -> Self {
        Self {
            name,
            callback: true,
            spread: false,
        }
    }

    /// The same queue, without notifications (for a queue the driver polls).
    pub const fn without_callback(self) -> Self {
        Self {
            callback: false,
            ..self
        }
    }

    /// The same queue, with an interrupt the transport may give a CPU affinity of its own,
    /// spread over the CPUs with the other queues asking for it (managed affinity, as C drivers
    /// get by passing a `struct irq_affinity` to `virtio_find_vqs`). See
    /// [`Device::queue_cpu_map`].
    pub const fn spread(self) -> Self {
        Self {
            spread: true,
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
        let spread = specs.iter().any(|s| s.spread && s.callback);
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
                spread,
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

/// A counted handle to a device, kept in driver data, for use outside the driver's callbacks.
/// See [`Device::handle`].
///
/// # Invariants
///
/// `state` is the adapter state of the device; `self` counts as one of its handles, so it stays
/// allocated while `self` exists.
pub struct DeviceHandle {
    state: NonNull<DevState>,
}

// SAFETY: The handle only touches atomics and, through `with`, the device while it is live.
unsafe impl Send for DeviceHandle {}
// SAFETY: As above.
unsafe impl Sync for DeviceHandle {}

impl DeviceHandle {
    /// Runs `f` with the device if it is live (`DRIVER_OK` set, not being removed or frozen);
    /// `ENODEV` otherwise. Removal and freeze wait for `f` to return before they tear the
    /// device down. Process context: `f` may sleep, and must not drop the device's queues.
    pub fn with<R>(&self, f: impl FnOnce(&Device) -> R) -> Result<R> {
        // SAFETY: `state` is allocated while `self` exists (type invariant).
        let st = unsafe { self.state.as_ref() };
        let _user = st.enter().ok_or(ENODEV)?;
        // SAFETY: The device is live and stays bound until `_user` is dropped: teardown waits
        // for users before it resets the device and lets the driver core unbind it.
        Ok(f(unsafe { Device::from_raw(st.vdev()) }))
    }
}

impl Drop for DeviceHandle {
    fn drop(&mut self) {
        // SAFETY: `state` is allocated while `self` exists (type invariant).
        unsafe { self.state.as_ref() }.put_ref();
    }
}
