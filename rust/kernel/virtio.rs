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
//! 2. **Teardown.** On remove (and freeze), the adapter calls [`Driver::remove`], resets the
//!    device and waits for running callbacks, drops the driver data (each [`Virtqueue`] detaches
//!    and drops the buffers still in its ring), deletes the virtqueues, and frees the rest, in
//!    that order.
//! 3. **Ordering.** [`Driver::probe`] returns an initialiser; the adapter puts the driver data
//!    in place *before* it sets `DRIVER_OK`, so no callback ever sees a half-built driver.
//!    Queue notifications issued before `DRIVER_OK` are deferred until it is set, so a queue
//!    can never notify a device that is not ready. Drivers cannot set `DRIVER_OK` or reset the
//!    device themselves: only the adapter can.
//! 4. **Context.** [`Driver::queue_event`] runs in hard-IRQ context with `&self`: the state it
//!    shares is behind a [`SpinLockIrq`](crate::spinlock_irq::SpinLockIrq) or atomics. The
//!    [`Device`] context types keep sleeping config-space accesses out of atomic callbacks.
//! 5. **The device is untrusted.** Used lengths are clamped (with a rate-limited warning),
//!    tokens are checked, feature queries never `BUG()`.
//! 6. **Config space.** [`Device::read_config`] retries on generation changes and converts from
//!    the legacy (guest) or modern (little-endian) byte order; [`Device::read_config_if`] reads a
//!    field only if its feature was negotiated.
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
    types::Opaque,
    ThisModule,
};
use core::{marker::PhantomData, mem::MaybeUninit, ptr};

pub mod device;
pub mod virtqueue;

pub use device::{
    Atomic, Bound, ConfigValue, Device, DeviceContext, DeviceHandle, Probe, QueueSpec, Validate,
};
pub use virtqueue::{
    AddError, DeviceReadable, DeviceRequest, DeviceWritable, Notifier, Queues, SgSink, Used,
    Virtqueue, MAX_SEGMENTS,
};

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
/// and keeps it until the device goes away (or is frozen). All other methods get `&self`, and
/// may run concurrently with each other and with the driver's other entry points, so `Self` is
/// `Send + Sync`.
///
/// Lifecycle of one device (and again after each freeze/restore):
///
/// 1. [`validate`](Driver::validate) (optional), before features are final;
/// 2. [`probe`](Driver::probe), then the adapter stores the driver data and sets `DRIVER_OK`;
/// 3. [`ready`](Driver::ready): the device is live; register with other subsystems here;
/// 4. [`queue_event`](Driver::queue_event) and [`config_changed`](Driver::config_changed), any
///    time from (2) on, in interrupt context;
/// 5. [`remove`](Driver::remove) (also on freeze), then the adapter resets the device, waits
///    for callbacks, drops the driver data and deletes the queues.
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
    /// config-space reads to a work item).
    fn config_changed(&self, _dev: &Device<Atomic>) {}

    /// The config change that [`config_changed`](Driver::config_changed) reported, again, in
    /// process context (a work item the adapter owns): config space may be read here, and the
    /// driver may sleep. Changes that arrive while it runs queue it once more. Teardown and
    /// freeze wait for it.
    fn config_work(&self, _dev: &Device) {}

    /// The device is going away (unbind, unplug, module unload) or, unless
    /// [`KEEP_ON_FREEZE`](Driver::KEEP_ON_FREEZE) is set, being frozen. The device is still
    /// live: wake waiters, stop using the queues. Teardown follows.
    fn remove(&self, _dev: &Device) {}

    /// Whether the driver data survives suspend: if `true`, freeze calls
    /// [`freeze`](Driver::freeze) and restore calls [`restore`](Driver::restore), and the data
    /// (and whatever the driver registered with other subsystems: disks, input devices) stays.
    /// If `false` (the default), freeze is a [`remove`](Driver::remove) and restore a new probe.
    const KEEP_ON_FREEZE: bool = false;

    /// Suspend, with [`KEEP_ON_FREEZE`](Driver::KEEP_ON_FREEZE): stop submitting, then drop
    /// every [`Virtqueue`] and [`Notifier`] of the device (the adapter then resets the device
    /// and deletes the queues; if a queue is still alive, freeze fails with `EBUSY`).
    fn freeze(&self, _dev: &Device) {}

    /// Resume, with [`KEEP_ON_FREEZE`](Driver::KEEP_ON_FREEZE): find the queues again, as in
    /// probe, and start submitting. The adapter sets `DRIVER_OK` after this returns, and kicks
    /// issued meanwhile reach the device then.
    fn restore(&self, _dev: &Device<Probe>) -> Result {
        Ok(())
    }
}

pub(crate) mod state {
    //! The per-device state shared by the adapter and the queues.

    use crate::bindings;
    use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

    /// Where a device is in its lifecycle. Ordered.
    #[repr(u8)]
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub(crate) enum State {
        /// Probe is running; the driver data does not exist yet.
        Probing = 0,
        /// The driver data is in place; `DRIVER_OK` is not set yet.
        Initialized = 1,
        /// `DRIVER_OK` is set.
        Live = 2,
        /// Being reset: callbacks are no longer delivered.
        Dying = 3,
        /// Reset, and callbacks synchronised.
        Reset = 4,
        /// The queues are deleted (or leaked: see [`DevState::put_handle`]).
        Dead = 5,
    }

    /// Device state, at the start of the adapter's per-device allocation; `vdev->priv` points
    /// to it.
    ///
    /// # Invariants
    ///
    /// `vdev` is the device this state belongs to. `dispatch` may be called with `self` while
    /// the state is `Initialized` or `Live`.
    pub(crate) struct DevState {
        state: AtomicU8,
        vqs_found: AtomicBool,
        deferred_kick: AtomicBool,
        handles: AtomicUsize,
        /// Users inside [`DeviceHandle::with`](super::device::DeviceHandle::with).
        users: AtomicUsize,
        /// Live [`DeviceHandle`](super::device::DeviceHandle)s.
        refs: AtomicUsize,
        vdev: *mut bindings::virtio_device,
        pub(super) dispatch: unsafe fn(&DevState, usize),
    }

    /// One user of a live device, from [`DevState::enter`].
    pub(crate) struct User<'a>(&'a DevState);

    impl Drop for User<'_> {
        fn drop(&mut self) {
            self.0.users.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl DevState {
        pub(super) fn new(
            vdev: *mut bindings::virtio_device,
            dispatch: unsafe fn(&DevState, usize),
        ) -> Self {
            Self {
                state: AtomicU8::new(State::Probing as u8),
                vqs_found: AtomicBool::new(false),
                deferred_kick: AtomicBool::new(false),
                handles: AtomicUsize::new(0),
                users: AtomicUsize::new(0),
                refs: AtomicUsize::new(0),
                vdev,
                dispatch,
            }
        }

        pub(crate) fn get(&self) -> State {
            match self.state.load(Ordering::SeqCst) {
                0 => State::Probing,
                1 => State::Initialized,
                2 => State::Live,
                3 => State::Dying,
                4 => State::Reset,
                _ => State::Dead,
            }
        }

        pub(super) fn set(&self, s: State) {
            self.state.store(s as u8, Ordering::SeqCst);
        }

        pub(crate) fn vqs_found(&self) -> bool {
            self.vqs_found.load(Ordering::Relaxed)
        }

        pub(crate) fn set_vqs_found(&self) {
            self.vqs_found.store(true, Ordering::Relaxed);
        }

        pub(super) fn clear_vqs_found(&self) {
            self.vqs_found.store(false, Ordering::Relaxed);
        }

        pub(crate) fn get_ref(&self) {
            self.refs.fetch_add(1, Ordering::Relaxed);
        }

        pub(crate) fn put_ref(&self) {
            self.refs.fetch_sub(1, Ordering::Release);
        }

        pub(super) fn refs(&self) -> usize {
            self.refs.load(Ordering::Acquire)
        }

        pub(crate) fn defer_kick(&self) {
            self.deferred_kick.store(true, Ordering::SeqCst);
        }

        pub(crate) fn get_handle(&self) {
            self.handles.fetch_add(1, Ordering::Relaxed);
        }

        pub(crate) fn put_handle(&self) {
            self.handles.fetch_sub(1, Ordering::Release);
        }

        pub(super) fn handles(&self) -> usize {
            self.handles.load(Ordering::Acquire)
        }

        pub(crate) fn vdev(&self) -> *mut bindings::virtio_device {
            self.vdev
        }

        /// Enters the device as a user if it is live; teardown waits for users to leave.
        pub(crate) fn enter(&self) -> Option<User<'_>> {
            self.users.fetch_add(1, Ordering::SeqCst);
            let user = User(self);
            (self.get() == State::Live).then_some(user)
        }

        /// Waits until no user is inside. The state must already be past `Live`, so that no
        /// new user gets in. Process context.
        pub(super) fn wait_users(&self) {
            while self.users.load(Ordering::SeqCst) != 0 {
                // SAFETY: We are in process context (function requirement).
                unsafe { bindings::msleep(1) };
            }
        }

        /// Resets the device and waits for running callbacks, unless that was already done.
        /// Process context only: may sleep.
        pub(crate) fn ensure_reset(&self) {
            if self.get() >= State::Reset {
                return;
            }
            self.set(State::Dying);
            // SAFETY: `vdev` is valid by the type invariant (the state lives inside the driver's
            // binding to it); we are in process context.
            unsafe {
                bindings::virtio_reset_device(self.vdev);
                bindings::virtio_synchronize_cbs(self.vdev);
            }
            self.set(State::Reset);
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
        let (vdev_priv, index) = unsafe { ((*(*vq).vdev).priv_, (*vq).index) };
        let Some(state) = core::ptr::NonNull::new(vdev_priv.cast::<DevState>()) else {
            return;
        };
        // SAFETY: The adapter frees the state only after deleting the queues, which waits for
        // their callbacks.
        let state = unsafe { state.as_ref() };
        if matches!(state.get(), State::Initialized | State::Live) {
            // SAFETY: The state is `Initialized` or `Live` (type invariant of `DevState`);
            // `ensure_reset` changes it and then waits for this callback before the driver data
            // goes away.
            unsafe { (state.dispatch)(state, index as usize) };
        }
    }
}

use state::{DevState, State};

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
    /// # Safety
    ///
    /// `state` is the `state` field of a `DriverData<T>` whose `data` is initialised.
    unsafe fn dispatch(state: &DevState, queue: usize) {
        // SAFETY: `state` is the first field of a `#[repr(C)]` `DriverData<T>` (safety
        // requirement), whose `data` is initialised.
        let dd = unsafe { &*(state as *const DevState).cast::<DriverData<T>>() };
        // SAFETY: As above.
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

    /// Probes (or restores) `vdev`.
    ///
    /// # Safety
    ///
    /// `vdev` is valid, in probe or restore, and bound to this adapter.
    unsafe fn setup(vdev: *mut bindings::virtio_device) -> Result {
        let dd = KBox::new(
            DriverData::<T> {
                state: DevState::new(vdev, Self::dispatch),
                config_work: Opaque::uninit(),
                data: MaybeUninit::uninit(),
            },
            GFP_KERNEL,
        )?;
        let dd = KBox::into_raw(dd);
        // SAFETY: `config_work` is valid for writes and never moves (the box is not moved out
        // of); the name and key are static.
        unsafe {
            bindings::init_work_with_key(
                (*dd).config_work.get(),
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
        // SAFETY: `dd` is valid.
        let state = unsafe { &(*dd).state };
        // INVARIANT: `data` is initialised.
        state.set(State::Initialized);
        // SAFETY: `vdev` is valid and in probe.
        unsafe { bindings::virtio_device_ready(vdev) };
        state.set(State::Live);
        if state.vqs_found() {
            // Flush the notifications deferred until `DRIVER_OK`.
            // SAFETY: `vdev` is valid and its queues exist.
            unsafe { bindings::virtio_notify_all(vdev) };
        }
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

    /// Removes (or freezes) `vdev`: remove hook, reset, drop the data, delete the queues, free.
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
        // SAFETY: `dd` is valid (safety requirement).
        let state = unsafe { &(*dd).state };
        if initialized {
            // SAFETY: `data` is initialised; `vdev` is valid and bound; process context.
            T::remove(unsafe { (*dd).data.assume_init_ref() }, unsafe {
                Device::from_raw(vdev)
            });
        }
        // The device stops touching memory, and no callback runs from here on.
        state.ensure_reset();
        state.wait_users();
        // SAFETY: `config_work` was initialised in `setup`; config changes are disabled by the
        // core before remove, and `enter` now fails, so it does not run or queue again.
        unsafe { bindings::cancel_work_sync((*dd).config_work.get()) };
        if initialized {
            // SAFETY: `data` is initialised and no longer used: callbacks are over (above) and
            // the driver core serialises us with the other callbacks.
            unsafe { ptr::drop_in_place((*dd).data.as_mut_ptr()) };
        }
        if state.refs() != 0 {
            // A `DeviceHandle` outlived the driver data: keep the state it points to.
            state.set(State::Dead);
            pr_warn!("virtio: a device handle outlived its driver data; leaking its state\n");
            return;
        }
        if state.vqs_found() {
            if state.handles() != 0 {
                // A queue (or notifier) was moved out of the driver data and is still alive:
                // deleting the queues would leave it dangling. Leak them, and the state.
                state.set(State::Dead);
                pr_warn!("virtio: a virtqueue outlived its driver data; leaking the queues\n");
                return;
            }
            // SAFETY: `vdev` is valid, reset, its queues exist and nothing refers to them.
            unsafe { bindings::virtio_del_vqs(vdev) };
        }
        state.set(State::Dead);
        // SAFETY: `vdev` is valid; its queues are gone, so no callback reads `priv`.
        unsafe { (*vdev).priv_ = ptr::null_mut() };
        // SAFETY: `dd` came from `KBox::into_raw` and `data` is dropped (or was never there).
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
            // SAFETY: `data` exists, so `priv` points to our `DriverData`, whose work item is
            // initialised; teardown cancels it before freeing it.
            unsafe {
                let dd = (*vdev).priv_.cast::<DriverData<T>>();
                bindings::queue_work_on(
                    bindings::wq_misc_consts_WORK_CPU_UNBOUND as _,
                    bindings::system_wq,
                    (*dd).config_work.get(),
                );
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
        let Some(_user) = dd.state.enter() else {
            return;
        };
        // SAFETY: The state is `Live`, so `data` is initialised (type invariant), and it stays
        // so while `_user` is inside: teardown waits for users before dropping it.
        let data = unsafe { dd.data.assume_init_ref() };
        // SAFETY: The device is live and bound while `_user` is inside; process context.
        T::config_work(data, unsafe { Device::from_raw(dd.state.vdev()) });
    }

    #[cfg(CONFIG_PM_SLEEP)]
    /// # Safety
    ///
    /// Called only by the virtio core, in freeze, with a device bound to this adapter.
    unsafe extern "C" fn freeze_callback(vdev: *mut bindings::virtio_device) -> core::ffi::c_int {
        if !T::KEEP_ON_FREEZE {
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
        let dd = unsafe { &*dd };
        let state = &dd.state;
        if state.get() == State::Live {
            // SAFETY: `data` is initialised while `Live`; the device is bound; process context.
            T::freeze(unsafe { dd.data.assume_init_ref() }, unsafe {
                Device::from_raw(vdev)
            });
        }
        state.ensure_reset();
        state.wait_users();
        // SAFETY: `config_work` was initialised in `setup`; `enter` now fails, and the core
        // disabled config changes, so it does not run or queue again.
        unsafe { bindings::cancel_work_sync(dd.config_work.get()) };
        if state.vqs_found() {
            if state.handles() != 0 {
                pr_warn!("virtio: a virtqueue is still alive after freeze; cannot suspend\n");
                return EBUSY.to_errno();
            }
            // SAFETY: `vdev` is valid and reset; nothing refers to its queues.
            unsafe { bindings::virtio_del_vqs(vdev) };
            state.clear_vqs_found();
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
        if !T::KEEP_ON_FREEZE {
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
        let dd = unsafe { &*dd };
        let state = &dd.state;
        state.set(State::Probing);
        // SAFETY: We are in restore, which is like probe; `priv` is set.
        let res = T::restore(unsafe { dd.data.assume_init_ref() }, unsafe {
            Device::<Probe>::from_raw(vdev)
        });
        if let Err(e) = res {
            // Leave it reset; remove will tear the rest down.
            state.set(State::Reset);
            return e.to_errno();
        }
        // INVARIANT: `data` is initialised.
        state.set(State::Initialized);
        // SAFETY: `vdev` is valid and in restore.
        unsafe { bindings::virtio_device_ready(vdev) };
        state.set(State::Live);
        if state.vqs_found() {
            // SAFETY: `vdev` is valid and its queues exist.
            unsafe { bindings::virtio_notify_all(vdev) };
        }
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
            drv.validate = Some(Adapter::<T>::validate_callback);
            drv.probe = Some(Adapter::<T>::probe_callback);
            drv.remove = Some(Adapter::<T>::remove_callback);
            drv.config_changed = Some(Adapter::<T>::config_changed_callback);
            #[cfg(CONFIG_PM_SLEEP)]
            {
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
