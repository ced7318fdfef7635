// SPDX-License-Identifier: GPL-2.0

//! Hypervisor consoles (`hvc`): the terminal `/dev/hvcN` and the kernel console `hvcN`.
//!
//! A driver registers a console with a [`Backend`], which moves characters to and from the
//! device. hvc turns it into a tty (`/dev/hvcN`, usable for a login shell), and, if the kernel
//! command line names it (`console=hvc0`), into a kernel console, which replays the printk
//! backlog when it registers.
//!
//! hvc identifies a console to its backend by a number, the `vtermno`, and calls the backend
//! through one table of functions. This module keeps that table in the kernel itself (not in a
//! module), and maps each `vtermno` to the [`Backend`] of a live [`Registration`] in a table of
//! its own, under an interrupt-safe lock. Every call into a backend runs under that lock, and
//! [`Registration`]'s destructor takes the backend out under the same lock before it removes
//! the console: once the destructor has returned, no call into the backend is running or can
//! start, whatever hvc and its tty still do with the console.
//!
//! C header: [`drivers/tty/hvc/hvc_console.h`](srctree/drivers/tty/hvc/hvc_console.h)

use crate::{
    bindings,
    error::{code::*, from_err_ptr, Error, Result},
    sync::Arc,
};
use core::{cell::UnsafeCell, ffi::c_int};

/// How many consoles registered through this module can exist at a time.
pub const MAX_CONSOLES: usize = 64;

/// What moves a console's characters: implemented by a driver.
///
/// Both methods run in atomic context, with local interrupts disabled and this module's table
/// lock held: they must not sleep, and must not use [`Registration`] (creating, resizing or
/// dropping one takes the same lock).
pub trait Backend: Send + Sync {
    /// Copies characters the device received into `buf`, and returns how many (0 if there are
    /// none). Called when the driver [polls](Registration::poll), and by hvc's own polling
    /// thread. A value above `buf.len()` is taken as `buf.len()`.
    fn get_chars(&self, buf: &mut [u8]) -> Result<usize>;

    /// Sends the characters of `buf` to the device, and returns how many it took; 0 makes hvc
    /// try again later. Called from printk (any context) and from the tty's writers. A value
    /// above `buf.len()` is taken as `buf.len()`.
    fn put_chars(&self, buf: &[u8]) -> Result<usize>;
}

/// One live console: its backend, and its window size.
struct Slot {
    backend: Arc<dyn Backend>,
    size: Option<bindings::winsize>,
}

/// The consoles, by `vtermno - 1`.
struct Table(UnsafeCell<[Option<Slot>; MAX_CONSOLES]>);

// SAFETY: The table is accessed only through `with_table`, with `rust_hvc_table_lock` held, so
// by one thread at a time; what it holds (`Arc<dyn Backend>`, `Backend: Send + Sync`, and plain
// numbers) may move between threads.
unsafe impl Sync for Table {}

static TABLE: Table = Table(UnsafeCell::new([const { None }; MAX_CONSOLES]));

/// Runs `f` on the table, with the table lock held and local interrupts disabled.
fn with_table<R>(f: impl FnOnce(&mut [Option<Slot>; MAX_CONSOLES]) -> R) -> R {
    // SAFETY: Takes a spinlock; any context.
    let flags = unsafe { bindings::rust_hvc_table_lock() };
    // SAFETY: The lock is held, so no other reference to the table exists; `f` cannot take the
    // lock again (it is not reentrant and callers never nest `with_table`: `Backend` methods
    // may not use `Registration`), and the reference does not outlive `f`.
    let r = f(unsafe { &mut *TABLE.0.get() });
    // SAFETY: The lock was taken above, with these flags.
    unsafe { bindings::rust_hvc_table_unlock(flags) };
    r
}

/// The slot of `vtermno`, if it is one of ours.
fn slot(table: &mut [Option<Slot>; MAX_CONSOLES], vtermno: u32) -> Option<&mut Slot> {
    let i = (vtermno as usize).checked_sub(1)?;
    table.get_mut(i)?.as_mut()
}

fn errno(e: Error) -> isize {
    e.to_errno() as isize
}

/// `hv_ops.get_chars`.
///
/// # Safety
///
/// `buf` is valid for writes of `count` bytes, and not used by anything else during the call
/// (as hvc passes it: a buffer of its own).
unsafe extern "C" fn get_chars(vtermno: u32, buf: *mut u8, count: usize) -> isize {
    if count == 0 || buf.is_null() {
        return 0;
    }
    // SAFETY: As the function's safety requirements say.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, count) };
    with_table(|t| match slot(t, vtermno) {
        Some(s) => match s.backend.get_chars(buf) {
            Ok(n) => n.min(count) as isize,
            Err(e) => errno(e),
        },
        None => errno(EPIPE),
    })
}

/// `hv_ops.put_chars`.
///
/// # Safety
///
/// `buf` is valid for reads of `count` bytes during the call.
unsafe extern "C" fn put_chars(vtermno: u32, buf: *const u8, count: usize) -> isize {
    if count == 0 || buf.is_null() {
        return 0;
    }
    // SAFETY: As the function's safety requirements say.
    let buf = unsafe { core::slice::from_raw_parts(buf, count) };
    with_table(|t| match slot(t, vtermno) {
        Some(s) => match s.backend.put_chars(buf) {
            Ok(n) => n.min(count) as isize,
            Err(e) => errno(e),
        },
        None => errno(EPIPE),
    })
}

/// `hv_ops.notifier_add`: the tty opened. Input comes through [`Registration::poll`] (the
/// driver's interrupts), so hvc's thread need not poll; and the tty gets the window size.
///
/// # Safety
///
/// `hp` is a live console of ours (hvc calls this from the tty's open).
unsafe extern "C" fn notifier_add(hp: *mut bindings::hvc_struct, _data: c_int) -> c_int {
    // SAFETY: `hp` is live (safety requirement); `vtermno` does not change after allocation.
    let vtermno = unsafe { (*hp).vtermno };
    let size = with_table(|t| slot(t, vtermno).map(|s| s.size));
    let Some(size) = size else {
        return EINVAL.to_errno();
    };
    // SAFETY: `hp` is live. hvc reads `irq_requested` without a lock; C backends set it so too.
    unsafe { (*hp).irq_requested = 1 };
    if let Some(ws) = size {
        // SAFETY: `hp` is live; `hvc_resize` takes `hp`'s lock itself. No lock of ours is held.
        unsafe { bindings::hvc_resize(hp, ws) };
    }
    0
}

/// `hv_ops.notifier_del` and `notifier_hangup`: the tty closed or hung up.
///
/// # Safety
///
/// `hp` is a live console (hvc calls this from the tty's close and hangup).
unsafe extern "C" fn notifier_del(hp: *mut bindings::hvc_struct, _data: c_int) {
    // SAFETY: `hp` is live; as in `notifier_add`.
    unsafe { (*hp).irq_requested = 0 };
}

/// The one table of functions of every console of this module. It lives in the kernel, not in
/// a module: hvc keeps a pointer to it in consoles that outlive their driver.
static HV_OPS: bindings::hv_ops = bindings::hv_ops {
    get_chars: Some(get_chars),
    put_chars: Some(put_chars),
    flush: None,
    notifier_add: Some(notifier_add),
    notifier_del: Some(notifier_del),
    notifier_hangup: Some(notifier_del),
    tiocmget: None,
    tiocmset: None,
    dtr_rts: None,
};

/// A console, registered with hvc: `/dev/hvcN`, and the kernel console `hvcN` if the command
/// line names it. Dropping it takes the backend out (see the [module docs](self)) and removes
/// the console; dropping it sleeps.
pub struct Registration {
    /// Valid from `hvc_alloc` until `hvc_remove` in `drop`.
    hp: *mut bindings::hvc_struct,
    vtermno: u32,
}

// SAFETY: `hvc_poll`, `hvc_resize` and `hvc_remove` may be called from any thread; the pointer
// stays valid until `drop`, which runs once.
unsafe impl Send for Registration {}
// SAFETY: `&self` methods call `hvc_poll` and `hvc_resize`, which take the console's lock.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers a console whose characters `backend` moves, with an output buffer of
    /// `outbuf_size` bytes (C's virtio console uses a page). Process context: it sleeps.
    ///
    /// Fails with `ENOSPC` when [`MAX_CONSOLES`] consoles of this module exist.
    pub fn new(backend: Arc<dyn Backend>, outbuf_size: usize) -> Result<Self> {
        let outbuf = c_int::try_from(outbuf_size).map_err(|_| EINVAL)?;
        // A free number; the backend is in the table before hvc can call it.
        let vtermno = with_table(|t| {
            let i = t.iter().position(Option::is_none)?;
            t[i] = Some(Slot {
                backend,
                size: None,
            });
            Some(i as u32 + 1)
        })
        .ok_or(ENOSPC)?;
        // SAFETY: `HV_OPS` is static; `hvc_alloc` may sleep, and we are in process context (as
        // documented; `might_sleep` in it checks on debug kernels).
        let hp = from_err_ptr(unsafe { bindings::hvc_alloc(vtermno, 0, &HV_OPS, outbuf) });
        match hp {
            Ok(hp) => Ok(Self { hp, vtermno }),
            Err(e) => {
                let old = with_table(|t| t[vtermno as usize - 1].take());
                drop(old);
                Err(e)
            }
        }
    }

    /// The console's index: it is `/dev/hvc<index>`.
    pub fn index(&self) -> i32 {
        // SAFETY: `hp` is live until `drop`; `index` is set once, in `hvc_alloc`.
        unsafe { (*self.hp).index }
    }

    /// The device received characters: hands them to the tty (through
    /// [`Backend::get_chars`]), and wakes hvc's thread if there is more to do. Any context;
    /// call it with no lock held that [`Backend::get_chars`] takes.
    pub fn poll(&self) {
        // SAFETY: `hp` is live until `drop`; `hvc_poll` takes the console's lock itself.
        if unsafe { bindings::hvc_poll(self.hp) } != 0 {
            // SAFETY: Wakes hvc's thread; any context.
            unsafe { bindings::hvc_kick() };
        }
    }

    /// The device says the console is `rows` by `cols`: tells the tty (`TIOCGWINSZ`, `SIGWINCH`)
    /// now, and again whenever it is opened.
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = bindings::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let vtermno = self.vtermno;
        with_table(|t| {
            if let Some(s) = slot(t, vtermno) {
                s.size = Some(ws);
            }
        });
        // SAFETY: `hp` is live until `drop`. As C's virtio console does on a resize.
        unsafe { (*self.hp).irq_requested = 1 };
        // SAFETY: `hp` is live; `hvc_resize` takes the console's lock itself.
        unsafe { bindings::hvc_resize(self.hp, ws) };
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // From here on hvc's calls for this console get `EPIPE`; none is running (they run
        // under the lock). The backend is dropped outside the lock.
        let vtermno = self.vtermno;
        let old = with_table(|t| t[vtermno as usize - 1].take());
        drop(old);
        // SAFETY: `hp` came from `hvc_alloc` and is removed once. `hvc_remove` sleeps; `drop` of
        // a `Registration` is documented to.
        unsafe { bindings::hvc_remove(self.hp) };
    }
}
