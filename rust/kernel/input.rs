// SPDX-License-Identifier: GPL-2.0

//! Input devices.
//!
//! An input device is built in two steps, as in C:
//!
//! 1. A [`Device`] is allocated (`input_allocate_device()`) and described while nothing else
//!    can see it: name, physical path, unique id, bus/vendor/product/version, capability bits
//!    ([`Capability`]), absolute axes ([`AbsInfo`]) and multi-touch slots.
//! 2. A [`Registration`] takes the [`Device`] and the driver state `T` (which implements
//!    [`Operations`]), pins both, and [`Registration::register`] hands the device to the input
//!    core. From then on [`Registration::report`] delivers events, from any context, hard-IRQ
//!    included. Dropping the registration unregisters the device (which may sleep) and only then
//!    drops `T`, so the input core never calls back into freed state.
//!
//! The input core calls [`Operations::event`] for events sent *to* the device (keyboard LEDs,
//! sounds, autorepeat settings, force feedback), for example when a program writes an `EV_LED`
//! event to `/dev/input/eventN`. It runs with the input core's `event_lock` held and interrupts
//! off: it must not sleep.
//!
//! An open `/dev/input/eventN` may keep the C `struct input_dev` alive after unregistration; the
//! input core no longer calls the driver then, and readers get `ENODEV`.
//!
//! C headers: [`include/linux/input.h`](srctree/include/linux/input.h),
//! [`include/linux/input/mt.h`](srctree/include/linux/input/mt.h)
//!
//! # Examples
//!
//! A one-key keyboard with a Caps Lock LED:
//!
//! ```
//! use kernel::c_str;
//! use kernel::input::{self, Capability, Id, Registration};
//! use core::sync::atomic::{AtomicI32, Ordering};
//!
//! struct Leds(AtomicI32);
//!
//! #[vtable]
//! impl input::Operations for Leds {
//!     fn event(&self, ty: u16, code: u16, value: i32) -> Result {
//!         if ty == input::EV_LED && code == input::LED_CAPSL {
//!             self.0.store(value, Ordering::Relaxed);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let mut dev = input::Device::new()?;
//! dev.set_name(c_str!("one-key keyboard"))?;
//! dev.set_id(Id { bustype: input::BUS_VIRTUAL, vendor: 1, product: 2, version: 3 });
//! dev.set_bit(Capability::Ev, input::EV_KEY.into())?;
//! dev.set_bit(Capability::Key, 30)?; // KEY_A
//! dev.set_bit(Capability::Ev, input::EV_LED.into())?;
//! dev.set_bit(Capability::Led, input::LED_CAPSL.into())?;
//! assert!(dev.test_bit(Capability::Key, 30));
//! assert!(dev.set_bit(Capability::Key, 0x10000).is_err());
//!
//! let kbd = KBox::pin_init(Registration::new(dev, Leds(AtomicI32::new(0))), GFP_KERNEL)?;
//! kbd.register()?;
//! kbd.report(input::EV_KEY, 30, 1);
//! kbd.sync();
//! kbd.report(input::EV_KEY, 30, 0);
//! kbd.sync();
//! // What the input core does when a program turns Caps Lock on:
//! kbd.report(input::EV_LED, input::LED_CAPSL, 1);
//! assert_eq!(kbd.data().0.load(Ordering::Relaxed), 1);
//! drop(kbd); // unregisters
//! # Ok::<(), Error>(())
//! ```

use crate::{
    bindings, device,
    error::{from_result, to_result},
    prelude::*,
    str::CString,
    types::ARef,
};
use core::{
    ffi::{c_int, c_uint, c_ulong},
    marker::PhantomPinned,
    ptr::{self, NonNull},
    sync::atomic::{AtomicU8, Ordering},
};

/// Synchronisation events.
pub const EV_SYN: u16 = bindings::EV_SYN as u16;
/// Keys and buttons.
pub const EV_KEY: u16 = bindings::EV_KEY as u16;
/// Relative axes.
pub const EV_REL: u16 = bindings::EV_REL as u16;
/// Absolute axes.
pub const EV_ABS: u16 = bindings::EV_ABS as u16;
/// Miscellaneous events.
pub const EV_MSC: u16 = bindings::EV_MSC as u16;
/// Switches.
pub const EV_SW: u16 = bindings::EV_SW as u16;
/// LEDs (sent to the device).
pub const EV_LED: u16 = bindings::EV_LED as u16;
/// Sounds (sent to the device).
pub const EV_SND: u16 = bindings::EV_SND as u16;
/// Autorepeat.
pub const EV_REP: u16 = bindings::EV_REP as u16;
/// Force feedback.
pub const EV_FF: u16 = bindings::EV_FF as u16;
/// `EV_SYN` code ending a packet of events.
pub const SYN_REPORT: u16 = bindings::SYN_REPORT as u16;
/// `EV_MSC` code of a hardware timestamp.
pub const MSC_TIMESTAMP: u16 = bindings::MSC_TIMESTAMP as u16;
/// `EV_LED` code of the Caps Lock LED.
pub const LED_CAPSL: u16 = bindings::LED_CAPSL as u16;
/// `EV_ABS` code of the multi-touch slot axis.
pub const ABS_MT_SLOT: u16 = bindings::ABS_MT_SLOT as u16;
/// Bus type of virtual devices.
pub const BUS_VIRTUAL: u16 = bindings::BUS_VIRTUAL as u16;

/// One of the capability bitmaps of an input device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Event types (`EV_*`): `evbit`.
    Ev,
    /// Keys and buttons (`KEY_*`, `BTN_*`): `keybit`.
    Key,
    /// Relative axes (`REL_*`): `relbit`.
    Rel,
    /// Absolute axes (`ABS_*`): `absbit`. Prefer [`Device::set_abs_params`], which also sets
    /// the axis range.
    Abs,
    /// Miscellaneous events (`MSC_*`): `mscbit`.
    Msc,
    /// Switches (`SW_*`): `swbit`.
    Sw,
    /// LEDs (`LED_*`): `ledbit`.
    Led,
    /// Sounds (`SND_*`): `sndbit`.
    Snd,
    /// Force-feedback effects (`FF_*`): `ffbit`.
    Ff,
    /// Device properties (`INPUT_PROP_*`): `propbit`.
    Prop,
}

impl Capability {
    /// The number of bits in this bitmap (`EV_CNT`, `KEY_CNT`, ...).
    pub const fn count(self) -> u32 {
        match self {
            Self::Ev => bindings::EV_MAX + 1,
            Self::Key => bindings::KEY_MAX + 1,
            Self::Rel => bindings::REL_MAX + 1,
            Self::Abs => bindings::ABS_MAX + 1,
            Self::Msc => bindings::MSC_MAX + 1,
            Self::Sw => bindings::SW_MAX + 1,
            Self::Led => bindings::LED_MAX + 1,
            Self::Snd => bindings::SND_MAX + 1,
            Self::Ff => bindings::FF_MAX + 1,
            Self::Prop => bindings::INPUT_PROP_MAX + 1,
        }
    }
}

/// The identity of an input device (`struct input_id`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Id {
    /// Bus type (`BUS_*`).
    pub bustype: u16,
    /// Vendor id.
    pub vendor: u16,
    /// Product id.
    pub product: u16,
    /// Version.
    pub version: u16,
}

/// The parameters of an absolute axis (`struct input_absinfo`, without the current value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AbsInfo {
    /// Smallest value.
    pub minimum: i32,
    /// Largest value.
    pub maximum: i32,
    /// Noise filter: changes smaller than this are dropped.
    pub fuzz: i32,
    /// Dead zone around the centre.
    pub flat: i32,
    /// Resolution, in units per millimetre (per radian for rotations).
    pub resolution: i32,
}

/// The raw input device, owned: `input_free_device()` on drop.
///
/// # Invariants
///
/// `0` came from `input_allocate_device()`, was never registered, and this is the only
/// reference to it.
struct Owned(NonNull<bindings::input_dev>);

impl Owned {
    /// Gives up ownership without freeing.
    fn into_raw(self) -> NonNull<bindings::input_dev> {
        let p = self.0;
        core::mem::forget(self);
        p
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: The device was allocated and never registered (type invariant).
        unsafe { bindings::input_free_device(self.0.as_ptr()) };
    }
}

/// What a [`Device`] points to and must outlive the C device's registration.
struct Strings {
    name: Option<CString>,
    phys: Option<CString>,
    uniq: Option<CString>,
    parent: Option<ARef<device::Device>>,
}

/// An input device being described, not registered yet (`struct input_dev`).
///
/// Hand it to [`Registration::new`] to register it. Dropping it frees it.
///
/// # Invariants
///
/// `raw` is not registered, and only `self` accesses it. Its `name`, `phys` and `uniq` point to
/// the strings in `strings` (or are null), its `dev.parent` to `strings.parent` (or is null).
pub struct Device {
    raw: Owned,
    strings: Strings,
}

// SAFETY: An unregistered `input_dev` may be set up from any thread; `Device` owns it.
unsafe impl Send for Device {}
// SAFETY: `&Device` only reads the bitmaps and the axis parameters.
unsafe impl Sync for Device {}

impl Device {
    /// Allocates an input device (`input_allocate_device()`).
    pub fn new() -> Result<Self> {
        // SAFETY: No requirements; may sleep, as `new` may.
        let raw = NonNull::new(unsafe { bindings::input_allocate_device() }).ok_or(ENOMEM)?;
        // INVARIANT: fresh, unregistered, no strings or parent.
        Ok(Self {
            raw: Owned(raw),
            strings: Strings {
                name: None,
                phys: None,
                uniq: None,
                parent: None,
            },
        })
    }

    fn raw(&self) -> *mut bindings::input_dev {
        self.raw.0.as_ptr()
    }

    /// Sets the device name (`/sys/class/input/inputN/name`).
    pub fn set_name(&mut self, name: &CStr) -> Result {
        let s = self.strings.name.insert(name.to_cstring()?);
        // SAFETY: Only we access the unregistered device (type invariant); the string lives in
        // `self` and moves into the `Registration`, which keeps it until unregistration.
        unsafe { (*self.raw()).name = s.as_char_ptr() };
        Ok(())
    }

    /// Sets the physical path (`/sys/class/input/inputN/phys`), for example `usb-0000:00:1d/input0`.
    pub fn set_phys(&mut self, phys: &CStr) -> Result {
        let s = self.strings.phys.insert(phys.to_cstring()?);
        // SAFETY: As in `set_name`.
        unsafe { (*self.raw()).phys = s.as_char_ptr() };
        Ok(())
    }

    /// Sets the unique id, such as a serial number (`/sys/class/input/inputN/uniq`).
    pub fn set_uniq(&mut self, uniq: &CStr) -> Result {
        let s = self.strings.uniq.insert(uniq.to_cstring()?);
        // SAFETY: As in `set_name`.
        unsafe { (*self.raw()).uniq = s.as_char_ptr() };
        Ok(())
    }

    /// Sets the bus type, vendor, product and version.
    pub fn set_id(&mut self, id: Id) {
        // SAFETY: Only we access the unregistered device (type invariant).
        let raw = unsafe { &mut (*self.raw()).id };
        raw.bustype = id.bustype;
        raw.vendor = id.vendor;
        raw.product = id.product;
        raw.version = id.version;
    }

    /// The bus type, vendor, product and version.
    pub fn id(&self) -> Id {
        // SAFETY: Only we access the unregistered device (type invariant).
        let raw = unsafe { &(*self.raw()).id };
        Id {
            bustype: raw.bustype,
            vendor: raw.vendor,
            product: raw.product,
            version: raw.version,
        }
    }

    /// Sets the parent device, under which the input device appears in sysfs. The parent is
    /// kept alive as long as this device.
    pub fn set_parent(&mut self, parent: &device::Device) {
        let parent = self.strings.parent.insert(ARef::from(parent));
        // SAFETY: Only we access the unregistered device (type invariant); `strings.parent`
        // holds a reference to the parent for as long as the pointer is used.
        unsafe { (*self.raw()).dev.parent = parent.as_raw() };
    }

    fn bitmap(&self, cap: Capability) -> *mut c_ulong {
        let raw = self.raw();
        // SAFETY: `raw` is valid (type invariant); only addresses are computed here.
        unsafe {
            match cap {
                Capability::Ev => ptr::addr_of_mut!((*raw).evbit).cast(),
                Capability::Key => ptr::addr_of_mut!((*raw).keybit).cast(),
                Capability::Rel => ptr::addr_of_mut!((*raw).relbit).cast(),
                Capability::Abs => ptr::addr_of_mut!((*raw).absbit).cast(),
                Capability::Msc => ptr::addr_of_mut!((*raw).mscbit).cast(),
                Capability::Sw => ptr::addr_of_mut!((*raw).swbit).cast(),
                Capability::Led => ptr::addr_of_mut!((*raw).ledbit).cast(),
                Capability::Snd => ptr::addr_of_mut!((*raw).sndbit).cast(),
                Capability::Ff => ptr::addr_of_mut!((*raw).ffbit).cast(),
                Capability::Prop => ptr::addr_of_mut!((*raw).propbit).cast(),
            }
        }
    }

    /// Declares that the device generates (or, for LEDs and sounds, accepts) `bit` of bitmap
    /// `cap`. Fails with `EINVAL` if `bit` is out of range for that bitmap.
    ///
    /// Setting a bit of [`Capability::Key`] does not set `EV_KEY` in [`Capability::Ev`]: the
    /// driver sets both, as in C.
    pub fn set_bit(&mut self, cap: Capability, bit: u32) -> Result {
        if bit >= cap.count() {
            return Err(EINVAL);
        }
        let bits = c_ulong::BITS;
        // SAFETY: The bitmap has `BITS_TO_LONGS(cap.count())` words and `bit < cap.count()`;
        // only we access the unregistered device (type invariant).
        unsafe { *self.bitmap(cap).add((bit / bits) as usize) |= 1 << (bit % bits) };
        Ok(())
    }

    /// Whether `bit` of bitmap `cap` is set; `false` if it is out of range.
    pub fn test_bit(&self, cap: Capability, bit: u32) -> bool {
        if bit >= cap.count() {
            return false;
        }
        let bits = c_ulong::BITS;
        // SAFETY: As in `set_bit`, reading.
        unsafe { *self.bitmap(cap).add((bit / bits) as usize) & (1 << (bit % bits)) != 0 }
    }

    /// Declares absolute axis `axis` with the parameters `info` (`input_set_abs_params()` and
    /// `input_abs_set_res()`); sets `EV_ABS` and the axis bit. Fails with `EINVAL` for an axis
    /// out of range, `ENOMEM` if the axis table cannot be allocated.
    pub fn set_abs_params(&mut self, axis: u32, info: &AbsInfo) -> Result {
        if axis >= Capability::Abs.count() {
            return Err(EINVAL);
        }
        let raw = self.raw();
        // SAFETY: `raw` is valid and unregistered, `axis < ABS_CNT`; may sleep.
        unsafe {
            bindings::input_set_abs_params(
                raw,
                axis,
                info.minimum,
                info.maximum,
                info.fuzz,
                info.flat,
            )
        };
        // SAFETY: Only we access the unregistered device (type invariant).
        let absinfo = unsafe { (*raw).absinfo };
        if absinfo.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `absinfo` has `ABS_CNT` entries and `axis < ABS_CNT`.
        unsafe { (*absinfo.add(axis as usize)).resolution = info.resolution };
        Ok(())
    }

    /// The parameters of absolute axis `axis`, if it was declared.
    pub fn abs_params(&self, axis: u32) -> Option<AbsInfo> {
        if !self.test_bit(Capability::Abs, axis) {
            return None;
        }
        // SAFETY: Only we access the unregistered device (type invariant).
        let absinfo = unsafe { (*self.raw()).absinfo };
        if absinfo.is_null() {
            return None;
        }
        // SAFETY: `absinfo` has `ABS_CNT` entries and `axis < ABS_CNT` (`test_bit` checked it).
        let a = unsafe { &*absinfo.add(axis as usize) };
        Some(AbsInfo {
            minimum: a.minimum,
            maximum: a.maximum,
            fuzz: a.fuzz,
            flat: a.flat,
            resolution: a.resolution,
        })
    }

    /// Sets up `num_slots` multi-touch slots (`input_mt_init_slots()`, with `INPUT_MT_*`
    /// `flags`); also declares `ABS_MT_SLOT` as `0..num_slots - 1`. Zero slots do nothing.
    ///
    /// ```
    /// use kernel::input::{self, AbsInfo};
    ///
    /// let mut dev = input::Device::new()?;
    /// let x = AbsInfo { maximum: 4095, resolution: 16, ..AbsInfo::default() };
    /// dev.set_abs_params(0x35, &x)?; // ABS_MT_POSITION_X
    /// assert!(dev.set_abs_params(0x40, &x).is_err()); // past ABS_MAX
    /// assert!(!dev.has_mt());
    /// dev.init_mt_slots(10, 0)?;
    /// assert!(dev.has_mt());
    /// assert_eq!(dev.abs_params(input::ABS_MT_SLOT.into()).map(|a| a.maximum), Some(9));
    /// assert_eq!(dev.abs_params(0x35), Some(x));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn init_mt_slots(&mut self, num_slots: u32, flags: u32) -> Result {
        // SAFETY: The device is valid and unregistered; may sleep.
        to_result(unsafe { bindings::input_mt_init_slots(self.raw(), num_slots, flags) })
    }

    /// Whether multi-touch slots were set up.
    pub fn has_mt(&self) -> bool {
        // SAFETY: Only we access the unregistered device (type invariant).
        !unsafe { (*self.raw()).mt }.is_null()
    }
}

/// Events sent to an input device by the input core.
#[vtable]
pub trait Operations: Send + Sync {
    /// An event for the device: an LED or sound to switch, autorepeat parameters, a force
    /// feedback effect (`type` `EV_LED`, `EV_SND`, `EV_REP`, `EV_FF`, ...). Also called when the
    /// driver itself reports such an event.
    ///
    /// Runs with the input core's `event_lock` held and interrupts disabled: it must not sleep,
    /// and must not report events (that would take `event_lock` again). The error goes back to
    /// the input core, which ignores it, as in C.
    fn event(&self, _type: u16, _code: u16, _value: i32) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// A device that takes no events.
#[vtable]
impl Operations for () {}

const UNREGISTERED: u8 = 0;
const REGISTERING: u8 = 1;
const REGISTERED: u8 = 2;

/// An input device with its driver state `T`: registered with the input core by
/// [`register`](Registration::register), unregistered on drop.
///
/// # Invariants
///
/// - `raw` came from `input_allocate_device()` and is owned by `self`: registered with the input
///   core iff `state` is `REGISTERED`, in which case the registration holds the reference.
/// - `raw`'s strings and parent point into `strings`; its `dev.driver_data` points to `self`
///   and, if `T::HAS_EVENT`, its `event` is [`Registration::event_callback`], from
///   initialisation on, when `data` is initialised.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Operations> {
    raw: NonNull<bindings::input_dev>,
    strings: Strings,
    state: AtomicU8,
    #[pin]
    data: T,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The input core may be called from any thread; `T: Send`.
unsafe impl<T: Operations> Send for Registration<T> {}
// SAFETY: `&self` methods are `register` (serialised by `state`), `report` (`input_event()` may
// be called concurrently from any context) and access to `T: Sync`.
unsafe impl<T: Operations> Sync for Registration<T> {}

impl<T: Operations> Registration<T> {
    /// Takes `dev` and the state that `data` initialises. The device is not registered yet.
    pub fn new(dev: Device, data: impl PinInit<T, Error>) -> impl PinInit<Self, Error> {
        let f = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes; on error `data` leaves it uninitialised, and
            // `dev` is dropped (freed) by returning.
            unsafe { data.__pinned_init(ptr::addr_of_mut!((*slot).data)) }?;
            let Device { raw, strings } = dev;
            let raw = raw.into_raw();
            // SAFETY: `raw` is valid and unregistered: nobody else reads these fields. `slot` is
            // pinned and `data` initialised, so the callback may use it from now on.
            unsafe {
                (*raw.as_ptr()).dev.driver_data = slot.cast();
                if T::HAS_EVENT {
                    (*raw.as_ptr()).event = Some(Self::event_callback);
                }
            }
            // SAFETY: `slot` is valid for writes; `_pin` is a ZST.
            unsafe {
                ptr::addr_of_mut!((*slot).raw).write(raw);
                ptr::addr_of_mut!((*slot).strings).write(strings);
                ptr::addr_of_mut!((*slot).state).write(AtomicU8::new(UNREGISTERED));
            }
            // INVARIANT: see the writes above; not registered.
            Ok(())
        };
        // SAFETY: `init` initialises every field or fails leaving `data` uninitialised (and
        // nothing else written). The slot is pinned, as the `driver_data` pointer requires.
        unsafe { init::pin_init_from_closure(f) }
    }

    /// The driver state.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Whether the device is registered.
    pub fn is_registered(&self) -> bool {
        self.state.load(Ordering::Acquire) == REGISTERED
    }

    /// Registers the device with the input core (`input_register_device()`); `/dev/input/eventN`
    /// appears. [`Operations::event`] may be called before this returns. Fails with `EBUSY` if
    /// it is already registered. May sleep.
    pub fn register(&self) -> Result {
        self.state
            .compare_exchange(
                UNREGISTERED,
                REGISTERING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map_err(|_| EBUSY)?;
        // SAFETY: `raw` is valid, fully described and not registered (type invariant; `state`
        // says no other thread is registering it); `drop` unregisters it before the strings
        // and `data` go.
        let ret = to_result(unsafe { bindings::input_register_device(self.raw.as_ptr()) });
        // INVARIANT: registered iff `input_register_device()` succeeded.
        let state = if ret.is_ok() {
            REGISTERED
        } else {
            UNREGISTERED
        };
        self.state.store(state, Ordering::Release);
        ret
    }

    /// Reports an event (`input_event()`). Callable from any context, hard-IRQ included.
    /// Events reported while the device is not registered are dropped.
    ///
    /// Usually a group of events ends with [`sync`](Self::sync) (`EV_SYN`/`SYN_REPORT`).
    pub fn report(&self, ty: u16, code: u16, value: i32) {
        if self.is_registered() {
            // SAFETY: `raw` is registered (type invariant), and stays so while `&self` exists.
            unsafe { bindings::input_event(self.raw.as_ptr(), ty.into(), code.into(), value) };
        }
    }

    /// Reports the end of a group of events (`input_sync()`).
    pub fn sync(&self) {
        self.report(EV_SYN, SYN_REPORT, 0);
    }

    /// # Safety
    ///
    /// Called only by the input core, with a device whose `driver_data` points to a
    /// `Registration<T>` (type invariant), under `event_lock`.
    unsafe extern "C" fn event_callback(
        dev: *mut bindings::input_dev,
        ty: c_uint,
        code: c_uint,
        value: c_int,
    ) -> c_int {
        // SAFETY: `driver_data` points to the pinned registration, whose `data` is initialised
        // from before the callback was installed until after the device is unregistered, after
        // which the input core no longer calls it.
        let this = unsafe { &*(*dev).dev.driver_data.cast::<Self>() };
        from_result(|| {
            let ty = u16::try_from(ty).map_err(|_| EINVAL)?;
            let code = u16::try_from(code).map_err(|_| EINVAL)?;
            T::event(&this.data, ty, code, value).map(|()| 0)
        })
    }
}

impl<T: Operations> core::ops::Deref for Registration<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

#[pinned_drop]
impl<T: Operations> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        let raw = self.raw.as_ptr();
        if self.state.load(Ordering::Acquire) == REGISTERED {
            // SAFETY: `raw` is registered (type invariant). This disconnects every handler and
            // drops the registration's reference; an open `/dev/input/eventN` may keep the
            // memory, but the input core no longer calls the driver or reads the strings. The
            // strings and `data` are dropped only after this.
            unsafe { bindings::input_unregister_device(raw) };
        } else {
            // SAFETY: `raw` is owned and not registered (type invariant).
            unsafe { bindings::input_free_device(raw) };
        }
    }
}
