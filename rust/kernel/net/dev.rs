// SPDX-License-Identifier: GPL-2.0

//! Network devices (`struct net_device`).
//!
//! A driver describes its device with a type `T` that implements [`Operations`] (the
//! `net_device_ops` callbacks: open, stop, start_xmit, get_stats64) and creates a
//! [`Registration<T>`], which allocates the `net_device` with `T` pinned in its private area
//! (`netdev_priv()`), where C drivers keep their state too. What `T` holds lives exactly as long
//! as the `net_device`: the [`Napi`](super::napi::Napi) contexts in it, for instance, can only be
//! built there.
//!
//! Lifecycle:
//!
//! 1. [`Registration::new`] (or [`Registration::new_mq`], with several queues each way)
//!    allocates the device and initialises `T` in place; the device is not visible yet: set
//!    its address ([`Registration::set_mac`]), carrier and queues in use now;
//! 2. [`Registration::register`] makes it visible; the callbacks may run from then on;
//! 3. [`Registration::unregister`] (or dropping the registration) takes it down: it closes the
//!    device (`stop`), waits for the callbacks and the references the stack holds, and no
//!    callback runs after it;
//! 4. dropping the registration then drops `T` (deleting its NAPI contexts) and frees the
//!    device.
//!
//! A device is registered at most once: after `unregister` it cannot come back, and the
//! carrier and address setters do nothing or fail, so safe code cannot touch the stack's view
//! of a device that is gone.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h)

use super::skb::SkBuff;
use crate::{
    bindings, c_str, cpuhp,
    cpumask::CpusLocked,
    device,
    error::{from_result, to_result},
    init::PinInit,
    new_mutex,
    prelude::*,
    sync::Mutex,
    types::{ARef, Opaque},
};
use core::{
    ffi::{c_int, c_void},
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
};

/// The most queues a [`Registration`] allocates each way: queue indices fit the 16 bits of an
/// skb's queue mapping with room to spare (virtio-net's limit is the same, 0x8000 pairs).
pub const MAX_QUEUES: u32 = 0x8000;

/// How many CPUs are online (`num_online_cpus()`): what a multiqueue driver sizes its queues in
/// use by, as C's do. It may change at any time (CPU hotplug).
pub fn num_online_cpus() -> u32 {
    // SAFETY: Reads a counter; any context.
    unsafe { bindings::num_online_cpus() }
}

/// The length of an Ethernet address.
pub const ETH_ALEN: usize = bindings::ETH_ALEN as usize;

/// A network device seen from its driver: borrowed from a [`Registration`], or handed to a
/// callback. The methods here are valid for as long as the device's memory lives, which the
/// borrow guarantees.
///
/// # Invariants
///
/// `self.0` is a valid `struct net_device`, allocated by a [`Registration`], that outlives the
/// reference.
#[repr(transparent)]
pub struct NetDevice(Opaque<bindings::net_device>);

// SAFETY: The C functions called through `&NetDevice` may be called from any thread.
unsafe impl Sync for NetDevice {}
// SAFETY: As above.
unsafe impl Send for NetDevice {}

impl NetDevice {
    /// # Safety
    ///
    /// `ptr` satisfies the type invariants for `'a`.
    #[inline]
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::net_device) -> &'a Self {
        // SAFETY: `NetDevice` is a transparent wrapper; validity is up to the caller.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(crate) fn as_raw(&self) -> *mut bindings::net_device {
        self.0.get()
    }

    /// The interface index (0 while the device is not registered).
    pub fn ifindex(&self) -> i32 {
        // SAFETY: `ifindex` is set under RTNL at registration; a racy read of an `int` is what
        // C's `dev->ifindex` users do too.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*self.as_raw()).ifindex)) }
    }

    /// Allows the stack to transmit (`netif_start_queue()`), for a single-queue device.
    pub fn start_queue(&self) {
        // SAFETY: The device is valid (type invariant); any context.
        unsafe { bindings::netif_start_queue(self.as_raw()) }
    }

    /// Stops the stack from transmitting (`netif_stop_queue()`), e.g. on a full ring.
    pub fn stop_queue(&self) {
        // SAFETY: The device is valid (type invariant); any context.
        unsafe { bindings::netif_stop_queue(self.as_raw()) }
    }

    /// Allows transmission again and reschedules it (`netif_wake_queue()`).
    pub fn wake_queue(&self) {
        // SAFETY: The device is valid (type invariant); any context.
        unsafe { bindings::netif_wake_queue(self.as_raw()) }
    }

    /// Whether transmission is stopped (`netif_queue_stopped()`).
    pub fn queue_stopped(&self) -> bool {
        // SAFETY: The device is valid (type invariant); any context.
        unsafe { bindings::netif_queue_stopped(self.as_raw()) }
    }
}

/// Interface statistics, as `ndo_get_stats64` reports them (`struct rtnl_link_stats64`). The
/// adapter starts from zero for every call; fill in what the device counts.
#[derive(Default, Clone, Copy)]
pub struct LinkStats {
    /// Packets received and handed to the stack.
    pub rx_packets: u64,
    /// Bytes of those packets.
    pub rx_bytes: u64,
    /// Received packets dropped by the driver (no memory, say).
    pub rx_dropped: u64,
    /// Bad packets received.
    pub rx_errors: u64,
    /// Received packets with a bad length.
    pub rx_length_errors: u64,
    /// Received packets with bad framing (a virtio-net header that does not match, say).
    pub rx_frame_errors: u64,
    /// Packets handed to the device.
    pub tx_packets: u64,
    /// Bytes of those packets.
    pub tx_bytes: u64,
    /// Packets dropped instead of sent.
    pub tx_dropped: u64,
    /// Packets that failed to be sent.
    pub tx_errors: u64,
}

/// The `net_device_ops` of a driver: implemented by the type a [`Registration`] keeps in the
/// device's private area. The callbacks get `&self` and the device; they run only while the
/// device is registered.
#[vtable]
pub trait Operations: Send + Sync + Sized {
    /// The device is brought up (`ndo_open`), under RTNL: enable NAPI, start the queues.
    fn open(&self, _dev: &NetDevice) -> Result {
        Ok(())
    }

    /// The device is brought down (`ndo_stop`), under RTNL: disable NAPI. After this returns,
    /// `start_xmit` is not called until the next `open`.
    fn stop(&self, _dev: &NetDevice) -> Result {
        Ok(())
    }

    /// Transmits `skb` (`ndo_start_xmit`), in softirq context (BH disabled), serialised with
    /// itself. `Ok` means the driver took the packet (sent it or dropped it); `Err(skb)`
    /// hands it back to the stack, which retries it later (`NETDEV_TX_BUSY`): stop the queue
    /// before doing that.
    fn start_xmit(&self, dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff>;

    /// Fills in the statistics (`ndo_get_stats64`). Any context: do not sleep.
    fn get_stats64(&self, _dev: &NetDevice, _stats: &mut LinkStats) {}

    /// The user changed the device's features (`ndo_set_features`), under RTNL: apply
    /// `features` to the device. On success the core makes them the device's; on error it keeps
    /// the old ones. Only features in `hw_features` change (see
    /// [`Registration::add_features`]). Without this callback every change is accepted.
    fn set_features(&self, _dev: &NetDevice, _features: Features) -> Result {
        Ok(())
    }

    /// Transmit queue `queue` has been stopped for longer than the watchdog allows
    /// (`ndo_tx_timeout`): the device stopped sending. Softirq context (the watchdog timer),
    /// with the queue's transmit lock held. Without this callback there is no watchdog.
    fn tx_timeout(&self, _dev: &NetDevice, _queue: u32) {}

    /// CPU `cpu` came online (CPU hotplug: [`crate::cpuhp`]). It runs on that CPU, in
    /// process context, with CPU hotplug held off (`cpus`). With any of the `cpu_*` callbacks,
    /// the registration follows CPU hotplug from the end of [`Registration::register`] to the
    /// start of [`Registration::unregister`], as C drivers add their hotplug instance after
    /// `register_netdev` and remove it before `unregister_netdev`.
    fn cpu_online(&self, _dev: &NetDevice, _cpus: &CpusLocked, _cpu: u32) {}

    /// CPU `cpu` is about to go offline: as [`cpu_online`](Self::cpu_online), on that CPU, which
    /// is still online.
    fn cpu_down_prep(&self, _dev: &NetDevice, _cpus: &CpusLocked, _cpu: u32) {}

    /// CPU `cpu` is dead: as [`cpu_online`](Self::cpu_online), on another CPU; `cpu` is not
    /// online any more.
    fn cpu_dead(&self, _dev: &NetDevice, _cpus: &CpusLocked, _cpu: u32) {}

    /// The device's delayed work (see [`NetDevice::schedule_work`]), in process context (the
    /// system workqueue). Runs only between [`NetDevice::enable_work`] and
    /// [`NetDevice::disable_work`], and never once the device is being freed.
    fn work(&self, _dev: &NetDevice) {}
    /// The receive filter changed (`ndo_set_rx_mode`): apply `mode`. The stack calls
    /// `ndo_set_rx_mode` in atomic context, holding the address lock; the adapter defers it
    /// to a work item of the device, as C drivers that must sleep to program the filter do,
    /// and calls this there, in process context under RTNL, with a snapshot of the flags and
    /// address lists, only while the device is registered. Several changes may be folded into
    /// one call: `mode` is always the latest.
    fn set_rx_mode(&self, _dev: &NetDevice, _mode: &RxMode) {}

    /// The stack adds VLAN `vid` to the receive filter (`ndo_vlan_rx_add_vid`, for a device
    /// with [`Registration::filter_vlans`]), in process context under RTNL.
    fn vlan_rx_add_vid(&self, _dev: &NetDevice, _vid: u16) -> Result {
        Ok(())
    }

    /// The stack removes VLAN `vid` from the receive filter (`ndo_vlan_rx_kill_vid`).
    fn vlan_rx_kill_vid(&self, _dev: &NetDevice, _vid: u16) -> Result {
        Ok(())
    }

    /// The device's Ethernet address is to become `addr` (`ndo_set_mac_address`), in process
    /// context under RTNL. The adapter has checked the address and whether the device may
    /// change it now (up only with [`Registration::allow_live_addr_change`]); on `Ok` it sets
    /// the address, on error it leaves the old one. Without this callback the address cannot
    /// be changed (`EOPNOTSUPP`).
    fn set_mac_address(&self, _dev: &NetDevice, _addr: &[u8; ETH_ALEN]) -> Result {
        Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32)))
    }

    /// Shows the receive queue attribute with id `id` (see [`RxQueueAttribute`]) of receive
    /// queue `queue`, into `w`, for a read of its sysfs file. Process context; runs only while
    /// the device is registered.
    fn rx_queue_attr_show(
        &self,
        _dev: &NetDevice,
        _queue: u32,
        _id: u32,
        _w: &mut AttrWriter<'_>,
    ) -> Result {
        Err(EIO)
    }
}

/// Writes the value of a sysfs attribute into the page sysfs provides; what does not fit is
/// cut off.
pub struct AttrWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl core::fmt::Write for AttrWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.pos);
        self.buf[self.pos..self.pos + n].copy_from_slice(&s.as_bytes()[..n]);
        self.pos += n;
        Ok(())
    }
}

/// A read-only sysfs attribute of every receive queue of the devices of a driver
/// (`/sys/class/net/<dev>/queues/rx-<n>/<group>/<name>`, as C's `struct rx_queue_attribute`),
/// shown by [`Operations::rx_queue_attr_show`] with the id `ID`. Declare it as a `static` and
/// list it in an [`RxQueueAttributes`].
#[repr(transparent)]
pub struct RxQueueAttribute<T: Operations> {
    attr: bindings::rx_queue_attribute,
    _p: PhantomData<T>,
}

// SAFETY: The attribute is immutable after construction; sysfs only reads its C fields.
unsafe impl<T: Operations> Sync for RxQueueAttribute<T> {}

impl<T: Operations> RxQueueAttribute<T> {
    /// A read-only (0444) attribute named `name`, with the id `ID` in the callback.
    pub const fn new<const ID: u32>(name: &'static CStr) -> Self {
        // SAFETY: All-zero is a valid `rx_queue_attribute` (no callbacks).
        let mut attr: bindings::rx_queue_attribute = unsafe { core::mem::zeroed() };
        attr.attr.name = name.as_char_ptr();
        attr.attr.mode = 0o444;
        attr.show = Some(Adapter::<T>::rx_queue_attr_show::<ID>);
        Self {
            attr,
            _p: PhantomData,
        }
    }
}

/// The receive queue attributes of the devices of a driver: `N` entries, the last `None` (the
/// terminator). Declare it as a `static`, and name its directory with an [`RxQueueGroup`].
pub struct RxQueueAttributes<T: Operations, const N: usize> {
    ptrs: [*mut bindings::attribute; N],
    _p: PhantomData<T>,
}

// SAFETY: The array only holds pointers to `'static`, immutable attributes.
unsafe impl<T: Operations, const N: usize> Sync for RxQueueAttributes<T, N> {}

impl<T: Operations, const N: usize> RxQueueAttributes<T, N> {
    /// The attribute list; `attrs[N - 1]` must be `None` (a build error otherwise).
    pub const fn new(attrs: [Option<&'static RxQueueAttribute<T>>; N]) -> Self {
        let mut ptrs = [core::ptr::null_mut(); N];
        let mut i = 0;
        while i < N {
            if let Some(a) = attrs[i] {
                ptrs[i] = core::ptr::addr_of!(a.attr.attr).cast_mut();
            }
            i += 1;
        }
        if N == 0 || attrs[N - 1].is_some() {
            panic!("RxQueueAttributes: the last entry must be None");
        }
        Self {
            ptrs,
            _p: PhantomData,
        }
    }
}

/// The directory of receive queue attributes of the devices of a driver
/// (`/sys/class/net/<dev>/queues/rx-<n>/<name>/`), as C's `sysfs_rx_queue_group`. Declare it
/// as a `static` and give it to [`Registration::set_rx_queue_group`].
pub struct RxQueueGroup<T: Operations> {
    group: bindings::attribute_group,
    _p: PhantomData<T>,
}

// SAFETY: Immutable after construction; sysfs only reads it.
unsafe impl<T: Operations> Sync for RxQueueGroup<T> {}

impl<T: Operations> RxQueueGroup<T> {
    /// The directory `name`, holding `attrs`.
    pub const fn new<const N: usize>(
        name: &'static CStr,
        attrs: &'static RxQueueAttributes<T, N>,
    ) -> Self {
        // SAFETY: All-zero is a valid `attribute_group` (no callbacks, no attributes).
        let mut group: bindings::attribute_group = unsafe { core::mem::zeroed() };
        group.name = name.as_char_ptr();
        group.attrs = attrs.ptrs.as_ptr().cast_mut();
        Self {
            group,
            _p: PhantomData,
        }
    }
}

/// The receive filter the stack asks for: the device's flags and address lists, as
/// [`Operations::set_rx_mode`] gets them.
pub struct RxMode {
    /// `IFF_PROMISC`: receive everything.
    pub promisc: bool,
    /// `IFF_ALLMULTI`: receive all multicast.
    pub allmulti: bool,
    /// The secondary unicast addresses (the device's own address is not among them).
    pub uc: KVec<[u8; ETH_ALEN]>,
    /// The multicast addresses.
    pub mc: KVec<[u8; ETH_ALEN]>,
}

impl RxMode {
    /// Reads the filter of `dev`.
    ///
    /// # Safety
    ///
    /// `dev` is a valid device and the caller holds RTNL (which `flags` changes under).
    unsafe fn read(dev: *mut bindings::net_device) -> Result<Self> {
        // SAFETY: `dev` is valid, and RTNL keeps `flags` stable (safety requirements).
        let flags = unsafe { (*dev).flags };
        loop {
            let (mut nuc, mut nmc) = (0u32, 0u32);
            // SAFETY: `dev` is valid; with no room, the helper only counts (under the device's
            // address lock).
            unsafe {
                bindings::vrs_netdev_rx_addrs(
                    dev,
                    core::ptr::null_mut(),
                    0,
                    &mut nuc,
                    core::ptr::null_mut(),
                    0,
                    &mut nmc,
                )
            };
            let mut uc = KVec::<[u8; ETH_ALEN]>::with_capacity(nuc as usize, GFP_KERNEL)?;
            let mut mc = KVec::<[u8; ETH_ALEN]>::with_capacity(nmc as usize, GFP_KERNEL)?;
            let (mut uc_now, mut mc_now) = (0u32, 0u32);
            // SAFETY: `uc` and `mc` have room for `nuc` and `nmc` addresses of `ETH_ALEN` bytes,
            // and the helper copies at most that many (under the address lock), reporting the
            // counts the lists had then.
            unsafe {
                bindings::vrs_netdev_rx_addrs(
                    dev,
                    uc.as_mut_ptr().cast(),
                    nuc,
                    &mut uc_now,
                    mc.as_mut_ptr().cast(),
                    nmc,
                    &mut mc_now,
                )
            };
            if uc_now <= nuc && mc_now <= nmc {
                // SAFETY: The helper initialised the first `uc_now` and `mc_now` entries, which
                // fit the capacities (just checked).
                unsafe {
                    uc.set_len(uc_now as usize);
                    mc.set_len(mc_now as usize);
                }
                return Ok(Self {
                    promisc: flags & bindings::net_device_flags_IFF_PROMISC != 0,
                    allmulti: flags & bindings::net_device_flags_IFF_ALLMULTI != 0,
                    uc,
                    mc,
                });
            }
            // The lists grew between the count and the copy: again.
        }
    }
}

/// Where a [`Registration`] is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Allocated, not registered yet.
    New,
    /// `register_netdev` is running.
    Registering,
    /// Registered.
    Registered,
    /// `unregister_netdev` is running, or ran: the device never comes back.
    Gone,
}

struct RegState {
    phase: State,
    /// The carrier the driver asked for, applied when registration completes.
    carrier: bool,
}

/// What the device's private area holds. `repr(C)`, with `work` first: [`NetDevice`] finds it
/// there without knowing `T`.
#[pin_data]
#[repr(C)]
struct Priv<T> {
    #[pin]
    work: DevWork,
    /// Serialises `register` and `unregister`, for their whole duration.
    #[pin]
    reg: Mutex<()>,
    /// The device whose private area this is.
    ndev: *mut bindings::net_device,
    /// Runs [`Operations::set_rx_mode`]; cancelled before the private data is dropped.
    #[pin]
    rx_mode_work: Opaque<bindings::work_struct>,
    /// Held briefly, never across a call into the stack.
    #[pin]
    state: Mutex<RegState>,
    /// How many statistics ethtool's `get_sset_count` reported last (RTNL): the room in the
    /// buffer of the `get_strings` that follows.
    ethtool_stats: AtomicUsize,
    /// The sizes of the RSS indirection table (entries) and key (bytes) ethtool reports, set
    /// before registration and fixed after: the core sizes the buffers of `get_rxfh` and
    /// `set_rxfh` from them.
    rxfh_sizes: (AtomicU32, AtomicU32),
    /// The CPU hotplug instance, with any `cpu_*` callback: added by `register` once the
    /// device is registered, removed by `unregister` before it unregisters it.
    #[pin]
    cpuhp: cpuhp::Node,
    /// Whether `cpuhp` is added. Changed only under `reg`.
    cpuhp_added: AtomicBool,
    #[pin]
    data: T,
}

/// A network device allocated with `T` in its private area, registered with the stack by
/// [`register`](Registration::register) and unregistered, dropped and freed when the
/// registration is dropped.
///
/// # Invariants
///
/// - `dev` is a `net_device` allocated by `alloc_etherdev_mqs` with room for a `Priv<T>` in its
///   private area, which is initialised and pinned there until `drop`; `netdev_ops` is
///   `Adapter::<T>::OPS`.
/// - The device is registered only while the state is `Registering` or `Registered` (or `Gone`
///   while `unregister` runs, holding `reg`).
pub struct Registration<T: Operations> {
    dev: NonNull<bindings::net_device>,
    /// The parent device, `dev->dev.parent`: held so that a registration kept (and registered)
    /// after its parent was unbound still points to a live `struct device`.
    _parent: ARef<device::Device>,
    _p: PhantomData<T>,
}

// SAFETY: The registration owns the device and its `T`, which is `Send`; the C functions it
// calls may be called from any thread.
unsafe impl<T: Operations> Send for Registration<T> {}
// SAFETY: The `&self` methods take the state lock or call thread-safe C functions; `T` is
// `Sync`.
unsafe impl<T: Operations> Sync for Registration<T> {}

impl<T: Operations> Registration<T> {
    const PRIV_FITS: () = assert!(
        core::mem::align_of::<Priv<T>>() <= bindings::NETDEV_ALIGN as usize,
        "the private data of a net_device is aligned to NETDEV_ALIGN bytes at most"
    );

    /// Allocates an Ethernet device (`alloc_etherdev_mqs`, one queue each way) whose parent is
    /// `parent`, and initialises its private data with what `init` returns. `init` gets the
    /// device being set up, to read it; the initialiser it returns may build NAPI contexts
    /// ([`Napi::new`](super::napi::Napi::new), [`NapiVec::new`](super::napi::NapiVec::new)),
    /// which are added to this device because they are built in its private area. The device
    /// is not registered.
    pub fn new<I>(
        parent: &device::Device,
        init: impl FnOnce(&NetDevice) -> Result<I>,
    ) -> Result<Self>
    where
        I: PinInit<T, Error>,
    {
        Self::new_mq(parent, 1, 1, init)
    }

    /// As [`new`](Self::new), with `tx_queues` transmit and `rx_queues` receive queues
    /// (`alloc_etherdev_mqs`), all of them in use until
    /// [`set_real_num_queues`](Self::set_real_num_queues) says otherwise. `EINVAL` if either is
    /// 0 or above [`MAX_QUEUES`].
    pub fn new_mq<I>(
        parent: &device::Device,
        tx_queues: u32,
        rx_queues: u32,
        init: impl FnOnce(&NetDevice) -> Result<I>,
    ) -> Result<Self>
    where
        I: PinInit<T, Error>,
    {
        #[allow(clippy::let_unit_value)]
        let () = Self::PRIV_FITS;
        if !(1..=MAX_QUEUES).contains(&tx_queues) || !(1..=MAX_QUEUES).contains(&rx_queues) {
            return Err(EINVAL);
        }
        let size = c_int::try_from(core::mem::size_of::<Priv<T>>()).map_err(|_| EINVAL)?;
        // SAFETY: Plain allocation; process context.
        let dev = unsafe { bindings::alloc_etherdev_mqs(size, tx_queues, rx_queues) };
        let dev = NonNull::new(dev).ok_or(ENOMEM)?;
        let raw = dev.as_ptr();
        let parent = ARef::from(parent);
        // SAFETY: `raw` is a new, unregistered device that only we know; `parent` stays a valid
        // device while the registration holds its reference, that is longer than `raw` can be
        // registered. The ops table is a constant, so it lives forever.
        unsafe {
            (*raw).dev.parent = parent.as_raw();
            (*raw).netdev_ops = &Adapter::<T>::OPS;
        }
        // SAFETY: `raw` is valid for the duration of the call; it is freed only below, after
        // the initialisation, or by `drop`.
        let ndev = unsafe { NetDevice::from_raw(raw) };
        // Mark the device as being set up by this task until its private area is initialised:
        // NAPI contexts may be built there, and only there (`Napi::new`). The mark goes before
        // the device can be freed.
        // SAFETY: `raw` is valid until the mark is removed below, before any `free_netdev`.
        let setup = unsafe { bindings::vrs_netdev_setup_begin(raw) };
        if setup.is_null() {
            // SAFETY: The device is not registered and nothing in it is initialised or used.
            unsafe { bindings::free_netdev(raw) };
            return Err(ENOMEM);
        }
        let res = init(ndev).and_then(|data| {
            let init = try_pin_init!(Priv {
                work <- DevWork::new::<T>(raw),
                reg <- new_mutex!((), "net_registration"),
                ndev: raw,
                rx_mode_work <- Opaque::ffi_init(|slot| {
                    // SAFETY: `slot` is valid for writes and pinned in the private area;
                    // `rx_mode_work_fn` is a work function for this field of a `Priv<T>`, and
                    // the key is static.
                    unsafe {
                        bindings::init_work_with_key(
                            slot,
                            Some(Adapter::<T>::rx_mode_work_fn),
                            false,
                            c_str!("net_rx_mode").as_char_ptr(),
                            crate::static_lock_class!().as_ptr(),
                        )
                    }
                }),
                state <- new_mutex!(RegState { phase: State::New, carrier: false }, "net_reg_state"),
                ethtool_stats: AtomicUsize::new(0),
                rxfh_sizes: (AtomicU32::new(0), AtomicU32::new(0)),
                cpuhp <- cpuhp::Node::new(Adapter::<T>::cpu_event),
                cpuhp_added: AtomicBool::new(false),
                data <- data,
            }? Error);
            // SAFETY: The private area has room for a `Priv<T>` (allocated with its size) and
            // is aligned to `NETDEV_ALIGN` (checked above); it is pinned until `free_netdev`,
            // and on error the initialiser leaves nothing behind.
            unsafe {
                init.__pinned_init(bindings::netdev_priv(raw).cast::<Priv<T>>())
            }
        });
        // SAFETY: `setup` came from `vrs_netdev_setup_begin` above and is ended only here.
        unsafe { bindings::vrs_netdev_setup_end(setup) };
        if let Err(e) = res {
            // SAFETY: The device is not registered and nothing in it is initialised or used.
            unsafe { bindings::free_netdev(raw) };
            return Err(e);
        }
        // SAFETY: The private area holds an initialised `Priv<T>`, just above.
        unsafe { &*bindings::netdev_priv(raw).cast::<Priv<T>>() }
            .work
            .ready
            .lock()
            .0 = true;
        // INVARIANT: the private area is initialised; the device is not registered.
        Ok(Self {
            dev,
            _parent: parent,
            _p: PhantomData,
        })
    }

    fn priv_(&self) -> &Priv<T> {
        // SAFETY: The private area holds an initialised `Priv<T>` until `drop` (type invariant).
        unsafe { &*bindings::netdev_priv(self.dev.as_ptr()).cast::<Priv<T>>() }
    }

    /// The driver's data.
    pub fn data(&self) -> &T {
        &self.priv_().data
    }

    /// The device.
    pub fn dev(&self) -> &NetDevice {
        // SAFETY: The device lives until `drop` (type invariant), longer than `&self`.
        unsafe { NetDevice::from_raw(self.dev.as_ptr()) }
    }

    /// Sets the device's Ethernet address. Only before [`register`](Self::register): `EBUSY`
    /// after.
    pub fn set_mac(&self, addr: &[u8; ETH_ALEN]) -> Result {
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        // SAFETY: The device is valid and not registered (we hold the state lock in `New`), so
        // nobody else reads or writes its address; `addr` has `ETH_ALEN` bytes.
        unsafe { bindings::eth_hw_addr_set(self.dev.as_ptr(), addr.as_ptr()) };
        Ok(())
    }

    /// Gives the device a random, locally administered Ethernet address. Only before
    /// [`register`](Self::register): `EBUSY` after.
    pub fn set_random_mac(&self) -> Result {
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        // SAFETY: As in `set_mac`.
        unsafe { bindings::eth_hw_addr_random(self.dev.as_ptr()) };
        Ok(())
    }

    /// Sets flags of the device before [`register`](Self::register) (`EBUSY` after).
    fn set_flags(&self, priv_flags: u64, features: u64) -> Result {
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        let dev = self.dev.as_ptr();
        // SAFETY: The device is valid and not registered (we hold the state lock in `New`), so
        // nobody else reads or writes its flags.
        unsafe {
            bindings::vrs_netdev_add_priv_flags(dev, priv_flags);
            (*dev).features |= features;
        }
        Ok(())
    }

    /// Lets the address change while the device is up (`IFF_LIVE_ADDR_CHANGE`), through
    /// [`Operations::set_mac_address`]. Before [`register`](Self::register) only.
    pub fn allow_live_addr_change(&self) -> Result {
        self.set_flags(
            u64::from(bindings::netdev_priv_flags_IFF_LIVE_ADDR_CHANGE),
            0,
        )
    }

    /// The device filters unicast addresses itself (`IFF_UNICAST_FLT`): the stack hands
    /// secondary addresses to [`Operations::set_rx_mode`] instead of going promiscuous.
    /// Before [`register`](Self::register) only.
    pub fn filter_unicast(&self) -> Result {
        self.set_flags(u64::from(bindings::netdev_priv_flags_IFF_UNICAST_FLT), 0)
    }

    /// The device filters VLANs (`NETIF_F_HW_VLAN_CTAG_FILTER`): the stack calls
    /// [`Operations::vlan_rx_add_vid`] and [`Operations::vlan_rx_kill_vid`]. Before
    /// [`register`](Self::register) only.
    pub fn filter_vlans(&self) -> Result {
        self.set_flags(0, 1 << bindings::NETIF_F_HW_VLAN_CTAG_FILTER_BIT)
    }

    /// Gives each receive queue the attributes of `group` (`sysfs_rx_queue_group`), shown by
    /// [`Operations::rx_queue_attr_show`]. Before [`register`](Self::register) only (`EBUSY`
    /// after).
    pub fn set_rx_queue_group(&self, group: &'static RxQueueGroup<T>) -> Result {
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        // SAFETY: The device is valid and not registered (we hold the state lock in `New`), so
        // nobody else reads the field yet; the group is `'static`. Its attributes' callbacks
        // run only while the queues' sysfs files exist: from `register_netdev` until
        // `unregister_netdev` removes them (draining the reads in progress), while the private
        // data lives.
        unsafe { (*self.dev.as_ptr()).sysfs_rx_queue_group = &group.group };
        Ok(())
    }

    /// Sets how many of the allocated queues are in use (`netif_set_real_num_tx_queues()`,
    /// `netif_set_real_num_rx_queues()`). Before [`register`](Self::register) only (`EBUSY`
    /// after: see [`ethtool::Operations::set_channels`] for a running device); `EINVAL` if
    /// either is 0 or above what was allocated.
    pub fn set_real_num_queues(&self, tx: u32, rx: u32) -> Result {
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        // SAFETY: The device is valid and not registered (we hold the state lock in `New`): the
        // core needs no RTNL then, and checks the counts against what it allocated.
        unsafe {
            to_result(bindings::netif_set_real_num_tx_queues(
                self.dev.as_ptr(),
                tx,
            ))?;
            to_result(bindings::netif_set_real_num_rx_queues(
                self.dev.as_ptr(),
                rx,
            ))
        }
    }

    /// Tells the neighbours that the device moved (`netdev_notify_peers`: gratuitous ARP and
    /// unsolicited neighbour advertisements), as after a migration. Process context. Does
    /// nothing unless the device is registered.
    pub fn notify_peers(&self) {
        let p = self.priv_();
        let _reg = p.reg.lock();
        if p.state.lock().phase == State::Registered {
            // SAFETY: The device is registered, and stays so while we hold `reg`; process
            // context (it takes RTNL, which `unregister` takes only while holding `reg`).
            unsafe { bindings::netdev_notify_peers(self.dev.as_ptr()) };
        }
    }

    /// Sets the carrier (`netif_carrier_on/off()`). Process context. Before registration this
    /// sets the initial state; after [`unregister`](Self::unregister) it does nothing. Do not
    /// call it from [`Operations`] callbacks.
    pub fn set_carrier(&self, on: bool) {
        let mut st = self.priv_().state.lock();
        st.carrier = on;
        if matches!(st.phase, State::New | State::Registered) {
            // SAFETY: The device is valid, and not unregistered (the state would be `Gone`): the
            // link watch would keep a reference to it past `free_netdev`. The lock keeps the
            // state as it is meanwhile.
            unsafe { Self::apply_carrier(self.dev.as_ptr(), on) };
        }
    }

    /// # Safety
    ///
    /// `dev` is valid, and not unregistered.
    unsafe fn apply_carrier(dev: *mut bindings::net_device, on: bool) {
        // SAFETY: By the safety requirements.
        unsafe {
            if on {
                bindings::netif_carrier_on(dev)
            } else {
                bindings::netif_carrier_off(dev)
            }
        }
    }

    /// Registers the device with the stack (`register_netdev`): it appears, and the callbacks
    /// may run. Process context. `EBUSY` if it was registered before (even if unregistered
    /// since).
    pub fn register(&self) -> Result {
        let p = self.priv_();
        let _reg = p.reg.lock();
        {
            let mut st = p.state.lock();
            if st.phase != State::New {
                return Err(EBUSY);
            }
            st.phase = State::Registering;
        }
        // SAFETY: The device is set up and its private data initialised; `reg` keeps anybody
        // else from registering or unregistering it meanwhile. Process context. The state
        // lock is not held: the carrier setter may run meanwhile, and is applied below.
        let res = to_result(unsafe { bindings::register_netdev(self.dev.as_ptr()) });
        let mut st = p.state.lock();
        if res.is_err() {
            st.phase = State::New;
            return res;
        }
        st.phase = State::Registered;
        // As C drivers do, the carrier goes off, then on if it is: a carrier already on at
        // registration would fire no link event, and the operational state would stay
        // "unknown" instead of following the carrier.
        // SAFETY: The device is registered, and stays so while we hold `reg`.
        unsafe {
            Self::apply_carrier(self.dev.as_ptr(), false);
            if st.carrier {
                Self::apply_carrier(self.dev.as_ptr(), true);
            }
        }
        drop(st);
        if T::HAS_CPU_ONLINE || T::HAS_CPU_DOWN_PREP || T::HAS_CPU_DEAD {
            // SAFETY: The node is not added (it is added only here, once: the state is
            // `Registered` only once), and `reg` serialises this with the removal in
            // `unregister`, which runs before the private data and the device go (`drop`).
            if let Err(e) = unsafe { p.cpuhp.add() } {
                // As C's probe: a device that cannot follow CPU hotplug is unregistered.
                drop(_reg);
                self.unregister();
                return Err(e);
            }
            p.cpuhp_added.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Unregisters the device (`unregister_netdev`) if it is registered: it is closed, the
    /// callbacks are over when this returns, and it never comes back. Process context.
    /// Idempotent; dropping the registration does it too.
    pub fn unregister(&self) {
        let p = self.priv_();
        let _reg = p.reg.lock();
        if p.cpuhp_added.swap(false, Ordering::Relaxed) {
            // SAFETY: Added by `register` and not removed since (`cpuhp_added`, under `reg`).
            unsafe { p.cpuhp.remove() };
        }
        let was = core::mem::replace(&mut p.state.lock().phase, State::Gone);
        if was == State::Registered {
            // SAFETY: It is registered, and `reg` keeps anybody else from unregistering it; the
            // state, now `Gone`, keeps the carrier setter away. The state lock is not held:
            // `stop` runs in here. Process context.
            unsafe { bindings::unregister_netdev(self.dev.as_ptr()) };
        }
    }
}

impl<T: Operations> Drop for Registration<T> {
    fn drop(&mut self) {
        self.unregister();
        // SAFETY: The work item is initialised (type invariant); the device is unregistered,
        // so `ndo_set_rx_mode` does not queue it again; process context.
        unsafe { bindings::cancel_work_sync(self.priv_().rx_mode_work.get()) };
        self.priv_().work.shut_down();
        let dev = self.dev.as_ptr();
        // SAFETY: The device is unregistered (or never was), so no callback runs and nobody
        // else uses the private data; we drop it once, then free the device, which nothing
        // references any more (`unregister_netdev` waited for the stack's references).
        unsafe {
            core::ptr::drop_in_place(bindings::netdev_priv(dev).cast::<Priv<T>>());
            bindings::free_netdev(dev);
        }
    }
}

/// Turns [`Operations`] into a `struct net_device_ops`.
struct Adapter<T: Operations>(PhantomData<T>);

impl<T: Operations> Adapter<T> {
    const OPS: bindings::net_device_ops = {
        // SAFETY: An all-zero `net_device_ops` (no callbacks) is valid.
        let mut ops: bindings::net_device_ops = unsafe { core::mem::zeroed() };
        ops.ndo_open = Some(Self::open);
        ops.ndo_stop = Some(Self::stop);
        ops.ndo_start_xmit = Some(Self::start_xmit);
        if T::HAS_GET_STATS64 {
            ops.ndo_get_stats64 = Some(Self::get_stats64);
        }
        if T::HAS_SET_RX_MODE {
            ops.ndo_set_rx_mode = Some(Self::set_rx_mode);
        }
        if T::HAS_VLAN_RX_ADD_VID {
            ops.ndo_vlan_rx_add_vid = Some(Self::vlan_rx_add_vid);
        }
        if T::HAS_VLAN_RX_KILL_VID {
            ops.ndo_vlan_rx_kill_vid = Some(Self::vlan_rx_kill_vid);
        }
        if T::HAS_SET_MAC_ADDRESS {
            ops.ndo_set_mac_address = Some(Self::set_mac_address);
        }
        if T::HAS_SET_FEATURES {
            ops.ndo_set_features = Some(Self::set_features);
        }
        if T::HAS_TX_TIMEOUT {
            ops.ndo_tx_timeout = Some(Self::tx_timeout);
        }
        ops.ndo_validate_addr = Some(bindings::eth_validate_addr);
        ops
    };

    /// # Safety
    ///
    /// `dev` is a registered device of a `Registration<T>`: its private area holds a live
    /// `Priv<T>`.
    unsafe fn data<'a>(dev: *mut bindings::net_device) -> (&'a T, &'a NetDevice) {
        // SAFETY: By the safety requirements; the stack calls the ops only between
        // `register_netdev` and the end of `unregister_netdev`, while `Priv<T>` lives.
        unsafe {
            (
                &(*bindings::netdev_priv(dev).cast::<Priv<T>>()).data,
                NetDevice::from_raw(dev),
            )
        }
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_open` of a device of a `Registration<T>`.
    unsafe extern "C" fn open(dev: *mut bindings::net_device) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        from_result(|| T::open(data, dev).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_stop` of a device of a `Registration<T>`.
    unsafe extern "C" fn stop(dev: *mut bindings::net_device) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        from_result(|| T::stop(data, dev).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_start_xmit` of a device of a `Registration<T>`, with an skb
    /// whose reference it hands over.
    unsafe extern "C" fn start_xmit(
        skb: *mut bindings::sk_buff,
        dev: *mut bindings::net_device,
    ) -> bindings::netdev_tx_t {
        // SAFETY: The stack gives us its reference to `skb`, which is never null here.
        let Some(skb) = (unsafe { SkBuff::from_raw(skb) }) else {
            return bindings::netdev_tx_NETDEV_TX_OK;
        };
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        match T::start_xmit(data, dev, skb) {
            Ok(()) => bindings::netdev_tx_NETDEV_TX_OK,
            Err(skb) => {
                // The stack keeps its reference and retries.
                let _ = skb.into_raw();
                bindings::netdev_tx_NETDEV_TX_BUSY
            }
        }
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_set_features` of a device of a `Registration<T>`.
    unsafe extern "C" fn set_features(
        dev: *mut bindings::net_device,
        features: bindings::netdev_features_t,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        from_result(|| T::set_features(data, dev, Features(features)).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_tx_timeout` of a device of a `Registration<T>`.
    unsafe extern "C" fn tx_timeout(dev: *mut bindings::net_device, queue: core::ffi::c_uint) {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        T::tx_timeout(data, dev, queue);
    }

    /// # Safety
    ///
    /// Called only by sysfs, as the `show` of an [`RxQueueAttribute<T>`] with id `ID`, for a
    /// receive queue of a registered device of a `Registration<T>` (the attributes exist only
    /// in the group [`Registration::set_rx_queue_group`] gives such a device), with a page at
    /// `buf`.
    unsafe extern "C" fn rx_queue_attr_show<const ID: u32>(
        queue: *mut bindings::netdev_rx_queue,
        buf: *mut crate::ffi::c_char,
    ) -> isize {
        let mut index = 0u32;
        // SAFETY: `queue` is a receive queue of a live device (safety requirements).
        let dev = unsafe { bindings::vrs_rx_queue_dev(queue, &mut index) };
        // SAFETY: The device is registered: its sysfs files are removed, and the reads in
        // progress drained, before `unregister_netdev` returns (safety requirements); sysfs
        // gives a page.
        let ((data, dev), page) = unsafe {
            (
                Self::data(dev),
                core::slice::from_raw_parts_mut(buf.cast::<u8>(), bindings::PAGE_SIZE),
            )
        };
        let mut w = AttrWriter { buf: page, pos: 0 };
        match T::rx_queue_attr_show(data, dev, index, ID, &mut w) {
            Ok(()) => w.pos as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_get_stats64` of a device of a `Registration<T>`, with
    /// `stats` valid for writes (not necessarily aligned).
    unsafe extern "C" fn get_stats64(
        dev: *mut bindings::net_device,
        stats: *mut bindings::rtnl_link_stats64,
    ) {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        let mut s = LinkStats::default();
        T::get_stats64(data, dev, &mut s);
        // `stats` need not be aligned: rtnetlink passes a pointer into a netlink attribute,
        // 4-byte aligned where unaligned access is cheap (`nla_reserve_64bit`). So no reference
        // to it: each field is written unaligned.
        macro_rules! put {
            ($($f:ident),*) => {$(
                // SAFETY: `stats` is valid for writes of a `rtnl_link_stats64` (safety
                // requirements), which has the field; the write makes no alignment assumption.
                // `dev_get_stats` zeroed it and adds the core's own counters after we return.
                unsafe { core::ptr::addr_of_mut!((*stats).$f).write_unaligned(s.$f) };
            )*};
        }
        put!(
            rx_packets,
            rx_bytes,
            rx_dropped,
            rx_errors,
            rx_length_errors,
            rx_frame_errors,
            tx_packets,
            tx_bytes,
            tx_dropped,
            tx_errors
        );
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_set_rx_mode` of a device of a `Registration<T>`.
    unsafe extern "C" fn set_rx_mode(dev: *mut bindings::net_device) {
        // SAFETY: By the safety requirements the private area holds a live `Priv<T>`, whose
        // work item is initialised; `Registration::drop` cancels it before dropping it.
        unsafe {
            let p = bindings::netdev_priv(dev).cast::<Priv<T>>();
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as _,
                bindings::system_wq,
                Opaque::raw_get(core::ptr::addr_of!((*p).rx_mode_work)),
            );
        }
    }

    /// The event function of the CPU hotplug instance (`Priv::cpuhp`).
    ///
    /// # Safety
    ///
    /// `online` is the node of the `cpuhp` field of a live `Priv<T>`, called by the CPU hotplug
    /// core with its lock held, while the node is added.
    unsafe extern "C" fn cpu_event(
        online: *mut bindings::hlist_node,
        event: core::ffi::c_uint,
        cpu: core::ffi::c_uint,
    ) {
        // SAFETY: `online` is the first field of the `cpuhp` node of a `Priv<T>` (safety
        // requirements), which `unregister` removes (waiting for this) before the private data
        // goes; `Node` is `repr(transparent)` over the raw node, whose first field it is.
        let p = unsafe { &*crate::container_of!(online.cast::<cpuhp::Node>(), Priv<T>, cpuhp) };
        // SAFETY: The device outlives its private area.
        let dev = unsafe { NetDevice::from_raw(p.ndev) };
        // SAFETY: The CPU hotplug core holds its lock around its callbacks (safety
        // requirements), for longer than this call.
        let cpus = unsafe { CpusLocked::assume() };
        match cpuhp::Event::from_raw(event) {
            Some(cpuhp::Event::Online) => T::cpu_online(&p.data, dev, cpus, cpu),
            Some(cpuhp::Event::DownPrep) => T::cpu_down_prep(&p.data, dev, cpus, cpu),
            Some(cpuhp::Event::Dead) => T::cpu_dead(&p.data, dev, cpus, cpu),
            None => {}
        }
    }

    /// # Safety
    ///
    /// Called only by the workqueue, for the `rx_mode_work` of a `Priv<T>`.
    unsafe extern "C" fn rx_mode_work_fn(work: *mut bindings::work_struct) {
        // SAFETY: `work` is the `rx_mode_work` field of a live `Priv<T>`: `Registration::drop`
        // cancels the work (waiting for it) before dropping it.
        let p = unsafe { &*crate::container_of!(work, Priv<T>, rx_mode_work) };
        // The device outlives its private area.
        let dev = p.ndev;
        // SAFETY: Process context (a work item); not holding RTNL.
        unsafe { bindings::vrs_rtnl_lock() };
        // Under RTNL, the device cannot finish unregistering meanwhile: only a registered
        // device gets the callback.
        if p.state.lock().phase == State::Registered {
            // SAFETY: `dev` is valid and we hold RTNL.
            match unsafe { RxMode::read(dev) } {
                // SAFETY: `dev` is the device of `p`, registered.
                Ok(mode) => T::set_rx_mode(&p.data, unsafe { NetDevice::from_raw(dev) }, &mode),
                Err(_) => pr_warn!("net: no memory to read the receive filter\n"),
            }
        }
        // SAFETY: Taken above.
        unsafe { bindings::vrs_rtnl_unlock() };
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_vlan_rx_add_vid` of a device of a `Registration<T>`.
    unsafe extern "C" fn vlan_rx_add_vid(
        dev: *mut bindings::net_device,
        _proto: bindings::__be16,
        vid: u16,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        from_result(|| T::vlan_rx_add_vid(data, dev, vid).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_vlan_rx_kill_vid` of a device of a `Registration<T>`.
    unsafe extern "C" fn vlan_rx_kill_vid(
        dev: *mut bindings::net_device,
        _proto: bindings::__be16,
        vid: u16,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        from_result(|| T::vlan_rx_kill_vid(data, dev, vid).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the stack as `ndo_set_mac_address` of a device of a `Registration<T>`, with
    /// `addr` a `struct sockaddr`, under RTNL.
    unsafe extern "C" fn set_mac_address(
        dev: *mut bindings::net_device,
        addr: *mut c_void,
    ) -> c_int {
        // SAFETY: `dev` is valid and `addr` a `struct sockaddr` (safety requirements); this
        // checks the address and whether the device may change it now.
        let ret = unsafe { bindings::eth_prepare_mac_addr_change(dev, addr) };
        if ret != 0 {
            return ret;
        }
        let mut mac = [0u8; ETH_ALEN];
        // SAFETY: `addr` is a `struct sockaddr`, whose `sa_data` (its union after `sa_family`)
        // has at least `ETH_ALEN` (14) bytes.
        unsafe {
            let data = addr
                .cast::<u8>()
                .add(core::mem::offset_of!(bindings::sockaddr, __bindgen_anon_1));
            core::ptr::copy_nonoverlapping(data, mac.as_mut_ptr(), ETH_ALEN);
        }
        // SAFETY: By the safety requirements.
        let (data, ndev) = unsafe { Self::data(dev) };
        if let Err(e) = T::set_mac_address(data, ndev, &mac) {
            return e.to_errno();
        }
        // SAFETY: As for the prepare call; under RTNL.
        unsafe { bindings::eth_commit_mac_addr_change(dev, addr) };
        0
    }
}

/// The smallest MTU of an Ethernet device (`ETH_MIN_MTU`).
pub const ETH_MIN_MTU: u32 = bindings::ETH_MIN_MTU;
/// The largest MTU of an Ethernet device (`ETH_MAX_MTU`).
pub const ETH_MAX_MTU: u32 = bindings::ETH_MAX_MTU;

/// The delayed work of a net device: one `delayed_work` in its private area, which runs
/// [`Operations::work`]. Disabled until [`NetDevice::enable_work`], and for good before the
/// driver's data is dropped.
///
/// # Invariants
///
/// - `work` was initialised with `Adapter::<T>::work_fn` of the `Registration<T>` whose
///   private area holds `self`, for the device `dev`; its disable count is at least 1 unless
///   `ready.1`.
/// - `ready.0` is true only while the driver's data `T` is initialised; `ready.1` says whether
///   the work is enabled, which happens only while `ready.0`.
#[pin_data]
#[repr(C)]
struct DevWork {
    #[pin]
    work: Opaque<bindings::delayed_work>,
    dev: *mut bindings::net_device,
    /// Whether the driver's data is there, and whether the work is enabled.
    #[pin]
    ready: Mutex<(bool, bool)>,
}

impl DevWork {
    fn new<T: Operations>(dev: *mut bindings::net_device) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes and pinned in the private area, which outlives
            // the work: `Registration::drop` disables it, waiting for it, before freeing.
            // `init_delayed_work` initialises all of it; disabling it right away keeps it from
            // being queued before the driver's data is there.
            work <- Opaque::ffi_init(|slot| unsafe {
                bindings::init_delayed_work(slot, Some(Adapter::<T>::work_fn));
                bindings::disable_delayed_work(slot);
            }),
            dev,
            ready <- new_mutex!((false, false), "net_dev_work"),
        })
    }

    /// Disables the work for good, waiting for it to finish if it runs: the driver's data is
    /// about to be dropped. Process context.
    fn shut_down(&self) {
        let mut ready = self.ready.lock();
        ready.0 = false;
        if ready.1 {
            // SAFETY: `work` is initialised (type invariant); process context.
            unsafe { bindings::disable_delayed_work_sync(self.work.get()) };
            ready.1 = false;
        }
    }
}

/// Delayed work: a driver's [`Operations::work`], scheduled from any context.
impl NetDevice {
    fn dev_work(&self) -> &DevWork {
        // SAFETY: The device was allocated by a `Registration` (type invariant), whose private
        // area starts with an initialised `DevWork` (`Priv` is `repr(C)` with `work` first)
        // that lives as long as the device.
        unsafe { &*bindings::netdev_priv(self.as_raw()).cast::<DevWork>() }
    }

    /// Schedules [`Operations::work`] to run after `delay` jiffies (`schedule_delayed_work()`),
    /// unless it is pending already or disabled. Any context.
    pub fn schedule_work(&self, delay: crate::time::Jiffies) -> bool {
        let work = self.dev_work().work.get();
        // SAFETY: `work` is initialised (invariant of `DevWork`); a disabled work is not
        // queued. Any context.
        unsafe {
            bindings::queue_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as _,
                bindings::system_wq,
                work,
                delay as _,
            )
        }
    }

    /// Lets [`schedule_work`](Self::schedule_work) queue the work (typically in `open`). Does
    /// nothing if it is enabled already, or if the device is not fully set up or is going
    /// away. Process context.
    pub fn enable_work(&self) {
        let w = self.dev_work();
        let mut ready = w.ready.lock();
        if ready.0 && !ready.1 {
            // SAFETY: `work` is initialised and disabled once (invariant of `DevWork`); the
            // driver's data is there (`ready.0`), so the work function may run.
            unsafe { bindings::enable_delayed_work(w.work.get()) };
            ready.1 = true;
        }
    }

    /// Cancels the work and keeps it from being scheduled, waiting for it if it runs
    /// (`disable_delayed_work_sync()`), until [`enable_work`](Self::enable_work). Process
    /// context; do not call it from the work itself.
    pub fn disable_work(&self) {
        let w = self.dev_work();
        let mut ready = w.ready.lock();
        if ready.1 {
            // SAFETY: `work` is initialised (invariant of `DevWork`); process context.
            unsafe { bindings::disable_delayed_work_sync(w.work.get()) };
            ready.1 = false;
        }
    }
}

impl<T: Operations> Adapter<T> {
    /// # Safety
    ///
    /// Called by the workqueue for the work of a `DevWork` of a `Registration<T>`.
    unsafe extern "C" fn work_fn(work: *mut bindings::work_struct) {
        // SAFETY: `work` is the first field of the `delayed_work` at the start of the
        // `DevWork` (both `repr(C)`), which is valid while the work runs.
        let dev = unsafe { (*work.cast::<DevWork>()).dev };
        // SAFETY: The work runs only while enabled, that is while the driver's data is
        // initialised (invariant of `DevWork`), and `Registration::drop` waits for it before
        // dropping the data; the device outlives its private area.
        let data = unsafe { &(*bindings::netdev_priv(dev).cast::<Priv<T>>()).data };
        // SAFETY: As above: the device is valid while the work runs.
        T::work(data, unsafe { NetDevice::from_raw(dev) });
    }
}

/// A set of device features (`netdev_features_t`, the `NETIF_F_*` bits): offloads the device
/// can do (`hw_features`, which the user may toggle with ethtool) and those it does now
/// (`features`).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Features(u64);

impl Features {
    const fn bit(b: u32) -> Self {
        Self(1u64 << b)
    }

    /// No features.
    pub const EMPTY: Self = Self(0);
    /// Scatter-gather: paged fragments (`NETIF_F_SG`).
    pub const SG: Self = Self::bit(bindings::NETIF_F_SG_BIT);
    /// Checksums any protocol (`NETIF_F_HW_CSUM`).
    pub const HW_CSUM: Self = Self::bit(bindings::NETIF_F_HW_CSUM_BIT);
    /// DMA to high memory (`NETIF_F_HIGHDMA`).
    pub const HIGHDMA: Self = Self::bit(bindings::NETIF_F_HIGHDMA_BIT);
    /// TCP over IPv4 segmentation (`NETIF_F_TSO`).
    pub const TSO: Self = Self::bit(bindings::NETIF_F_TSO_BIT);
    /// TCP over IPv6 segmentation (`NETIF_F_TSO6`).
    pub const TSO6: Self = Self::bit(bindings::NETIF_F_TSO6_BIT);
    /// TCP segmentation with ECN (`NETIF_F_TSO_ECN`).
    pub const TSO_ECN: Self = Self::bit(bindings::NETIF_F_TSO_ECN_BIT);
    /// TCP segmentation that may change the IPv4 ID (`NETIF_F_TSO_MANGLEID`).
    pub const TSO_MANGLEID: Self = Self::bit(bindings::NETIF_F_TSO_MANGLEID_BIT);
    /// UDP segmentation (`NETIF_F_GSO_UDP_L4`).
    pub const GSO_UDP_L4: Self = Self::bit(bindings::NETIF_F_GSO_UDP_L4_BIT);
    /// Segmentation offload from untrusted sources is checked (`NETIF_F_GSO_ROBUST`).
    pub const GSO_ROBUST: Self = Self::bit(bindings::NETIF_F_GSO_ROBUST_BIT);
    /// Receive checksum offload (`NETIF_F_RXCSUM`).
    pub const RXCSUM: Self = Self::bit(bindings::NETIF_F_RXCSUM_BIT);
    /// Large receive offload (`NETIF_F_LRO`).
    pub const LRO: Self = Self::bit(bindings::NETIF_F_LRO_BIT);
    /// Receive hashing (`NETIF_F_RXHASH`).
    pub const RXHASH: Self = Self::bit(bindings::NETIF_F_RXHASH_BIT);
    /// Hardware GRO (`NETIF_F_GRO_HW`).
    pub const GRO_HW: Self = Self::bit(bindings::NETIF_F_GRO_HW_BIT);
    /// Every TCP segmentation offload (`NETIF_F_ALL_TSO`).
    pub const ALL_TSO: Self =
        Self(Self::TSO.0 | Self::TSO6.0 | Self::TSO_ECN.0 | Self::TSO_MANGLEID.0);

    /// The features as `netdev_features_t`.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The features of `bits` (any `NETIF_F_*` combination).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// Whether every feature of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` have a feature in common.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl core::ops::BitOr for Features {
    type Output = Self;
    fn bitor(self, o: Self) -> Self {
        Self(self.0 | o.0)
    }
}

impl core::ops::BitOrAssign for Features {
    fn bitor_assign(&mut self, o: Self) {
        self.0 |= o.0;
    }
}

impl core::ops::BitAnd for Features {
    type Output = Self;
    fn bitand(self, o: Self) -> Self {
        Self(self.0 & o.0)
    }
}

impl core::ops::BitXor for Features {
    type Output = Self;
    fn bitxor(self, o: Self) -> Self {
        Self(self.0 ^ o.0)
    }
}

impl core::ops::Not for Features {
    type Output = Self;
    fn not(self) -> Self {
        Self(!self.0)
    }
}

/// Transmit: batching and queue state.
impl NetDevice {
    /// Whether the stack has more packets for the device right after the one
    /// [`Operations::start_xmit`] is sending (`netdev_xmit_more()`): the driver may then defer
    /// notifying the device, unless the queue is stopped ([`xmit_stopped`](Self::xmit_stopped)).
    /// Meaningful in `start_xmit` only.
    pub fn xmit_more(&self) -> bool {
        // SAFETY: Reads a per-CPU (or per-task) flag; any context.
        unsafe { bindings::netdev_xmit_more() }
    }

    /// Whether transmission is stopped, by the driver or by the stack (BQL)
    /// (`netif_xmit_stopped()`), for a single-queue device.
    pub fn xmit_stopped(&self) -> bool {
        // SAFETY: The device is valid (type invariant); any context.
        unsafe { bindings::netif_xmit_stopped(self.as_raw()) }
    }

    /// The features the device does now (`dev->features`).
    pub fn features(&self) -> Features {
        // SAFETY: The device is valid (type invariant). `features` changes under RTNL; a racy
        // read of a `u64` is what C's `dev->features` readers outside RTNL do too.
        Features(unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!((*self.as_raw()).features))
        })
    }
}

/// Setup before registration: features and MTU range.
impl<T: Operations> Registration<T> {
    /// Adds `hw` to the features the device offers (`hw_features`, toggled by the user) and
    /// `on` to those it starts with (`features`, and `vlan_features`, which VLAN devices on top
    /// inherit). `register_netdev` drops what depends on a feature that is off (`TSO` without
    /// `SG`, say). Only before [`register`](Self::register): `EBUSY` after.
    pub fn add_features(&self, hw: Features, on: Features) -> Result {
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        // SAFETY: The device is valid and not registered (we hold the state lock in `New`), so
        // nobody else reads or writes its features.
        unsafe {
            let d = self.dev.as_ptr();
            (*d).hw_features |= hw.0;
            (*d).features |= on.0;
            (*d).vlan_features |= on.0;
        }
        Ok(())
    }

    /// Asks the stack for `len` bytes of headroom in the packets it sends
    /// (`needed_headroom`), for a header the driver puts before the frame. Only before
    /// [`register`](Self::register): `EBUSY` after; `EINVAL` above 1024 bytes.
    pub fn set_needed_headroom(&self, len: u16) -> Result {
        if len > 1024 {
            return Err(EINVAL);
        }
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        // SAFETY: As in `add_features`.
        unsafe { (*self.dev.as_ptr()).needed_headroom = len };
        Ok(())
    }

    /// Sets the MTU range (`min_mtu`, `max_mtu`), and the MTU if `mtu` is given. Only before
    /// [`register`](Self::register): `EBUSY` after; `EINVAL` if `min > max` or the MTU is out
    /// of the range.
    pub fn set_mtu_range(&self, min: u32, max: u32, mtu: Option<u32>) -> Result {
        if min > max || mtu.is_some_and(|m| m < min || m > max) {
            return Err(EINVAL);
        }
        let st = self.priv_().state.lock();
        if st.phase != State::New {
            return Err(EBUSY);
        }
        // SAFETY: As in `add_features`.
        unsafe {
            let d = self.dev.as_ptr();
            (*d).min_mtu = min;
            (*d).max_mtu = max;
            if let Some(m) = mtu {
                (*d).mtu = m;
            }
        }
        Ok(())
    }
}

/// A transmit queue of a device (`struct netdev_queue`), borrowed from its [`NetDevice`]
/// ([`NetDevice::tx_queue`]): one of those `alloc_etherdev_mqs` allocated, which live as long as
/// the device. A multiqueue driver stops, wakes and locks the queue a packet was given on
/// ([`SkBuff::queue_mapping`]) rather than the device's first.
///
/// # Invariants
///
/// `self.0` is one of the transmit queues of a valid device, and outlives the reference.
#[repr(transparent)]
pub struct NetdevQueue(Opaque<bindings::netdev_queue>);

// SAFETY: The C functions called through `&NetdevQueue` may be called from any thread.
unsafe impl Sync for NetdevQueue {}
// SAFETY: As above.
unsafe impl Send for NetdevQueue {}

impl NetDevice {
    /// How many transmit queues the device has (`num_tx_queues`, fixed when it was allocated).
    pub fn num_tx_queues(&self) -> u32 {
        // SAFETY: The device is valid (type invariant); the field never changes after
        // allocation.
        unsafe { (*self.as_raw()).num_tx_queues }
    }

    /// How many transmit queues are in use (`real_num_tx_queues`). Changes under RTNL; a racy
    /// read outside it, as C's readers do.
    pub fn real_num_tx_queues(&self) -> u32 {
        // SAFETY: The device is valid (type invariant); a read of a `u32`.
        unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!((*self.as_raw()).real_num_tx_queues))
        }
    }

    /// How many receive queues are in use (`real_num_rx_queues`), as
    /// [`real_num_tx_queues`](Self::real_num_tx_queues).
    pub fn real_num_rx_queues(&self) -> u32 {
        // SAFETY: The device is valid (type invariant); a read of a `u32`.
        unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!((*self.as_raw()).real_num_rx_queues))
        }
    }

    /// Makes the CPUs in `mask` send on transmit queue `index` (XPS,
    /// `__netif_set_xps_queue(dev, mask, index, XPS_CPUS)`), as `queues/tx-N/xps_cpus` shows
    /// it; an empty mask takes the queue out of the map. The CPUs must not change meanwhile:
    /// CPU hotplug is held off (`_cpus`), as C's callers hold `cpus_read_lock()` or run in a
    /// hotplug callback. `EINVAL` if the device has no such queue, `ENOMEM`. Process context;
    /// sleeps.
    ///
    /// The stack drops the map of a queue that goes out of use
    /// (`netif_set_real_num_tx_queues()`) and every map when the device is unregistered.
    pub fn set_xps_queue(
        &self,
        _cpus: &crate::cpumask::CpusLocked,
        mask: &crate::cpumask::Cpumask,
        index: u16,
    ) -> Result {
        if u32::from(index) >= self.num_tx_queues() {
            return Err(EINVAL);
        }
        // SAFETY: The device is valid (type invariant) and has queue `index` (checked above);
        // `mask` is a valid cpumask whose bits the core only reads during the call; CPU
        // hotplug is held off (`_cpus`), as the function requires, and it takes its own lock
        // (`xps_map_mutex`) for the maps.
        to_result(unsafe {
            bindings::__netif_set_xps_queue(
                self.as_raw(),
                (*mask.as_raw()).bits.as_ptr(),
                index,
                bindings::xps_map_type_XPS_CPUS,
            )
        })
    }

    /// The transmit queue `index` (`netdev_get_tx_queue()`), if the device has it.
    pub fn tx_queue(&self, index: u32) -> Option<&NetdevQueue> {
        if index >= self.num_tx_queues() {
            return None;
        }
        // SAFETY: The device is valid (type invariant) and has queue `index` (checked above),
        // which lives as long as the device: as long as `&self`.
        Some(unsafe { &*bindings::netdev_get_tx_queue(self.as_raw(), index).cast::<NetdevQueue>() })
    }

    /// Allows the stack to transmit on every queue (`netif_tx_start_all_queues()`).
    pub fn start_all_queues(&self) {
        for q in (0..self.num_tx_queues()).filter_map(|i| self.tx_queue(i)) {
            q.start();
        }
    }
}

impl NetdevQueue {
    #[inline]
    fn as_raw(&self) -> *mut bindings::netdev_queue {
        self.0.get()
    }

    /// The device of the queue.
    pub fn dev(&self) -> &NetDevice {
        // SAFETY: The queue is valid (type invariant); `dev` is set at allocation to its
        // device, which outlives the queue.
        unsafe { NetDevice::from_raw((*self.as_raw()).dev) }
    }

    /// Allows the stack to transmit on this queue (`netif_tx_start_queue()`).
    pub fn start(&self) {
        // SAFETY: The queue is valid (type invariant); any context.
        unsafe { bindings::netif_tx_start_queue(self.as_raw()) }
    }

    /// Stops the stack from transmitting on this queue (`netif_tx_stop_queue()`).
    pub fn stop(&self) {
        // SAFETY: The queue is valid (type invariant); any context.
        unsafe { bindings::netif_tx_stop_queue(self.as_raw()) }
    }

    /// Allows transmission on this queue again and reschedules it (`netif_tx_wake_queue()`).
    pub fn wake(&self) {
        // SAFETY: The queue is valid (type invariant); any context.
        unsafe { bindings::netif_tx_wake_queue(self.as_raw()) }
    }

    /// Whether the driver stopped this queue (`netif_tx_queue_stopped()`).
    pub fn stopped(&self) -> bool {
        // SAFETY: The queue is valid (type invariant); a bit test.
        unsafe { bindings::netif_tx_queue_stopped(self.as_raw()) }
    }

    /// Whether transmission on this queue is stopped, by the driver or by the stack (BQL)
    /// (`netif_xmit_stopped()`).
    pub fn xmit_stopped(&self) -> bool {
        // SAFETY: The queue is valid (type invariant); a bit test.
        unsafe { bindings::vrs_txq_xmit_stopped(self.as_raw()) }
    }

    /// How long ago, in microseconds, this queue last made progress (`trans_start`): for a
    /// [`Operations::tx_timeout`] report.
    pub fn tx_stalled_usecs(&self) -> u32 {
        // SAFETY: The queue is valid (type invariant); this reads `trans_start` once.
        unsafe { bindings::vrs_tx_stalled_usecs(self.as_raw()) }
    }

    /// Runs `f` with the lock of this queue held: taken (`__netif_tx_lock()`, with bottom
    /// halves off) or, if the current context holds it already (in [`Operations::start_xmit`]
    /// for the packet's queue), as it is. Softirq or process context: in hard-IRQ context it
    /// would deadlock against a holder it interrupted, as the C lock does.
    pub fn with_tx_lock<R>(&self, f: impl FnOnce(&TxLocked<'_>) -> R) -> R {
        let locked = TxLocked {
            queue: self,
            _not_send: PhantomData,
        };
        // SAFETY: The queue is valid (type invariant); this only looks at the lock's owner.
        if unsafe { bindings::vrs_tx_lock_held(self.as_raw()) } {
            return f(&locked);
        }
        // SAFETY: The queue is valid; the current context does not hold its lock (just
        // checked), so taking it cannot deadlock on ourselves. It is released below, in the
        // same context.
        unsafe { bindings::vrs_tx_lock_bh(self.as_raw()) };
        let r = f(&locked);
        // SAFETY: We took the lock above.
        unsafe { bindings::vrs_tx_unlock_bh(self.as_raw()) };
        r
    }
}

impl SkBuff {
    /// The transmit queue the stack chose for this packet (`skb_get_queue_mapping()`): in
    /// [`Operations::start_xmit`], the queue whose lock is held, below
    /// [`NetDevice::real_num_tx_queues`].
    pub fn queue_mapping(&self) -> u16 {
        // SAFETY: The skb is valid while we own it; a read of a field.
        unsafe { bindings::skb_get_queue_mapping(self.as_raw()) }
    }
}

/// A transmit queue while its lock is held (`__netif_tx_lock()`), as it is in
/// [`Operations::start_xmit`]: what byte queue limits (BQL) need, since the core's accounting
/// (`dql`) must not be updated concurrently. Get one with [`NetdevQueue::with_tx_lock`] (or
/// [`NetDevice::with_tx_lock`] for queue 0); it cannot leave the closure, nor another thread.
///
/// BQL: report each packet given to the device with [`sent`](Self::sent) and the packets it
/// has sent with [`completed`](Self::completed); [`reset`](Self::reset) after dropping packets
/// that were reported sent but will never complete. The accounting cannot be corrupted from
/// here: a completion is clamped to the bytes in flight (`dql_completed()` would `BUG()`).
pub struct TxLocked<'a> {
    queue: &'a NetdevQueue,
    _not_send: PhantomData<*mut ()>,
}

impl NetDevice {
    /// Runs `f` with the lock of transmit queue 0 held, as [`NetdevQueue::with_tx_lock`]: for
    /// a single-queue device.
    pub fn with_tx_lock<R>(&self, f: impl FnOnce(&TxLocked<'_>) -> R) -> R {
        // SAFETY: The device is valid (type invariant) and, allocated by a `Registration`, has
        // at least one transmit queue, which lives as long as it does.
        let q = unsafe { &*bindings::netdev_get_tx_queue(self.as_raw(), 0).cast::<NetdevQueue>() };
        q.with_tx_lock(f)
    }
}

impl TxLocked<'_> {
    /// Reports `bytes` given to the device (`__netdev_tx_sent_queue()`); `more` is
    /// [`NetDevice::xmit_more`]. Returns whether to notify the device now: BQL may defer it
    /// while more packets follow, and insists when the queue just stopped.
    pub fn sent(&self, bytes: u32, more: bool) -> bool {
        // SAFETY: The queue is valid and we hold its transmit lock (type invariant).
        unsafe { bindings::vrs_tx_sent_queue(self.queue.as_raw(), bytes, more) }
    }

    /// Reports `packets` and `bytes` the device has sent (`netdev_tx_completed_queue()`), of
    /// those reported with [`sent`](Self::sent). More bytes than are in flight count as what
    /// is in flight.
    pub fn completed(&self, packets: u32, bytes: u32) {
        // SAFETY: The queue is valid and we hold its transmit lock (type invariant); the
        // helper clamps `bytes`.
        unsafe { bindings::vrs_tx_completed_queue(self.queue.as_raw(), packets, bytes) }
    }

    /// Forgets what is in flight (`netdev_tx_reset_queue()`): after packets reported sent
    /// were freed without completing (a device reset).
    pub fn reset(&self) {
        // SAFETY: The queue is valid and we hold its transmit lock (type invariant).
        unsafe { bindings::vrs_tx_reset_queue(self.queue.as_raw()) }
    }

    /// The device.
    pub fn dev(&self) -> &NetDevice {
        self.queue.dev()
    }

    /// The queue.
    pub fn queue(&self) -> &NetdevQueue {
        self.queue
    }
}

/// Naming and the transmit watchdog.
impl NetDevice {
    /// The interface name (`dev->name`), copied: it may change under RTNL meanwhile, so the
    /// copy is cut at the first NUL or at `IFNAMSIZ - 1` bytes, whichever comes first.
    pub fn name(&self) -> DevName {
        let mut buf = [0u8; bindings::IFNAMSIZ as usize];
        // SAFETY: The device is valid (type invariant); `name` has `IFNAMSIZ` bytes. A racy
        // copy of bytes is what C's `netdev_name()` readers outside RTNL do too.
        unsafe {
            let name = core::ptr::addr_of!((*self.as_raw()).name).cast::<u8>();
            for (i, b) in buf
                .iter_mut()
                .enumerate()
                .take(bindings::IFNAMSIZ as usize - 1)
            {
                *b = core::ptr::read_volatile(name.add(i));
            }
        }
        DevName(buf)
    }

    /// How long ago, in microseconds, transmit queue 0 last made progress (`trans_start`): for
    /// a [`Operations::tx_timeout`] report.
    pub fn tx_stalled_usecs(&self) -> u32 {
        self.tx_queue(0).map_or(0, |q| q.tx_stalled_usecs())
    }
}

/// An interface name, as [`NetDevice::name`] copied it. Displays as text.
pub struct DevName([u8; bindings::IFNAMSIZ as usize]);

impl core::fmt::Display for DevName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        match core::str::from_utf8(&self.0[..len]) {
            Ok(s) => f.write_str(s),
            Err(_) => f.write_str("?"),
        }
    }
}

// Declared here rather than in `kernel::net` (`rust/kernel/net.rs` is the kernel's own file),
// and re-exported as `kernel::net::dev::ethtool`; its items use the private parts of this
// module (the private area's layout and the registration state).
#[path = "ethtool.rs"]
pub mod ethtool;

/// Suspend and resume: the device stays registered, absent meanwhile.
impl NetDevice {
    /// Whether the device is up (`netif_running()`).
    pub fn is_running(&self) -> bool {
        // SAFETY: The device is valid (type invariant); a bit test.
        unsafe { bindings::netif_running(self.as_raw()) }
    }

    /// Marks the device absent and stops its transmit queues (`netif_device_detach()`), for
    /// a suspend: the stack stops using it, and cannot bring it up meanwhile.
    pub fn device_detach(&self) {
        // SAFETY: The device is valid (type invariant).
        unsafe { bindings::netif_device_detach(self.as_raw()) }
    }

    /// Marks the device present again and, if it is up, wakes its transmit queues and its
    /// watchdog (`netif_device_attach()`).
    pub fn device_attach(&self) {
        // SAFETY: The device is valid (type invariant).
        unsafe { bindings::netif_device_attach(self.as_raw()) }
    }
}
