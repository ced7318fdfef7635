// SPDX-License-Identifier: GPL-2.0

//! The smallest complete virtio driver, for people learning `kernel::virtio`.
//!
//! It binds to an entropy device (virtio id 4, what QEMU's `-device virtio-rng-pci` provides),
//! asks it for 32 random bytes once, and prints them when they arrive. Load it by hand
//! (`modprobe virtio_sample_rs`) with no other rng driver bound; `dmesg` shows the bytes.
//!
//! Everything a real driver does is here, in order: declare the devices it handles, find a
//! queue in probe, hand the device a buffer, share state with the interrupt callback behind an
//! IRQ-safe lock, take the buffer back with a checked length, and let the adapter tear it all
//! down. There is no `unsafe`: the API keeps the rules (see
//! `Documentation/rust-virtio-driver.rst`).

// The prelude brings `Result`, `KBox`, `pin_init!`, `pr_info!`, GFP flags and friends.
use kernel::prelude::*;
// `c_str!` makes the `&'static CStr` queue name; the lock is safe to take in a hard IRQ.
use kernel::{
    c_str,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::{self, Device, Probe, QueueSpec, Virtqueue},
};

// Declares the module, registers `Sample` as a virtio driver when it loads, and emits the
// `virtio:d00000004v*` alias that would let udev load it for an entropy device.
kernel::module_virtio_driver! {
    type: Sample,
    name: "virtio_sample_rs",
    author: "virtio-rs authors",
    description: "Sample virtio driver: reads 32 bytes from an entropy device",
    license: "GPL",
}

// What the device writes into: an owned, heap-allocated (DMA-able) array. The queue takes
// ownership while the device has it, so the driver cannot touch it meanwhile.
type Buffer = KBox<[u8; 32]>;

// The per-device driver data. The adapter pins it and keeps it until the device goes away.
#[pin_data]
struct Sample {
    // The queue carries requests made of nothing the device reads (`()`) and one `Buffer` it
    // writes. The callback and process context both use it, so it sits behind an IRQ-safe lock.
    #[pin]
    vq: SpinLockIrq<Virtqueue<(), Buffer>>,
}

#[vtable]
impl virtio::Driver for Sample {
    // The devices we bind to: virtio id 4, any vendor. The macro adds the terminator.
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::RNG)];

    // Called for each matching device. The device is not live yet (no DRIVER_OK).
    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        // Ask the transport for one queue, named "input" (the entropy device's only queue)...
        let mut queues = dev.find_vqs(&[QueueSpec::new(c_str!("input"))])?;
        // ...and take it, saying what its requests are made of.
        let mut vq = queues.take::<(), Buffer>(0)?;
        // Hand the device an empty buffer. `add` moves it into the queue.
        vq.add((), KBox::new([0; 32], GFP_KERNEL)?, GFP_KERNEL)?;
        // Return how to build the driver data; the adapter runs it, stores the result, and only
        // then sets DRIVER_OK, so the callback never sees a half-built `Sample`.
        Ok(try_pin_init!(Self {
            vq <- new_spinlock_irq!(vq),
        }))
    }

    // Called once the device is live: now notifying the device makes sense.
    fn ready(&self, _dev: &Device) -> Result {
        // Tell the device that a buffer is waiting.
        self.vq.lock().kick();
        Ok(())
    }

    // Called in hard-IRQ context when the device has used buffers (or spuriously).
    fn queue_event(&self, _queue: usize) {
        // Lock (interrupts are off anyway), then take back every buffer the device is done with.
        let mut vq = self.vq.lock();
        while let Some(used) = vq.get_buf() {
            // `used.len` is how much the device wrote; it is never more than the buffer holds.
            let bytes = &used.writable[..used.len];
            pr_info!("{} random bytes: {:02x?}\n", used.len, bytes);
            // Dropping `used` frees the buffer: we asked only once.
        }
    }

    // Called before teardown (unbind, unplug, rmmod, suspend). Then the adapter resets the
    // device, drops `Sample` (the queue frees a buffer still in flight) and deletes the queue.
    fn remove(&self, _dev: &Device) {
        pr_info!("removed\n");
    }
}
