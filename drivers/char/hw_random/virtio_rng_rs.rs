// SPDX-License-Identifier: GPL-2.0

//! Randomness driver for virtio, in Rust: the twin of `virtio-rng.c`.
//!
//! The device has one queue, `input`. The driver hands it empty buffers; the device fills them
//! with random bytes and gives them back. Each device is registered with the hwrng core as
//! `virtio_rng_rs.N` (N is the `virtioN` index), so it never clashes with the C driver's
//! `virtio_rng.N`, and with the same quality as the C driver (none given: the core's default).
//!
//! Reads copy bytes out of a filled buffer; a drained buffer goes straight back to the device.
//! A blocking read with nothing to copy sleeps until the queue callback says a buffer is back.
//! Remove and freeze mark the device removed and wake every reader, so unregistering the hwrng
//! never waits for the device. As in C, a read that was waiting gets no bytes (the hwrng core
//! then reads on from its next device, so a blocked reader of an unplugged device carries on),
//! and a read that starts after the removal fails with `ENODEV`.
//!
//! # Buffer size
//!
//! The C driver keeps one `SMP_CACHE_BYTES` (64-byte) buffer in flight: one device round trip
//! (notification, host work, interrupt) per 64 bytes, and round trips dominate the cost of a
//! virtio device, especially under emulation. This driver keeps two page-sized buffers in
//! flight: a round trip brings 64 times more bytes, and the device refills one buffer while
//! readers drain the other, so a reader rarely waits. The price is up to 8 KiB of prefetched
//! randomness per device instead of 64 bytes. That is no loss worth having: bytes are handed out
//! once, in order, never reused; and like the C driver's buffer, everything prefetched is
//! discarded on freeze (the queues are torn down and refilled on restore).

use kernel::{
    c_str, fmt, hw_random,
    init::zeroed,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    str::CString,
    sync::{new_condvar, CondVar},
    virtio::{self, Device, Probe, QueueSpec, Virtqueue},
};

/// Bytes the device fills per request: a page.
const BUF_SIZE: usize = 4096;
/// Requests kept in flight, so that the device refills one while readers drain another.
const NR_BUFS: usize = 2;

type Buffer = KBox<[u8; BUF_SIZE]>;

kernel::module_virtio_driver! {
    type: VirtioRng,
    name: "virtio_rng_rs",
    author: "virtio-rs authors",
    description: "Virtio random number driver (Rust)",
    license: "GPL",
}

/// One device: its hwrng, which owns the state shared by readers and the queue callback.
#[pin_data]
struct VirtioRng {
    #[pin]
    hwrng: hw_random::Registration<Entropy>,
}

#[pin_data]
struct Entropy {
    #[pin]
    inner: SpinLockIrq<Inner>,
    /// Signalled when the device returns a buffer, and on remove.
    #[pin]
    returned: CondVar,
}

struct Inner {
    vq: Virtqueue<(), Buffer>,
    /// The filled buffer being handed out: the buffer, the bytes the device wrote, and the
    /// bytes already copied out.
    current: Option<(Buffer, usize, usize)>,
    /// Set by remove (and freeze): reads fail from then on.
    removed: bool,
}

impl Inner {
    /// Copies what the device has produced into `out`; sends drained buffers back.
    fn copy_to(&mut self, out: &mut [u8]) -> usize {
        // Bounded: a device returning empty buffers must not keep us here with IRQs off.
        for _ in 0..=NR_BUFS {
            let (buf, len, pos) = match self.current.take() {
                Some(current) => current,
                None => match self.vq.get_buf() {
                    Some(used) => (used.writable, used.len, 0),
                    None => return 0,
                },
            };
            // `len <= BUF_SIZE`: the queue clamps what the device reports.
            let n = out.len().min(len - pos);
            out[..n].copy_from_slice(&buf[pos..pos + n]);
            if pos + n < len {
                self.current = Some((buf, len, pos + n));
            } else if self.vq.add((), buf, GFP_ATOMIC).is_ok() {
                // There is always room: the queue holds at most `NR_BUFS` buffers.
                self.vq.kick();
            }
            if n > 0 || out.is_empty() {
                return n;
            }
        }
        0
    }
}

impl hw_random::Operations for Entropy {
    fn read(&self, buf: &mut [u8], wait: bool) -> Result<usize> {
        let mut inner = self.inner.lock();
        if inner.removed {
            return Err(ENODEV);
        }
        loop {
            let n = inner.copy_to(buf);
            if n > 0 || !wait || buf.is_empty() {
                return Ok(n);
            }
            if self.returned.wait_interruptible(&mut inner) {
                return Err(ERESTARTSYS);
            }
            if inner.removed {
                // Woken by the removal: no bytes, not an error, so that the core reads on from
                // its next device (virtio-rng.c returns what it read so far, too).
                return Ok(0);
            }
        }
    }
}

#[vtable]
impl virtio::Driver for VirtioRng {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::RNG)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let mut vq = dev.find_vqs(&[QueueSpec::new(c_str!("input"))])?.take(0)?;
        for _ in 0..NR_BUFS {
            vq.add((), KBox::init(zeroed(), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        // Takes effect once the device is ready.
        vq.kick();
        let name = CString::try_from_fmt(fmt!("virtio_rng_rs.{}", dev.index()))?;
        let entropy = try_pin_init!(Entropy {
            inner <- new_spinlock_irq!(Inner { vq, current: None, removed: false }),
            returned <- new_condvar!(),
        });
        Ok(try_pin_init!(Self {
            hwrng <- hw_random::Registration::new(&name, 0, entropy),
        }))
    }

    fn ready(&self, _dev: &Device) -> Result {
        self.hwrng.register()
    }

    fn queue_event(&self, _queue: usize) {
        // Taking the lock orders this wake-up after a reader's check for data.
        let _inner = self.hwrng.inner.lock();
        self.hwrng.returned.notify_all();
    }

    fn remove(&self, _dev: &Device) {
        self.hwrng.inner.lock().removed = true;
        self.hwrng.returned.notify_all();
    }
}
