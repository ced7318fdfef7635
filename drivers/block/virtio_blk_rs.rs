// SPDX-License-Identifier: GPL-2.0

//! Virtio block driver, in Rust: the twin of `virtio_blk.c` (first slice).
//!
//! One request queue (`req.0`), one blk-mq hardware queue. Each block request becomes one
//! virtqueue request made of three parts: a 16-byte header the device reads (type, ioprio,
//! sector), the request's data pages (read by the device for a write, written by it for a
//! read), and a one-byte status the device writes. The data pages are not copied: the request
//! itself ([`RequestBuf`]) is moved into the virtqueue, comes back with the status, and is
//! ended from the queue callback.
//!
//! # Disk names
//!
//! Disks are named `rvd` followed by the letters of the virtio device index (`virtioN`), in the
//! C driver's letter scheme (`a`..`z`, `aa`..): `virtio1` becomes `rvdb`. The `rvd` prefix
//! never matches the C driver's `vdX` names, so both drivers can be loaded at once, on
//! different devices, without a clash; the virtio index is unique among virtio devices, so two
//! Rust disks never clash either. Unlike C's (an IDA), the letters can have gaps.
//!
//! # Features
//!
//! The driver offers exactly the C driver's feature table (without `ZONED`, which C offers only
//! with `CONFIG_BLK_DEV_ZONED`, off here), so both negotiate the same bits. Of those, this
//! slice uses `SEG_MAX`, `SIZE_MAX`, `RO`, `BLK_SIZE`, `FLUSH`, `TOPOLOGY` (physical block
//! size) and `CONFIG_WCE` (initial cache mode); the others are negotiated but not acted upon
//! yet (one queue even with `MQ`; no discard or write-zeroes limits are advertised, so the
//! block layer never sends such requests).

use kernel::{
    blk_virtio::{eopnotsupp, RequestBuf},
    block::mq::{
        gen_disk::{GenDisk, GenDiskBuilder},
        Op, Operations, Request, TagSet,
    },
    c_str, new_mutex,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    sync::{Arc, ArcBorrow, Mutex},
    types::ARef,
    virtio::{self, Device, Probe, QueueSpec, Virtqueue, MAX_SEGMENTS},
};

kernel::module_virtio_driver! {
    type: VirtioBlk,
    name: "virtio_blk_rs",
    author: "virtio-rs authors",
    description: "Virtio block driver (Rust)",
    license: "GPL",
}

/// Feature bits (`include/uapi/linux/virtio_blk.h`).
mod f {
    pub(crate) const SIZE_MAX: u32 = 1;
    pub(crate) const SEG_MAX: u32 = 2;
    pub(crate) const GEOMETRY: u32 = 4;
    pub(crate) const RO: u32 = 5;
    pub(crate) const BLK_SIZE: u32 = 6;
    pub(crate) const FLUSH: u32 = 9;
    pub(crate) const TOPOLOGY: u32 = 10;
    pub(crate) const CONFIG_WCE: u32 = 11;
    pub(crate) const MQ: u32 = 12;
    pub(crate) const DISCARD: u32 = 13;
    pub(crate) const WRITE_ZEROES: u32 = 14;
    pub(crate) const SECURE_ERASE: u32 = 16;
}

/// Offsets in `struct virtio_blk_config`.
mod cfg {
    pub(crate) const CAPACITY: usize = 0;
    pub(crate) const SIZE_MAX: usize = 8;
    pub(crate) const SEG_MAX: usize = 12;
    pub(crate) const BLK_SIZE: usize = 20;
    pub(crate) const PHYSICAL_BLOCK_EXP: usize = 24;
    pub(crate) const WCE: usize = 32;
}

/// Request types (`VIRTIO_BLK_T_*`).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;

/// Status values (`VIRTIO_BLK_S_*`).
const S_OK: u8 = 0;
const S_UNSUPP: u8 = 2;
/// What the status byte holds until the device writes it: not a valid status.
const S_UNSET: u8 = 0xff;

/// Segments of our own in each request: the header and the status.
const OWN_SEGMENTS: usize = 2;
/// Tags (requests in flight) at most.
const MAX_DEPTH: usize = 256;

type Header = KBox<[u8; 16]>;
type Status = KBox<u8>;
type ReqQueue = Virtqueue<(Header, RequestBuf<Blk>), (RequestBuf<Blk>, Status)>;

/// State shared by the blk-mq callbacks and the virtqueue callback.
#[pin_data]
struct Blk {
    #[pin]
    vq: SpinLockIrq<ReqQueue>,
    /// Whether the device is modern (little-endian header) rather than legacy (guest order).
    le: bool,
}

/// One device.
#[pin_data]
struct VirtioBlk {
    blk: Arc<Blk>,
    /// Present from `ready` to `remove`.
    #[pin]
    disk: Mutex<Option<GenDisk<Blk>>>,
}

impl Blk {
    fn header(&self, ty: u32, sector: u64) -> [u8; 16] {
        let mut h = [0u8; 16];
        if self.le {
            h[0..4].copy_from_slice(&ty.to_le_bytes());
            h[8..16].copy_from_slice(&sector.to_le_bytes());
        } else {
            h[0..4].copy_from_slice(&ty.to_ne_bytes());
            h[8..16].copy_from_slice(&sector.to_ne_bytes());
        }
        h
    }
}

#[vtable]
impl Operations for Blk {
    type QueueData = Arc<Blk>;

    // Atomic context (blk-mq runs this under RCU): allocate with GFP_ATOMIC.
    fn queue_rq(blk: ArcBorrow<'_, Blk>, rq: ARef<Request<Self>>, is_last: bool) -> Result {
        let (ty, sector) = match rq.op() {
            Op::Read => (T_IN, rq.sector()),
            Op::Write => (T_OUT, rq.sector()),
            Op::Flush => (T_FLUSH, 0),
            _ => return Err(eopnotsupp()),
        };
        // ENOMEM makes the block layer requeue the request and retry.
        let hdr = KBox::new(blk.header(ty, sector), GFP_ATOMIC)?;
        let status = KBox::new(S_UNSET, GFP_ATOMIC)?;
        let (readable, writable) = if ty == T_IN {
            ((hdr, RequestBuf::none()), (RequestBuf::new(rq), status))
        } else {
            ((hdr, RequestBuf::new(rq)), (RequestBuf::none(), status))
        };
        let mut vq = blk.vq.lock();
        match vq.add(readable, writable, GFP_ATOMIC) {
            Ok(()) => {
                if is_last {
                    vq.kick();
                }
                Ok(())
            }
            Err(mut e) => {
                // Take the request back so that `RequestBuf::drop` does not end it: the block
                // layer requeues it (full ring) or ends it with the error.
                let rq = e.readable.1.take().or_else(|| e.writable.0.take());
                vq.kick();
                drop(vq);
                drop(rq);
                if e.error == ENOSPC {
                    Err(ENOMEM)
                } else {
                    Err(e.error)
                }
            }
        }
    }

    fn commit_rqs(blk: ArcBorrow<'_, Blk>) {
        blk.vq.lock().kick();
    }
}

/// The queue limits from config space.
fn disk_builder(dev: &Device) -> Result<GenDiskBuilder> {
    let capacity = dev.read_config::<u64>(cfg::CAPACITY);
    let mut max_segments = (MAX_SEGMENTS - OWN_SEGMENTS) as u32;
    if let Some(seg_max) = dev.read_config_if::<u32>(f::SEG_MAX, cfg::SEG_MAX) {
        if seg_max != 0 {
            max_segments = max_segments.min(seg_max);
        }
    }
    let mut max_segment_size = 0;
    if let Some(size_max) = dev.read_config_if::<u32>(f::SIZE_MAX, cfg::SIZE_MAX) {
        if size_max == 0 {
            pr_err!("virtio{}: zero sized size_max is invalid\n", dev.index());
            return Err(EINVAL);
        }
        max_segment_size = size_max;
    }
    let lbs = dev
        .read_config_if::<u32>(f::BLK_SIZE, cfg::BLK_SIZE)
        .unwrap_or(512);
    let pbs = match dev.read_config_if::<u8>(f::TOPOLOGY, cfg::PHYSICAL_BLOCK_EXP) {
        Some(exp) if exp < 8 => lbs << exp,
        _ => lbs,
    };
    // The block layer takes physical block sizes up to a page.
    let pbs = if pbs <= kernel::page::PAGE_SIZE as u32 {
        pbs
    } else {
        lbs
    };
    let writeback = match dev.read_config_if::<u8>(f::CONFIG_WCE, cfg::WCE) {
        Some(wce) => wce != 0,
        None => dev.has_feature(f::FLUSH),
    };
    GenDiskBuilder::new()
        .capacity_sectors(capacity)
        .max_segments(max_segments as u16)
        .max_segment_size(max_segment_size)
        .max_hw_sectors(u32::MAX)
        .read_only(dev.has_feature(f::RO))
        .write_cache(writeback)
        .logical_block_size(lbs)
        .inspect_err(|_| pr_err!("virtio{}: invalid block size {}\n", dev.index(), lbs))?
        .physical_block_size(pbs)
}

impl virtio::Driver for VirtioBlk {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::BLOCK)];

    const FEATURES: &'static [u32] = &[
        f::SEG_MAX,
        f::SIZE_MAX,
        f::GEOMETRY,
        f::RO,
        f::BLK_SIZE,
        f::FLUSH,
        f::TOPOLOGY,
        f::CONFIG_WCE,
        f::MQ,
        f::DISCARD,
        f::WRITE_ZEROES,
        f::SECURE_ERASE,
    ];

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let vq: ReqQueue = dev.find_vqs(&[QueueSpec::new(c_str!("req.0"))])?.take(0)?;
        let blk = Arc::pin_init(
            pin_init!(Blk {
                vq <- new_spinlock_irq!(vq),
                le: dev.is_modern(),
            }),
            GFP_KERNEL,
        )?;
        Ok(try_pin_init!(Self {
            blk,
            disk <- new_mutex!(None),
        }))
    }

    fn ready(&self, dev: &Device) -> Result {
        let builder = disk_builder(dev)?;
        let depth = self.blk.vq.lock().size().min(MAX_DEPTH) as u32;
        let tagset = Arc::pin_init(TagSet::new(1, depth, 1), GFP_KERNEL)?;
        let disk = builder.build_with_parent(
            format_args!("rvd{}", Letters(dev.index())),
            tagset,
            self.blk.clone(),
            dev.as_dev(),
        )?;
        *self.disk.lock() = Some(disk);
        Ok(())
    }

    fn queue_event(&self, _queue: usize) {
        let mut vq = self.blk.vq.lock();
        loop {
            vq.disable_cb();
            while let Some(mut used) = vq.get_buf() {
                let status = *used.writable.1;
                let Some(rq) = used.readable.1.take().or_else(|| used.writable.0.take()) else {
                    continue;
                };
                let result = match status {
                    S_OK => Ok(()),
                    S_UNSUPP => Err(eopnotsupp()),
                    _ => Err(EIO),
                };
                // We hold the only reference, so this cannot fail.
                let _ = Request::end(rq, result);
            }
            if vq.enable_cb() {
                break;
            }
        }
    }

    fn remove(&self, _dev: &Device) {
        // The device is still live: deleting the disk waits for the requests in flight.
        drop(self.disk.lock().take());
    }
}

/// The C driver's disk letters: 0 is `a`, 25 is `z`, 26 is `aa`...
struct Letters(u32);

impl core::fmt::Display for Letters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write;
        let mut buf = [0u8; 8];
        let mut pos = buf.len();
        let mut n = u64::from(self.0) + 1;
        while n > 0 && pos > 0 {
            n -= 1;
            pos -= 1;
            buf[pos] = b'a' + (n % 26) as u8;
            n /= 26;
        }
        for &c in &buf[pos..] {
            f.write_char(char::from(c))?;
        }
        Ok(())
    }
}
