// SPDX-License-Identifier: GPL-2.0

//! Virtio block driver, in Rust: the twin of `virtio_blk.c`.
//!
//! Each block request becomes one virtio-blk command (a [`Command`]): a header the device reads,
//! the request's data (or, for discard, write-zeroes and secure erase, its ranges), and a
//! status byte the device writes. Header, status and a single range live in the request's own
//! private data ([`BlkPdu`]), so the I/O path allocates nothing but for several ranges. The
//! command owns the request while the device has it and comes back from the virtqueue. As in C,
//! the queue callback hands each request to `blk_mq_complete_request`, and
//! [`Operations::complete`] ends it with its status (in the block softirq, or on the CPU that
//! submitted it); `poll`, on poll queues, ends the successful ones in one batch.
//! This file holds the whole virtio-blk protocol (`include/uapi/linux/virtio_blk.h`); the
//! kernel crate only moves bytes and scatterlists.
//!
//! # Queues
//!
//! As in C: with `VIRTIO_BLK_F_MQ`, one request virtqueue per CPU at most (fewer with the
//! `num_request_queues` parameter), the last `poll_queues` of them without interrupts. Each
//! virtqueue is one blk-mq hardware queue; CPUs are mapped to queues after the interrupt
//! affinity of the virtqueues (or by the block layer if the transport has none), poll queues
//! by the block layer. The depth is the ring size (halved without indirect descriptors) or
//! `queue_depth`. A full ring stops the hardware queue until a request completes.
//!
//! # Timeouts: beyond C
//!
//! C's virtio_blk has no blk-mq timeout handler, so a request the device never answers waits
//! forever, and so does the removal of its disk. This driver has one (which also gives its
//! disks the writable `queue/io_timeout` that C's lack; 30 s by default). When a request times
//! out, it first looks at the request's queue as an interrupt would: a completion whose
//! interrupt was lost, or that came after the kernel disabled a storming interrupt line, ends
//! the request there. Otherwise the timer is reset, as in C, unless the device is being
//! removed: then the device, having left a request unanswered for a whole timeout, is stopped
//! ([`DeviceHandle::abort`]: reset, queues revoked), its requests end with `EIO`, and new ones
//! fail at once, so that deleting the disk returns. The `blk-reqlies` suite shows both
//! (`req-irq-storm`, `req-never`).
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
//! with `CONFIG_BLK_DEV_ZONED`, off here), so both negotiate the same bits, and acts on all of
//! them as C does.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    blk_virtio::{self, eopnotsupp, Command, CommandData, Payload},
    block::mq::{
        gen_disk::{
            AttrWriter, DiskAttribute, DiskAttributes, DiskOperations, GenDisk, GenDiskBuilder,
            GenDiskRef,
        },
        CompletionBatch, DeviceByte, Geometry, Op, Operations, OwnedRequest, QueueMap, RequestRef,
        RqBatch, TagSet, TimeoutAction,
    },
    c_str, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq, SpinLockIrqBackend},
    str::CStr,
    sync::lock::Guard,
    sync::{Arc, ArcBorrow, Mutex},
    virtio::{
        self, config::BlkConfig, config_field, Device, DeviceHandle, Probe, QueueSpec, Virtqueue,
    },
};

kernel::module_virtio_driver! {
    type: VirtioBlk,
    name: "virtio_blk_rs",
    author: "virtio-rs authors",
    description: "Virtio block driver (Rust)",
    license: "GPL",
    params: {
        num_request_queues: u32 {
            default: 0,
            description: "Limit the number of request queues to use for blk device. 0 for no limit. Values > nr_cpu_ids truncated to nr_cpu_ids.",
        },
        poll_queues: u32 {
            default: 0,
            description: "The number of dedicated virtqueues for polling I/O",
        },
        queue_depth: u32 {
            default: 0,
            description: "Requests per hardware queue (0: the ring size, halved without indirect descriptors)",
        },
    },
}

/// The module parameters, as in `virtio_blk.c` (0: the default).
mod param {
    use super::module_parameters as p;

    /// Request queues at most (0: one per CPU).
    pub(crate) fn num_request_queues() -> u32 {
        *p::num_request_queues.value()
    }
    /// Tags per hardware queue (0: fill the ring).
    pub(crate) fn queue_depth() -> u32 {
        *p::queue_depth.value()
    }
    /// Request queues without interrupts, for polled I/O.
    pub(crate) fn poll_queues() -> u32 {
        *p::poll_queues.value()
    }
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
    /// `VIRTIO_RING_F_INDIRECT_DESC`.
    pub(crate) const INDIRECT_DESC: u32 = 28;
}

/// Offsets in `struct virtio_blk_config`.
/// Request types (`VIRTIO_BLK_T_*`).
mod t {
    pub(crate) const IN: u32 = 0;
    pub(crate) const OUT: u32 = 1;
    pub(crate) const FLUSH: u32 = 4;
    pub(crate) const GET_ID: u32 = 8;
    pub(crate) const DISCARD: u32 = 11;
    pub(crate) const WRITE_ZEROES: u32 = 13;
    pub(crate) const SECURE_ERASE: u32 = 14;
}

/// Status values (`VIRTIO_BLK_S_*`).
const S_OK: u8 = 0;
/// What the status byte holds until the device writes it: not a valid status.
const S_UNSET: u8 = 0xff;
const S_UNSUPP: u8 = 2;
/// `VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP`.
const WZ_FLAG_UNMAP: u32 = 1;
/// `VIRTIO_BLK_ID_BYTES`.
const ID_BYTES: usize = 20;
/// `MAX_DISCARD_SEGMENTS` of the block layer.
const MAX_DISCARD_SEGMENTS: u32 = 256;
/// `VIRTIO_BLK_MAX_SG_ELEMS`: the largest virtqueue.
const MAX_SG_ELEMS: u32 = 32768;

/// Disk attribute ids.
const ATTR_SERIAL: u32 = 0;
const ATTR_CACHE_TYPE: u32 = 1;
const CACHE_TYPES: [&str; 2] = ["write through", "write back"];

static SERIAL: DiskAttribute<Blk> = DiskAttribute::new(c_str!("serial"), 0o444, ATTR_SERIAL);
static CACHE_TYPE: DiskAttribute<Blk> =
    DiskAttribute::new(c_str!("cache_type"), 0o644, ATTR_CACHE_TYPE);
static ATTRS: DiskAttributes<Blk, 3> =
    DiskAttributes::new([Some(&SERIAL), Some(&CACHE_TYPE), None]);
static DISK_OPS: DiskOperations<Blk> = DiskOperations::new(&THIS_MODULE).with_attributes(&ATTRS);

/// Static names for the virtqueues, which the virtio core keeps pointers to.
const MAX_QUEUES: usize = 64;
const NAME_LEN: usize = 16;

const fn queue_names(prefix: &[u8]) -> [[u8; NAME_LEN]; MAX_QUEUES] {
    let mut out = [[0u8; NAME_LEN]; MAX_QUEUES];
    let mut i = 0;
    while i < MAX_QUEUES {
        let mut p = 0;
        while p < prefix.len() {
            out[i][p] = prefix[p];
            p += 1;
        }
        if i >= 10 {
            out[i][p] = b'0' + (i / 10) as u8;
            p += 1;
        }
        out[i][p] = b'0' + (i % 10) as u8;
        i += 1;
    }
    out
}

static REQ_NAMES: [[u8; NAME_LEN]; MAX_QUEUES] = queue_names(b"req.");
static POLL_NAMES: [[u8; NAME_LEN]; MAX_QUEUES] = queue_names(b"req_poll.");

fn queue_name(table: &'static [[u8; NAME_LEN]; MAX_QUEUES], i: usize) -> Result<&'static CStr> {
    let name = table.get(i).ok_or(EINVAL)?;
    let end = name.iter().position(|&b| b == 0).ok_or(EINVAL)?;
    CStr::from_bytes_with_nul(&name[..=end]).map_err(|_| EINVAL)
}

/// The per-request data: what the device reads and writes besides the request's data.
struct BlkPdu {
    /// `struct virtio_blk_outhdr`: type, I/O priority, sector.
    hdr: [DeviceByte; 16],
    /// One `struct virtio_blk_discard_write_zeroes`: sector, sectors, flags.
    range: [DeviceByte; 16],
    /// The status byte.
    status: [DeviceByte; 1],
}

impl CommandData for BlkPdu {
    fn header(&self) -> &[DeviceByte] {
        &self.hdr
    }
    fn inline(&self) -> &[DeviceByte] {
        &self.range
    }
    fn status(&self) -> &[DeviceByte] {
        &self.status
    }
}

/// Writes the low `n` bytes of `v` to `out`, little-endian (modern devices) or in the guest's
/// order (legacy ones).
fn put(le: bool, out: &mut [u8], v: u64, n: usize) {
    let b = if le { v.to_le_bytes() } else { v.to_ne_bytes() };
    if le || cfg!(target_endian = "little") {
        out[..n].copy_from_slice(&b[..n]);
    } else {
        out[..n].copy_from_slice(&b[8 - n..]);
    }
}

/// A `struct virtio_blk_discard_write_zeroes`.
fn range(le: bool, sector: u64, sectors: u32, flags: u32) -> [u8; 16] {
    let mut r = [0u8; 16];
    put(le, &mut r[0..8], sector, 8);
    put(le, &mut r[8..12], u64::from(sectors), 4);
    put(le, &mut r[12..16], u64::from(flags), 4);
    r
}

/// What a command carries between header and status.
enum Kind {
    None,
    Data,
    Ranges { flags: u32 },
}

type ReqQueue = Virtqueue<Command<Blk>>;
type QueueSlot = Pin<KBox<SpinLockIrq<Option<ReqQueue>>>>;

/// State shared by the blk-mq callbacks, the queue callbacks and the disk attributes.
struct Blk {
    /// One per request virtqueue; `None` while frozen.
    vqs: KVec<QueueSlot>,
    /// Queues with an interrupt (the first ones); the rest are poll queues.
    nr_irq: usize,
    /// Whether the device is modern (little-endian commands) rather than legacy.
    le: bool,
    /// Set when a full ring stopped a hardware queue; the next completion restarts it.
    stopped: AtomicBool,
    /// Set by `remove`: from then on, a request that times out stops the device.
    removing: AtomicBool,
    /// Set once the device was stopped for not answering: requests fail at once from then on.
    dead: AtomicBool,
    /// For the disk attributes and `getgeo`, which run outside the virtio callbacks.
    dev: DeviceHandle,
}

/// One device.
#[pin_data]
struct VirtioBlk {
    blk: Arc<Blk>,
    /// Present from `ready` to `remove`.
    #[pin]
    disk: Mutex<Option<GenDisk<Blk>>>,
}

fn result_of(status: u8) -> Result {
    match status {
        S_OK => Ok(()),
        S_UNSUPP => Err(eopnotsupp()),
        _ => Err(EIO),
    }
}

/// Who looks for the requests the device has finished with, in [`Blk::complete`].
enum Reap<'a, 'b> {
    /// The queue's interrupt: callbacks are disabled while the ring is drained, then enabled.
    Irq,
    /// blk-mq's poll of a poll queue: successful requests join the poll's batch.
    Poll(&'a mut CompletionBatch<'b, Blk>),
    /// The timeout handler, looking for a completion whose interrupt never came.
    Timeout,
}

impl Blk {
    /// Completes the requests the device has finished with on queue `index`; returns how many.
    /// As C: each goes to `blk_mq_complete_request` (which ends it, through
    /// [`Operations::complete`], in the block softirq or on the submitting CPU), except that
    /// the successful ones a poll finds are ended in one batch after the poll.
    fn complete(&self, index: usize, mut how: Reap<'_, '_>) -> u32 {
        let Some(slot) = self.vqs.get(index) else {
            return 0;
        };
        let mut guard = slot.lock();
        let Some(vq) = guard.as_mut() else {
            return 0;
        };
        let irq = matches!(how, Reap::Irq);
        let mut done = 0;
        loop {
            if irq {
                vq.disable_cb();
            }
            while let Some(used) = vq.get_buf() {
                let rq = used.readable.finish();
                if self.stopped.load(Ordering::Relaxed)
                    && self.stopped.swap(false, Ordering::Relaxed)
                {
                    rq.start_stopped_hw_queues();
                }
                match &mut how {
                    Reap::Poll(batch) if rq.data().status[0].get() == S_OK => batch.end_ok(rq),
                    _ => rq.complete(),
                }
                done += 1;
            }
            if !irq || vq.enable_cb() {
                break;
            }
        }
        done
    }

    /// The virtio-blk command for `rq`.
    fn command(
        rq: OwnedRequest<Self>,
        le: bool,
    ) -> Result<Command<Blk>, (Error, OwnedRequest<Self>)> {
        let (ty, sector, kind) = match rq.op() {
            Op::Read => (t::IN, rq.sector(), Kind::Data),
            Op::Write => (t::OUT, rq.sector(), Kind::Data),
            Op::Flush => (t::FLUSH, 0, Kind::None),
            Op::Discard => (t::DISCARD, 0, Kind::Ranges { flags: 0 }),
            Op::SecureErase => (t::SECURE_ERASE, 0, Kind::Ranges { flags: 0 }),
            Op::WriteZeroes => {
                let flags = if rq.no_unmap() { 0 } else { WZ_FLAG_UNMAP };
                (t::WRITE_ZEROES, 0, Kind::Ranges { flags })
            }
            Op::DrvIn => (t::GET_ID, 0, Kind::Data),
            _ => return Err((EIO, rq)),
        };
        let pdu = rq.data();
        let mut hdr = [0u8; 16];
        put(le, &mut hdr[0..4], u64::from(ty), 4);
        put(le, &mut hdr[4..8], u64::from(rq.ioprio()), 4);
        put(le, &mut hdr[8..16], sector, 8);
        DeviceByte::set_all(&pdu.hdr, &hdr);
        pdu.status[0].set(S_UNSET);
        let payload = match kind {
            Kind::None => Payload::None,
            Kind::Data => Payload::Data,
            Kind::Ranges { flags } => {
                let n = usize::from(rq.nr_discard_segments()).max(1);
                if n == 1 {
                    let r = range(le, rq.sector(), rq.data_len() >> 9, flags);
                    DeviceByte::set_all(&pdu.range, &r);
                    Payload::Inline
                } else {
                    let Ok(mut v) = KVec::with_capacity(n * 16, GFP_ATOMIC) else {
                        return Err((ENOMEM, rq));
                    };
                    // Never more than `n` ranges (the block layer's count); capacity is
                    // reserved, so this does not allocate, but an error is not dropped.
                    let mut res = Ok(());
                    rq.for_each_range(&mut |sector, sectors| {
                        if res.is_ok() && v.len() < n * 16 {
                            res =
                                v.extend_from_slice(&range(le, sector, sectors, flags), GFP_ATOMIC);
                        }
                    });
                    if res.is_err() {
                        return Err((ENOMEM, rq));
                    }
                    if v.is_empty() {
                        return Err((EINVAL, rq));
                    }
                    Payload::Bytes(v)
                }
            }
        };
        Command::new(rq, payload)
    }

    /// Finds the request virtqueues and puts them in `vqs` (probe and restore).
    fn find_queues(dev: &Device<Probe>, nr_irq: usize, nr_poll: usize) -> Result<KVec<ReqQueue>> {
        let mut specs = KVec::with_capacity(nr_irq + nr_poll, GFP_KERNEL)?;
        for i in 0..nr_irq {
            specs.push(
                QueueSpec::new(queue_name(&REQ_NAMES, i)?).spread(),
                GFP_KERNEL,
            )?;
        }
        for i in nr_irq..nr_irq + nr_poll {
            specs.push(
                QueueSpec::new(queue_name(&POLL_NAMES, i)?).without_callback(),
                GFP_KERNEL,
            )?;
        }
        let mut queues = dev.find_vqs(&specs)?;
        let mut vqs = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        for i in 0..specs.len() {
            vqs.push(queues.take(i)?, GFP_KERNEL)?;
        }
        Ok(vqs)
    }

    /// The cache mode: the device's `wce` with `CONFIG_WCE`, else whether it has `FLUSH`.
    fn writeback(dev: &Device) -> bool {
        match dev.read(config_field!(BlkConfig, wce)) {
            Ok(wce) => wce != 0,
            Err(_) => dev.has_feature(f::FLUSH),
        }
    }
}

#[vtable]
impl Operations for Blk {
    type QueueData = Arc<Blk>;
    type RequestData = BlkPdu;

    fn new_request_data() -> impl PinInit<BlkPdu, Error> {
        BlkPdu {
            hdr: [const { DeviceByte::new(0) }; 16],
            range: [const { DeviceByte::new(0) }; 16],
            status: [DeviceByte::new(S_UNSET)],
        }
    }

    // Atomic context (blk-mq runs this under RCU): nothing here sleeps. On error, the request
    // goes back to blk-mq unended: it requeues it (ENOMEM, EBUSY) or ends it with the error.
    fn queue_rq(
        blk: ArcBorrow<'_, Blk>,
        rq: OwnedRequest<Self>,
        is_last: bool,
    ) -> Result<(), (Error, OwnedRequest<Self>)> {
        let index = rq.hw_queue() as usize;
        let Some(slot) = blk.vqs.get(index) else {
            return Err((EIO, rq));
        };
        let cmd = Blk::command(rq, blk.le)?;
        let mut guard = slot.lock();
        let Some(vq) = guard.as_mut() else {
            if blk.dead.load(Ordering::Relaxed) {
                return Err((EIO, cmd.finish()));
            }
            // Frozen: the queue is quiesced, so this does not happen; retry later.
            return Err((EBUSY, cmd.finish()));
        };
        match vq.add_request(cmd, GFP_ATOMIC) {
            Ok(()) => {
                // As C: decide under the lock, notify after dropping it.
                let notify = (is_last && vq.kick_prepare()).then(|| vq.notifier());
                drop(guard);
                if let Some(n) = notify {
                    n.notify();
                }
                Ok(())
            }
            Err(e) => {
                vq.kick();
                // Take the request back unended: the block layer requeues it (full ring) or
                // ends it with the error.
                let rq = e.readable.finish();
                if e.error == ENOSPC {
                    // Under the queue lock, so no completion can slip in between.
                    rq.stop_hw_queue();
                    blk.stopped.store(true, Ordering::Relaxed);
                    drop(guard);
                    Err((EBUSY, rq))
                } else {
                    drop(guard);
                    Err((e.error, rq))
                }
            }
        }
    }

    // A plugged batch: one lock and one kick per run of requests on the same queue.
    fn queue_rqs(blk: ArcBorrow<'_, Blk>, batch: &mut RqBatch<'_, Self>) {
        let mut cur: Option<(usize, Guard<'_, Option<ReqQueue>, SpinLockIrqBackend>)> = None;
        while let Some(rq) = batch.next() {
            let index = rq.hw_queue() as usize;
            let cmd = match Blk::command(rq, blk.le) {
                Ok(cmd) => cmd,
                Err((_, rq)) => {
                    rq.requeue();
                    continue;
                }
            };
            if cur.as_ref().map(|(i, _)| *i) != Some(index) {
                if let Some((_, guard)) = cur.take() {
                    kick_unlocked(guard);
                }
                match blk.vqs.get(index) {
                    Some(slot) => cur = Some((index, slot.lock())),
                    None => {
                        cmd.finish().requeue();
                        continue;
                    }
                }
            }
            let Some((_, guard)) = cur.as_mut() else {
                continue;
            };
            let res = match guard.as_mut() {
                Some(vq) => vq.add_request(cmd, GFP_ATOMIC).map_err(|e| e.readable),
                None => Err(cmd),
            };
            if let Err(cmd) = res {
                if blk.dead.load(Ordering::Relaxed) {
                    cmd.finish().end(Err(EIO));
                } else {
                    // Full ring, or frozen: the block layer sends it again later.
                    cmd.finish().requeue();
                }
            }
        }
        if let Some((_, guard)) = cur {
            kick_unlocked(guard);
        }
    }

    fn commit_rqs(blk: ArcBorrow<'_, Blk>, hw_queue: u32) {
        if let Some(slot) = blk.vqs.get(hw_queue as usize) {
            let notify = slot
                .lock()
                .as_mut()
                .and_then(|vq| vq.kick_prepare().then(|| vq.notifier()));
            if let Some(n) = notify {
                n.notify();
            }
        }
    }

    fn poll(blk: ArcBorrow<'_, Blk>, hw_queue: u32, batch: &mut CompletionBatch<'_, Self>) -> u32 {
        blk.complete(hw_queue as usize, Reap::Poll(batch))
    }

    // From `blk_mq_complete_request` (`Blk::complete`): the block softirq, an IPI, or the
    // caller's context.
    fn complete(_blk: ArcBorrow<'_, Blk>, rq: OwnedRequest<Self>) {
        // A status the device never wrote (`S_UNSET`) is an error, like any other.
        let status = rq.data().status[0].get();
        rq.end(result_of(status));
    }

    // C has no timeout handler: its timer is reset forever. Here, first look for a completion
    // the device made without an interrupt reaching us (lost, or the line disabled by the
    // kernel after an interrupt storm). Then, if the device is being removed, a request that
    // has waited a whole timeout (`io_timeout`, 30 s by default) will not be answered: stop the
    // device and fail its requests, so that deleting the disk, which waits for them, returns.
    // C hangs in `del_gendisk` there.
    fn timeout(blk: ArcBorrow<'_, Blk>, rq: RequestRef<'_, Self>) -> TimeoutAction {
        let index = rq.hw_queue() as usize;
        if blk.complete(index, Reap::Timeout) > 0 && !rq.is_in_flight() {
            pr_warn!("a request completed without an interrupt\n");
            return TimeoutAction::Done;
        }
        if !blk.removing.load(Ordering::Relaxed) {
            return TimeoutAction::ResetTimer;
        }
        pr_warn!("device removed with a request unanswered for a whole timeout\n");
        blk.dead.store(true, Ordering::Relaxed);
        // Resets the device and revokes its queues: the buffers in the rings are the driver's
        // again, so dropping the queues ends their requests (`rq` too) with an I/O error.
        blk.dev.abort();
        for slot in blk.vqs.iter() {
            let vq = slot.lock().take();
            drop(vq);
        }
        TimeoutAction::Done
    }

    fn getgeo(blk: ArcBorrow<'_, Blk>, disk: &GenDiskRef<Self>) -> Result<Geometry> {
        let capacity = disk.capacity();
        blk.dev
            .with(|dev| {
                if dev.has_feature(f::GEOMETRY) {
                    Ok(Geometry {
                        cylinders: dev.read(config_field!(BlkConfig, geometry.cylinders))?,
                        heads: dev.read(config_field!(BlkConfig, geometry.heads))?,
                        sectors: dev.read(config_field!(BlkConfig, geometry.sectors))?,
                    })
                } else {
                    // Some standard values, similar to sd (as C).
                    Ok(Geometry {
                        heads: 1 << 6,
                        sectors: 1 << 5,
                        cylinders: (capacity >> 11) as u16,
                    })
                }
            })
            .map_err(|_| ENXIO)?
    }

    fn attr_show(
        blk: ArcBorrow<'_, Blk>,
        disk: &GenDiskRef<Self>,
        id: u32,
        out: &mut AttrWriter<'_>,
    ) -> Result {
        match id {
            ATTR_SERIAL => {
                let mut id = [0u8; ID_BYTES];
                match disk.drv_in(&mut id) {
                    Ok(()) => {
                        let end = id.iter().position(|&b| b == 0).unwrap_or(ID_BYTES);
                        out.write_bytes(&id[..end]);
                        Ok(())
                    }
                    // Unsupported? Make it empty (as C).
                    Err(e) if e == EIO => Ok(()),
                    Err(e) => Err(e),
                }
            }
            ATTR_CACHE_TYPE => {
                let wb = blk.dev.with(Blk::writeback)?;
                use core::fmt::Write;
                writeln!(out, "{}", CACHE_TYPES[usize::from(wb)]).map_err(|_| EINVAL)
            }
            _ => Err(EINVAL),
        }
    }

    fn attr_store(
        blk: ArcBorrow<'_, Blk>,
        disk: &GenDiskRef<Self>,
        id: u32,
        input: &[u8],
    ) -> Result {
        if id != ATTR_CACHE_TYPE {
            return Err(EINVAL);
        }
        // `sysfs_match_string`: one trailing newline is ignored.
        let input = input.strip_suffix(b"\n").unwrap_or(input);
        let i = CACHE_TYPES
            .iter()
            .position(|c| c.as_bytes() == input)
            .ok_or(EINVAL)?;
        let wb = blk.dev.with(|dev| {
            dev.write(config_field!(BlkConfig, wce), i as u8)?;
            Ok::<_, Error>(Blk::writeback(dev))
        })??;
        disk.set_write_cache(wb)
    }

    fn attr_mode(blk: ArcBorrow<'_, Blk>, id: u32, declared: u16) -> u16 {
        let wce = blk
            .dev
            .with(|dev| dev.has_feature(f::CONFIG_WCE))
            .unwrap_or(false);
        if id == ATTR_CACHE_TYPE && !wce {
            0o444
        } else {
            declared
        }
    }
}

/// Notifies the device of the requests added under `guard`, if it needs it, after dropping the
/// lock (as C does: the notification is a trap to the hypervisor).
fn kick_unlocked(mut guard: Guard<'_, Option<ReqQueue>, SpinLockIrqBackend>) {
    let notify = guard
        .as_mut()
        .and_then(|vq| vq.kick_prepare().then(|| vq.notifier()));
    drop(guard);
    if let Some(n) = notify {
        n.notify();
    }
}

/// The block layer's default segment size limit (`BLK_MAX_SEGMENT_SIZE`), which C gets for a
/// `size_max` of 0.
const BLK_MAX_SEGMENT_SIZE: u32 = 65536;

/// The largest capacity, in 512-byte sectors, whose size in bytes fits a `loff_t`.
const MAX_CAPACITY: u64 = (i64::MAX as u64) >> 9;

/// The device's capacity, clamped to what the block layer can represent (C takes any value).
fn capacity(dev: &Device) -> Result<u64> {
    let capacity = dev.read(config_field!(BlkConfig, capacity))?;
    if capacity > MAX_CAPACITY {
        pr_warn!(
            "virtio{}: capacity of {} sectors is too large, clamped to {}\n",
            dev.index(),
            capacity,
            MAX_CAPACITY
        );
        return Ok(MAX_CAPACITY);
    }
    Ok(capacity)
}

/// `lbs * n` for a topology hint, or 0 (no hint) with a warning if the device's value does
/// not fit.
fn blocks(dev: &Device, what: &str, lbs: u32, n: u32) -> u32 {
    lbs.checked_mul(n).unwrap_or_else(|| {
        pr_warn!(
            "virtio{}: ignoring {} of {} blocks: too large\n",
            dev.index(),
            what,
            n
        );
        0
    })
}

/// The queue limits from config space, as `virtblk_read_limits`. Every value is checked
/// before it is used in arithmetic: a device can lie.
fn disk_builder(dev: &Device) -> Result<GenDiskBuilder> {
    let capacity = capacity(dev)?;
    // We need at least one segment, whatever the device says.
    let sg_elems = match dev.read_opt(config_field!(BlkConfig, seg_max))? {
        Some(n) if n != 0 => n,
        _ => 1,
    }
    .min(MAX_SG_ELEMS - 2);
    let mut max_size = dev.max_dma_size();
    match dev.read_opt(config_field!(BlkConfig, size_max))? {
        None => {}
        // C passes 0 on, and the block layer then uses its default.
        Some(0) => max_size = max_size.min(BLK_MAX_SEGMENT_SIZE),
        Some(n) if n < PAGE_SIZE as u32 => {
            // The block layer cannot split below a page (C trips a WARN in
            // `blk_validate_limits` here).
            pr_err!(
                "virtio{}: segment size limit {} below a page\n",
                dev.index(),
                n
            );
            return Err(EINVAL);
        }
        Some(n) => max_size = max_size.min(n),
    }
    let lbs = match dev.read_opt(config_field!(BlkConfig, blk_size))? {
        // 0 is the default, as the block layer takes it for C.
        None | Some(0) => 512,
        Some(n) if n.is_power_of_two() && (512..=PAGE_SIZE as u32).contains(&n) => n,
        Some(n) => {
            pr_err!("virtio{}: invalid block size {}\n", dev.index(), n);
            return Err(EINVAL);
        }
    };
    let mut pbs = lbs;
    let (mut align, mut io_min, mut io_opt) = (0, 0, 0);
    if dev.has_feature(f::TOPOLOGY) {
        let exp = dev.read(config_field!(BlkConfig, physical_block_exp))?;
        if exp != 0 {
            pbs = match lbs.checked_shl(u32::from(exp)) {
                Some(v) if v >> exp == lbs => v,
                _ => {
                    pr_warn!(
                        "virtio{}: ignoring physical block exponent {}\n",
                        dev.index(),
                        exp
                    );
                    lbs
                }
            };
        }
        let offset = dev.read(config_field!(BlkConfig, alignment_offset))?;
        align = blocks(dev, "alignment offset", lbs, u32::from(offset));
        let min = dev.read(config_field!(BlkConfig, min_io_size))?;
        io_min = blocks(dev, "minimum I/O size", lbs, u32::from(min));
        let opt = dev.read(config_field!(BlkConfig, opt_io_size))?;
        io_opt = blocks(dev, "optimal I/O size", lbs, opt);
    }
    let mut builder = GenDiskBuilder::new()
        .capacity_sectors(capacity)
        .max_segments(sg_elems.min(u32::from(u16::MAX)) as u16)
        .max_segment_size(max_size)
        .max_hw_sectors(u32::MAX)
        // As C: the block layer treats the disk as rotational unless told otherwise.
        .rotational(true)
        .read_only(dev.has_feature(f::RO))
        .write_cache(Blk::writeback(dev))
        .topology(align, io_min, io_opt)
        .logical_block_size(lbs)
        .inspect_err(|_| pr_err!("virtio{}: invalid block size {}\n", dev.index(), lbs))?
        .physical_block_size(pbs)
        .inspect_err(|_| {
            pr_err!(
                "virtio{}: invalid physical block size {}\n",
                dev.index(),
                pbs
            )
        })?;

    let discard = dev.has_feature(f::DISCARD);
    let secure_erase = dev.has_feature(f::SECURE_ERASE);
    let (mut granularity, mut max_discard_sectors, mut max_segs) = (0u32, 0u32, 0u32);
    if discard {
        granularity = dev.read(config_field!(BlkConfig, discard_sector_alignment))?;
        let v = dev.read(config_field!(BlkConfig, max_discard_sectors))?;
        max_discard_sectors = if v != 0 { v } else { u32::MAX };
        max_segs = dev.read(config_field!(BlkConfig, max_discard_seg))?;
    }
    if dev.has_feature(f::WRITE_ZEROES) {
        let v = dev.read(config_field!(BlkConfig, max_write_zeroes_sectors))?;
        builder = builder.write_zeroes(if v != 0 { v } else { u32::MAX });
    }
    if secure_erase {
        let align = dev.read(config_field!(BlkConfig, secure_erase_sector_alignment))?;
        let sectors = dev.read(config_field!(BlkConfig, max_secure_erase_sectors))?;
        let segs = dev.read(config_field!(BlkConfig, max_secure_erase_seg))?;
        if align == 0 || sectors == 0 || segs == 0 {
            pr_err!("virtio{}: invalid secure erase limits\n", dev.index());
            return Err(EINVAL);
        }
        granularity = min_not_zero(granularity, align);
        max_segs = min_not_zero(max_segs, segs);
        builder = builder.secure_erase(sectors);
    }
    if discard || secure_erase {
        if max_segs == 0 {
            max_segs = sg_elems;
        }
        let granularity = if granularity != 0 {
            granularity.saturating_mul(512)
        } else {
            lbs
        };
        builder = builder.discard(
            max_discard_sectors,
            max_segs.min(MAX_DISCARD_SEGMENTS) as u16,
            granularity,
        );
    }
    Ok(builder)
}

fn min_not_zero(a: u32, b: u32) -> u32 {
    match (a, b) {
        (0, b) => b,
        (a, 0) => a,
        (a, b) => a.min(b),
    }
}

#[vtable]
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
        let mut num_vqs = match dev.read_opt(config_field!(BlkConfig, num_queues))? {
            Some(0) => {
                pr_err!(
                    "virtio{}: MQ advertised but zero queues reported\n",
                    dev.index()
                );
                return Err(EINVAL);
            }
            Some(n) => u32::from(n),
            None => 1,
        };
        let limit = match param::num_request_queues() {
            0 => blk_virtio::nr_cpu_ids(),
            n => n.min(blk_virtio::nr_cpu_ids()),
        };
        num_vqs = num_vqs.min(limit).min(MAX_QUEUES as u32);
        let nr_poll = param::poll_queues().min(num_vqs - 1) as usize;
        let nr_irq = num_vqs as usize - nr_poll;

        let found = Blk::find_queues(dev, nr_irq, nr_poll)?;
        let mut vqs = KVec::with_capacity(found.len(), GFP_KERNEL)?;
        for vq in found {
            vqs.push(
                KBox::pin_init(new_spinlock_irq!(Some(vq)), GFP_KERNEL)?,
                GFP_KERNEL,
            )?;
        }
        let blk = Arc::new(
            Blk {
                vqs,
                nr_irq,
                le: dev.is_modern(),
                stopped: AtomicBool::new(false),
                removing: AtomicBool::new(false),
                dead: AtomicBool::new(false),
                dev: dev.handle()?,
            },
            GFP_KERNEL,
        )?;
        Ok(try_pin_init!(Self {
            blk,
            disk <- new_mutex!(None),
        }))
    }

    fn ready(&self, dev: &Device) -> Result {
        let blk = &self.blk;
        let builder = disk_builder(dev)?;
        let depth = match param::queue_depth() {
            0 => {
                let size = blk.vqs[0].lock().as_ref().map_or(0, |vq| vq.num_free());
                // Without indirect descriptors, a request takes two descriptors at least.
                if dev.has_feature(f::INDIRECT_DESC) {
                    size
                } else {
                    size / 2
                }
            }
            n => n as usize,
        };
        let nr_poll = blk.vqs.len() - blk.nr_irq;
        let mut maps = KVec::with_capacity(3, GFP_KERNEL)?;
        let default = match dev.queue_cpu_map(0, blk.nr_irq)? {
            Some(cpus) => QueueMap::with_cpus(blk.nr_irq as u32, cpus),
            None => QueueMap::new(blk.nr_irq as u32),
        };
        maps.push(default, GFP_KERNEL)?;
        if nr_poll > 0 {
            maps.push(QueueMap::new(0), GFP_KERNEL)?;
            maps.push(QueueMap::new(nr_poll as u32), GFP_KERNEL)?;
        }
        let tagset = Arc::pin_init(TagSet::with_maps(maps, depth as u32, 0), GFP_KERNEL)?;
        let disk = builder.build_with_parent(
            format_args!("rvd{}", Letters(dev.index())),
            tagset,
            blk.clone(),
            dev.as_dev(),
            &DISK_OPS,
        )?;
        *self.disk.lock() = Some(disk);
        Ok(())
    }

    fn queue_event(&self, queue: usize) {
        self.blk.complete(queue, Reap::Irq);
    }

    fn config_work(&self, dev: &Device) {
        // The only config change the driver acts on: the capacity (a resize).
        let Ok(capacity) = capacity(dev) else {
            return;
        };
        let guard = self.disk.lock();
        if let Some(disk) = guard.as_ref() {
            if disk.capacity() != capacity {
                pr_info!(
                    "[{}] new size: {} 512-byte sectors ({} MiB)\n",
                    disk.name(),
                    capacity,
                    capacity >> 11
                );
                disk.set_capacity_and_notify(capacity);
            }
        }
    }

    fn remove(&self, _dev: &Device) {
        // The device is still live: deleting the disk waits for the requests in flight (and
        // writes back dirty data). A device that never answers one is stopped by `timeout`.
        // Take the disk out first, so that nothing waits on the lock while it is deleted.
        self.blk.removing.store(true, Ordering::Relaxed);
        let disk = self.disk.lock().take();
        drop(disk);
        // `Blk` lives on until the disk is released (an fd may hold it open), but its queues go
        // now, with the device.
        for slot in self.blk.vqs.iter() {
            let vq = slot.lock().take();
            drop(vq);
        }
    }

    fn freeze(&self, _dev: &Device) -> Result {
        // Let the requests in flight finish, and queue no more.
        if let Some(disk) = self.disk.lock().as_ref() {
            disk.quiesce_drained();
        }
        for slot in self.blk.vqs.iter() {
            // The adapter resets the device next; the queues' buffers are freed after that.
            let vq = slot.lock().take();
            drop(vq);
        }
        Ok(())
    }

    fn restore(&self, dev: &Device<Probe>) -> Result {
        let blk = &self.blk;
        let found = Blk::find_queues(dev, blk.nr_irq, blk.vqs.len() - blk.nr_irq)?;
        for (slot, vq) in blk.vqs.iter().zip(found) {
            *slot.lock() = Some(vq);
        }
        if let Some(disk) = self.disk.lock().as_ref() {
            disk.unquiesce();
        }
        Ok(())
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
