// SPDX-License-Identifier: GPL-2.0

//! Module parameters.
//!
//! A module declares its parameters in the `params` field of [`module!`]; the macro creates one
//! `static` per parameter in a `module_parameters` module at the root of the crate, and one
//! `struct kernel_param` for it in the `__param` section, as C's `module_param()` does. Values
//! given on the `insmod`/`modprobe` command line (or as `module.name=value` on the kernel command
//! line, for a built-in module) are parsed by the kernel before the module's `init` runs:
//!
//! ```ignore
//! module! {
//!     type: MyModule,
//!     name: "my_module",
//!     license: "GPL",
//!     params: {
//!         queue_depth: u32 {
//!             default: 0,
//!             description: "Requests per queue (0: the ring size)",
//!         },
//!     },
//! }
//!
//! // In `MyModule::init`, or anywhere later:
//! let depth: u32 = *module_parameters::queue_depth.value();
//! ```
//!
//! Parsing and printing are those of the C parameter types (`kstrtouint()` and friends), so a Rust
//! parameter accepts, refuses and shows a value exactly as a C one of the same type: `0x40` is
//! `64`, and `queue_depth=abc` fails the load with `EINVAL`. Each parameter is visible, read-only
//! (mode 0444), in `/sys/module/<module>/parameters/<name>`, and `modinfo` lists its description
//! and type.
//!
//! Supported types, with the C type each one maps to (the `parmtype` `modinfo` shows): `bool`
//! (`bool`), `u8` (`byte`), `i16` (`short`), `u16` (`ushort`), `i32` (`int`), `u32` (`uint`),
//! `u64` (`ullong`), `isize` (`long`) and `usize` (`ulong`).
//!
//! Parameters are read-only (0444) once the module is loaded, except a `bool` declared with
//! `permissions: 0o644`, as C's `module_param(name, bool, 0644)`: root can then write it in sysfs
//! at any time. Such a parameter is a [`WritableBool`], an atomic that the module reads with
//! [`WritableBool::value`] each time it needs it; a value read once stays what it was, as in C.
//! Other types stay read-only, since a write through sysfs would race with a reader in the module.
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)
//!
//! [`module!`]: macros::module

use crate::{
    bindings,
    ffi::{c_char, c_int},
    str::CStr,
};
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    sync::atomic::{AtomicBool, Ordering},
};

/// The storage of a module parameter, and the way to read it.
///
/// [`module!`](macros::module) creates one `static` of this type per parameter, in the
/// `module_parameters` module of the crate, named after the parameter.
///
/// # Invariants
///
/// The value is written only by the kernel's parameter parser, through the `struct kernel_param`
/// that [`KernelParam::new`] builds for it, before any code of the module runs: when a loadable
/// module is loaded, or at boot for a built-in one. The parameter is read-only in sysfs, so the
/// value never changes after that.
#[repr(transparent)]
pub struct ModuleParamAccess<T> {
    value: UnsafeCell<T>,
}

// SAFETY: After the module's code starts running the value is never written (type invariant), so
// sharing it between threads is sharing a `T`.
unsafe impl<T: Sync> Sync for ModuleParamAccess<T> {}

impl<T> ModuleParamAccess<T> {
    /// Creates the storage of a parameter with its default value.
    #[doc(hidden)]
    pub const fn new(default: T) -> Self {
        Self {
            value: UnsafeCell::new(default),
        }
    }

    /// Returns the value of the parameter: the one given when the module was loaded, or the
    /// default.
    pub fn value(&self) -> &T {
        // SAFETY: Nothing writes the value any more once the module's code can run (type
        // invariant), so a shared reference to it stays valid.
        unsafe { &*self.value.get() }
    }
}

/// The storage of a writable (`permissions: 0o644`) `bool` parameter, and the way to read it.
///
/// The kernel's parser writes it when the module is loaded and whenever root writes
/// `/sys/module/<module>/parameters/<name>`, so it is an atomic: a reader sees the old value or
/// the new one.
#[repr(transparent)]
pub struct WritableBool {
    value: AtomicBool,
}

impl WritableBool {
    /// Creates the storage of a parameter with its default value.
    #[doc(hidden)]
    pub const fn new(default: bool) -> Self {
        Self {
            value: AtomicBool::new(default),
        }
    }

    /// Returns the value of the parameter now.
    pub fn value(&self) -> bool {
        self.value.load(Ordering::Relaxed)
    }
}

/// `set` of [`PARAM_OPS_BOOL_WRITABLE`]: parses `val` as C's `bool` does, then stores it.
///
/// # Safety
///
/// `kp` points to a valid `struct kernel_param` whose `arg` points to a [`WritableBool`], and
/// `val` is null or a NUL-terminated string (what the kernel's parameter code hands over).
unsafe extern "C" fn set_writable_bool(
    val: *const c_char,
    kp: *const bindings::kernel_param,
) -> c_int {
    let mut parsed = false;
    // SAFETY: `kp` is valid for reads (function safety requirement); `kernel_param` is plain
    // data, so a copy of it is one too.
    let mut tmp = unsafe { core::ptr::read(kp) };
    tmp.__bindgen_anon_1.arg = core::ptr::addr_of_mut!(parsed).cast();
    // SAFETY: `val` is as `param_set_bool()` needs (function safety requirement), and `tmp`'s
    // `arg` points to a `bool` that lives across the call, which is all it writes.
    let ret = unsafe { bindings::param_set_bool(val, &tmp) };
    if ret == 0 {
        // SAFETY: `arg` points to a `WritableBool` (function safety requirement), which lives as
        // long as the parameter (a `static`); it is only accessed atomically.
        let param = unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<WritableBool>() };
        param.value.store(parsed, Ordering::Relaxed);
    }
    ret
}

/// `get` of [`PARAM_OPS_BOOL_WRITABLE`]: prints the value as C's `bool` does (`Y` or `N`).
///
/// # Safety
///
/// `kp` points to a valid `struct kernel_param` whose `arg` points to a [`WritableBool`], and
/// `buffer` is a sysfs page (what the kernel's parameter code hands over).
unsafe extern "C" fn get_writable_bool(
    buffer: *mut c_char,
    kp: *const bindings::kernel_param,
) -> c_int {
    // SAFETY: As in `set_writable_bool`.
    let param = unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<WritableBool>() };
    let mut value = param.value();
    // SAFETY: `kp` is valid for reads; see `set_writable_bool`.
    let mut tmp = unsafe { core::ptr::read(kp) };
    tmp.__bindgen_anon_1.arg = core::ptr::addr_of_mut!(value).cast();
    // SAFETY: `buffer` is as `param_get_bool()` needs (function safety requirement), and `tmp`'s
    // `arg` points to a `bool` that lives across the call, which is all it reads.
    unsafe { bindings::param_get_bool(buffer, &tmp) }
}

/// The ops of a writable `bool` parameter: C's `bool` parsing and printing, stored atomically.
#[doc(hidden)]
pub static PARAM_OPS_BOOL_WRITABLE: ParamOps<WritableBool> =
    // SAFETY: `set_writable_bool` stores into the `WritableBool` at `kp->arg` and writes nothing
    // else there; `get_writable_bool` reads it from there.
    unsafe {
        ParamOps::new(
            bindings::KERNEL_PARAM_OPS_FL_NOARG,
            set_writable_bool,
            get_writable_bool,
        )
    };

/// A C `struct kernel_param_ops` that parses a `T` and prints it.
///
/// # Invariants
///
/// `set` stores a valid `T` (and nothing else) at `kp->arg`, and `get` reads a `T` from there.
#[repr(transparent)]
pub struct ParamOps<T> {
    ops: bindings::kernel_param_ops,
    _type: PhantomData<T>,
}

impl<T> ParamOps<T> {
    /// # Safety
    ///
    /// `set` must store a valid `T` at `kp->arg` and write nothing else; `get` must read a `T`
    /// from there.
    const unsafe fn new(
        flags: u32,
        set: unsafe extern "C" fn(*const c_char, *const bindings::kernel_param) -> c_int,
        get: unsafe extern "C" fn(*mut c_char, *const bindings::kernel_param) -> c_int,
    ) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            ops: bindings::kernel_param_ops {
                flags,
                set: Some(set),
                get: Some(get),
                free: None,
            },
            _type: PhantomData,
        }
    }
}

macro_rules! param_ops {
    ($($(#[$meta:meta])* $name:ident: $ty:ty = $flags:expr, $set:ident, $get:ident;)*) => {$(
        $(#[$meta])*
        #[doc(hidden)]
        pub static $name: ParamOps<$ty> =
            // SAFETY: The C setter stores the C type of the same size and representation as
            // `$ty` at `kp->arg`, and nothing else; the getter reads it from there.
            unsafe { ParamOps::new($flags, bindings::$set, bindings::$get) };
    )*};
}

param_ops! {
    /// `bool`: `y`, `n`, `1`, `0` (and no value at all, meaning `y`), like C's `bool`.
    PARAM_OPS_BOOL: bool =
        bindings::KERNEL_PARAM_OPS_FL_NOARG, param_set_bool, param_get_bool;
    PARAM_OPS_U8: u8 = 0, param_set_byte, param_get_byte;
    PARAM_OPS_I16: i16 = 0, param_set_short, param_get_short;
    PARAM_OPS_U16: u16 = 0, param_set_ushort, param_get_ushort;
    PARAM_OPS_I32: i32 = 0, param_set_int, param_get_int;
    PARAM_OPS_U32: u32 = 0, param_set_uint, param_get_uint;
    PARAM_OPS_U64: u64 = 0, param_set_ullong, param_get_ullong;
    PARAM_OPS_ISIZE: isize = 0, param_set_long, param_get_long;
    PARAM_OPS_USIZE: usize = 0, param_set_ulong, param_get_ulong;
}

/// A C `struct kernel_param`, as [`module!`](macros::module) places it in the `__param` section.
#[repr(transparent)]
#[doc(hidden)]
pub struct KernelParam(bindings::kernel_param);

// SAFETY: Only the C side uses a `KernelParam`, and the kernel serialises its accesses to the
// parameter (with `kernel_param_lock()`); Rust code never touches it.
unsafe impl Sync for KernelParam {}

impl KernelParam {
    /// Describes the parameter `name` of `module` (null for a built-in module, whose `name` is
    /// then `module.param`), parsed and printed by `ops` into and from `value`.
    ///
    /// The parameter shows in sysfs with mode 0444.
    #[doc(hidden)]
    pub const fn new<T>(
        name: &'static CStr,
        module: *mut bindings::module,
        ops: &'static ParamOps<T>,
        value: &'static ModuleParamAccess<T>,
    ) -> Self {
        Self(bindings::kernel_param {
            name: name.as_char_ptr(),
            mod_: module,
            ops: &ops.ops,
            // Read-only: a write after load could race with a reader (see the invariants of
            // `ModuleParamAccess`).
            perm: 0o444,
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: value.value.get().cast(),
            },
        })
    }

    /// Describes the writable `bool` parameter `name` of `module` (null for a built-in module,
    /// whose `name` is then `module.param`), stored in `value`.
    ///
    /// The parameter shows in sysfs with mode 0644: root may write it at any time, which
    /// [`WritableBool`]'s atomic storage allows.
    #[doc(hidden)]
    pub const fn new_writable(
        name: &'static CStr,
        module: *mut bindings::module,
        ops: &'static ParamOps<WritableBool>,
        value: &'static WritableBool,
    ) -> Self {
        Self(bindings::kernel_param {
            name: name.as_char_ptr(),
            mod_: module,
            ops: &ops.ops,
            perm: 0o644,
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: value.value.as_ptr().cast(),
            },
        })
    }
}
