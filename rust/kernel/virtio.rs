// SPDX-License-Identifier: GPL-2.0

//! Virtio drivers.
//!
//! A virtio driver implements [`Driver`] and registers with [`module_virtio_driver!`]. The
//! adapter in this module turns the trait into a C `struct virtio_driver` and keeps the safety
//! contract that C drivers keep by hand:
//!
//! 1. **Buffer ownership.** [`Virtqueue::add`] *moves* owned, DMA-able buffers ([`KBox`],
//!    [`KVec`](crate::alloc::KVec)) into the queue; [`Virtqueue::get_buf`] gives them back, typed,
//!    with a used length already checked against their size. Drivers never hold a reference to
//!    memory the device may write, and there is no `unsafe` in the interface.
//! 2. **Teardown.** On remove (and freeze), the adapter calls [`Driver::remove`], closes the
//!    device to its handles and waits for the users inside, resets the device and waits for
//!    running callbacks, revokes every queue and detaches the buffers left in the rings, drops
//!    the driver data (each [`Virtqueue`] frees its buffers), deletes the virtqueues, and frees
//!    the rest, in that order. Only the adapter resets the device.
//! 3. **Ordering.** [`Driver::probe`] returns an initialiser; the adapter puts the driver data
//!    in place *before* it sets `DRIVER_OK`, so no callback ever sees a half-built driver.
//!    Queue notifications issued before `DRIVER_OK` are held back until it is set, so a queue
//!    can never notify a device that is not ready.
//! 4. **Context.** [`Driver::queue_event`] runs in hard-IRQ context with `&self`: the state it
//!    shares is behind a [`SpinLockIrq`](crate::spinlock_irq::SpinLockIrq) or atomics. The
//!    [`Device`] context types keep sleeping config-space accesses out of atomic callbacks.
//! 5. **The device is untrusted.** Used lengths are clamped (with a warning), tokens are
//!    checked, feature queries never `BUG()`, config generation retries are bounded.
//! 6. **Config space.** Fields are named through typed [`config`] layouts, bounded at compile
//!    time and gated on their feature at run time; there is no raw-offset accessor.
//! 7. **Handles never outlive the device.** A [`Virtqueue`], [`Notifier`] or [`DeviceHandle`]
//!    kept anywhere (a work item, a leak, an `Arc` cycle) becomes inert when the device goes:
//!    it then fails with `ENODEV` and touches no C object.
//!
//! C headers: [`include/linux/virtio.h`](srctree/include/linux/virtio.h),
//! [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)
//!
//! # Examples
//!
//! A driver that keeps one request in flight and counts completions:
//!
//! ```
//! use kernel::c_str;
//! use kernel::spinlock_irq::{new_spinlock_irq, SpinLockIrq};
//! use kernel::virtio::{self, Device, Probe, QueueSpec, Virtqueue};
//!
//! #[pin_data]
//! struct Sample {
//!     #[pin]
//!     vq: SpinLockIrq<Virtqueue<(), KBox<[u8; 16]>>>,
//! }
//!
//! #[vtable]
//! impl virtio::Driver for Sample {
//!     const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::RNG)];
//!
//!     fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
//!         let mut queues = dev.find_vqs(&[QueueSpec::new(c_str!("input"))])?;
//!         let mut vq = queues.take(0)?;
//!         vq.add((), KBox::new([0; 16], GFP_KERNEL)?, GFP_KERNEL)?;
//!         Ok(try_pin_init!(Self { vq <- new_spinlock_irq!(vq) }))
//!     }
//!
//!     fn ready(&self, _dev: &Device) -> Result {
//!         self.vq.lock().kick(); // the request was added in probe
//!         Ok(())
//!     }
//!
//!     fn queue_event(&self, _queue: usize) {
//!         let mut vq = self.vq.lock();
//!         while let Some(used) = vq.get_buf() {
//!             pr_info!("got {} bytes\n", used.len);
//!             // Reuse the buffer.
//!             let _ = vq.add((), used.writable, GFP_ATOMIC);
//!         }
//!         vq.kick();
//!     }
//! }
//! ```

use crate::{
    bindings,
    error::{from_result, to_result},
    init::PinInit,
    prelude::*,
    str::CStr,
    sync::Arc,
    types::Opaque,
    ThisModule,
};
use core::{marker::PhantomData, mem::MaybeUninit, ptr};

pub mod config;
pub mod console;
pub mod device;
mod gate;
pub mod virtqueue;

pub use config::{config_field, ConfigValue};
pub use device::{Atomic, Bound, Device, DeviceContext, DeviceHandle, Probe, QueueSpec, Validate};
pub use virtqueue::{
    AddError, Affinity, DeviceReadable, DeviceRequest, DeviceWritable, Notifier, Queues, SgSink,
    Used, Virtqueue, MAX_SEGMENTS,
};

/// Reports a call from atomic context of code that may sleep, on kernels built with
/// `CONFIG_DEBUG_ATOMIC_SLEEP` (the `might_sleep()` check, without its reschedule).
#[inline]
#[track_caller]
pub(crate) fn might_sleep() {
    #[cfg(CONFIG_DEBUG_ATOMIC_SLEEP)]
    {
        let loc = core::panic::Location::caller();
        // The file name need not be NUL-terminated for `%s` with a precision, but
        // `__might_sleep` prints it with a plain `%s`: pass a fixed, terminated name.
        // SAFETY: The name is a static, NUL-terminated string; `__might_sleep` only prints.
        unsafe {
            bindings::__might_sleep(
                crate::c_str!("rust/kernel/virtio").as_char_ptr(),
                loc.line() as i32,
            )
        };
    }
}

/// Virtio device ids (`include/uapi/linux/virtio_ids.h`).
pub mod id {
    /// Network card.
    pub const NET: u32 = crate::bindings::VIRTIO_ID_NET;
    /// Block device.
    pub const BLOCK: u32 = crate::bindings::VIRTIO_ID_BLOCK;
    /// Console.
    pub const CONSOLE: u32 = crate::bindings::VIRTIO_ID_CONSOLE;
    /// Entropy source.
    pub const RNG: u32 = crate::bindings::VIRTIO_ID_RNG;
    /// Memory balloon.
    pub const BALLOON: u32 = crate::bindings::VIRTIO_ID_BALLOON;
    /// SCSI host.
    pub const SCSI: u32 = crate::bindings::VIRTIO_ID_SCSI;
    /// 9P transport.
    pub const NINE_P: u32 = crate::bindings::VIRTIO_ID_9P;
    /// GPU.
    pub const GPU: u32 = crate::bindings::VIRTIO_ID_GPU;
    /// Input device.
    pub const INPUT: u32 = crate::bindings::VIRTIO_ID_INPUT;
    /// Matches any device or vendor.
    pub const ANY: u32 = crate::bindings::VIRTIO_DEV_ANY_ID;
}

/// One entry of an id table: a device id and a vendor id (or [`id::ANY`]).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::virtio_device_id);

impl DeviceId {
    /// Matches device `device` from any vendor.
    pub const fn new(device: u32) -> Self {
        Self::with_vendor(device, id::ANY)
    }

    /// Matches device `device` from vendor `vendor`.
    pub const fn with_vendor(device: u32, vendor: u32) -> Self {
        Self(bindings::virtio_device_id { device, vendor })
    }

    /// The terminating entry; [`id_table!`] appends it.
    pub const END: Self = Self(bindings::virtio_device_id {
        device: 0,
        vendor: 0,
    });

    /// The device id.
    pub const fn device(&self) -> u32 {
        self.0.device
    }

    /// The vendor id.
    pub const fn vendor(&self) -> u32 {
        self.0.vendor
    }
}

/// A zero-terminated table of [`DeviceId`]s. Build it with [`id_table!`].
///
/// # Invariants
///
/// `ids` ends with [`DeviceId::END`] and has no other zero device id.
#[derive(Clone, Copy)]
pub struct IdTable(&'static [DeviceId]);

impl IdTable {
    /// Wraps `ids`; fails to compile (in a constant) unless exactly the last entry has device
    /// id 0.
    pub const fn new(ids: &'static [DeviceId]) -> Self {
        assert!(
            ids.len() >= 2,
            "an id table needs at least one id and the terminator"
        );
        let mut i = 0;
        while i < ids.len() {
            assert!(
                (ids[i].0.device == 0) == (i == ids.len() - 1),
                "only the last id table entry may (and must) have device id 0"
            );
            i += 1;
        }
        // INVARIANT: checked just above.
        Self(ids)
    }

    /// The ids, without the terminator.
    pub const fn ids(&self) -> &'static [DeviceId] {
        self.0.split_at(self.0.len() - 1).0
    }

    /// Length of the `.modinfo` alias strings for this table (see [`module_virtio_driver!`]).
    #[doc(hidden)]
    pub const fn modalias_len(&self, prefix: &str) -> usize {
        let ids = self.ids();
        let mut len = 0;
        let mut i = 0;
        while i < ids.len() {
            len += prefix.len() + alias_len(&ids[i]) + 1;
            i += 1;
        }
        len
    }

    /// The `.modinfo` alias strings, `prefix` `alias=virtio:dXXXXXXXXv*` NUL, one per id,
    /// formatted as modpost's `do_virtio_entry()` does.
    #[doc(hidden)]
    pub const fn modalias<const N: usize>(&self, prefix: &str) -> [u8; N] {
        let mut out = [0u8; N];
        let ids = self.ids();
        let mut pos = 0;
        let mut i = 0;
        while i < ids.len() {
            pos = put(&mut out, pos, prefix.as_bytes());
            pos = put(&mut out, pos, b"alias=virtio:d");
            pos = put_id(&mut out, pos, ids[i].0.device);
            pos = put(&mut out, pos, b"v");
            pos = put_id(&mut out, pos, ids[i].0.vendor);
            if ids[i].0.vendor != id::ANY {
                pos = put(&mut out, pos, b"*");
            }
            pos += 1; // NUL
            i += 1;
        }
        assert!(pos == N);
        out
    }
}

const fn field_len(v: u32) -> usize {
    if v == id::ANY {
        1
    } else {
        8
    }
}

const fn alias_len(id: &DeviceId) -> usize {
    "alias=virtio:d".len()
        + field_len(id.0.device)
        + 1
        + field_len(id.0.vendor)
        + if id.0.vendor != id::ANY { 1 } else { 0 }
}

const fn put(out: &mut [u8], mut pos: usize, s: &[u8]) -> usize {
    let mut i = 0;
    while i < s.len() {
        out[pos] = s[i];
        pos += 1;
        i += 1;
    }
    pos
}

const fn put_id(out: &mut [u8], mut pos: usize, v: u32) -> usize {
    if v == id::ANY {
        out[pos] = b'*';
        return pos + 1;
    }
    let mut shift = 28i32;
    while shift >= 0 {
        out[pos] = b"0123456789ABCDEF"[((v >> shift) & 0xf) as usize];
        pos += 1;
        shift -= 4;
    }
    pos
}

/// Builds an [`IdTable`] from [`DeviceId`]s, appending the terminator.
///
/// ```
/// use kernel::virtio::{id, id_table, DeviceId, IdTable};
///
/// const IDS: IdTable = id_table![DeviceId::new(id::RNG)];
/// assert_eq!(IDS.ids().len(), 1);
/// let alias: [u8; IDS.modalias_len("")] = IDS.modalias("");
/// assert_eq!(&alias, b"alias=virtio:d00000004v*\0");
/// ```
#[macro_export]
macro_rules! virtio_id_table {
    ($($id:expr),+ $(,)?) => {{
        const IDS: &[$crate::virtio::DeviceId] = &[$($id,)+ $crate::virtio::DeviceId::END];
        $crate::virtio::IdTable::new(IDS)
    }};
}
pub use virtio_id_table as id_table;

/// A virtio driver.
///
/// `Self` is the per-device driver data. [`probe`](Driver::probe) builds it; the adapter pins it
/// and keeps it until the device goes away (or is frozen, for a driver without
/// [`restore`](Driver::restore)). All other methods get `&self`, and may run concurrently with
/// each other and with the driver's other entry points, so `Self` is `Send + Sync`.
///
/// It is a `#[vtable]` trait: implement only the callbacks the driver needs, in an impl block
/// marked `#[vtable]`.
///
/// Lifecycle of one device:
///
/// 1. [`validate`](Driver::validate) (optional), before features are final;
/// 2. [`probe`](Driver::probe), then the adapter stores the driver data and sets `DRIVER_OK`;
/// 3. [`ready`](Driver::ready): the device is live; register with other subsystems here;
/// 4. [`queue_event`](Driver::queue_event) and [`config_changed`](Driver::config_changed), any
///    time from (2) on, in interrupt context;
/// 5. [`remove`](Driver::remove); then the adapter closes the device to its handles (waiting for
///    the users inside), resets it, revokes and detaches the queues, drops the driver data and
///    deletes the queues.
///
/// Suspend: a driver that implements [`freeze`](Driver::freeze) and
/// [`restore`](Driver::restore) keeps its data (and whatever it registered with other
/// subsystems: disks, input devices); one that does not is removed on freeze and probed again
/// on restore.
#[vtable]
pub trait Driver: Send + Sync + Sized + 'static {
    /// The devices this driver binds to.
    const ID_TABLE: IdTable;

    /// Feature bits the driver supports (for virtio 1.0 devices, and legacy ones unless
    /// [`FEATURES_LEGACY`](Driver::FEATURES_LEGACY) is set). Transport features are negotiated
    /// by the core.
    const FEATURES: &'static [u32] = &[];

    /// Feature bits for legacy devices, if they differ from [`FEATURES`](Driver::FEATURES).
    const FEATURES_LEGACY: Option<&'static [u32]> = None;

    /// Checks (and may clear) the offered features before they are final.
    fn validate(_dev: &Device<Validate>) -> Result {
        Ok(())
    }

    /// Sets the device up: reads config, finds and takes the virtqueues, and may add initial
    /// buffers. Returns the initialiser of the driver data; the device is not live yet.
    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>>;

    /// Called once the device is live (`DRIVER_OK`), like C's `scan`. An error fails the probe
    /// (after [`remove`](Driver::remove) and full teardown).
    fn ready(&self, _dev: &Device) -> Result {
        Ok(())
    }

    /// A used-buffer notification for queue `queue`. Runs in hard-IRQ context: do not sleep.
    /// Spurious calls happen (e.g. shared interrupts).
    fn queue_event(&self, _queue: usize) {}

    /// The device's config space changed. Runs in atomic context: do not sleep (defer
    /// config-space reads to [`config_work`](Driver::config_work)).
    fn config_changed(&self, _dev: &Device<Atomic>) {}

    /// The config change that [`config_changed`](Driver::config_changed) reported, again, in
    /// process context (a work item the adapter owns): config space may be read here, and the
    /// driver may sleep. Changes that arrive while it runs queue it once more. Teardown and
    /// freeze wait for it.
    fn config_work(&self, _dev: &Device) {}

    /// The device is going away (unbind, unplug, module unload), or being frozen by a driver
    /// without [`restore`](Driver::restore). The device is still live: wake waiters, stop using
    /// the queues. Teardown follows.
    fn remove(&self, _dev: &Device) {}

    /// Suspend: stop submitting. The driver data stays. On success the adapter then closes the
    /// device to its handles, resets it and revokes every [`Virtqueue`] and [`Notifier`] (a
    /// queue kept across freeze fails with `ENODEV` from then on: drop the queues here, or
    /// replace them in [`restore`](Driver::restore)). On error the suspend is aborted and the
    /// device stays live, untouched: undo whatever was stopped before returning it.
    /// Implement both or neither of `freeze` and `restore`.
    fn freeze(&self, _dev: &Device) -> Result {
        Ok(())
    }

    /// Resume after [`freeze`](Driver::freeze): find the queues again, as in probe, and start
    /// submitting. The adapter sets `DRIVER_OK` after this returns, and kicks issued meanwhile
    /// reach the device then. On error, the device is left reset, with no queues.
    fn restore(&self, _dev: &Device<Probe>) -> Result {
        Ok(())
    }
}

pub(crate) mod state {
    //! The per-device state of the adapter.

    pub(crate) use super::device::DevShared;
    use super::virtqueue::QueueShared;
    use crate::{alloc::KVec, bindings, sync::Arc};
    use core::{
        cell::UnsafeCell,
        sync::atomic::{AtomicU8, Ordering},
    };

    /// Where a device is in its lifecycle, as far as callbacks are concerned.
    #[repr(u8)]
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub(crate) enum State {
        /// Probe (or restore) is running; the driver data may not exist yet.
        Probing = 0,
        /// The driver data is in place; `DRIVER_OK` is not set yet.
        Initialized = 1,
        /// `DRIVER_OK` is set.
        Live = 2,
        /// Reset, and callbacks synchronised: nothing reaches the driver data.
        Reset = 3,
    }

    /// Device state, at the start of the adapter's per-device allocation (`DriverData`);
    /// `vdev->priv` points to that allocation.
    ///
    /// # Invariants
    ///
    /// - `vdev` is the device this state belongs to, valid while the state exists.
    /// - `dispatch` may be called with a pointer to the whole allocation while the state is
    ///   `Initialized` or `Live`.
    /// - `queues` holds the queues found since the last deletion; it is only accessed by the
    ///   adapter and `find_vqs`, in probe, restore, freeze and remove, which the driver core
    ///   serialises, and by `Device` methods while `shared`'s gate is open, which it never is
    ///   while those change `queues`.
    pub(crate) struct DevState {
        state: AtomicU8,
        vdev: *mut bindings::virtio_device,
        dispatch: unsafe fn(*const DevState, usize),
        queues: UnsafeCell<KVec<Arc<QueueShared>>>,
        pub(crate) shared: Arc<DevShared>,
    }

    impl DevState {
        pub(super) fn new(
            vdev: *mut bindings::virtio_device,
            dispatch: unsafe fn(*const DevState, usize),
            shared: Arc<DevShared>,
        ) -> Self {
            Self {
                state: AtomicU8::new(State::Probing as u8),
                vdev,
                dispatch,
                queues: UnsafeCell::new(KVec::new()),
                shared,
            }
        }

        pub(crate) fn get(&self) -> State {
            match self.state.load(Ordering::SeqCst) {
                0 => State::Probing,
                1 => State::Initialized,
                2 => State::Live,
                _ => State::Reset,
            }
        }

        pub(super) fn set(&self, s: State) {
            self.state.store(s as u8, Ordering::SeqCst);
        }

        /// The queues found since the last deletion.
        ///
        /// # Safety
        ///
        /// The caller is one of the serialised users of `queues` (type invariant), and nothing
        /// else borrows it meanwhile.
        #[allow(clippy::mut_from_ref)]
        pub(crate) unsafe fn queues(&self) -> &mut KVec<Arc<QueueShared>> {
            // SAFETY: By the safety requirements.
            unsafe { &mut *self.queues.get() }
        }

        /// Marks every queue live after `DRIVER_OK`, notifying each once.
        ///
        /// # Safety
        ///
        /// As for [`DevState::queues`].
        pub(super) unsafe fn queues_live(&self) {
            // SAFETY: By the safety requirements.
            for q in unsafe { self.queues() }.iter() {
                q.set_live();
            }
        }

        /// Quiesces the device, in the only order that is safe: closes it to its handles and
        /// waits for the users inside, resets it and waits for running callbacks, then revokes
        /// every queue (waiting for the queue users inside) and detaches the buffers left in
        /// the rings. Process context. Idempotent, and it always resets: after a failed
        /// restore the core marks a reset device `FAILED`, and remove must leave it at 0.
        ///
        /// # Safety
        ///
        /// As for [`DevState::queues`]; the device is bound.
        pub(super) unsafe fn quiesce(&self) {
            // Serialised with `DeviceHandle::abort`, which may be resetting and revoking the
            // same queues; once empty, the list keeps it away from the device for good.
            let mut abortable = self.shared.abort.lock();
            *abortable = KVec::new();
            self.shared.gate.close();
            // SAFETY: `vdev` is valid (type invariant) and bound; process context.
            unsafe {
                bindings::virtio_reset_device(self.vdev);
                bindings::virtio_synchronize_cbs(self.vdev);
            }
            self.set(State::Reset);
            // SAFETY: By the safety requirements.
            for q in unsafe { self.queues() }.iter() {
                q.revoke();
            }
        }

        /// Deletes the queues, which [`DevState::quiesce`] revoked.
        ///
        /// # Safety
        ///
        /// As for [`DevState::queues`]; `quiesce` ran since the queues were found.
        pub(super) unsafe fn delete_queues(&self) {
            // SAFETY: By the safety requirements.
            let queues = unsafe { self.queues() };
            if queues.is_empty() {
                return;
            }
            // SAFETY: `vdev` is valid (type invariant), reset, and its queues are revoked:
            // nothing uses them any more. `config` is set by the transport at registration.
            unsafe {
                if let Some(del_vqs) = (*(*self.vdev).config).del_vqs {
                    del_vqs(self.vdev);
                }
            }
            *queues = KVec::new();
        }
    }

    /// The C callback of every virtqueue: forwards to the driver's `queue_event`.
    ///
    /// # Safety
    ///
    /// Called by the virtio core with a valid `vq` of a device bound to the Rust adapter.
    pub(crate) unsafe extern "C" fn vq_callback(vq: *mut bindings::virtqueue) {
        // SAFETY: `vq` and its device are valid (function safety requirement). `priv` is written
        // only before the queues exist and after they are deleted, so this read cannot race.
        let (dd, index) = unsafe { ((*(*vq).vdev).priv_.cast::<DevState>(), (*vq).index) };
        if dd.is_null() {
            return;
        }
        // SAFETY: The adapter frees the state only after deleting the queues, which waits for
        // their callbacks.
        let state = unsafe { &*dd };
        if matches!(state.get(), State::Initialized | State::Live) {
            // SAFETY: The state is `Initialized` or `Live`, and `dd` (from `priv`) points to the
            // whole allocation (type invariant of `DevState`); `quiesce` changes the state and
            // waits for this callback before the driver data goes away.
            unsafe { (state.dispatch)(dd, index as usize) };
        }
    }
}

use state::{DevShared, DevState, State};

/// The adapter's per-device allocation: the state, then the driver data.
///
/// # Invariants
///
/// `data` is initialised while `state` is `Initialized` or `Live`, and from then until the
/// adapter drops it during teardown.
#[repr(C)]
struct DriverData<T> {
    state: DevState,
    /// Runs [`Driver::config_work`]; initialised in `setup`, cancelled in teardown and freeze.
    config_work: Opaque<bindings::work_struct>,
    data: MaybeUninit<T>,
}

/// Glue between the C `struct virtio_driver` callbacks and [`Driver`].
struct Adapter<T: Driver>(PhantomData<T>);

impl<T: Driver> Adapter<T> {
    /// Whether the driver keeps its data across suspend.
    const KEEP_ON_FREEZE: bool = {
        assert!(
            T::HAS_FREEZE == T::HAS_RESTORE,
            "a virtio driver implements both or neither of freeze and restore"
        );
        T::HAS_RESTORE
    };

    /// # Safety
    ///
    /// `dd` points to a whole `DriverData<T>` whose `data` is initialised.
    unsafe fn dispatch(dd: *const DevState, queue: usize) {
        // SAFETY: `dd` points to a `#[repr(C)]` `DriverData<T>`, whose first field is the state
        // (safety requirement), and its provenance covers the whole allocation.
        let dd = unsafe { &*dd.cast::<DriverData<T>>() };
        // SAFETY: `data` is initialised (safety requirement).
        T::queue_event(unsafe { dd.data.assume_init_ref() }, queue);
    }

    /// Returns the driver data of `vdev` if it is initialised.
    ///
    /// # Safety
    ///
    /// `vdev` is valid and bound to this adapter; its state, if any, is not freed while the
    /// result is used (callers are serialised with teardown by the driver core).
    unsafe fn data<'a>(vdev: *mut bindings::virtio_device) -> Option<&'a T> {
        // SAFETY: `vdev` is valid (safety requirement).
        let dd = unsafe { (*vdev).priv_ }.cast::<DriverData<T>>();
        if dd.is_null() {
            return None;
        }
        // SAFETY: A non-null `priv` points to this adapter's `DriverData<T>` (safety
        // requirement).
        let dd = unsafe { &*dd };
        match dd.state.get() {
            // SAFETY: `data` is initialised in these states (type invariant of `DriverData`).
            State::Initialized | State::Live => Some(unsafe { dd.data.assume_init_ref() }),
            _ => None,
        }
    }

    /// Sets `DRIVER_OK`, then lets the queues and the handles reach the device.
    ///
    /// # Safety
    ///
    /// `vdev` is valid and in probe or restore; `state` is its state, with the driver data
    /// initialised.
    unsafe fn go_live(vdev: *mut bindings::virtio_device, state: &DevState) {
        // INVARIANT: `data` is initialised.
        state.set(State::Initialized);
        // SAFETY: `vdev` is valid and in probe or restore (safety requirement).
        unsafe { bindings::virtio_device_ready(vdev) };
        state.set(State::Live);
        // SAFETY: We are in probe or restore, which the driver core serialises.
        unsafe { state.queues_live() };
        state.shared.gate.open();
    }

    /// Probes (or restores, for a driver that does not keep its data) `vdev`.
    ///
    /// # Safety
    ///
    /// `vdev` is valid, in probe or restore, and bound to this adapter.
    unsafe fn setup(vdev: *mut bindings::virtio_device) -> Result {
        let shared = Arc::pin_init(DevShared::new(vdev), GFP_KERNEL)?;
        // Allocated in place: the driver data can be large.
        let dd =
            KBox::into_raw(KBox::<DriverData<T>>::new_uninit(GFP_KERNEL)?).cast::<DriverData<T>>();
        // SAFETY: `dd` is valid for writes and never moves (it is not moved out of until it is
        // freed); the work's name and key are static.
        unsafe {
            ptr::addr_of_mut!((*dd).state).write(DevState::new(vdev, Self::dispatch, shared));
            bindings::init_work_with_key(
                Opaque::raw_get(ptr::addr_of!((*dd).config_work)),
                Some(Self::config_work_fn),
                false,
                crate::c_str!("virtio_rs_config_work").as_char_ptr(),
                crate::static_lock_class!().as_ptr(),
            )
        };
        // SAFETY: `vdev` is valid; no queue exists yet, so no callback reads `priv`.
        unsafe { (*vdev).priv_ = dd.cast() };
        // SAFETY: We are in probe and `priv` is set.
        let dev = unsafe { Device::<Probe>::from_raw(vdev) };
        let init = T::probe(dev).and_then(|init| {
            // SAFETY: `data` is valid for writes, pinned (a `KBox` we never move out of) and
            // uninitialised; on error the initialiser leaves it uninitialised.
            unsafe { init.__pinned_init(ptr::addr_of_mut!((*dd).data).cast::<T>()) }
        });
        if let Err(e) = init {
            // SAFETY: `dd` came from `KBox::into_raw` above; `data` is not initialised.
            unsafe { Self::teardown(vdev, dd, false) };
            return Err(e);
        }
        // SAFETY: `dd` is valid; `data` was initialised above.
        unsafe { Self::go_live(vdev, &(*dd).state) };
        // SAFETY: `data` was initialised above.
        let data = unsafe { (*dd).data.assume_init_ref() };
        // SAFETY: `vdev` is valid, we are in process context, bound.
        if let Err(e) = T::ready(data, unsafe { Device::from_raw(vdev) }) {
            // SAFETY: `dd` came from `KBox::into_raw`; `data` is initialised.
            unsafe { Self::teardown(vdev, dd, true) };
            return Err(e);
        }
        Ok(())
    }

    /// Quiesces the device (see [`DevState::quiesce`]) and cancels the config work.
    ///
    /// # Safety
    ///
    /// `dd` is the valid `DriverData<T>` of `vdev`, in probe, restore, freeze or remove.
    unsafe fn quiesce(dd: *mut DriverData<T>) {
        // SAFETY: `dd` is valid (safety requirement), and we are one of the serialised users of
        // the queues.
        unsafe { (*dd).state.quiesce() };
        // SAFETY: `config_work` was initialised in `setup`. The handle gate is closed, so the
        // work returns at once if it runs again; the core disabled config changes.
        unsafe { bindings::cancel_work_sync(Opaque::raw_get(ptr::addr_of!((*dd).config_work))) };
    }

    /// Removes (or freezes, for a driver that does not keep its data) `vdev`: remove hook,
    /// quiesce, drop the data, delete the queues, free.
    ///
    /// # Safety
    ///
    /// `dd` came from `KBox::into_raw` in [`Self::setup`] for `vdev`; `initialized` says
    /// whether its `data` is initialised. `dd` must not be used afterwards.
    unsafe fn teardown(
        vdev: *mut bindings::virtio_device,
        dd: *mut DriverData<T>,
        initialized: bool,
    ) {
        if initialized {
            // SAFETY: `data` is initialised; `vdev` is valid and bound; process context.
            T::remove(unsafe { (*dd).data.assume_init_ref() }, unsafe {
                Device::from_raw(vdev)
            });
        }
        // SAFETY: `dd` is the valid `DriverData<T>` of `vdev`, in remove (or a failed probe).
        unsafe { Self::quiesce(dd) };
        if initialized {
            // SAFETY: `data` is initialised and no longer used: handles are closed, callbacks
            // are over, and the driver core serialises us with the other callbacks. Queues it
            // holds are revoked, so dropping them frees their buffers.
            unsafe { ptr::drop_in_place((*dd).data.as_mut_ptr()) };
        }
        // SAFETY: `quiesce` ran; we are in remove.
        unsafe { (*dd).state.delete_queues() };
        // SAFETY: `vdev` is valid; its queues are gone, so no callback reads `priv`.
        unsafe { (*vdev).priv_ = ptr::null_mut() };
        // SAFETY: `dd` came from `KBox::into_raw` and `data` is dropped (or was never there).
        // Handles keep their own references to what they use (`DevShared`, `QueueShared`).
        drop(unsafe { KBox::from_raw(dd) });
    }

    /// Tears down whatever `vdev` has.
    ///
    /// # Safety
    ///
    /// `vdev` is valid and bound to this adapter, in remove or freeze.
    unsafe fn teardown_any(vdev: *mut bindings::virtio_device) {
        // SAFETY: `vdev` is valid.
        let dd = unsafe { (*vdev).priv_ }.cast::<DriverData<T>>();
        if dd.is_null() {
            // Nothing bound (a restore failed): still leave the device reset.
            // SAFETY: `vdev` is valid.
            unsafe { bindings::virtio_reset_device(vdev) };
            return;
        }
        // SAFETY: A non-null `priv` comes from `setup`, which succeeded, so `data` is
        // initialised.
        unsafe { Self::teardown(vdev, dd, true) };
    }

    /// # Safety
    ///
    /// Called only by the virtio core, in validation, with a device bound to this adapter.
    unsafe extern "C" fn validate_callback(vdev: *mut bindings::virtio_device) -> core::ffi::c_int {
        // SAFETY: Called by the virtio core in validation with a valid device.
        from_result(|| T::validate(unsafe { Device::from_raw(vdev) }).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called only by the virtio core, in probe, with a device bound to this adapter.
    unsafe extern "C" fn probe_callback(vdev: *mut bindings::virtio_device) -> core::ffi::c_int {
        // SAFETY: Called by the virtio core in probe with a valid device.
        from_result(|| unsafe { Self::setup(vdev) }.map(|()| 0))
    }

    /// # Safety
    ///
    /// Called only by the virtio core, in remove, with a device bound to this adapter.
    unsafe extern "C" fn remove_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: Called by the virtio core in remove with a valid device.
        unsafe { Self::teardown_any(vdev) }
    }

    /// # Safety
    ///
    /// Called only by the virtio core, on a config change, with a device bound to this adapter.
    unsafe extern "C" fn config_changed_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: Called by the virtio core with a valid device; config changes are disabled
        // before remove and freeze (`virtio_config_core_disable`), so the data stays alive.
        if let Some(data) = unsafe { Self::data(vdev) } {
            // SAFETY: `vdev` is valid; the core calls us in atomic context.
            T::config_changed(data, unsafe { Device::from_raw(vdev) });
            if T::HAS_CONFIG_WORK {
                // SAFETY: `data` exists, so `priv` points to our `DriverData`, whose work item
                // is initialised; teardown cancels it before freeing it.
                unsafe {
                    let dd = (*vdev).priv_.cast::<DriverData<T>>();
                    bindings::queue_work_on(
                        bindings::wq_misc_consts_WORK_CPU_UNBOUND as _,
                        bindings::system_wq,
                        Opaque::raw_get(ptr::addr_of!((*dd).config_work)),
                    );
                }
            }
        }
    }

    /// # Safety
    ///
    /// Called only by the workqueue, for the `config_work` of a `DriverData<T>`.
    unsafe extern "C" fn config_work_fn(work: *mut bindings::work_struct) {
        // SAFETY: `work` is the `config_work` field of a live `DriverData<T>` (teardown
        // cancels the work before freeing it).
        let dd = unsafe { &*crate::container_of!(work, DriverData<T>, config_work) };
        let Some(_pass) = dd.state.shared.gate.enter() else {
            return;
        };
        // SAFETY: The gate is open only while the state is `Live`, so `data` is initialised
        // (type invariant), and it stays so while `_pass` is inside: teardown closes the gate,
        // waiting for us, before it drops the data.
        let data = unsafe { dd.data.assume_init_ref() };
        // SAFETY: The device is live and bound while `_pass` is inside; process context.
        T::config_work(data, unsafe { Device::from_raw(dd.state.shared.vdev()) });
    }

    #[cfg(CONFIG_PM_SLEEP)]
    /// # Safety
    ///
    /// Called only by the virtio core, in freeze, with a device bound to this adapter.
    unsafe extern "C" fn freeze_callback(vdev: *mut bindings::virtio_device) -> core::ffi::c_int {
        if !Self::KEEP_ON_FREEZE {
            // SAFETY: Called by the virtio core in freeze with a valid device.
            unsafe { Self::teardown_any(vdev) };
            return 0;
        }
        // SAFETY: Called by the virtio core in freeze with a valid device.
        let dd = unsafe { (*vdev).priv_ }.cast::<DriverData<T>>();
        if dd.is_null() {
            return 0;
        }
        // SAFETY: A non-null `priv` is our `DriverData`; the driver core serialises us with
        // remove and restore.
        if unsafe { (*dd).state.get() } == State::Live {
            // SAFETY: `data` is initialised while `Live`; the device is bound; process context.
            let res = T::freeze(unsafe { (*dd).data.assume_init_ref() }, unsafe {
                Device::from_raw(vdev)
            });
            if let Err(e) = res {
                // Nothing was torn down: the device stays live (the core re-enables config
                // changes).
                return e.to_errno();
            }
        }
        // SAFETY: `dd` is the valid `DriverData<T>` of `vdev`, in freeze. Queues the driver
        // kept are revoked: they fail from now on, and free their buffers when dropped.
        unsafe {
            Self::quiesce(dd);
            (*dd).state.delete_queues();
        }
        // INVARIANT: `data` stays initialised, but the state is `Reset`, so no callback or
        // handle reaches it until restore makes the state `Initialized` again.
        0
    }

    #[cfg(CONFIG_PM_SLEEP)]
    /// # Safety
    ///
    /// Called only by the virtio core, in restore, with a device bound to this adapter.
    unsafe extern "C" fn restore_callback(vdev: *mut bindings::virtio_device) -> core::ffi::c_int {
        if !Self::KEEP_ON_FREEZE {
            // SAFETY: Called by the virtio core in restore with a valid device.
            return from_result(|| unsafe { Self::setup(vdev) }.map(|()| 0));
        }
        // SAFETY: Called by the virtio core in restore with a valid device.
        let dd = unsafe { (*vdev).priv_ }.cast::<DriverData<T>>();
        if dd.is_null() {
            return ENODEV.to_errno();
        }
        // SAFETY: A non-null `priv` is our `DriverData`, frozen by `freeze_callback`: `data` is
        // initialised, the queues are gone, the state is `Reset`.
        let state = unsafe { &(*dd).state };
        state.set(State::Probing);
        // SAFETY: We are in restore, which is like probe; `priv` is set.
        let res = T::restore(unsafe { (*dd).data.assume_init_ref() }, unsafe {
            Device::<Probe>::from_raw(vdev)
        });
        if let Err(e) = res {
            // Leave the device reset, with no queues; remove tears the rest down.
            // SAFETY: `dd` is the valid `DriverData<T>` of `vdev`, in restore.
            unsafe {
                Self::quiesce(dd);
                state.delete_queues();
            }
            return e.to_errno();
        }
        // SAFETY: `vdev` is valid and in restore; `data` is initialised.
        unsafe { Self::go_live(vdev, state) };
        0
    }
}

/// The registration of a virtio driver with the virtio core. Unregisters on drop.
///
/// Usually created by [`module_virtio_driver!`].
///
/// # Invariants
///
/// `drv` is registered with the virtio core, and filled in from `T`.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Driver> {
    #[pin]
    drv: Opaque<bindings::virtio_driver>,
    _p: PhantomData<T>,
}

// SAFETY: The registration is only used to unregister, which may happen from any thread.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: `&Registration` allows nothing.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Registers driver `T` under `name`, for `module`.
    pub fn new(name: &'static CStr, module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut bindings::virtio_driver| {
            // SAFETY: `slot` is valid for writes; an all-zero `virtio_driver` is valid.
            unsafe { slot.write(core::mem::zeroed()) };
            // SAFETY: `slot` is valid and initialised just above.
            let drv = unsafe { &mut *slot };
            drv.driver.name = name.as_char_ptr();
            drv.id_table = T::ID_TABLE.0.as_ptr().cast();
            drv.feature_table = T::FEATURES.as_ptr();
            drv.feature_table_size = T::FEATURES.len() as u32;
            if let Some(legacy) = T::FEATURES_LEGACY {
                drv.feature_table_legacy = legacy.as_ptr();
                drv.feature_table_size_legacy = legacy.len() as u32;
            }
            if T::HAS_VALIDATE {
                drv.validate = Some(Adapter::<T>::validate_callback);
            }
            drv.probe = Some(Adapter::<T>::probe_callback);
            drv.remove = Some(Adapter::<T>::remove_callback);
            if T::HAS_CONFIG_CHANGED || T::HAS_CONFIG_WORK {
                drv.config_changed = Some(Adapter::<T>::config_changed_callback);
            }
            #[cfg(CONFIG_PM_SLEEP)]
            {
                // Evaluated at compile time: also checks that `freeze` and `restore` come as a
                // pair.
                let _ = Adapter::<T>::KEEP_ON_FREEZE;
                drv.freeze = Some(Adapter::<T>::freeze_callback);
                drv.restore = Some(Adapter::<T>::restore_callback);
            }
            // SAFETY: `drv` is fully initialised, pinned, and stays registered until `drop`.
            to_result(unsafe { bindings::__register_virtio_driver(slot, module.0) })
        };
        // SAFETY: `init` fully initialises `drv` or fails leaving nothing registered; `_p` is a
        // ZST that needs no initialisation. The slot is pinned, as `register` requires.
        unsafe {
            crate::init::pin_init_from_closure(move |slot: *mut Self| {
                init(Opaque::raw_get(ptr::addr_of!((*slot).drv)))
            })
        }
    }
}

#[pinned_drop]
impl<T: Driver> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `drv` is registered (type invariant); this unbinds every device first.
        unsafe { bindings::unregister_virtio_driver(self.drv.get()) };
    }
}

/// Declares a kernel module that registers a virtio driver, and emits one `.modinfo` alias per
/// id of its table (`virtio:dNNNNNNNNv*`), so that udev and modprobe load it on demand.
///
/// Every field after `name` goes to [`module!`](macros::module) as it is, `params` included: the
/// driver reads its parameters as `module_parameters::<name>.value()`, from `probe` or later (see
/// [`module_param`](crate::module_param)).
///
/// ```ignore
/// kernel::module_virtio_driver! {
///     type: MyDriver,
///     name: "my_virtio_rs",
///     author: "...",
///     description: "...",
///     license: "GPL",
///     params: {
///         queue_depth: u32 {
///             default: 0,
///             description: "Requests per queue (0: the ring size)",
///         },
///     },
/// }
///
/// // In `MyDriver::probe`, with the virtqueue `vq` found:
/// let depth = match *module_parameters::queue_depth.value() {
///     0 => vq.size(),
///     n => n as usize,
/// };
/// ```
#[macro_export]
macro_rules! module_virtio_driver {
    (type: $type:ty, name: $name:tt, $($f:tt)*) => {
        struct __VirtioModule {
            _reg: ::core::pin::Pin<$crate::alloc::KBox<$crate::virtio::Registration<$type>>>,
        }

        $crate::prelude::module! {
            type: __VirtioModule,
            name: $name,
            $($f)*
        }

        impl $crate::Module for __VirtioModule {
            fn init(module: &'static $crate::ThisModule) -> $crate::error::Result<Self> {
                Ok(Self {
                    _reg: <$crate::alloc::KBox<_> as $crate::init::InPlaceInit<_>>::try_pin_init(
                        $crate::virtio::Registration::<$type>::new($crate::c_str!($name), module),
                        $crate::alloc::flags::GFP_KERNEL,
                    )?,
                })
            }
        }

        const _: () = {
            #[cfg(MODULE)]
            const PREFIX: &str = "";
            #[cfg(not(MODULE))]
            const PREFIX: &str = concat!($name, ".");
            const TABLE: $crate::virtio::IdTable = <$type as $crate::virtio::Driver>::ID_TABLE;
            const LEN: usize = TABLE.modalias_len(PREFIX);
            // Same attributes as `module!`'s own `.modinfo` entries, so that the linker merges
            // them into one section (plain `#[used]` would add SHF_GNU_RETAIN and split it).
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static ALIASES: [u8; LEN] = TABLE.modalias::<LEN>(PREFIX);
        };
    };
}
