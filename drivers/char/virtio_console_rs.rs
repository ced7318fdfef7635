// SPDX-License-Identifier: GPL-2.0

//! Virtio console driver, in Rust: the named ports and console ports of `virtio_console.c`.
//!
//! A virtio-serial device has up to `max_nr_ports` ports, each with a pair of queues (input,
//! output), and, with `VIRTIO_CONSOLE_F_MULTIPORT`, a pair of control queues. Queues are laid
//! out as C lays them out: port 0's input and output, the control input and output, then the
//! input and output of ports 1, 2 and so on.
//!
//! The control queues carry 8-byte messages (`le32 id, le16 event, le16 value`, the
//! device's byte order on legacy devices). The driver says `DEVICE_READY` once it is live; the
//! host answers with `DEVICE_ADD` for each port, and the driver creates the port (a character
//! device `/dev/vportNpM`, in the class `virtio-ports-rs`) and says `PORT_READY`. The host then
//! sends the port's name (`PORT_NAME`, shown in `/sys/class/virtio-ports-rs/vportNpM/name`),
//! whether a program on its side holds the port open (`PORT_OPEN`), and `DEVICE_REMOVE` on
//! unplug. The driver says `PORT_OPEN` when a guest program opens or closes a port.
//! Control messages are handled in a work item: creating a port sleeps.
//!
//! The class is `virtio-ports-rs`, not C's `virtio-ports`: a class name can be registered once,
//! and both drivers may be loaded at the same time (on different devices).
//!
//! A port is opened by one file at a time (`EBUSY`), as in C. `read` returns what the host
//! sent, at most one receive buffer (a page) per call; with the host side closed and nothing
//! left, it returns 0 (end of file). `write` sends at most 32 KiB per call; it blocks while
//! the host side is closed or the output queue is full (`EAGAIN` with `O_NONBLOCK`), as in C.
//! `poll` reports `POLLIN` when there is data or the host has closed its side, `POLLOUT` when a
//! write would not block, and `POLLHUP` when the host side is closed or the port was unplugged.
//! After unplug, an open file polls `POLLHUP` and gets `ENODEV` on read and write, as in C.
//!
//! Console ports (`VIRTIO_CONSOLE_CONSOLE_PORT`, QEMU's `virtconsole`) are hvc consoles,
//! `/dev/hvcN` ([`kernel::hvc`]): usable as `console=hvc0` and as a login terminal. Their
//! `/dev/vportNpM` node refuses opens (`ENXIO`), as in C. Kernel console output waits for the
//! device to take each buffer, as C's `put_chars` does, but for at most a second. Unlike C, the
//! port's backend is in place before the console registers, so the printk backlog that the
//! kernel console replays then reaches the host (C drops it). `RESIZE` messages (and, without
//! `MULTIPORT`, the config space's size) resize the console with `VIRTIO_CONSOLE_F_SIZE`; the
//! message parser is in [`kernel::virtio::console`], with unit tests.
//!
//! A file may ask for `SIGIO` (`O_ASYNC`): it comes when data arrives and when the host opens or
//! closes its side, with C's band (`POLL_OUT`). Freeze/restore keeps ports, device nodes, open
//! files and consoles, and replaces only the queues, as C's `virtcons_freeze`/`restore`. A
//! device without `MULTIPORT` has one port, a console, from the start.
//!
//! Not done: `splice`, and the emergency write register (`VIRTIO_CONSOLE_F_EMERG_WRITE`, which
//! 6.12's C does not negotiate either).

use core::sync::atomic::{AtomicBool, Ordering::SeqCst};
use kernel::{
    c_str,
    chrdev::{self, Fasync, File, Node, PollTable, Region, WaitQueue},
    fmt, hvc, new_mutex,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    str::CString,
    sync::{Arc, ArcBorrow, Mutex},
    uaccess::{UserSliceReader, UserSliceWriter},
    virtio::{
        self,
        config::{ConsoleConfig, CONSOLE_F_MULTIPORT, CONSOLE_F_SIZE},
        config_field,
        console::{event, port_name, Control as Msg, Resize, BAD_ID},
        Device, DeviceHandle, Probe, QueueSpec, Virtqueue,
    },
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

kernel::module_virtio_driver! {
    type: VirtioConsole,
    name: "virtio_console_rs",
    author: "virtio-rs authors",
    description: "Virtio console driver: named ports and hvc consoles (Rust)",
    license: "GPL",
}

/// A receive buffer, and the buffers of the control queues: a page, as in C.
const BUF_SIZE: usize = 4096;
/// The most a single `write` sends, as in C.
const MAX_WRITE: usize = 32 * 1024;
/// The class of the port devices.
const CLASS: &CStr = c_str!("virtio-ports-rs");

type Buf = KVec<u8>;
type InQueue = Virtqueue<(), Buf>;
type OutQueue = Virtqueue<Buf, ()>;

/// The queue index of port `id`'s input queue (its output queue follows it).
fn port_queue(id: u32) -> usize {
    if id == 0 {
        0
    } else {
        2 * (id as usize + 1)
    }
}

/// The port that queue `q` belongs to, or `None` for a control queue.
fn queue_port(q: usize) -> Option<u32> {
    match q {
        0 | 1 => Some(0),
        2 | 3 => None,
        _ => Some((q / 2 - 1) as u32),
    }
}

/// Adds receive buffers to `vq` until it is full.
fn fill(vq: &mut InQueue, gfp: kernel::alloc::Flags) -> Result {
    while vq.num_free() > 0 {
        let mut buf = KVec::with_capacity(BUF_SIZE, gfp)?;
        buf.extend_with(BUF_SIZE, 0, gfp)?;
        vq.add((), buf, gfp)?;
    }
    vq.kick();
    Ok(())
}

/// The control output queue, shared by the device and its ports.
#[pin_data]
struct Control {
    #[pin]
    ovq: SpinLockIrq<Option<Virtqueue<KBox<[u8; 8]>, ()>>>,
    /// The device's byte order for control messages.
    le: bool,
    /// The device has control queues (`VIRTIO_CONSOLE_F_MULTIPORT`).
    multiport: bool,
}

impl Control {
    /// Sends control message `event`/`value` about port `id`. Without `MULTIPORT` there is no
    /// control queue, and nothing to send (as C's `send_control_msg`).
    fn send(&self, id: u32, event: u16, value: u16) -> Result {
        if !self.multiport {
            return Ok(());
        }
        let msg = Msg { id, event, value }.to_bytes(self.le);
        let msg = KBox::new(msg, GFP_KERNEL)?;
        let mut guard = self.ovq.lock();
        let vq = guard.as_mut().ok_or(ENODEV)?;
        while vq.get_buf().is_some() {}
        let ret = vq.add(msg, (), GFP_ATOMIC);
        vq.kick();
        ret.map_err(Error::from)
    }
}

/// What a port has received and not handed out yet.
struct Rx {
    /// The input queue; `None` after unplug.
    vq: Option<InQueue>,
    /// A buffer being read: the buffer, how many bytes the device wrote, and how many were read.
    cur: Option<(Buf, usize, usize)>,
}

impl Rx {
    /// Whether there is data to read (takes a used buffer out of the queue if needed).
    fn has_data(&mut self) -> bool {
        if self.cur.is_none() {
            if let Some(vq) = self.vq.as_mut() {
                while let Some(used) = vq.get_buf() {
                    if used.len > 0 {
                        self.cur = Some((used.writable, used.len, 0));
                        break;
                    }
                    let _ = vq.add((), used.writable, GFP_ATOMIC);
                    vq.kick();
                }
            }
        }
        self.cur.is_some()
    }

    /// Hands buffer `buf` back to the device.
    fn give_back(&mut self, buf: Buf) {
        if let Some(vq) = self.vq.as_mut() {
            // There is room: it came out of this queue.
            let _ = vq.add((), buf, GFP_ATOMIC);
            vq.kick();
        }
    }

    /// Copies what was received into `out`, across buffers, for a console (as C's
    /// `fill_readbuf`); returns how many bytes.
    fn fill(&mut self, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() && self.has_data() {
            let Some((data, len, off)) = self.cur.take() else {
                break;
            };
            let n = (out.len() - done).min(len - off);
            out[done..done + n].copy_from_slice(&data[off..off + n]);
            done += n;
            if off + n < len {
                self.cur = Some((data, len, off + n));
            } else {
                self.give_back(data);
            }
        }
        done
    }

    /// Drops whatever was received and not read, as C's `discard_port_data`.
    fn discard(&mut self) {
        while self.has_data() {
            if let Some((buf, _, _)) = self.cur.take() {
                self.give_back(buf);
            }
        }
    }
}

/// One port.
#[pin_data]
struct Port {
    id: u32,
    /// Woken when data arrives, output buffers come back, or the host opens or closes its
    /// side, or the port goes.
    wq: Arc<WaitQueue>,
    #[pin]
    rx: SpinLockIrq<Rx>,
    /// The output queue; `None` after unplug.
    #[pin]
    tx: SpinLockIrq<Option<OutQueue>>,
    /// Serialises readers, which copy to user space outside `rx`'s lock.
    #[pin]
    read_lock: Mutex<()>,
    control: Arc<Control>,
    /// A program on the host holds the port open.
    host_connected: AtomicBool,
    /// A guest file holds the port open.
    guest_connected: AtomicBool,
    /// The host said it is a console port.
    console: AtomicBool,
    /// The port's console (`/dev/hvcN`), once it is one. Taken out (under the lock) and
    /// dropped (outside it: dropping sleeps) when the port goes.
    #[pin]
    hvc: SpinLockIrq<Option<hvc::Registration>>,
    /// The files that asked for `SIGIO` (`O_ASYNC`).
    fasync: Arc<Fasync>,
    /// Unplugged.
    dead: AtomicBool,
}

impl Port {
    /// Whether a write would not block: the host side is open and the output queue has room.
    fn writable(&self) -> bool {
        if !self.host_connected.load(SeqCst) {
            return false;
        }
        let mut tx = self.tx.lock();
        match tx.as_mut() {
            Some(vq) => {
                while vq.get_buf().is_some() {}
                vq.num_free() > 0
            }
            None => false,
        }
    }

    fn readable(&self) -> bool {
        self.rx.lock().has_data() || !self.host_connected.load(SeqCst)
    }

    /// The port is going: wake everybody, and give its queues back.
    fn unplug(&self) -> (Option<InQueue>, Option<OutQueue>) {
        self.dead.store(true, SeqCst);
        self.detach()
    }

    /// Takes the port's queues away (unplug, freeze), dropping what was received and not read,
    /// and wakes everybody. The host side counts as closed until it says otherwise.
    fn detach(&self) -> (Option<InQueue>, Option<OutQueue>) {
        self.host_connected.store(false, SeqCst);
        let rx = {
            let mut rx = self.rx.lock();
            rx.discard();
            rx.vq.take()
        };
        let tx = self.tx.lock().take();
        self.wq.wake_up();
        (rx, tx)
    }

    /// Gives the port new queues (restore).
    fn attach(&self, rx: InQueue, tx: OutQueue) {
        self.rx.lock().vq = Some(rx);
        *self.tx.lock() = Some(tx);
        self.wq.wake_up();
    }

    /// Sends `SIGIO` to the files that asked for it, as C's `send_sigio_to_port` (with C's
    /// band, `POLL_OUT`).
    fn sigio(&self) {
        if self.guest_connected.load(SeqCst) {
            self.fasync.kill(chrdev::POLL_OUT);
        }
    }

    /// Data came: wake readers, signal, and feed the console.
    fn input(&self) {
        self.wq.wake_up();
        self.sigio();
        if let Some(hvc) = self.hvc.lock().as_ref() {
            hvc.poll();
        }
    }
}

/// How long kernel console output waits for the device to take a buffer. C waits forever.
const PUT_CHARS_TIMEOUT_US: u32 = 1_000_000;

impl hvc::Backend for Port {
    fn get_chars(&self, buf: &mut [u8]) -> Result<usize> {
        Ok(self.rx.lock().fill(buf))
    }

    /// As C's `put_chars`: one buffer, and wait until the device has taken it.
    fn put_chars(&self, buf: &[u8]) -> Result<usize> {
        let mut data = KVec::with_capacity(buf.len(), GFP_ATOMIC)?;
        data.extend_from_slice(buf, GFP_ATOMIC)?;
        let mut tx = self.tx.lock();
        let vq = tx.as_mut().ok_or(EPIPE)?;
        while vq.get_buf().is_some() {}
        if vq.add(data, (), GFP_ATOMIC).is_err() {
            // No room: hvc tries again later.
            return Ok(0);
        }
        vq.kick();
        // If the device does not answer in time, the buffer stays in the ring, owned by it.
        let _ = vq.spin_buf(PUT_CHARS_TIMEOUT_US);
        Ok(buf.len())
    }
}

/// The file operations of a port.
struct PortOps;

#[vtable]
impl chrdev::Operations for PortOps {
    type Port = Port;
    type Data = Arc<Port>;
    const MAX_WRITE: usize = MAX_WRITE;

    fn open(port: &Arc<Port>, _file: &File) -> Result<Arc<Port>> {
        if port.console.load(SeqCst) {
            return Err(ENXIO);
        }
        if port.dead.load(SeqCst) {
            return Err(ENXIO);
        }
        if port.guest_connected.swap(true, SeqCst) {
            return Err(EBUSY);
        }
        // What came while nobody had the port open is not for this file (as C).
        port.rx.lock().discard();
        let _ = port.control.send(port.id, event::PORT_OPEN, 1);
        Ok(port.clone())
    }

    fn release(port: Arc<Port>, _file: &File) {
        if !port.dead.load(SeqCst) {
            let _ = port.control.send(port.id, event::PORT_OPEN, 0);
        }
        port.rx.lock().discard();
        port.guest_connected.store(false, SeqCst);
    }

    fn read(port: ArcBorrow<'_, Port>, file: &File, buf: &mut UserSliceWriter) -> Result<usize> {
        let _serial = port.read_lock.lock();
        loop {
            // After unplug: `ENODEV`, as C (`virtio_console.c`, `port_fops_read`).
            if port.dead.load(SeqCst) {
                return Err(ENODEV);
            }
            let cur = {
                let mut rx = port.rx.lock();
                if rx.has_data() {
                    rx.cur.take()
                } else {
                    None
                }
            };
            if let Some((data, len, off)) = cur {
                let n = buf.len().min(len - off);
                let ret = buf.write_slice(&data[off..off + n]);
                let mut rx = port.rx.lock();
                if ret.is_err() || off + n < len {
                    let off = if ret.is_err() { off } else { off + n };
                    rx.cur = Some((data, len, off));
                } else {
                    rx.give_back(data);
                }
                ret?;
                return Ok(n);
            }
            if !port.host_connected.load(SeqCst) {
                return Ok(0);
            }
            if file.is_nonblocking() {
                return Err(EAGAIN);
            }
            port.wq
                .wait_interruptible(|| port.readable() || port.dead.load(SeqCst))?;
        }
    }

    fn write(port: ArcBorrow<'_, Port>, file: &File, buf: &mut UserSliceReader) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if port.dead.load(SeqCst) {
                return Err(ENODEV);
            }
            if port.writable() {
                break;
            }
            if file.is_nonblocking() {
                return Err(EAGAIN);
            }
            port.wq
                .wait_interruptible(|| port.writable() || port.dead.load(SeqCst))?;
        }
        // At most `MAX_WRITE` bytes (the reader's length), copied once.
        let count = buf.len();
        let mut data = KVec::with_capacity(count, GFP_KERNEL)?;
        buf.clone_reader().read_all(&mut data, GFP_KERNEL)?;
        buf.skip(count)?;
        let mut tx = port.tx.lock();
        let vq = tx.as_mut().ok_or(ENODEV)?;
        // As C's `__send_to_port`: what the device finished meanwhile goes first.
        while vq.get_buf().is_some() {}
        let ret = vq.add(data, (), GFP_ATOMIC);
        vq.kick();
        ret?;
        Ok(count)
    }

    fn fasync_queue(port: ArcBorrow<'_, Port>) -> Result<Arc<Fasync>> {
        Ok(port.fasync.clone())
    }

    fn poll(port: ArcBorrow<'_, Port>, _file: &File, table: &PollTable<'_>) -> u32 {
        table.register(&port.wq);
        if port.dead.load(SeqCst) {
            return chrdev::POLLHUP;
        }
        let mut mask = 0;
        if port.readable() {
            mask |= chrdev::POLLIN | chrdev::POLLRDNORM;
        }
        if port.writable() {
            mask |= chrdev::POLLOUT;
        }
        if !port.host_connected.load(SeqCst) {
            mask |= chrdev::POLLHUP;
        }
        mask
    }
}

/// A port the host added: the port, and its device node.
struct Added {
    port: Arc<Port>,
    node: Node<PortOps>,
}

/// The ports, for the control work (process context).
struct Ports {
    /// The queues of each port that is not added, by id.
    spare: KVec<Option<(InQueue, OutQueue)>>,
    /// The added ports, by id.
    added: KVec<Option<Added>>,
    /// The device is being removed: add no port.
    dead: bool,
}

/// The device state the control work shares.
#[pin_data]
struct Shared {
    #[pin]
    work: Work<Shared>,
    /// The control input queue.
    #[pin]
    ivq: SpinLockIrq<Option<InQueue>>,
    control: Arc<Control>,
    #[pin]
    ports: Mutex<Ports>,
    /// The added ports, for queue callbacks (interrupt context), by id.
    #[pin]
    live: SpinLockIrq<KVec<Option<Arc<Port>>>>,
    region: Arc<Region<PortOps>>,
    handle: DeviceHandle,
    index: u32,
    /// `VIRTIO_CONSOLE_F_MULTIPORT`.
    multiport: bool,
    /// `VIRTIO_CONSOLE_F_SIZE`.
    size: bool,
    /// How many ports (1 without `MULTIPORT`).
    nr_ports: u32,
}

impl_has_work! {
    impl HasWork<Self> for Shared { self.work }
}

impl WorkItem for Shared {
    type Pointer = Arc<Shared>;

    fn run(this: Arc<Shared>) {
        loop {
            let msg = {
                let mut ivq = this.ivq.lock();
                let Some(vq) = ivq.as_mut() else {
                    return;
                };
                match vq.get_buf() {
                    Some(used) => used,
                    None => return,
                }
            };
            this.handle_control(&msg.writable[..msg.len]);
            if let Some(vq) = this.ivq.lock().as_mut() {
                // There is room: the buffer just came out of this queue.
                let _ = vq.add((), msg.writable, GFP_ATOMIC);
                vq.kick();
            }
        }
    }
}

impl Shared {
    fn handle_control(&self, msg: &[u8]) {
        let Some(Msg {
            id,
            event: ev,
            value: val,
        }) = Msg::parse(msg, self.control.le)
        else {
            pr_warn!(
                "virtio{}: short control message ({} bytes)\n",
                self.index,
                msg.len()
            );
            return;
        };
        let mut ports = self.ports.lock();
        if ports.dead {
            return;
        }
        if ev == event::DEVICE_ADD {
            if let Some(Some(added)) = ports.added.get(id as usize) {
                // The host asks again (as C: say ready again).
                let _ = self.control.send(added.port.id, event::PORT_READY, 1);
                return;
            }
            if let Err(e) = self.add_port(&mut ports, id) {
                pr_warn!("virtio{}: Error {:?} adding port {}\n", self.index, e, id);
                let _ = self.control.send(id, event::PORT_READY, 0);
            }
            return;
        }
        let Some(port) = ports
            .added
            .get(id as usize)
            .and_then(Option::as_ref)
            .map(|a| a.port.clone())
        else {
            pr_warn!(
                "virtio{}: Invalid index {} in control packet\n",
                self.index,
                id
            );
            return;
        };
        match ev {
            event::DEVICE_REMOVE => self.remove_port(&mut ports, id),
            event::CONSOLE_PORT => {
                if val != 0 && !port.console.swap(true, SeqCst) {
                    self.init_console(&port);
                }
            }
            event::RESIZE => {
                // As C: only for a console, and only with `VIRTIO_CONSOLE_F_SIZE`.
                if let (Some(size), true) = (Resize::parse(msg, self.control.le), self.size) {
                    if let Some(hvc) = port.hvc.lock().as_ref() {
                        hvc.resize(size.rows, size.cols);
                    }
                }
            }
            event::PORT_OPEN => {
                port.host_connected.store(val != 0, SeqCst);
                port.wq.wake_up();
                port.sigio();
            }
            event::PORT_NAME => {
                let Some(name) = port_name(msg) else {
                    return;
                };
                let Ok(name) = CString::try_from_fmt(fmt!("{}", name)) else {
                    return;
                };
                if let Some(Some(added)) = ports.added.get_mut(id as usize) {
                    // Named once, as C.
                    let _ = added.node.set_name(name);
                }
            }
            _ => {}
        }
    }

    /// Makes `port` a console, `/dev/hvcN`, as C's `init_port_console`. On failure the port
    /// stays a plain port, as in C.
    fn init_console(&self, port: &Arc<Port>) {
        let backend: Arc<dyn hvc::Backend> = port.clone();
        // The kernel console may replay its backlog through the port before this returns.
        match hvc::Registration::new(backend, BUF_SIZE) {
            Ok(reg) => {
                port.guest_connected.store(true, SeqCst);
                *port.hvc.lock() = Some(reg);
                let _ = self.control.send(port.id, event::PORT_OPEN, 1);
                // What came before the console existed.
                port.input();
            }
            Err(e) => {
                pr_err!(
                    "virtio{}: error {:?} allocating hvc for port {}\n",
                    self.index,
                    e,
                    port.id
                );
                port.console.store(false, SeqCst);
            }
        }
    }

    /// Adds port `id`, as C's `add_port`.
    fn add_port(&self, ports: &mut Ports, id: u32) -> Result {
        let slot = ports.spare.get_mut(id as usize).ok_or(EINVAL)?;
        let (mut rvq, tvq) = slot.take().ok_or(EINVAL)?;
        if let Err(e) = fill(&mut rvq, GFP_KERNEL) {
            ports.spare[id as usize] = Some((rvq, tvq));
            return Err(e);
        }
        let port = Arc::pin_init(
            try_pin_init!(Port {
                id,
                wq: Arc::pin_init(WaitQueue::new(), GFP_KERNEL)?,
                rx <- new_spinlock_irq!(Rx { vq: Some(rvq), cur: None }),
                tx <- new_spinlock_irq!(Some(tvq)),
                read_lock <- new_mutex!(()),
                control: self.control.clone(),
                host_connected: AtomicBool::new(false),
                guest_connected: AtomicBool::new(false),
                console: AtomicBool::new(false),
                hvc <- new_spinlock_irq!(None),
                fasync: Fasync::new()?,
                dead: AtomicBool::new(false),
            }? Error),
            GFP_KERNEL,
        )?;
        let node = self.handle.with(|dev| {
            self.region.add(
                id,
                port.clone(),
                dev.as_dev(),
                fmt!("vport{}p{}", self.index, id),
            )
        });
        let node = match node {
            Ok(Ok(node)) => node,
            Ok(Err(e)) | Err(e) => {
                let (rvq, tvq) = port.unplug();
                if let (Some(r), Some(t)) = (rvq, tvq) {
                    ports.spare[id as usize] = Some((r, t));
                }
                return Err(e);
            }
        };
        self.live.lock()[id as usize] = Some(port.clone());
        ports.added[id as usize] = Some(Added { port, node });
        self.control.send(id, event::PORT_READY, 1)
    }

    /// Removes port `id`, as C's `unplug_port`.
    fn remove_port(&self, ports: &mut Ports, id: u32) {
        let Some(added) = ports.added.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        let live = self.live.lock()[id as usize].take();
        drop(live);
        // The console goes first: no more output through the port's queue.
        let hvc = added.port.hvc.lock().take();
        drop(hvc);
        // No new open from here on, and the device node goes.
        drop(added.node);
        if let (Some(r), Some(t)) = added.port.unplug() {
            ports.spare[id as usize] = Some((r, t));
        }
    }
}

/// One device.
#[pin_data]
struct VirtioConsole {
    shared: Arc<Shared>,
}

#[vtable]
impl virtio::Driver for VirtioConsole {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::CONSOLE)];
    const FEATURES: &'static [u32] = &[CONSOLE_F_SIZE, CONSOLE_F_MULTIPORT];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let multiport = dev.has_feature(CONSOLE_F_MULTIPORT);
        let nr_ports = if multiport {
            // Queue indices are `u16`s; C allocates `2 * (nr_ports + 1)` queues.
            dev.read(config_field!(ConsoleConfig, max_nr_ports))?
                .clamp(1, 0x7ffe)
        } else {
            1
        };
        let specs = queue_specs(multiport, nr_ports)?;
        let mut queues = dev.find_vqs(&specs)?;
        let mut spare = KVec::with_capacity(nr_ports as usize, GFP_KERNEL)?;
        let mut added = KVec::with_capacity(nr_ports as usize, GFP_KERNEL)?;
        let mut live = KVec::with_capacity(nr_ports as usize, GFP_KERNEL)?;
        for id in 0..nr_ports {
            let q = port_queue(id);
            let rx = queues.take::<(), Buf>(q)?;
            let tx = queues.take::<Buf, ()>(q + 1)?;
            spare.push(Some((rx, tx)), GFP_KERNEL)?;
            added.push(None, GFP_KERNEL)?;
            live.push(None, GFP_KERNEL)?;
        }
        let (ivq, ovq) = if multiport {
            let mut ivq = queues.take::<(), Buf>(2)?;
            fill(&mut ivq, GFP_KERNEL)?;
            (Some(ivq), Some(queues.take::<KBox<[u8; 8]>, ()>(3)?))
        } else {
            (None, None)
        };
        let control = Arc::pin_init(
            try_pin_init!(Control {
                ovq <- new_spinlock_irq!(ovq),
                le: dev.little_endian(),
                multiport,
            }? Error),
            GFP_KERNEL,
        )?;
        let region = Region::new(
            c_str!("virtio-portsdev-rs"),
            CLASS,
            nr_ports,
            kernel::chrdev_fops!(PortOps),
        )?;
        let handle = dev.handle()?;
        let shared = Arc::pin_init(
            try_pin_init!(Shared {
                work <- new_work!("virtio_console_rs::control"),
                ivq <- new_spinlock_irq!(ivq),
                control,
                ports <- new_mutex!(Ports { spare, added, dead: false }),
                live <- new_spinlock_irq!(live),
                region,
                handle,
                index: dev.index(),
                multiport,
                size: dev.has_feature(CONSOLE_F_SIZE),
                nr_ports,
            }? Error),
            GFP_KERNEL,
        )?;
        Ok(try_pin_init!(Self { shared }))
    }

    fn ready(&self, _dev: &Device) -> Result {
        let sh = &self.shared;
        if sh.multiport {
            return sh.control.send(BAD_ID, event::DEVICE_READY, 1);
        }
        // Without `MULTIPORT`, port 0 is there from the start, and is a console (as C).
        let mut ports = sh.ports.lock();
        sh.add_port(&mut ports, 0)?;
        if let Some(Some(added)) = ports.added.first() {
            let port = added.port.clone();
            port.console.store(true, SeqCst);
            sh.init_console(&port);
        }
        Ok(())
    }

    fn queue_event(&self, queue: usize) {
        match queue_port(queue) {
            None if queue == 2 => {
                let _ = workqueue::system().enqueue(self.shared.clone());
            }
            None => {
                if let Some(vq) = self.shared.control.ovq.lock().as_mut() {
                    while vq.get_buf().is_some() {}
                }
            }
            Some(id) => {
                let port = self.shared.live.lock().get(id as usize).cloned().flatten();
                if let Some(port) = port {
                    if queue % 2 == 0 {
                        port.input();
                    } else {
                        port.wq.wake_up();
                    }
                }
            }
        }
    }

    fn config_work(&self, dev: &Device) {
        // Without `MULTIPORT`, the console's size is in config space (as C's
        // `update_size_from_config`); with it, `RESIZE` messages carry it.
        let sh = &self.shared;
        if sh.multiport || !sh.size {
            return;
        }
        let (Ok(cols), Ok(rows)) = (
            dev.read(config_field!(ConsoleConfig, cols)),
            dev.read(config_field!(ConsoleConfig, rows)),
        ) else {
            return;
        };
        let port = sh.live.lock().first().cloned().flatten();
        if let Some(port) = port {
            if let Some(hvc) = port.hvc.lock().as_ref() {
                hvc.resize(rows, cols);
            }
        }
    }

    fn remove(&self, _dev: &Device) {
        let mut ports = self.shared.ports.lock();
        ports.dead = true;
        for id in 0..ports.added.len() {
            self.shared.remove_port(&mut ports, id as u32);
        }
    }

    /// As C's `virtcons_freeze`: ports, their device nodes, open files and consoles stay; their
    /// queues go, with whatever was received and not read. The host side counts as closed
    /// until the host says otherwise after restore.
    fn freeze(&self, _dev: &Device) -> Result {
        let sh = &self.shared;
        let ivq = sh.ivq.lock().take();
        drop(ivq);
        let ovq = sh.control.ovq.lock().take();
        drop(ovq);
        let mut ports = sh.ports.lock();
        for spare in ports.spare.iter_mut() {
            *spare = None;
        }
        for added in ports.added.iter().flatten() {
            let queues = added.port.detach();
            drop(queues);
        }
        Ok(())
    }

    /// As C's `virtcons_restore`: new queues for every port, and each port says it is ready
    /// (and open, if a guest file or its console holds it), so that the host tells its state.
    fn restore(&self, dev: &Device<Probe>) -> Result {
        let sh = &self.shared;
        let specs = queue_specs(sh.multiport, sh.nr_ports)?;
        let mut queues = dev.find_vqs(&specs)?;
        if sh.multiport {
            let mut ivq = queues.take::<(), Buf>(2)?;
            fill(&mut ivq, GFP_KERNEL)?;
            *sh.ivq.lock() = Some(ivq);
            *sh.control.ovq.lock() = Some(queues.take::<KBox<[u8; 8]>, ()>(3)?);
        }
        let mut ports = sh.ports.lock();
        for id in 0..sh.nr_ports {
            let q = port_queue(id);
            let mut rx = queues.take::<(), Buf>(q)?;
            let tx = queues.take::<Buf, ()>(q + 1)?;
            let Some(Some(added)) = ports.added.get(id as usize) else {
                ports.spare[id as usize] = Some((rx, tx));
                continue;
            };
            let port = added.port.clone();
            fill(&mut rx, GFP_KERNEL)?;
            port.attach(rx, tx);
            sh.control.send(id, event::PORT_READY, 1)?;
            if port.guest_connected.load(SeqCst) {
                sh.control.send(id, event::PORT_OPEN, 1)?;
            }
        }
        Ok(())
    }
}

/// The queues of a device with `nr_ports` ports, in C's order and with C's names.
fn queue_specs(multiport: bool, nr_ports: u32) -> Result<KVec<QueueSpec>> {
    let nr_queues = if multiport {
        2 * (nr_ports as usize + 1)
    } else {
        2
    };
    let mut specs = KVec::with_capacity(nr_queues, GFP_KERNEL)?;
    for q in 0..nr_queues {
        let name = match (queue_port(q), q % 2) {
            (None, 0) => c_str!("control-i"),
            (None, _) => c_str!("control-o"),
            (Some(_), 0) => c_str!("input"),
            (Some(_), _) => c_str!("output"),
        };
        specs.push(QueueSpec::new(name), GFP_KERNEL)?;
    }
    Ok(specs)
}
