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
//!
//! With `hold_ms=N`, a work item started by probe stays inside [`DeviceHandle::with`] for N ms,
//! then makes a round trip from inside it: an unbind started meanwhile must wait for it before it
//! resets the device, so the round trip works. With `drop_queue=1` probe drops its
//! [`Virtqueue`], and with `drop_queue=2` the queue callback does (in interrupt context): neither
//! may reset the device (DRIVER_OK would then land on a reset device) or wait for callbacks (the
//! callback would wait for itself).
//!
//! With `napi_escape=1`, probe sets up a net device (never registered) whose initialiser keeps a
//! second [`Napi`] initialiser outside, and builds a third one into a box while the device is
//! being set up; once the device is freed, it runs the kept one. Only the one in the device's
//! private area may build: the others must fail with `EINVAL`, not add a NAPI context to a
//! device that is not theirs, or gone. The same again with [`NapiVec`] initialisers (the
//! contexts of a multiqueue device, in an array of their own).
//!
//! KASAN, kmemleak and lockdep (the debug kernel) watch all of it; the selftest reads the lines
//! printed here.

use kernel::{
    c_str,
    completion::Completion,
    impl_has_work,
    net::{
        dev::{NetDevice, Operations, Registration},
        napi::{Napi, NapiPoll, NapiVec, Poll},
        skb::SkBuff,
    },
    new_work,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    sync::Arc,
    virtio::{self, Device, DeviceHandle, Notifier, Probe, QueueSpec, Virtqueue},
    workqueue::{self, Work, WorkItem},
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
        hold_ms: u32 {
            default: 0,
            description: "Stay inside DeviceHandle::with this long after probe, then round trip",
        },
        drop_queue: u32 {
            default: 0,
            description: "Drop the queue: 1 in probe, 2 in its callback",
        },
        napi_escape: bool {
            default: false,
            description: "Keep a NAPI initialiser past its net device's setup and run it",
        },
    },
}

#[pin_data]
struct Leak {
    index: u32,
    shared: Arc<Shared>,
    /// The queue and a notifier of it, kept across a freeze.
    #[pin]
    stale: SpinLockIrq<Option<(Queue, Notifier)>>,
    after: AfterRemoval,
}

/// The queue, shared with the `hold_ms` work item.
#[pin_data]
struct Shared {
    index: u32,
    #[pin]
    vq: SpinLockIrq<Option<Queue>>,
    /// Completed by the queue callback.
    #[pin]
    done: Completion,
}

impl Shared {
    /// The device fills one more buffer: true if it did within 5 s.
    fn round_trip(&self) -> bool {
        self.done.reinit();
        let sent = match (self.vq.lock().as_mut(), KBox::new([0; 64], GFP_ATOMIC)) {
            (Some(vq), Ok(buf)) => vq.add((), buf, GFP_ATOMIC).is_ok() && vq.kick(),
            _ => false,
        };
        sent && self.done.wait_timeout_ms(5000)
    }
}

/// `hold_ms`: a user of the device inside [`DeviceHandle::with`] while the device is unbound.
#[pin_data]
struct Hold {
    #[pin]
    work: Work<Hold>,
    #[pin]
    pause: Completion,
    handle: DeviceHandle,
    shared: Arc<Shared>,
    ms: u32,
}

impl_has_work! {
    impl HasWork<Self> for Hold { self.work }
}

impl WorkItem for Hold {
    type Pointer = Arc<Hold>;

    fn run(this: Arc<Hold>) {
        let index = this.shared.index;
        let r = this.handle.with(|_| {
            pr_info!(
                "virtio{}: inside with(), holding it {} ms\n",
                index,
                this.ms
            );
            // Nothing completes `pause`: this is a sleep.
            this.pause.wait_timeout_ms(this.ms);
            this.shared.round_trip()
        });
        match r {
            Ok(ok) => pr_info!(
                "virtio{}: round trip inside with() after {} ms: {}\n",
                index,
                this.ms,
                if ok { "ok" } else { "FAILED" }
            ),
            Err(e) => pr_info!("virtio{}: with() refused: {}\n", index, Outcome(Some(e))),
        }
    }
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

/// `napi_escape`: a net device that is only set up, with one NAPI context.
#[pin_data]
struct EscNic {
    #[pin]
    napi: Napi<NoPoll>,
    #[pin]
    napis: NapiVec<NoPoll>,
}

#[vtable]
impl Operations for EscNic {
    fn start_xmit(&self, _dev: &NetDevice, _skb: SkBuff) -> Result<(), SkBuff> {
        // Never registered, so never called; the skb is dropped (freed).
        Ok(())
    }
}

/// A poll that never runs: the context is never enabled.
struct NoPoll;

impl Poll for NoPoll {
    fn poll(&self, _napi: NapiPoll<'_>, _budget: usize) -> usize {
        0
    }
}

/// `napi_escape`: NAPI initialisers run outside the private area of the device being set up,
/// during its setup and after it was freed. Prints what each gave.
fn napi_escape(dev: &Device<Probe>) {
    let mut kept = None;
    let mut outside = None;
    let mut kept_vec = None;
    let mut outside_vec = None;
    let vec_len = |n: &EscNic| n.napis.len();
    let reg = Registration::<EscNic>::new_mq(dev.as_dev(), 3, 3, |_ndev| {
        kept = Some(Napi::new(NoPoll));
        outside = Some(KBox::pin_init(Napi::new(NoPoll), GFP_KERNEL).err());
        kept_vec = Some(NapiVec::new(2, 64, |_| Ok(NoPoll)));
        outside_vec = Some(KBox::pin_init(NapiVec::new(2, 64, |_| Ok(NoPoll)), GFP_KERNEL).err());
        Ok(try_pin_init!(EscNic {
            napi <- Napi::new(NoPoll),
            napis <- NapiVec::new(3, 64, |_| Ok(NoPoll)),
        }? Error))
    });
    let inside = reg.as_ref().err().copied();
    let built = reg.as_ref().map_or(0, |r| vec_len(r.data()));
    // Unregistered, the contexts deleted, the device freed.
    drop(reg);
    let after = kept.map(|init| KBox::pin_init(init, GFP_KERNEL).err());
    let after_vec = kept_vec.map(|init| KBox::pin_init(init, GFP_KERNEL).err());
    pr_info!(
        "virtio{}: napi: in the private area={} outside it={} after the device={}\n",
        dev.index(),
        Outcome(inside),
        Outcome(outside.flatten()),
        Outcome(after.flatten())
    );
    pr_info!(
        "virtio{}: napi_vec: in the private area={} ({} contexts) outside it={} after the device={}\n",
        dev.index(),
        Outcome(inside),
        built,
        Outcome(outside_vec.flatten()),
        Outcome(after_vec.flatten())
    );
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
        if *module_parameters::napi_escape.value() {
            napi_escape(dev);
        }
        let handle = dev.handle()?;
        let notifier = vq.notifier();
        // The leaks: these are never dropped.
        core::mem::forget(handle.clone());
        core::mem::forget(notifier.clone());
        let idx = dev.index();
        pr_info!("virtio{}: probed, leaked a handle and a notifier\n", idx);
        let vq = if *module_parameters::drop_queue.value() == 1 {
            // Dropped before probe returns, so before the core sets DRIVER_OK.
            drop(vq);
            pr_info!("virtio{}: dropped the queue in probe\n", idx);
            None
        } else {
            Some(vq)
        };
        let shared = Arc::pin_init(
            pin_init!(Shared {
                index: idx,
                vq <- new_spinlock_irq!(vq),
                done <- Completion::new(),
            }),
            GFP_KERNEL,
        )?;
        let ms = *module_parameters::hold_ms.value();
        if ms > 0 {
            let (handle, shared) = (handle.clone(), shared.clone());
            let hold = Arc::pin_init(
                pin_init!(Hold {
                    work <- new_work!("Hold::work"),
                    pause <- Completion::new(),
                    handle,
                    shared,
                    ms,
                }),
                GFP_KERNEL,
            )?;
            let _ = workqueue::system_long().enqueue(hold);
        }
        let after = AfterRemoval {
            index: idx,
            dev: handle,
            notifier,
        };
        Ok(try_pin_init!(Self {
            index: idx,
            shared,
            stale <- new_spinlock_irq!(None),
            after,
        }))
    }

    fn queue_event(&self, _queue: usize) {
        let mut guard = self.shared.vq.lock();
        if let Some(vq) = guard.as_mut() {
            while vq.get_buf().is_some() {
                self.shared.done.complete();
            }
        }
        if *module_parameters::drop_queue.value() == 2 {
            if let Some(vq) = guard.take() {
                // In the callback, in interrupt context, under the lock.
                drop(vq);
                pr_info!("virtio{}: dropped the queue in its callback\n", self.index);
            }
        }
    }

    fn remove(&self, _dev: &Device) {
        // A round trip: the device fills one more buffer.
        let what = if self.shared.vq.lock().is_none() {
            "no queue"
        } else if self.shared.round_trip() {
            "ok"
        } else {
            "FAILED"
        };
        pr_info!("virtio{}: round trip before remove: {}\n", self.index, what);
    }

    fn freeze(&self, _dev: &Device) -> Result {
        if *module_parameters::fail_freeze.value() {
            pr_info!("virtio{}: failing freeze\n", self.index);
            return Err(EBUSY);
        }
        // Keep the queue past the freeze, with its buffer in flight.
        if let Some(vq) = self.shared.vq.lock().take() {
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
        *self.shared.vq.lock() = Some(queue(dev)?);
        Ok(())
    }
}
