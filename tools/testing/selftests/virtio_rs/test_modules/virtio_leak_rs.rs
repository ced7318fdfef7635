// SPDX-License-Identifier: GPL-2.0

//! A test driver whose handles outlive its device: the `leak` selftest loads it.
//!
//! It binds to virtio-rng devices (load it where no other rng driver is bound) and does what a
//! careless driver written in safe Rust could do:
//!
//! - every probe leaks a [`DeviceHandle`] and a [`Notifier`] (`mem::forget`): teardown must still
//!   reset the device and delete its queues, and a rebind, a restore or an unplug must work;
//! - freeze keeps the device's [`Virtqueue`] and a [`Notifier`] (with a buffer in flight) past the
//!   freeze; restore then uses them and prints what they did: the queues they point to were
//!   deleted, so they must fail without touching the device;
//! - the driver data keeps a handle and a notifier that are used once more when it is dropped,
//!   after the adapter closed the device: they must fail too;
//! - `remove` makes a round trip (a buffer the device fills) before teardown, which shows that
//!   the device still works, for example after a failed freeze.
//!
//! With `fail_freeze=1`, freeze fails: the suspend is aborted and the device must stay live. With
//! `fail_restore=1`, restore fails: the device must be left reset. Probe also asks for the CPU
//! map of queues that do not exist, which must be refused (the transport's queue array would be
//! indexed out of bounds).
//! KASAN, kmemleak and lockdep (the debug kernel) watch all of it; the selftest reads the lines
//! printed here.

use kernel::{
    c_str,
    completion::Completion,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::{self, Device, DeviceHandle, Notifier, Probe, QueueSpec, Virtqueue},
};

type Buf = KBox<[u8; 64]>;
type Queue = Virtqueue<(), Buf>;

kernel::module_virtio_driver! {
    type: Leak,
    name: "virtio_leak_rs",
    author: "virtio-rs authors",
    description: "Test driver: virtio handles that outlive their device",
    license: "GPL",
    params: {
        fail_freeze: bool {
            default: false,
            description: "Make freeze fail (the device must stay live)",
        },
        fail_restore: bool {
            default: false,
            description: "Make restore fail (the device must be left reset)",
        },
    },
}

#[pin_data]
struct Leak {
    index: u32,
    #[pin]
    vq: SpinLockIrq<Option<Queue>>,
    /// The queue and a notifier of it, kept across a freeze.
    #[pin]
    stale: SpinLockIrq<Option<(Queue, Notifier)>>,
    /// Completed by the queue callback.
    #[pin]
    done: Completion,
    after: AfterRemoval,
}

/// How the tests read an outcome: "ok", "ENODEV", or the errno.
struct Outcome(Option<Error>);

impl core::fmt::Display for Outcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            None => f.write_str("ok"),
            Some(e) if e == ENODEV => f.write_str("ENODEV"),
            Some(e) if e == EINVAL => f.write_str("EINVAL"),
            Some(e) => write!(f, "errno {}", e.to_errno()),
        }
    }
}

/// Handles used once more when the driver data is dropped: after the device was closed.
struct AfterRemoval {
    index: u32,
    dev: DeviceHandle,
    notifier: Notifier,
}

impl Drop for AfterRemoval {
    fn drop(&mut self) {
        let with = self.dev.with(|_| ());
        pr_info!(
            "virtio{}: after removal: with={} notify={}\n",
            self.index,
            Outcome(with.err()),
            self.notifier.notify()
        );
    }
}

/// Finds the queue and hands the device one buffer.
fn queue(dev: &Device<Probe>) -> Result<Queue> {
    let mut vq: Queue = dev.find_vqs(&[QueueSpec::new(c_str!("input"))])?.take(0)?;
    vq.add((), KBox::new([0; 64], GFP_KERNEL)?, GFP_KERNEL)?;
    vq.kick();
    Ok(vq)
}

#[vtable]
impl virtio::Driver for Leak {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::RNG)];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let vq = queue(dev)?;
        // One queue was found: queues 0..2 and 1..2 do not all exist.
        let beyond = (dev.queue_cpu_map(0, 2).err(), dev.queue_cpu_map(1, 1).err());
        pr_info!(
            "virtio{}: queue_cpu_map beyond the queues: {} {}\n",
            dev.index(),
            Outcome(beyond.0),
            Outcome(beyond.1)
        );
        let handle = dev.handle()?;
        let notifier = vq.notifier();
        // The leaks: these are never dropped.
        core::mem::forget(handle.clone());
        core::mem::forget(notifier.clone());
        let idx = dev.index();
        pr_info!("virtio{}: probed, leaked a handle and a notifier\n", idx);
        let after = AfterRemoval {
            index: idx,
            dev: handle,
            notifier,
        };
        Ok(try_pin_init!(Self {
            index: idx,
            vq <- new_spinlock_irq!(Some(vq)),
            stale <- new_spinlock_irq!(None),
            done <- Completion::new(),
            after,
        }))
    }

    fn queue_event(&self, _queue: usize) {
        let mut vq = self.vq.lock();
        if let Some(vq) = vq.as_mut() {
            while vq.get_buf().is_some() {
                self.done.complete();
            }
        }
    }

    fn remove(&self, _dev: &Device) {
        // A round trip: the device fills one more buffer.
        self.done.reinit();
        let sent = match (self.vq.lock().as_mut(), KBox::new([0; 64], GFP_ATOMIC)) {
            (Some(vq), Ok(buf)) => vq.add((), buf, GFP_ATOMIC).is_ok() && vq.kick(),
            _ => false,
        };
        let ok = sent && self.done.wait_timeout_ms(5000);
        pr_info!(
            "virtio{}: round trip before remove: {}\n",
            self.index,
            if ok { "ok" } else { "FAILED" }
        );
    }

    fn freeze(&self, _dev: &Device) -> Result {
        if *module_parameters::fail_freeze.value() {
            pr_info!("virtio{}: failing freeze\n", self.index);
            return Err(EBUSY);
        }
        // Keep the queue past the freeze, with its buffer in flight.
        if let Some(vq) = self.vq.lock().take() {
            let notifier = vq.notifier();
            *self.stale.lock() = Some((vq, notifier));
        }
        Ok(())
    }

    fn restore(&self, dev: &Device<Probe>) -> Result {
        if *module_parameters::fail_restore.value() {
            pr_info!("virtio{}: failing restore\n", self.index);
            return Err(EIO);
        }
        if let Some((mut vq, notifier)) = self.stale.lock().take() {
            let add = vq
                .add((), KBox::new([0; 64], GFP_ATOMIC)?, GFP_ATOMIC)
                .err();
            pr_info!(
                "virtio{}: stale queue after freeze: add={} get_buf={} num_free={} kick={} notify={}\n",
                self.index,
                Outcome(add.map(|e| e.error)),
                vq.get_buf().is_some(),
                vq.num_free(),
                vq.kick(),
                notifier.notify()
            );
        }
        *self.vq.lock() = Some(queue(dev)?);
        Ok(())
    }
}
