// SPDX-License-Identifier: GPL-2.0

//! Virtio input driver, in Rust: the twin of `virtio_input.c`.
//!
//! A virtio input device (keyboard, mouse, tablet, touchscreen) describes itself in config
//! space: the driver writes a `select`/`subsel` pair and reads back `size` bytes of a string
//! (name, serial), the bus/vendor/product/version ids, a capability bitmap, or the parameters
//! of an absolute axis. From that the driver builds an input device; with an `ABS_MT_SLOT` axis,
//! it also sets up multi-touch slots.
//!
//! Two queues carry 8-byte events (`le16 type, le16 code, le32 value`): on `events` the device
//! fills buffers the driver hands it, and the queue callback reports each event to the input
//! core and hands the buffer back; on `status` the driver sends LED and sound changes that the
//! input core asks for (a program writing `EV_LED` to `/dev/input/eventN`, say).
//!
//! Remove marks the status queue dead; the adapter then resets the device, and dropping the
//! driver data unregisters the input device (an open `/dev/input/eventN` gets `ENODEV`) before
//! the status queue and its buffers go.
//!
//! Suspend keeps the input device, as C does: freeze takes both queues out and drops them, so
//! that status sent meanwhile gets `ENODEV`, and the adapter resets the device and frees their
//! buffers. Restore finds the queues again, refills the event queue and puts the status queue
//! back. Open `/dev/input/eventN` files keep working, and the LED state stays: the input core
//! sends it to the device again when the input device resumes (`input_dev_resume()`), which
//! is after its parent, the virtio device.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    c_str, fmt,
    input::{self, AbsInfo, Capability, Id},
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    str::CString,
    virtio::{
        self,
        config::{InputAbsConfig, InputConfig, InputDevidsConfig, INPUT_UNION},
        config_field, Device, Probe, QueueSpec, Virtqueue,
    },
};

kernel::module_virtio_driver! {
    type: VirtioInput,
    name: "virtio_input_rs",
    author: "virtio-rs authors",
    description: "Virtio input device driver (Rust)",
    license: "GPL",
}

/// One `struct virtio_input_event`.
type Event = KBox<[u8; 8]>;

/// Event buffers kept in the device's hands, at most (as in C).
const NR_EVENT_BUFS: usize = 64;
/// Index of the `events` queue (see [`find_queues`]).
const EVENTS: usize = 0;
/// Index of the `status` queue.
const STATUS: usize = 1;
/// Refuse devices that claim more multi-touch slots than this: the input core's own limit
/// (`input_mt_init_slots` takes up to 1024), so that a device C binds binds here too.
const MAX_MT_SLOTS: i32 = 1024;

/// `VIRTIO_INPUT_CFG_*`: what the config union shows (`struct virtio_input_config`, laid out
/// in [`kernel::virtio::config::InputConfig`]).
mod cfg {
    pub(crate) const ID_NAME: u8 = 0x01;
    pub(crate) const ID_SERIAL: u8 = 0x02;
    pub(crate) const ID_DEVIDS: u8 = 0x03;
    pub(crate) const PROP_BITS: u8 = 0x10;
    pub(crate) const EV_BITS: u8 = 0x11;
    pub(crate) const ABS_INFO: u8 = 0x12;
}

fn encode(ty: u16, code: u16, value: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0..2].copy_from_slice(&ty.to_le_bytes());
    b[2..4].copy_from_slice(&code.to_le_bytes());
    b[4..8].copy_from_slice(&value.to_le_bytes());
    b
}

fn decode(b: &[u8; 8]) -> (u16, u16, i32) {
    (
        u16::from_le_bytes([b[0], b[1]]),
        u16::from_le_bytes([b[2], b[3]]),
        i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    )
}

/// One device.
#[pin_data]
struct VirtioInput {
    /// The `events` queue: buffers the device fills with events. `None` while frozen.
    #[pin]
    evt: SpinLockIrq<Option<Virtqueue<(), Event>>>,
    /// The input device; the input core sends LED and sound changes to its state.
    #[pin]
    input: input::Registration<Status>,
    /// Whether a short event was already reported.
    warned: AtomicBool,
}

/// The `status` queue, fed by the input core.
#[pin_data]
struct Status {
    /// `None` after remove and while frozen: the device takes no status then (C's `ready`).
    #[pin]
    sts: SpinLockIrq<Option<Virtqueue<Event, ()>>>,
    /// Multi-touch slots are set up: do not echo `MSC_TIMESTAMP` (see `virtio_input.c`).
    mt: bool,
}

#[vtable]
impl input::Operations for Status {
    // Under the input core's `event_lock`, interrupts off. Losing a status update on error is
    // not critical (LEDs), as in C.
    fn event(&self, ty: u16, code: u16, value: i32) -> Result {
        // A host that echoes timestamps back would make each multi-touch frame grow.
        if self.mt && ty == input::EV_MSC && code == input::MSC_TIMESTAMP {
            return Ok(());
        }
        let buf = KBox::new(encode(ty, code, value), GFP_ATOMIC)?;
        let mut sts = self.sts.lock();
        let vq = sts.as_mut().ok_or(ENODEV)?;
        let ret = vq.add(buf, (), GFP_ATOMIC);
        vq.kick();
        ret.map_err(Error::from)
    }
}

/// Config-space access with the `select`/`subsel` protocol.
struct Config<'a>(&'a Device);

impl Config<'_> {
    /// Selects `select`/`subsel`; returns the size of the answer.
    fn select(&self, select: u8, subsel: u8) -> Result<usize> {
        self.0.write(config_field!(InputConfig, select), select)?;
        self.0.write(config_field!(InputConfig, subsel), subsel)?;
        let size = self.0.read(config_field!(InputConfig, size))?;
        Ok(usize::from(size).min(INPUT_UNION))
    }

    /// The answer to `select`/`subsel`, and its length.
    fn bytes(&self, select: u8, subsel: u8) -> Result<([u8; INPUT_UNION], usize)> {
        let mut buf = [0u8; INPUT_UNION];
        let len = self.select(select, subsel)?;
        let len = self
            .0
            .read_prefix(config_field!(InputConfig, u), &mut buf[..len])?;
        Ok((buf, len))
    }

    /// A string, as the C driver reads it: at most 63 bytes, up to the first NUL.
    fn string(&self, select: u8) -> Result<CString> {
        let (buf, len) = self.bytes(select, 0)?;
        let len = len.min(63);
        let end = buf[..len].iter().position(|&c| c == 0).unwrap_or(len);
        let mut s = [0u8; 64];
        s[..end].copy_from_slice(&buf[..end]);
        Ok(CStr::from_bytes_with_nul(&s[..=end])?.to_cstring()?)
    }

    /// Copies bitmap `select`/`subsel` into `cap`; returns whether the device has it.
    fn bits(
        &self,
        idev: &mut input::Device,
        cap: Capability,
        select: u8,
        subsel: u8,
    ) -> Result<bool> {
        let (buf, len) = self.bytes(select, subsel)?;
        for bit in 0..(len as u32 * 8).min(cap.count()) {
            if buf[bit as usize / 8] & (1 << (bit % 8)) != 0 {
                idev.set_bit(cap, bit)?;
            }
        }
        Ok(len != 0)
    }

    /// The event bits of type `ty`, into `cap`; sets `ty` in the event types if present.
    fn ev_bits(&self, idev: &mut input::Device, cap: Capability, ty: u16) -> Result {
        if self.bits(idev, cap, cfg::EV_BITS, ty as u8)? {
            idev.set_bit(Capability::Ev, ty.into())?;
        }
        Ok(())
    }

    fn abs(&self, axis: u8) -> Result<AbsInfo> {
        self.select(cfg::ABS_INFO, axis)?;
        Ok(AbsInfo {
            minimum: self.0.read(config_field!(InputAbsConfig, min))? as i32,
            maximum: self.0.read(config_field!(InputAbsConfig, max))? as i32,
            fuzz: self.0.read(config_field!(InputAbsConfig, fuzz))? as i32,
            flat: self.0.read(config_field!(InputAbsConfig, flat))? as i32,
            resolution: self.0.read(config_field!(InputAbsConfig, res))? as i32,
        })
    }

    fn id(&self) -> Result<Id> {
        if self.select(cfg::ID_DEVIDS, 0)? < 8 {
            return Ok(Id {
                bustype: input::BUS_VIRTUAL,
                ..Id::default()
            });
        }
        Ok(Id {
            bustype: self.0.read(config_field!(InputDevidsConfig, bustype))?,
            vendor: self.0.read(config_field!(InputDevidsConfig, vendor))?,
            product: self.0.read(config_field!(InputDevidsConfig, product))?,
            version: self.0.read(config_field!(InputDevidsConfig, version))?,
        })
    }
}

/// Builds the input device that `dev` describes.
fn describe(dev: &Device) -> Result<input::Device> {
    let config = Config(dev);
    let mut idev = input::Device::new()?;
    idev.set_name(&config.string(cfg::ID_NAME)?)?;
    idev.set_uniq(&config.string(cfg::ID_SERIAL)?)?;
    idev.set_phys(&CString::try_from_fmt(fmt!(
        "virtio{}/input0",
        dev.index()
    ))?)?;
    idev.set_id(config.id()?);
    idev.set_parent(dev.as_dev());

    config.bits(&mut idev, Capability::Prop, cfg::PROP_BITS, 0)?;
    if config.select(cfg::EV_BITS, input::EV_REP as u8)? != 0 {
        idev.set_bit(Capability::Ev, input::EV_REP.into())?;
    }
    // Device to kernel...
    config.ev_bits(&mut idev, Capability::Key, input::EV_KEY)?;
    config.ev_bits(&mut idev, Capability::Rel, input::EV_REL)?;
    config.ev_bits(&mut idev, Capability::Abs, input::EV_ABS)?;
    config.ev_bits(&mut idev, Capability::Msc, input::EV_MSC)?;
    config.ev_bits(&mut idev, Capability::Sw, input::EV_SW)?;
    // ...and kernel to device.
    config.ev_bits(&mut idev, Capability::Led, input::EV_LED)?;
    config.ev_bits(&mut idev, Capability::Snd, input::EV_SND)?;

    if idev.test_bit(Capability::Ev, input::EV_ABS.into()) {
        for axis in 0..Capability::Abs.count() {
            if idev.test_bit(Capability::Abs, axis) {
                idev.set_abs_params(axis, &config.abs(axis as u8)?)?;
            }
        }
        if let Some(slot) = idev.abs_params(input::ABS_MT_SLOT.into()) {
            if !(-1..MAX_MT_SLOTS).contains(&slot.maximum) {
                pr_warn!(
                    "virtio{}: bad ABS_MT_SLOT maximum {}\n",
                    dev.index(),
                    slot.maximum
                );
                return Err(EINVAL);
            }
            idev.init_mt_slots((slot.maximum + 1) as u32, 0)?;
        }
    }
    Ok(idev)
}

/// Finds the queues (in probe and restore) and hands the device its event buffers.
fn find_queues(dev: &Device<Probe>) -> Result<(Virtqueue<(), Event>, Virtqueue<Event, ()>)> {
    let mut queues = dev.find_vqs(&[
        QueueSpec::new(c_str!("events")),
        QueueSpec::new(c_str!("status")),
    ])?;
    let mut evt = queues.take::<(), Event>(EVENTS)?;
    let sts = queues.take::<Event, ()>(STATUS)?;
    for _ in 0..evt.size().min(NR_EVENT_BUFS) {
        evt.add((), KBox::new([0; 8], GFP_KERNEL)?, GFP_KERNEL)?;
    }
    // Reaches the device once it is live.
    evt.kick();
    Ok((evt, sts))
}

#[vtable]
impl virtio::Driver for VirtioInput {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::INPUT)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        if !dev.is_modern() {
            return Err(ENODEV);
        }
        // Events arriving before the input device is registered (in `ready`) are dropped.
        let (evt, sts) = find_queues(dev)?;
        let idev = describe(dev)?;
        let mt = idev.has_mt();
        let status = try_pin_init!(Status {
            sts <- new_spinlock_irq!(Some(sts)),
            mt,
        });
        Ok(try_pin_init!(Self {
            evt <- new_spinlock_irq!(Some(evt)),
            input <- input::Registration::new(idev, status),
            warned: AtomicBool::new(false),
        }))
    }

    fn ready(&self, _dev: &Device) -> Result {
        self.input.register()
    }

    fn queue_event(&self, queue: usize) {
        if queue == STATUS {
            // The device has read these status buffers.
            if let Some(sts) = self.input.sts.lock().as_mut() {
                while sts.get_buf().is_some() {}
            }
            return;
        }
        let mut guard = self.evt.lock();
        let Some(evt) = guard.as_mut() else {
            return;
        };
        while let Some(used) = evt.get_buf() {
            if used.len == used.writable.len() {
                let (ty, code, value) = decode(&used.writable);
                self.input.report(ty, code, value);
            } else if !self.warned.swap(true, Ordering::Relaxed) {
                pr_warn!("short event ({} bytes) dropped\n", used.len);
            }
            // There is room: the buffer just came out of this queue.
            let _ = evt.add((), used.writable, GFP_ATOMIC);
        }
        evt.kick();
    }

    fn remove(&self, _dev: &Device) {
        // The input core may send status until the input device is unregistered (when the
        // driver data is dropped): refuse it from now on.
        let sts = self.input.sts.lock().take();
        drop(sts);
    }

    fn freeze(&self, _dev: &Device) -> Result {
        // As C's `virtinput_freeze()`: no more status (the input core gets `ENODEV`), and both
        // queues go. The adapter resets the device next; their buffers are freed after that.
        let sts = self.input.sts.lock().take();
        let evt = self.evt.lock().take();
        drop((sts, evt));
        Ok(())
    }

    fn restore(&self, dev: &Device<Probe>) -> Result {
        // As C's `virtinput_restore()`: the same input device, new queues. The adapter sets
        // `DRIVER_OK` after this, and the event buffers reach the device then.
        let (evt, sts) = find_queues(dev)?;
        *self.evt.lock() = Some(evt);
        *self.input.sts.lock() = Some(sts);
        Ok(())
    }
}
