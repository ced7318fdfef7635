// SPDX-License-Identifier: GPL-2.0

//! Character devices: a range of minors with file operations, a class, device nodes with
//! sysfs attributes, and wait queues that `poll` can use.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/poll.h`](srctree/include/linux/poll.h).
//!
//! The model:
//!
//! - A driver implements [`Operations`] (`#[vtable]`): `open` turns the node's
//!   [`Port`](Operations::Port) into per-file [`Data`](Operations::Data); `read`, `write` and
//!   `poll` borrow it; `release` gets it back by value. Nothing else can reach a file's data,
//!   so it cannot be kept past release.
//! - [`chrdev_fops!`] builds the static `struct file_operations` of a type in the driver's own
//!   module, with `owner` set: an open file pins the module, so the code its operations run
//!   stays loaded (as C's `.owner = THIS_MODULE`).
//! - A [`Region`] is a major number with `count` minors (`__register_chrdev`) in a class
//!   (`/sys/class/NAME`). Classes are shared by name: the first region creates it, the last one
//!   destroys it.
//! - A [`Node`] is one minor with its port, a device in the class (`/dev/NAME` from devtmpfs).
//!   `open` finds the port in a registry under a mutex; dropping the node takes the port out
//!   of the registry first, so no open can reach a port after that (it gets `ENXIO`). Open
//!   files keep only what `open` returned.
//! - A [`WaitQueue`] is a `wait_queue_head`: sleep on it, wake it, and register it in `poll`.
//!   `poll` registers an `Arc<WaitQueue>`, and the file keeps a reference to each queue it
//!   registered until it is released; `poll`/`select` and epoll take their entries off before
//!   that (at the end of the call, and in `eventpoll_release` before `release`), so no entry
//!   outlives its queue.
//! - A [`Fasync`] is a list of files that asked for `SIGIO` (`O_ASYNC`), for
//!   [`fasync_queue`](Operations::fasync_queue). A file keeps a reference to the list it is on
//!   until it leaves it (`fcntl`, or the VFS before `release`), so no entry outlives its list.

use crate::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_char, c_int, c_uint, c_void},
    prelude::*,
    str::CString,
    sync::{Arc, ArcBorrow, Mutex},
    types::{ForeignOwnable, Opaque},
    uaccess::{UserSlice, UserSliceReader, UserSliceWriter},
};
use core::{cell::UnsafeCell, fmt, marker::PhantomData, ptr};

/// `EPOLLIN`: there is data to read.
pub const POLLIN: u32 = 0x0001;
/// `EPOLLOUT`: writing will not block.
pub const POLLOUT: u32 = 0x0004;
/// `EPOLLERR`: an error.
pub const POLLERR: u32 = 0x0008;
/// `EPOLLHUP`: the other end hung up.
pub const POLLHUP: u32 = 0x0010;
/// `EPOLLRDNORM`: normal data to read.
pub const POLLRDNORM: u32 = 0x0040;
/// `EPOLLWRNORM`: writing normal data will not block.
pub const POLLWRNORM: u32 = 0x0100;

/// `POLL_IN`: the band of a `SIGIO` for data to read.
pub const POLL_IN: i32 = 1;
/// `POLL_OUT`: the band of a `SIGIO` for room to write.
pub const POLL_OUT: i32 = 2;

/// The files that asked for `SIGIO` on something (`fasync_struct`, C's `fasync_helper` and
/// `kill_fasync`).
pub struct Fasync {
    /// The list's head, which `fasync_helper` and `kill_fasync` use under their own locking
    /// (`fasync_lock`, the file's lock and RCU).
    head: UnsafeCell<*mut bindings::fasync_struct>,
}

// SAFETY: The head is only used through `fasync_helper` and `kill_fasync`, which may run on any
// thread at the same time.
unsafe impl Send for Fasync {}
// SAFETY: See `Send`.
unsafe impl Sync for Fasync {}

impl Fasync {
    /// A new, empty list.
    pub fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                head: UnsafeCell::new(ptr::null_mut()),
            },
            GFP_KERNEL,
        )?)
    }

    /// Sends `SIGIO` with band `band` ([`POLL_IN`], [`POLL_OUT`]) to the owner of every file on
    /// the list. Any context.
    pub fn kill(&self, band: i32) {
        // SAFETY: `kill_fasync` reads the head under RCU; every entry belongs to a file that
        // holds a reference to `self` while it is on the list (see `fasync_callback`).
        unsafe { bindings::kill_fasync(self.head.get(), bindings::SIGIO as c_int, band) };
    }
}

/// An open file, as its operations see it.
///
/// # Invariants
///
/// The wrapped `struct file` is valid for the lifetime of the reference.
#[repr(transparent)]
pub struct File(Opaque<bindings::file>);

impl File {
    /// # Safety
    ///
    /// `ptr` is a valid `struct file` for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::file) -> &'a Self {
        // SAFETY: `File` is a transparent wrapper; the caller guarantees validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// The file's `f_flags` (`O_*`).
    pub fn flags(&self) -> u32 {
        // SAFETY: The file is valid (type invariant); `f_flags` is read as C reads it, racily.
        unsafe { ptr::read_volatile(ptr::addr_of!((*self.0.get()).f_flags)) }
    }

    /// Whether the file was opened (or `fcntl`ed) with `O_NONBLOCK`.
    pub fn is_nonblocking(&self) -> bool {
        self.flags() & bindings::O_NONBLOCK != 0
    }
}

/// The `poll_table` of one `poll` call.
///
/// # Invariants
///
/// `table` is the `poll_table` (possibly null) of a `poll` call in progress on `file`, valid
/// for the lifetime of the reference; `polled` is that file's list of registered queues, kept
/// until the file is released.
pub struct PollTable<'a> {
    table: *mut bindings::poll_table_struct,
    file: &'a File,
    polled: &'a Mutex<KVec<Arc<WaitQueue>>>,
}

impl PollTable<'_> {
    /// Registers `wq`: a wake-up on it makes the poller look again (C's `poll_wait`). The file
    /// keeps `wq` until it is released. If that takes memory that cannot be had, `wq` is not
    /// registered (the caller's mask still holds; the poller is only not woken by `wq`).
    pub fn register(&self, wq: &Arc<WaitQueue>) {
        {
            let mut polled = self.polled.lock();
            if !polled.iter().any(|q| ptr::eq(&**q, &**wq))
                && polled.push(wq.clone(), GFP_KERNEL).is_err()
            {
                return;
            }
        }
        // SAFETY: `file` and `table` come from the `poll` call (type invariant); `wq` is an
        // initialised wait queue head that the file keeps alive until it is released (it is in
        // `polled`), and every entry `poll_wait` adds is taken off before that: at the end of
        // a `poll`/`select` call, which holds a reference to the file, or by
        // `eventpoll_release`, which `__fput` runs before `release`.
        unsafe { bindings::poll_wait(self.file.0.get(), wq.wq.get(), self.table) };
    }
}

/// A wait queue (`wait_queue_head_t`) that tasks sleep on and that `poll` can register.
#[pin_data]
pub struct WaitQueue {
    #[pin]
    wq: Opaque<bindings::wait_queue_head>,
}

// SAFETY: A wait queue head is used from any thread, under its own lock.
unsafe impl Send for WaitQueue {}
// SAFETY: See `Send`.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    /// A new, empty wait queue.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `init_waitqueue_head` initialises the head in place.
            wq <- Opaque::ffi_init(|slot| unsafe { bindings::init_waitqueue_head(slot) }),
        })
    }

    /// Wakes every task sleeping on the queue and every poller.
    pub fn wake_up(&self) {
        // SAFETY: The head is initialised; `nr_exclusive == 0` wakes everybody.
        unsafe {
            bindings::__wake_up(
                self.wq.get(),
                bindings::TASK_INTERRUPTIBLE,
                0,
                ptr::null_mut(),
            )
        };
    }

    /// Sleeps (interruptibly) until `cond` returns true; `ERESTARTSYS` if a signal comes first.
    ///
    /// `cond` runs with the task already queued, so a [`wake_up`](Self::wake_up) after the
    /// state it checks changed is never lost. It must not sleep.
    pub fn wait_interruptible(&self, mut cond: impl FnMut() -> bool) -> Result {
        if cond() {
            return Ok(());
        }
        let mut entry = core::mem::MaybeUninit::<bindings::wait_queue_entry>::uninit();
        let entry = entry.as_mut_ptr();
        // SAFETY: `entry` is writable; `init_wait_entry` initialises it for the current task.
        unsafe { bindings::init_wait_entry(entry, 0) };
        let ret = loop {
            // SAFETY: `entry` is initialised and stays in place (on this stack frame) until
            // `finish_wait` below takes it off the queue; the head is initialised.
            let r = unsafe {
                bindings::prepare_to_wait_event(
                    self.wq.get(),
                    entry,
                    bindings::TASK_INTERRUPTIBLE as c_int,
                )
            };
            if cond() {
                break Ok(());
            }
            if r != 0 {
                break Err(ERESTARTSYS);
            }
            // SAFETY: Sleeping in process context, as the caller of a blocking wait must be.
            unsafe { bindings::schedule() };
        };
        // SAFETY: `entry` was initialised and may be on the queue; this takes it off.
        unsafe { bindings::finish_wait(self.wq.get(), entry) };
        ret
    }
}

/// The file operations of a character device.
///
/// Every operation runs in process context and may sleep.
#[vtable]
pub trait Operations: Sized + 'static {
    /// What a node stands for (a port); [`open`](Operations::open) gets it.
    type Port: Send + Sync;
    /// What an open file keeps; released in [`release`](Operations::release).
    type Data: ForeignOwnable + Send + Sync;

    /// The most one [`write`](Operations::write) is handed: a longer write from user space
    /// gets a reader of this many bytes (and returns at most this many).
    const MAX_WRITE: usize = usize::MAX;

    /// A file is being opened on `port`'s node.
    fn open(port: &Arc<Self::Port>, file: &File) -> Result<Self::Data>;

    /// The last reference to the file is gone.
    fn release(_data: Self::Data, _file: &File) {}

    /// Reads into `buf`; returns how many bytes were written to it (0 is end of file).
    fn read(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _buf: &mut UserSliceWriter,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// Writes from `buf`; returns how many bytes were taken from it.
    fn write(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _buf: &mut UserSliceReader,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// The list a file joins when it asks for `SIGIO` (`O_ASYNC`); implementing it gives the
    /// file operations `fasync`. It is asked once, when the file joins: the file stays on that
    /// list (and keeps it alive) until it leaves it.
    fn fasync_queue(_data: <Self::Data as ForeignOwnable>::Borrowed<'_>) -> Result<Arc<Fasync>> {
        Err(EINVAL)
    }

    /// Registers the file's wait queues in `table` and returns the `POLL*` mask that holds now.
    fn poll(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _table: &PollTable<'_>,
    ) -> u32 {
        POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM
    }
}

/// The static `struct file_operations` of `T`, made by [`chrdev_fops!`].
#[repr(transparent)]
pub struct FileOps<T: Operations>(bindings::file_operations, PhantomData<T>);

// SAFETY: The table is never written after it is built; it holds function pointers and the
// owner's address.
unsafe impl<T: Operations> Sync for FileOps<T> {}

impl<T: Operations> FileOps<T> {
    /// The file operations of `T`, owned by module `owner`.
    ///
    /// # Safety
    ///
    /// `owner` is the module whose code implements `T` (or null in a built-in kernel), and the
    /// result lives in that module's memory (a `static`).
    pub const unsafe fn new(owner: *mut bindings::module) -> Self {
        Self(
            bindings::file_operations {
                owner,
                open: Some(open_callback::<T>),
                release: Some(release_callback::<T>),
                read: if T::HAS_READ {
                    Some(read_callback::<T>)
                } else {
                    None
                },
                write: if T::HAS_WRITE {
                    Some(write_callback::<T>)
                } else {
                    None
                },
                poll: if T::HAS_POLL {
                    Some(poll_callback::<T>)
                } else {
                    None
                },
                fasync: if T::HAS_FASYNC_QUEUE {
                    Some(fasync_callback::<T>)
                } else {
                    None
                },
                // SAFETY: All-zero is a valid `file_operations` (no operation).
                ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
            },
            PhantomData,
        )
    }
}

/// Declares the static [`FileOps`] of a type in the calling module, with the module as owner.
///
/// ```ignore
/// static FOPS: &kernel::chrdev::FileOps<PortOps> = kernel::chrdev_fops!(PortOps);
/// ```
#[macro_export]
macro_rules! chrdev_fops {
    ($t:ty) => {{
        #[cfg(MODULE)]
        static FOPS: $crate::chrdev::FileOps<$t> = {
            extern "C" {
                static __this_module: $crate::types::Opaque<$crate::bindings::module>;
            }
            // SAFETY: `__this_module` is this module, which implements `$t` (the macro expands
            // in it), and `FOPS` is a static of this module.
            unsafe { $crate::chrdev::FileOps::new(__this_module.get()) }
        };
        #[cfg(not(MODULE))]
        // SAFETY: Built in: no owner, and the code never goes away.
        static FOPS: $crate::chrdev::FileOps<$t> =
            unsafe { $crate::chrdev::FileOps::new(::core::ptr::null_mut()) };
        &FOPS
    }};
}

/// What an open file's `private_data` points to.
#[pin_data]
struct FileState {
    /// `T::Data`, from `into_foreign`.
    data: *const c_void,
    /// The wait queues `poll` registered on this file.
    #[pin]
    polled: Mutex<KVec<Arc<WaitQueue>>>,
    /// The `SIGIO` list the file is on, if any.
    #[pin]
    fasync: Mutex<Option<Arc<Fasync>>>,
}

/// The registry: classes by name, and the port of each node by `dev_t`.
struct Registry {
    classes: KVec<ClassEntry>,
    nodes: KVec<NodeEntry>,
}

#[derive(Clone, Copy)]
struct ClassEntry {
    name: &'static CStr,
    class: *mut bindings::class,
    users: usize,
}

/// # Invariants
///
/// `port` comes from `Arc::into_raw` of an `Arc<T::Port>` for the `T` whose file operations
/// are `fops`; the [`Node`] that added the entry holds that `Arc` until it removes the entry.
#[derive(Clone, Copy)]
struct NodeEntry {
    devt: u32,
    fops: *const bindings::file_operations,
    port: *const c_void,
}

/// Removes entry `i` of `v` (the last one takes its place).
fn remove<E: Copy>(v: &mut KVec<E>, i: usize) {
    let last = v.len() - 1;
    v.swap(i, last);
    // SAFETY: `last < len`; the entries are `Copy`, so forgetting the last one is fine.
    unsafe { v.set_len(last) };
}

struct Global(UnsafeCell<Registry>);

// SAFETY: The registry is only accessed under `chrdev_registry_lock` (see `with`).
unsafe impl Sync for Global {}

static REGISTRY: Global = Global(UnsafeCell::new(Registry {
    classes: KVec::new(),
    nodes: KVec::new(),
}));

impl Global {
    /// Runs `f` on the registry, under its mutex. `f` must not call `with` again.
    fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        // SAFETY: Process context (every caller may sleep).
        unsafe { bindings::chrdev_registry_lock() };
        // SAFETY: The mutex is held, and `with` is not reentered (no caller's `f` calls it),
        // so this is the only reference.
        let r = f(unsafe { &mut *self.0.get() });
        // SAFETY: Taken above.
        unsafe { bindings::chrdev_registry_unlock() };
        r
    }
}

/// A major number with `count` minors and file operations `T`, in a class.
///
/// # Invariants
///
/// `major` was registered with `count` minors by `__register_chrdev` and `class` is a class
/// registered in the registry with one use counted for this region; both are undone on drop.
pub struct Region<T: Operations> {
    major: u32,
    count: u32,
    name: &'static CStr,
    class: *mut bindings::class,
    fops: &'static FileOps<T>,
}

// SAFETY: The region's C objects are used from any thread; the registry serialises the class.
unsafe impl<T: Operations> Send for Region<T> {}
// SAFETY: See `Send`.
unsafe impl<T: Operations> Sync for Region<T> {}

impl<T: Operations> Region<T> {
    /// Registers a major number named `name` with minors `0..count`, in class `class` (created
    /// if no region uses it yet).
    pub fn new(
        name: &'static CStr,
        class: &'static CStr,
        count: u32,
        fops: &'static FileOps<T>,
    ) -> Result<Arc<Self>> {
        if count == 0 || count > (1 << bindings::MINORBITS) {
            return Err(EINVAL);
        }
        // SAFETY: `name` and `fops` are static; major 0 asks for a free one.
        let major =
            unsafe { bindings::__register_chrdev(0, 0, count, name.as_char_ptr(), &fops.0) };
        if major < 0 {
            return Err(Error::from_errno(major));
        }
        let major = major as u32;
        let unregister = || {
            // SAFETY: Registered just above with these arguments.
            unsafe { bindings::__unregister_chrdev(major, 0, count, name.as_char_ptr()) }
        };
        let class_ptr = match class_get(class) {
            Ok(c) => c,
            Err(e) => {
                unregister();
                return Err(e);
            }
        };
        let region = Self {
            major,
            count,
            name,
            class: class_ptr,
            fops,
        };
        Ok(Arc::new(region, GFP_KERNEL)?)
    }

    /// The major number.
    pub fn major(&self) -> u32 {
        self.major
    }

    /// Creates the node of minor `minor`, a device `name` in the class with parent `parent`;
    /// opening it reaches `port`.
    pub fn add(
        self: &Arc<Self>,
        minor: u32,
        port: Arc<T::Port>,
        parent: &crate::device::Device,
        name: fmt::Arguments<'_>,
    ) -> Result<Node<T>> {
        if minor >= self.count {
            return Err(EINVAL);
        }
        let devt = (self.major << bindings::MINORBITS) | minor;
        let name = CString::try_from_fmt(name)?;
        let inner = KBox::pin_init(
            pin_init!(NodeInner {
                name <- crate::new_mutex!(None),
            }),
            GFP_KERNEL,
        )?;
        let fops: *const bindings::file_operations = &self.fops.0;
        let port_ptr = Arc::into_raw(port).cast::<c_void>();
        let added = REGISTRY.with(|r| {
            if r.nodes.iter().any(|n| n.devt == devt) {
                return Err(EBUSY);
            }
            r.nodes.push(
                NodeEntry {
                    devt,
                    fops,
                    port: port_ptr,
                },
                GFP_KERNEL,
            )?;
            Ok(())
        });
        if let Err(e) = added {
            // SAFETY: From `into_raw` above, not in the registry.
            drop(unsafe { Arc::from_raw(port_ptr.cast::<T::Port>()) });
            return Err(e);
        }
        // SAFETY: The class and the parent are valid; `drvdata` is the pinned `NodeInner`,
        // which outlives the device (dropped after `device_destroy`); the format is "%s" with
        // a NUL-terminated string.
        let dev = unsafe {
            bindings::device_create(
                self.class,
                parent.as_raw(),
                devt,
                ptr::from_ref(&*inner).cast_mut().cast(),
                c"%s".as_ptr().cast::<c_char>(),
                name.as_char_ptr(),
            )
        };
        let mut node = Node {
            region: self.clone(),
            devt,
            dev: ptr::null_mut(),
            inner,
            port: port_ptr.cast(),
            named: false,
        };
        if dev.is_null() || (dev as isize) < 0 && (dev as isize) >= -4095 {
            let err = if dev.is_null() {
                ENOMEM
            } else {
                Error::from_errno(dev as isize as c_int)
            };
            drop(node);
            return Err(err);
        }
        node.dev = dev;
        Ok(node)
    }
}

impl<T: Operations> Drop for Region<T> {
    fn drop(&mut self) {
        // SAFETY: Registered in `new` with these arguments (type invariant); every node holds
        // the region, so none is left.
        unsafe {
            bindings::__unregister_chrdev(self.major, 0, self.count, self.name.as_char_ptr())
        };
        class_put(self.class);
    }
}

/// Takes a use of class `name`, creating it if it has none.
fn class_get(name: &'static CStr) -> Result<*mut bindings::class> {
    REGISTRY.with(|r| {
        if let Some(c) = r
            .classes
            .iter_mut()
            .find(|c| c.name.as_bytes() == name.as_bytes())
        {
            c.users += 1;
            return Ok(c.class);
        }
        r.classes.reserve(1, GFP_KERNEL)?;
        // SAFETY: `name` is static.
        let class = unsafe { bindings::class_create(name.as_char_ptr()) };
        if (class as isize) < 0 && (class as isize) >= -4095 {
            // `EEXIST` when another driver owns the name (C's `virtio-ports`, say).
            return Err(Error::from_errno(class as isize as c_int));
        }
        r.classes.push(
            ClassEntry {
                name,
                class,
                users: 1,
            },
            GFP_KERNEL,
        )?;
        Ok(class)
    })
}

/// Gives back a use of `class`; destroys it with its last use.
fn class_put(class: *mut bindings::class) {
    REGISTRY.with(|r| {
        let Some(i) = r.classes.iter().position(|c| c.class == class) else {
            return;
        };
        r.classes[i].users -= 1;
        if r.classes[i].users == 0 {
            remove(&mut r.classes, i);
            // SAFETY: Created by `class_get`, no user left.
            unsafe { bindings::class_destroy(class) };
        }
    });
}

#[pin_data]
struct NodeInner {
    #[pin]
    name: crate::sync::Mutex<Option<CString>>,
}

/// One minor of a [`Region`]: a device in the class, and the port that opening it reaches.
///
/// Dropping it makes new opens fail with `ENXIO` and removes the device; files already open
/// keep what [`Operations::open`] returned.
///
/// # Invariants
///
/// The registry holds an entry for `devt` pointing at `port`, an `Arc` this node owns;
/// `dev` (if not null) was created with `inner` as drvdata.
pub struct Node<T: Operations> {
    region: Arc<Region<T>>,
    devt: u32,
    dev: *mut bindings::device,
    inner: Pin<KBox<NodeInner>>,
    port: *const T::Port,
    named: bool,
}

// SAFETY: The node's C objects are used from any thread; the port is `Send + Sync`.
unsafe impl<T: Operations> Send for Node<T> {}
// SAFETY: See `Send`.
unsafe impl<T: Operations> Sync for Node<T> {}

impl<T: Operations> Node<T> {
    /// The minor number.
    pub fn minor(&self) -> u32 {
        self.devt & ((1 << bindings::MINORBITS) - 1)
    }

    /// The major number.
    pub fn major(&self) -> u32 {
        self.region.major
    }

    /// Gives the node a `name` attribute in sysfs (`/sys/class/CLASS/NODE/name`), holding
    /// `name` and a newline, and sends a `change` uevent. Once only: `EBUSY` after that.
    pub fn set_name(&mut self, name: CString) -> Result {
        if self.named {
            return Err(EBUSY);
        }
        *self.inner.name.lock() = Some(name);
        // SAFETY: `dev` is a live device (type invariant); the group is static.
        to_result(unsafe {
            bindings::sysfs_create_group(ptr::addr_of_mut!((*self.dev).kobj), &NAME_GROUP.0)
        })?;
        self.named = true;
        // SAFETY: As above.
        unsafe {
            bindings::kobject_uevent(
                ptr::addr_of_mut!((*self.dev).kobj),
                bindings::kobject_action_KOBJ_CHANGE,
            )
        };
        Ok(())
    }
}

impl<T: Operations> Drop for Node<T> {
    fn drop(&mut self) {
        // No open reaches the port from now on.
        REGISTRY.with(|r| {
            if let Some(i) = r.nodes.iter().position(|n| n.devt == self.devt) {
                remove(&mut r.nodes, i);
            }
        });
        if !self.dev.is_null() {
            if self.named {
                // SAFETY: Created in `set_name`.
                unsafe {
                    bindings::sysfs_remove_group(ptr::addr_of_mut!((*self.dev).kobj), &NAME_GROUP.0)
                };
            }
            // SAFETY: Created in `Region::add` with this class and `devt`. It waits for
            // attribute readers, so `inner` is unused after it.
            unsafe { bindings::device_destroy(self.region.class, self.devt) };
        }
        // SAFETY: The `Arc` the registry entry pointed to (type invariant), now out of it.
        drop(unsafe { Arc::from_raw(self.port) });
    }
}

struct AttrGroup(bindings::attribute_group);
// SAFETY: Never written; holds pointers to other statics.
unsafe impl Sync for AttrGroup {}
struct AttrList([*mut bindings::attribute; 2]);
// SAFETY: As `AttrGroup`.
unsafe impl Sync for AttrList {}
struct DevAttr(bindings::device_attribute);
// SAFETY: As `AttrGroup`.
unsafe impl Sync for DevAttr {}

static NAME_ATTR: DevAttr = DevAttr(bindings::device_attribute {
    attr: bindings::attribute {
        name: c"name".as_ptr().cast::<c_char>(),
        mode: 0o444,
        // SAFETY: All-zero is valid for the remaining fields (lockdep keys unused).
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    },
    show: Some(name_show),
    store: None,
});

static NAME_ATTRS: AttrList =
    AttrList([ptr::addr_of!(NAME_ATTR.0.attr).cast_mut(), ptr::null_mut()]);

static NAME_GROUP: AttrGroup = AttrGroup(bindings::attribute_group {
    attrs: ptr::addr_of!(NAME_ATTRS.0).cast_mut().cast(),
    // SAFETY: All-zero is valid for the remaining fields.
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
});

/// `show` of the `name` attribute.
///
/// # Safety
///
/// Called by sysfs on a device made by [`Region::add`], with a sysfs page as `buf`.
unsafe extern "C" fn name_show(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: The attribute only exists on devices made by `Region::add`, whose drvdata is
    // their `NodeInner`, alive until after `device_destroy`, which waits for this call.
    let inner = unsafe { &*(*dev).driver_data.cast::<NodeInner>() };
    let name = inner.name.lock();
    match &*name {
        // SAFETY: `buf` is a sysfs page; `sysfs_emit` bounds the write.
        Some(n) => unsafe {
            bindings::sysfs_emit(buf, c"%s\n".as_ptr().cast::<c_char>(), n.as_char_ptr()) as isize
        },
        None => 0,
    }
}

/// `open` of [`FileOps`].
///
/// # Safety
///
/// Called by the VFS with a valid inode and file being opened.
unsafe extern "C" fn open_callback<T: Operations>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    from_result(|| {
        // SAFETY: `inode` is valid during open.
        let devt = unsafe { (*inode).i_rdev };
        // SAFETY: `file` is valid during open.
        let fops = unsafe { (*file).f_op };
        let port = REGISTRY.with(|r| {
            r.nodes
                .iter()
                .find(|n| n.devt == devt && ptr::eq(n.fops, fops))
                .map(|n| {
                    // SAFETY: The entry's port is an `Arc<T::Port>` (its fops are `T`'s),
                    // alive while the entry is (type invariant of `NodeEntry`), and the mutex
                    // is held.
                    let b = unsafe { ArcBorrow::<T::Port>::from_raw(n.port.cast()) };
                    Arc::from(b)
                })
        });
        let port = port.ok_or(ENXIO)?;
        // SAFETY: `inode` and `file` are valid during open.
        to_result(unsafe { bindings::stream_open(inode, file) })?;
        // SAFETY: `file` is valid during open.
        let data = T::open(&port, unsafe { File::from_raw(file) })?.into_foreign();
        let state = KBox::pin_init(
            pin_init!(FileState {
                data,
                polled <- crate::new_mutex!(KVec::new()),
                fasync <- crate::new_mutex!(None),
            }),
            GFP_KERNEL,
        );
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: From `into_foreign` just above, not given to anybody.
                T::release(unsafe { T::Data::from_foreign(data) }, unsafe {
                    File::from_raw(file)
                });
                return Err(e);
            }
        };
        // SAFETY: `file` is valid; `private_data` belongs to the file's operations.
        unsafe { (*file).private_data = state.into_foreign().cast_mut() };
        Ok(0)
    })
}

/// `release` of [`FileOps`].
///
/// # Safety
///
/// Called by the VFS once, for a file `open_callback::<T>` opened.
unsafe extern "C" fn release_callback<T: Operations>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `file` is valid; `open` succeeded, so `private_data` came from `into_foreign`
    // of a `Pin<KBox<FileState>>`, and release is the last operation on the file.
    let state = unsafe { Pin::<KBox<FileState>>::from_foreign((*file).private_data) };
    // SAFETY: `data` came from `T::Data::into_foreign` in open, and is given back once.
    let data = unsafe { T::Data::from_foreign(state.data) };
    // The VFS takes an `O_ASYNC` file off its list before release; this is in case it did not.
    if let Some(q) = state.fasync.lock().take() {
        // SAFETY: `file` is valid; it is on `q`'s list (or not, and this does nothing).
        unsafe { bindings::fasync_helper(-1, file, 0, q.head.get()) };
    }
    // SAFETY: `file` is valid during release.
    T::release(data, unsafe { File::from_raw(file) });
    // The queues `poll` registered go with the state, now that no poller is left.
    drop(state);
    0
}

/// `read` of [`FileOps`].
///
/// # Safety
///
/// Called by the VFS on a file `open_callback::<T>` opened, not released, with a user buffer.
unsafe extern "C" fn read_callback<T: Operations>(
    file: *mut bindings::file,
    buf: *mut c_char,
    len: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    from_result(|| {
        // SAFETY: `file` is valid during the call; `private_data` came from `into_foreign` in
        // open and is only given back in release, which cannot run concurrently.
        let data = unsafe { borrow::<T>(file) };
        let mut w = UserSlice::new(buf as usize, len).writer();
        // SAFETY: `file` is valid during the call.
        let n = T::read(data, unsafe { File::from_raw(file) }, &mut w)?;
        Ok(n.min(len) as isize)
    })
}

/// `write` of [`FileOps`].
///
/// # Safety
///
/// As for `read_callback`.
unsafe extern "C" fn write_callback<T: Operations>(
    file: *mut bindings::file,
    buf: *const c_char,
    len: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    from_result(|| {
        // SAFETY: As in `read_callback`.
        let data = unsafe { borrow::<T>(file) };
        let len = len.min(T::MAX_WRITE);
        let mut r = UserSlice::new(buf as usize, len).reader();
        // SAFETY: `file` is valid during the call.
        let n = T::write(data, unsafe { File::from_raw(file) }, &mut r)?;
        Ok(n.min(len) as isize)
    })
}

/// `poll` of [`FileOps`].
///
/// # Safety
///
/// As for `read_callback`, with the call's `poll_table`.
unsafe extern "C" fn poll_callback<T: Operations>(
    file: *mut bindings::file,
    table: *mut bindings::poll_table_struct,
) -> c_uint {
    // SAFETY: `file` is valid during the call; `private_data` is its `FileState`, alive until
    // release, which cannot run concurrently.
    let state = unsafe { &*(*file).private_data.cast::<FileState>() };
    // SAFETY: As in `read_callback`.
    let data = unsafe { T::Data::borrow(state.data) };
    // SAFETY: `file` is valid during the call.
    let f = unsafe { File::from_raw(file) };
    // INVARIANT: `table` is this poll call's table, on `file`; `polled` is the file's list.
    let table = PollTable {
        table,
        file: f,
        polled: &state.polled,
    };
    T::poll(data, f, &table)
}

/// `fasync` of [`FileOps`]: the file joins (`on != 0`) or leaves its `SIGIO` list.
///
/// # Safety
///
/// As for `read_callback` (the VFS calls it before `release`, to leave).
unsafe extern "C" fn fasync_callback<T: Operations>(
    fd: c_int,
    file: *mut bindings::file,
    on: c_int,
) -> c_int {
    // SAFETY: `file` is valid during the call; `private_data` is its `FileState`, alive until
    // release, which cannot run concurrently.
    let state = unsafe { &*(*file).private_data.cast::<FileState>() };
    let mut cur = state.fasync.lock();
    let q = match (cur.as_ref(), on != 0) {
        (Some(q), _) => q.clone(),
        (None, false) => return 0,
        (None, true) => {
            // SAFETY: As in `read_callback`.
            let data = unsafe { T::Data::borrow(state.data) };
            match T::fasync_queue(data) {
                Ok(q) => q,
                Err(e) => return e.to_errno(),
            }
        }
    };
    // SAFETY: `file` is valid; the list's head lives as long as `q`. An entry for the file
    // stays on the list only while `state.fasync` holds `q` (set below, and cleared only after
    // the entry is taken off).
    let ret = unsafe { bindings::fasync_helper(fd, file, on, q.head.get()) };
    if ret >= 0 {
        *cur = if on != 0 { Some(q) } else { None };
    }
    ret
}

/// The file's `T::Data`, borrowed.
///
/// # Safety
///
/// `file` is valid for `'a`, was opened by `open_callback::<T>` and is not released during
/// `'a`.
unsafe fn borrow<'a, T: Operations>(
    file: *mut bindings::file,
) -> <T::Data as ForeignOwnable>::Borrowed<'a> {
    // SAFETY: `private_data` is the file's `FileState` (set by `open_callback::<T>`), alive until
    // release; its `data` came from `T::Data::into_foreign`.
    unsafe { T::Data::borrow((*(*file).private_data.cast::<FileState>()).data) }
}
