// SPDX-License-Identifier: GPL-2.0

//! Hardware random number generators.
//!
//! A driver implements [`Operations`] for its state and wraps the state in a [`Registration`],
//! which owns it. [`Registration::register`] makes the generator available to the hwrng core
//! (`/dev/hwrng`, `rng_available`, the kernel's entropy pool); dropping the registration
//! unregisters it, which waits until no reader uses it, and only then drops the state. A reader
//! blocked in [`Operations::read`] keeps unregistration waiting, so the driver must make such
//! reads return first (typically from its bus `remove` callback).
//!
//! C header: [`include/linux/hw_random.h`](srctree/include/linux/hw_random.h)

use crate::{bindings, error::to_result, prelude::*, str::CString, types::Opaque};
use core::{
    ffi::c_void,
    sync::atomic::{AtomicBool, Ordering},
};

/// The operations of a hardware random number generator.
pub trait Operations: Send + Sync {
    /// Fills (part of) `buf` with random bytes and returns how many.
    ///
    /// If `wait` is false, return at once, with `Ok(0)` if nothing is available. If `wait` is
    /// true, sleep until some data is available. Errors are returned to the reader.
    fn read(&self, buf: &mut [u8], wait: bool) -> Result<usize>;
}

/// A hardware random number generator, owning its state `T`.
///
/// # Invariants
///
/// - `hwrng.priv` points to `self`, and `hwrng.name` to `name`, from `register` on.
/// - `registered` is true iff `hwrng` is registered with the hwrng core.
///
/// # Examples
///
/// ```
/// use kernel::c_str;
/// use kernel::hw_random::{Operations, Registration};
///
/// struct Zeros;
///
/// impl Operations for Zeros {
///     fn read(&self, buf: &mut [u8], _wait: bool) -> Result<usize> {
///         buf.fill(0);
///         Ok(buf.len())
///     }
/// }
///
/// let rng = KBox::pin_init(Registration::new(c_str!("zeros"), 0, Zeros), GFP_KERNEL)?;
/// assert_eq!(rng.data().read(&mut [1u8; 4], false)?, 4);
/// // Not registered, so nobody reads zeros as entropy.
/// assert!(!rng.is_registered());
/// # Ok::<(), Error>(())
/// ```
#[pin_data(PinnedDrop)]
pub struct Registration<T: Operations> {
    #[pin]
    hwrng: Opaque<bindings::hwrng>,
    name: CString,
    quality: u16,
    registered: AtomicBool,
    #[pin]
    data: T,
}

// SAFETY: The C `hwrng` is only touched by `register` (once) and the hwrng core, which
// synchronises its own accesses; `T: Send`.
unsafe impl<T: Operations> Send for Registration<T> {}
// SAFETY: `&self` methods are `register` (guarded by `registered`) and access to `T: Sync`.
unsafe impl<T: Operations> Sync for Registration<T> {}

impl<T: Operations> Registration<T> {
    /// Creates an unregistered generator named `name` with the given `quality` (entropy per
    /// 1024 bits; 0 lets the core pick its default), owning the state that `data` initialises.
    pub fn new(
        name: &CStr,
        quality: u16,
        data: impl PinInit<T, Error>,
    ) -> impl PinInit<Self, Error> {
        let name = name.to_cstring();
        try_pin_init!(Self {
            hwrng: Opaque::uninit(),
            name: name?,
            quality,
            registered: AtomicBool::new(false),
            data <- data,
        }? Error)
    }

    /// The state.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Whether the generator is registered.
    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    /// Registers the generator with the hwrng core; reads may start before this returns.
    /// Fails with `EBUSY` if it is already registered, or with what `hwrng_register` returns
    /// (`EEXIST` for a duplicate name).
    ///
    /// A `Registration` is always pinned: it can only be built by its [`PinInit`] and is `!Unpin`
    /// (it holds an [`Opaque`]), so `&self` is enough.
    pub fn register(&self) -> Result {
        if self.registered.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let rng = self.hwrng.get();
        // SAFETY: `rng` is valid for writes and not registered, so the hwrng core does not look
        // at it; only this thread writes it (`registered` was false). An all-zero `hwrng` is
        // valid.
        unsafe {
            rng.write(core::mem::zeroed());
            (*rng).name = self.name.as_char_ptr();
            (*rng).read = Some(Self::read_callback);
            (*rng).priv_ = self as *const Self as crate::ffi::c_ulong;
            (*rng).quality = self.quality;
        }
        // SAFETY: `rng` is fully set up and pinned (see above); `drop` unregisters it before
        // `self` goes.
        let ret = to_result(unsafe { bindings::hwrng_register(rng) });
        if ret.is_err() {
            self.registered.store(false, Ordering::Release);
        }
        ret
    }

    /// # Safety
    ///
    /// Called only by the hwrng core, with our registered `hwrng` and a buffer of `max` bytes.
    unsafe extern "C" fn read_callback(
        rng: *mut bindings::hwrng,
        data: *mut c_void,
        max: usize,
        wait: bool,
    ) -> core::ffi::c_int {
        // SAFETY: The core passes our registered `hwrng`, whose `priv` points to the
        // registration (type invariant), alive until unregistration, which waits for readers.
        let this = unsafe { &*((*rng).priv_ as *const Self) };
        let max = max.min(i32::MAX as usize);
        // SAFETY: The core passes a buffer valid for `max` bytes of writes, used by nobody else
        // during the call. It may be uninitialised, so zero it before making a `&mut [u8]`.
        let buf = unsafe {
            core::ptr::write_bytes(data.cast::<u8>(), 0, max);
            core::slice::from_raw_parts_mut(data.cast::<u8>(), max)
        };
        match this.data.read(buf, wait) {
            Ok(n) => n.min(max) as core::ffi::c_int,
            Err(e) => e.to_errno(),
        }
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
        if self.registered.load(Ordering::Acquire) {
            // SAFETY: `hwrng` is registered (type invariant). This waits for readers; `data` is
            // dropped only afterwards.
            unsafe { bindings::hwrng_unregister(self.hwrng.get()) };
        }
    }
}
