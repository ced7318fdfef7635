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

use super::{
    config::{self, ConfigValue, Field, Layout},
    gate::Gate,
    state::DevState,
    virtqueue::{QueueShared, Queues},
};
use crate::{
    alloc::KVec,
    bindings,
    error::to_result,
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    types::Opaque,
};
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

impl Device<Bound> {
    /// Whether the device uses little-endian values (`virtio_is_little_endian()`): always for a
    /// modern device, the guest's byte order for a legacy one. Config space reads convert
    /// already; this is for values a driver puts in buffers (a virtio-net header, say).
    pub fn little_endian(&self) -> bool {
        // SAFETY: The device is valid by the type invariant.
        unsafe { bindings::virtio_is_little_endian(self.as_raw()) }
    }

    /// Reads `buf.len()` bytes at `offset` in accesses of `width` bytes, retrying while the
    /// config generation changes, at most [`config::GENERATION_TRIES`] times.
    ///
    /// # Safety
    ///
    /// `[offset, offset + buf.len())` exists in the device's config space; `width` is 1, 2, 4
    /// or 8 and divides `buf.len()`.
    unsafe fn get_raw(&self, offset: usize, buf: &mut [u8], width: usize) -> Result {
        let vdev = self.as_raw();
        // SAFETY: The device is valid by the type invariant; `config` is set by the transport
        // before registration and never changes.
        let ops = unsafe { &*(*vdev).config };
        let get = ops.get.ok_or(EINVAL)?;
        // SAFETY: `vdev` is valid; process context (type invariant).
        let generation = || ops.generation.map_or(0, |g| unsafe { g(vdev) });
        let mut gen = generation();
        for _ in 0..config::GENERATION_TRIES {
            for (i, chunk) in buf.chunks_mut(width).enumerate() {
                // SAFETY: The range exists (safety requirement) and `chunk` is valid for
                // writes of `width` bytes; process context.
                unsafe {
                    get(
                        vdev,
                        (offset + i * width) as u32,
                        chunk.as_mut_ptr().cast(),
                        width as u32,
                    )
                };
            }
            let now = generation();
            if now == gen {
                return Ok(());
            }
            gen = now;
        }
        crate::pr_warn!(
            "virtio{}: config space generation kept changing over {} reads; giving up\n",
            self.index(),
            config::GENERATION_TRIES
        );
        Err(EIO)
    }

    /// Reads a config field (see [`config`]): one access of its width (a byte at a time for
    /// arrays), in the device's byte order, as a consistent snapshot. May sleep.
    ///
    /// Fails with `ENODEV` if the layout is not this device's, `EOPNOTSUPP` if the field
    /// depends on a feature that was not negotiated, and `EIO` if the config generation never
    /// settles.
    ///
    /// ```
    /// # use kernel::prelude::*;
    /// use kernel::virtio::{config::BlkConfig, config_field, Device};
    ///
    /// fn block_size(dev: &Device) -> u32 {
    ///     dev.read(config_field!(BlkConfig, blk_size)).unwrap_or(512)
    /// }
    /// ```
    pub fn read<L: Layout, F: ConfigValue, const OFF: usize>(
        &self,
        _field: Field<L, F, OFF>,
    ) -> Result<F> {
        super::might_sleep();
        config::check::<L>(self, OFF, F::SIZE)?;
        let mut b = [0u8; 8];
        if F::WIDTH == F::SIZE {
            // SAFETY: The field lies inside `L` (an invariant of `Field`), and `check` showed
            // that it exists on this device (safety requirement of `Layout`); one access.
            unsafe { self.get_raw(OFF, &mut b[..F::SIZE], F::SIZE) }?;
            Ok(F::from_raw(&b, self.little_endian()))
        } else {
            let mut v = KVec::from_elem(0u8, F::SIZE, GFP_KERNEL)?;
            // SAFETY: As above, a byte at a time.
            unsafe { self.get_raw(OFF, &mut v, 1) }?;
            Ok(F::from_raw(&v, self.little_endian()))
        }
    }

    /// Reads a field that exists only with a feature: `None` if the feature was not negotiated,
    /// otherwise as [`read`](Self::read).
    pub fn read_opt<L: Layout, F: ConfigValue, const OFF: usize>(
        &self,
        field: Field<L, F, OFF>,
    ) -> Result<Option<F>> {
        match self.read(field) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e == config::not_negotiated() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the first `buf.len()` bytes (at most `N`) of a byte-array config field, a byte at a
    /// time, as a consistent snapshot. Returns how many bytes were read. May sleep.
    pub fn read_prefix<L: Layout, const N: usize, const OFF: usize>(
        &self,
        _field: Field<L, [u8; N], OFF>,
        buf: &mut [u8],
    ) -> Result<usize> {
        super::might_sleep();
        let n = buf.len().min(N);
        config::check::<L>(self, OFF, n)?;
        // SAFETY: `[OFF, OFF + n)` is a prefix of the field, which lies inside `L`, and `check`
        // showed that it exists on this device.
        unsafe { self.get_raw(OFF, &mut buf[..n], 1) }?;
        Ok(n)
    }

    /// Writes a config field, in the device's byte order. May sleep. Fails as
    /// [`read`](Self::read) does.
    pub fn write<L: Layout, F: ConfigValue, const OFF: usize>(
        &self,
        _field: Field<L, F, OFF>,
        value: F,
    ) -> Result {
        super::might_sleep();
        config::check::<L>(self, OFF, F::SIZE)?;
        let vdev = self.as_raw();
        // SAFETY: The device is valid by the type invariant; `config` never changes.
        let set = unsafe { (*(*vdev).config).set }.ok_or(EINVAL)?;
        let mut b = [0u8; 8];
        if F::WIDTH != F::SIZE {
            // Byte arrays are read-only: no device defines a writable one.
            return Err(EINVAL);
        }
        value.to_raw(self.little_endian(), &mut b);
        // SAFETY: The field lies inside `L` and exists on this device (see `read`); `b` is
        // valid for reads of `F::SIZE <= 8` bytes; process context.
        unsafe { set(vdev, OFF as u32, b.as_ptr().cast(), F::SIZE as u32) };
        Ok(())
    }

    /// For `count` queues from index `first`, the queue each CPU should submit to, following
    /// the interrupt affinity the transport gave the queues (what `blk_mq_virtio_map_queues`
    /// does): entry `cpu` is a queue number relative to `first`. `None` if the transport does
    /// not report an affinity for one of the queues (then spread the CPUs some other way).
    /// The affinity exists only for queues found with [`QueueSpec::spread`]. `EINVAL` if the
    /// queues `first..first + count` were not found.
    pub fn queue_cpu_map(&self, first: usize, count: usize) -> Result<Option<KVec<u16>>> {
        let state = self.state()?;
        // SAFETY: The state is valid while the adapter hands out `self`, and a `Device<Bound>`
        // exists only where the queue list is not being changed (invariant of `DevState`).
        let found = unsafe { state.as_ref().queues() }.len();
        if first.checked_add(count).map_or(true, |end| end > found) {
            return Err(EINVAL);
        }
        let vdev = self.as_raw();
        // SAFETY: The device is valid by the type invariant; `config` never changes.
        let Some(affinity) = (unsafe { (*(*vdev).config).get_vq_affinity }) else {
            return Ok(None);
        };
        // SAFETY: `nr_cpu_ids` is set at boot and never changes afterwards.
        let cpus = unsafe { bindings::nr_cpu_ids } as usize;
        let mut map = KVec::from_elem(0u16, cpus, GFP_KERNEL)?;
        for q in 0..count {
            let q16 = u16::try_from(q).map_err(|_| EINVAL)?;
            // SAFETY: Queue `first + q` exists (checked above) and stays while `self` is
            // handed out.
            let mask = unsafe { affinity(vdev, (first + q) as i32) };
            if mask.is_null() {
                return Ok(None);
            }
            for (cpu, slot) in map.iter_mut().enumerate() {
                // SAFETY: `mask` is a valid cpumask of the transport; `cpu < nr_cpu_ids`.
                if unsafe { bindings::cpumask_test_cpu(cpu as i32, mask) } {
                    *slot = q16;
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
    /// outside of the driver's callbacks (sysfs attributes, work items). It never keeps the
    /// device alive: once the device is removed, [`DeviceHandle::with`] fails with `ENODEV`.
    pub fn handle(&self) -> Result<DeviceHandle> {
        let state = self.state()?;
        // SAFETY: The state is valid while the adapter hands out `self`.
        let shared = unsafe { state.as_ref() }.shared.clone();
        Ok(DeviceHandle { shared })
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

impl Device<Bound> {
    /// The name of the device on its transport's bus (`virtio_bus_name()`): the PCI address of
    /// a virtio-pci device, the platform device of a virtio-mmio one. Drivers report it as
    /// their bus information (ethtool's `bus-info`).
    pub fn bus_name(&self) -> &CStr {
        // SAFETY: The device is valid and bound (type invariant); the transport's name of it is
        // a NUL-terminated string that lives as long as the transport device, which outlives
        // the borrow.
        unsafe { CStr::from_char_ptr(bindings::virtio_bus_name(self.as_raw())) }
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
        // SAFETY: The state is valid while the adapter hands out `self`; we are in probe or
        // restore, where the driver core serialises us with the adapter, and nothing else
        // borrows the list.
        let queues = unsafe { state.as_ref().queues() };
        if specs.is_empty() || specs.len() > u16::MAX as usize {
            return Err(EINVAL);
        }
        if !queues.is_empty() {
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
        let mut vqs = KVec::from_elem(core::ptr::null_mut::<bindings::virtqueue>(), n, GFP_KERNEL)?;
        // Reserve first, so that nothing can fail once the queues exist.
        queues.reserve(n, GFP_KERNEL)?;
        // SAFETY: The state is valid while the adapter hands out `self`.
        let shared = unsafe { state.as_ref() }.shared.clone();
        let mut abortable = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut found = KVec::with_capacity(n, GFP_KERNEL)?;
        // Managed affinity, spread over the CPUs (C drivers pass the same empty descriptor).
        let mut desc = bindings::irq_affinity::default();
        // SAFETY: The device is valid and we are in probe (type invariant); `vqs` and `infos`
        // have `n` entries; the names are `'static`; `desc` lives across the call.
        to_result(unsafe {
            bindings::virtio_find_vqs(
                self.as_raw(),
                n as u32,
                vqs.as_mut_ptr(),
                infos.as_mut_ptr(),
                if spread {
                    &mut desc
                } else {
                    core::ptr::null_mut()
                },
            )
        })?;
        for vq in vqs.iter() {
            let shared = match NonNull::new(*vq) {
                // SAFETY: `vq` is a live virtqueue of this device; the adapter revokes it after
                // resetting the device and before deleting it (`DevState::quiesce`), because it
                // is in the state's list from now on.
                Some(vq) => Arc::pin_init(unsafe { QueueShared::new(vq) }, GFP_KERNEL),
                None => Err(EINVAL),
            };
            match shared {
                Ok(q) => {
                    // Cannot fail: reserved above.
                    queues.push(q.clone(), GFP_ATOMIC)?;
                    abortable.push(q.clone(), GFP_ATOMIC)?;
                    found.push(Some(q), GFP_KERNEL)?;
                }
                Err(e) => {
                    // Leave no queue behind: reset the device, then delete them all.
                    // SAFETY: The device is valid, in probe; its queues are in no list yet or
                    // revoked just below, and nothing uses them.
                    unsafe { bindings::virtio_reset_device(self.as_raw()) };
                    for q in queues.iter() {
                        q.revoke();
                    }
                    *queues = KVec::new();
                    // SAFETY: As above; `config` never changes.
                    unsafe {
                        if let Some(del_vqs) = (*(*self.as_raw()).config).del_vqs {
                            del_vqs(self.as_raw());
                        }
                    }
                    return Err(e);
                }
            }
        }
        // From now on, until the adapter quiesces the device, `DeviceHandle::abort` may reset
        // it and revoke these queues.
        *shared.abort.lock() = abortable;
        // SAFETY: Every entry is a queue of the device that nothing wraps yet.
        Ok(unsafe { Queues::new(found) })
    }
}

/// What a [`DeviceHandle`] shares with the adapter: the device, behind a gate that is open
/// while the device is live.
///
/// # Invariants
///
/// - While `gate` is open, `vdev` is a live, bound device whose driver is the Rust adapter, in a
///   state where a [`Device<Bound>`] may be used.
/// - While `abort` holds queues, `vdev` is bound to the adapter and they are its queues, not
///   yet revoked: [`Device::find_vqs`] fills the list, and the adapter's quiesce (which runs
///   before the queues are deleted and before the device is unbound) empties it, both under
///   the lock, as does [`DeviceHandle::abort`].
#[pin_data]
pub(crate) struct DevShared {
    vdev: *mut bindings::virtio_device,
    #[pin]
    pub(crate) gate: Gate,
    /// The queues [`DeviceHandle::abort`] revokes. The lock also serialises every reset and
    /// revocation of the device's queues after `find_vqs`: the adapter's and an abort's.
    #[pin]
    pub(crate) abort: Mutex<KVec<Arc<QueueShared>>>,
}

// SAFETY: `vdev` is only used inside the gate, in process context, through `Device<Bound>`,
// which is usable from any thread.
unsafe impl Send for DevShared {}
// SAFETY: As above.
unsafe impl Sync for DevShared {}

impl DevShared {
    /// The shared state of `vdev`, closed until the adapter opens it.
    pub(crate) fn new(vdev: *mut bindings::virtio_device) -> impl PinInit<Self> {
        // INVARIANT: the gate starts closed, and no queue can be aborted.
        pin_init!(Self {
            vdev,
            gate <- Gate::new(false),
            abort <- new_mutex!(KVec::new(), "virtio_rs_abort"),
        })
    }

    /// The device; only valid while the gate is open.
    pub(crate) fn vdev(&self) -> *mut bindings::virtio_device {
        self.vdev
    }
}

/// A handle to a device, kept in driver data or a work item, for use outside the driver's
/// callbacks. See [`Device::handle`].
///
/// It never keeps the device: when the device is removed, frozen or unplugged, the adapter
/// closes it to its handles (waiting for the users inside), and a handle that outlives the
/// device (leaked, kept in an `Arc` cycle, in a work item nobody cancelled) only ever gets
/// `ENODEV`.
#[derive(Clone)]
pub struct DeviceHandle {
    shared: Arc<DevShared>,
}

impl DeviceHandle {
    /// Runs `f` with the device if it is live (`DRIVER_OK` set, not being removed or frozen);
    /// `ENODEV` otherwise. Removal and freeze wait for `f` to return before they reset the
    /// device. Process context: `f` may sleep; it must not wait for the device's removal.
    pub fn with<R>(&self, f: impl FnOnce(&Device) -> R) -> Result<R> {
        // `f` may sleep (config space): catch a call from atomic context on debug kernels.
        super::might_sleep();
        let _pass = self.shared.gate.enter().ok_or(ENODEV)?;
        // SAFETY: The gate is open, so the device is live and bound (invariant of `DevShared`),
        // and stays so until `_pass` is dropped: teardown closes the gate, waiting for us, before
        // it resets the device and lets the driver core unbind it.
        Ok(f(unsafe { Device::from_raw(self.shared.vdev) }))
    }

    /// Stops a device that no longer answers, now, as its removal would: closes the device to
    /// its handles (waiting for the users inside), resets it, waits for running queue
    /// callbacks, and revokes every queue. The device then uses no buffer any more: every
    /// buffer still in a ring is detached and belongs to the driver again, so dropping a
    /// [`Virtqueue`](super::Virtqueue) frees its buffers at once, and every queue operation
    /// fails without touching the device. For a driver whose requests would otherwise wait
    /// forever (a block device's removal waits for its requests in flight).
    ///
    /// Nothing happens if the device has no queues or was already stopped (removed, frozen,
    /// aborted). A restore after a freeze brings the device back as usual.
    ///
    /// Process context. Not from inside [`DeviceHandle::with`], nor from
    /// [`Driver::config_work`](super::Driver::config_work), which runs inside the same gate:
    /// the abort waits for the users inside, so it would wait for itself (a deadlock, never
    /// memory unsafety). A work item of the driver's own, or a blk-mq timeout, is the place.
    pub fn abort(&self) {
        super::might_sleep();
        let mut queues = self.shared.abort.lock();
        if queues.is_empty() {
            return;
        }
        pr_warn!("virtio: aborting a device that does not answer: resetting it\n");
        self.shared.gate.close();
        // SAFETY: `queues` is not empty, so `vdev` is bound to the adapter (type invariant of
        // `DevShared`), and stays bound while we hold the lock (the adapter's quiesce takes it
        // before the device is unbound). Process context. Resetting twice is harmless, and the
        // adapter's quiesce resets again, under the same lock, before it deletes the queues.
        unsafe {
            bindings::virtio_reset_device(self.shared.vdev);
            bindings::virtio_synchronize_cbs(self.shared.vdev);
        }
        for q in queues.iter() {
            // The device is reset; revoking twice is harmless.
            q.revoke();
        }
        *queues = KVec::new();
    }
}
