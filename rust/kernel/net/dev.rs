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
//! 1. [`Registration::new`] allocates the device and initialises `T` in place; the device is
//!    not visible yet: set its address ([`Registration::set_mac`]) and carrier now;
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
    bindings, device,
    error::{from_result, to_result},
    init::PinInit,
    new_mutex,
    prelude::*,
    sync::Mutex,
    types::{ARef, Opaque},
};
use core::{ffi::c_int, marker::PhantomData, ptr::NonNull};

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
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::net_device) -> &'a Self {
        // SAFETY: `NetDevice` is a transparent wrapper; validity is up to the caller.
        unsafe { &*ptr.cast() }
    }

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

/// What the device's private area holds.
#[pin_data]
struct Priv<T> {
    /// Serialises `register` and `unregister`, for their whole duration.
    #[pin]
    reg: Mutex<()>,
    /// Held briefly, never across a call into the stack.
    #[pin]
    state: Mutex<RegState>,
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
    /// device being set up, to build the parts that must know it (NAPI contexts, receive
    /// buffers). The device is not registered.
    pub fn new<I>(
        parent: &device::Device,
        init: impl FnOnce(&NetDevice) -> Result<I>,
    ) -> Result<Self>
    where
        I: PinInit<T, Error>,
    {
        #[allow(clippy::let_unit_value)]
        let () = Self::PRIV_FITS;
        let size = c_int::try_from(core::mem::size_of::<Priv<T>>()).map_err(|_| EINVAL)?;
        // SAFETY: Plain allocation; process context.
        let dev = unsafe { bindings::alloc_etherdev_mqs(size, 1, 1) };
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
        let res = init(ndev).and_then(|data| {
            let init = try_pin_init!(Priv {
                reg <- new_mutex!((), "net_registration"),
                state <- new_mutex!(RegState { phase: State::New, carrier: false }, "net_reg_state"),
                data <- data,
            }? Error);
            // SAFETY: The private area has room for a `Priv<T>` (allocated with its size) and
            // is aligned to `NETDEV_ALIGN` (checked above); it is pinned until `free_netdev`,
            // and on error the initialiser leaves nothing behind.
            unsafe {
                init.__pinned_init(bindings::netdev_priv(raw).cast::<Priv<T>>())
            }
        });
        if let Err(e) = res {
            // SAFETY: The device is not registered and nothing in it is initialised or used.
            unsafe { bindings::free_netdev(raw) };
            return Err(e);
        }
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
        // SAFETY: The device is registered, and stays so while we hold `reg`.
        unsafe { Self::apply_carrier(self.dev.as_ptr(), st.carrier) };
        Ok(())
    }

    /// Unregisters the device (`unregister_netdev`) if it is registered: it is closed, the
    /// callbacks are over when this returns, and it never comes back. Process context.
    /// Idempotent; dropping the registration does it too.
    pub fn unregister(&self) {
        let p = self.priv_();
        let _reg = p.reg.lock();
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
    /// Called by the stack as `ndo_get_stats64` of a device of a `Registration<T>`, with a
    /// valid `stats`.
    unsafe extern "C" fn get_stats64(
        dev: *mut bindings::net_device,
        stats: *mut bindings::rtnl_link_stats64,
    ) {
        // SAFETY: By the safety requirements.
        let (data, dev) = unsafe { Self::data(dev) };
        let mut s = LinkStats::default();
        T::get_stats64(data, dev, &mut s);
        // SAFETY: `stats` is valid for writes (safety requirements); `dev_get_stats` zeroed it
        // and adds the core's own counters after we return.
        let out = unsafe { &mut *stats };
        out.rx_packets = s.rx_packets;
        out.rx_bytes = s.rx_bytes;
        out.rx_dropped = s.rx_dropped;
        out.rx_errors = s.rx_errors;
        out.rx_length_errors = s.rx_length_errors;
        out.tx_packets = s.tx_packets;
        out.tx_bytes = s.tx_bytes;
        out.tx_dropped = s.tx_dropped;
        out.tx_errors = s.tx_errors;
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

/// The transmit queue of a single-queue device while its lock is held (`__netif_tx_lock()`),
/// as it is in [`Operations::start_xmit`]: what byte queue limits (BQL) need, since the core's
/// accounting (`dql`) must not be updated concurrently. Get one with
/// [`NetDevice::with_tx_lock`]; it cannot leave the closure, nor another thread.
///
/// BQL: report each packet given to the device with [`sent`](Self::sent) and the packets it
/// has sent with [`completed`](Self::completed); [`reset`](Self::reset) after dropping packets
/// that were reported sent but will never complete. The accounting cannot be corrupted from
/// here: a completion is clamped to the bytes in flight (`dql_completed()` would `BUG()`).
pub struct TxLocked<'a> {
    dev: &'a NetDevice,
    _not_send: PhantomData<*mut ()>,
}

impl NetDevice {
    /// Runs `f` with the lock of the transmit queue held: taken (`__netif_tx_lock()`, with
    /// bottom halves off) or, if the current context holds it already (in
    /// [`Operations::start_xmit`]), as it is. Softirq or process context: in hard-IRQ context
    /// it would deadlock against a holder it interrupted, as the C lock does.
    pub fn with_tx_lock<R>(&self, f: impl FnOnce(&TxLocked<'_>) -> R) -> R {
        let locked = TxLocked {
            dev: self,
            _not_send: PhantomData,
        };
        // SAFETY: The device is valid (type invariant); this only looks at the lock's owner.
        if unsafe { bindings::vrs_tx_lock_held(self.as_raw()) } {
            return f(&locked);
        }
        // SAFETY: The device is valid; the current context does not hold the lock (just
        // checked), so taking it cannot deadlock on ourselves. It is released below, in the
        // same context.
        unsafe { bindings::vrs_tx_lock_bh(self.as_raw()) };
        let r = f(&locked);
        // SAFETY: We took the lock above.
        unsafe { bindings::vrs_tx_unlock_bh(self.as_raw()) };
        r
    }
}

impl TxLocked<'_> {
    /// Reports `bytes` given to the device (`__netdev_tx_sent_queue()`); `more` is
    /// [`NetDevice::xmit_more`]. Returns whether to notify the device now: BQL may defer it
    /// while more packets follow, and insists when the queue just stopped.
    pub fn sent(&self, bytes: u32, more: bool) -> bool {
        // SAFETY: The device is valid and we hold its transmit lock (type invariant).
        unsafe { bindings::vrs_tx_sent_queue(self.dev.as_raw(), bytes, more) }
    }

    /// Reports `packets` and `bytes` the device has sent (`netdev_tx_completed_queue()`), of
    /// those reported with [`sent`](Self::sent). More bytes than are in flight count as what
    /// is in flight.
    pub fn completed(&self, packets: u32, bytes: u32) {
        // SAFETY: The device is valid and we hold its transmit lock (type invariant); the
        // helper clamps `bytes`.
        unsafe { bindings::vrs_tx_completed_queue(self.dev.as_raw(), packets, bytes) }
    }

    /// Forgets what is in flight (`netdev_tx_reset_queue()`): after packets reported sent
    /// were freed without completing (a device reset).
    pub fn reset(&self) {
        // SAFETY: The device is valid and we hold its transmit lock (type invariant).
        unsafe { bindings::vrs_tx_reset_queue(self.dev.as_raw()) }
    }

    /// The device.
    pub fn dev(&self) -> &NetDevice {
        self.dev
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
        // SAFETY: The device is valid (type invariant); this reads `trans_start` once.
        unsafe { bindings::vrs_tx_stalled_usecs(self.as_raw()) }
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
