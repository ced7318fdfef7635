// SPDX-License-Identifier: GPL-2.0

//! The blk model: a RAM disk whose config space or whose answers lie
//! (`-device vhost-user-blk-pci`).
//!
//! QEMU 7.2's vhost-user-blk takes `struct virtio_blk_config` from the backend
//! (`VHOST_USER_GET_CONFIG`), all but `num_queues`, which it fills in itself. So a backend can
//! make a guest driver read any config value, which QEMU's own virtio-blk never would. The
//! config is chosen by `--config PRESET` ([`PRESETS`]): `honest`, or one field set to a value
//! a driver must refuse or clamp. The features that make the driver read every lying field
//! are offered: `SIZE_MAX`, `SEG_MAX`, `BLK_SIZE`, `TOPOLOGY`, `FLUSH` and `MQ` (QEMU passes
//! `MQ` on only with `num-queues` > 1).
//!
//! The disk itself tells the truth, so that the guest's partition scan and probe complete:
//! [`DISK_BYTES`] of RAM, addressed in 512-byte sectors whatever `blk_size` says. Sector `s`
//! starts with the text `baddev sector SSSSSSSS\n` (`s` in 8 decimal digits) and is zero
//! after it, so the guest can check that it read the sectors it asked for. It serves
//! `VIRTIO_BLK_T_IN`, `OUT`, `FLUSH` and `GET_ID` (the serial is the preset's name); any other
//! request type gets `VIRTIO_BLK_S_UNSUPP`, and a request beyond the RAM (which a lying
//! `capacity` invites) gets `VIRTIO_BLK_S_IOERR`. At exit it prints how many requests of each
//! kind it served.
//!
//! `--lie LIE` ([`Lie`]) makes the answers to requests lie instead (the config is then the
//! honest one, and `DISCARD` and `WRITE_ZEROES` are offered too, so that the driver issues
//! them): `honest` tells no lie; `ioerr`, `used-len-huge`, `used-len-0`, `bad-id`, `dup-id`,
//! `never` and `irq-storm` lie about every read at or past [`LIE_SECTOR`] (half the disk, so that the probe's
//! partition scan, at sector 0, gets the truth); `unsupp` answers every `DISCARD` and
//! `WRITE_ZEROES` with `VIRTIO_BLK_S_UNSUPP`. The serial of such a disk is `req-LIE`. `--lie none` (the default)
//! is the config-only disk above.
//!
//! Every request is logged (its type, sector, length, ranges and their flags, the status
//! answered and the lie told), the last [`LOG_MAX`] of them. `--control PATH` serves the log
//! on a unix socket, one command per connection: `log` answers the log lines, `clear`
//! empties it (and answers `cleared N`). The connection is closed after the answer.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackendMut, VringRwLock, VringT};
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_MQ,
    VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_WRITE_ZEROES,
    VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP,
    VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::{DescriptorChain, QueueOwnedT, QueueT};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap,
};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{EventConsumer, EventNotifier};

/// The size of the RAM disk.
pub(crate) const DISK_BYTES: usize = 8 << 20;
const SECTOR: usize = 512;
/// Request queues served at most (QEMU's `num-queues` picks how many are used).
const NUM_QUEUES: usize = 4;
/// The ring size offered to the frontend (QEMU's vhost-user-blk asks for 128).
const QUEUE_SIZE: usize = 1024;
/// `sizeof(struct virtio_blk_config)` (with the zoned fields, as in Linux 6.12).
const CONFIG_BYTES: usize = 96;
/// The first sector whose reads a read lie ([`Lie`]) lies about: half the disk.
pub(crate) const LIE_SECTOR: u64 = (DISK_BYTES / SECTOR / 2) as u64;
/// Log entries kept (the oldest are dropped).
const LOG_MAX: usize = 4096;
/// The discard and write-zeroes limits of a disk with request lies: the whole disk, up to 4
/// ranges per discard (1 per write-zeroes), in 4 KiB units.
const MAX_DISCARD_SEG: u32 = 4;

/// `--lie`: how the answers to requests lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lie {
    /// The config-only disk: no request lie, no discard or write-zeroes.
    None,
    /// Honest answers, with discard and write-zeroes.
    Honest,
    /// Reads at or past [`LIE_SECTOR`] complete with `VIRTIO_BLK_S_IOERR`.
    IoErr,
    /// `DISCARD` and `WRITE_ZEROES` complete with `VIRTIO_BLK_S_UNSUPP`.
    Unsupp,
    /// Reads at or past [`LIE_SECTOR`]: the data and status are right, the used length is
    /// 0xffffffff.
    UsedLenHuge,
    /// The same, with a used length of 0.
    UsedLenZero,
    /// Reads at or past [`LIE_SECTOR`]: answered right, then a second used element whose id
    /// is the queue size (no such descriptor).
    BadId,
    /// Reads at or past [`LIE_SECTOR`]: answered right, then the same head is used again.
    DupId,
    /// Reads at or past [`LIE_SECTOR`] are taken and never answered.
    Never,
    /// Reads at or past [`LIE_SECTOR`]: answered right, then [`STORM`] interrupts without a
    /// used buffer.
    IrqStorm,
}

/// The interrupts (used-buffer notifications) an `irq-storm` lie sends after each lying read.
const STORM: u32 = 200_000;

const LIES: [(&str, Lie); 10] = [
    ("none", Lie::None),
    ("honest", Lie::Honest),
    ("ioerr", Lie::IoErr),
    ("unsupp", Lie::Unsupp),
    ("used-len-huge", Lie::UsedLenHuge),
    ("used-len-0", Lie::UsedLenZero),
    ("bad-id", Lie::BadId),
    ("dup-id", Lie::DupId),
    ("never", Lie::Never),
    ("irq-storm", Lie::IrqStorm),
];

/// The values `--lie` takes.
pub(crate) const LIE_NAMES: [&str; LIES.len()] = {
    let mut names = [""; LIES.len()];
    let mut i = 0;
    while i < LIES.len() {
        names[i] = LIES[i].0;
        i += 1;
    }
    names
};

/// The fields of `struct virtio_blk_config` a preset sets; the rest reads as zero.
#[derive(Clone, Copy, Debug)]
struct Config {
    capacity: u64,
    size_max: u32,
    seg_max: u32,
    blk_size: u32,
    physical_block_exp: u8,
    alignment_offset: u8,
    min_io_size: u16,
    opt_io_size: u32,
}

/// What a sane device says: 512-byte logical blocks in 4 KiB physical blocks, I/O in 4 KiB
/// at least and 64 KiB at best, 64 KiB segments and 126 of them (QEMU's `seg_max` for a
/// 128-entry queue).
const HONEST: Config = Config {
    capacity: (DISK_BYTES / SECTOR) as u64,
    size_max: 64 << 10,
    seg_max: 126,
    blk_size: 512,
    physical_block_exp: 3,
    alignment_offset: 0,
    min_io_size: 8,
    opt_io_size: 128,
};

/// `--config` presets: a name (also the disk's serial) and the config it stands for.
const PRESETS: [(&str, Config); 9] = [
    ("honest", HONEST),
    (
        "blk-size-0",
        Config {
            blk_size: 0,
            ..HONEST
        },
    ),
    (
        "blk-size-3",
        Config {
            blk_size: 3,
            ..HONEST
        },
    ),
    (
        "blk-size-2g",
        Config {
            blk_size: 1 << 31,
            ..HONEST
        },
    ),
    (
        "pbexp-63",
        Config {
            physical_block_exp: 63,
            ..HONEST
        },
    ),
    (
        "align-255",
        Config {
            alignment_offset: 255,
            ..HONEST
        },
    ),
    (
        "io-sizes",
        Config {
            min_io_size: u16::MAX,
            opt_io_size: u32::MAX,
            ..HONEST
        },
    ),
    (
        "seg-max-0",
        Config {
            seg_max: 0,
            size_max: 0,
            ..HONEST
        },
    ),
    (
        "capacity-2e63",
        Config {
            capacity: 1 << 63,
            ..HONEST
        },
    ),
];

/// The values `--config` takes.
pub(crate) const PRESET_NAMES: [&str; PRESETS.len()] = {
    let mut names = [""; PRESETS.len()];
    let mut i = 0;
    while i < PRESETS.len() {
        names[i] = PRESETS[i].0;
        i += 1;
    }
    names
};

impl Config {
    /// `struct virtio_blk_config`, little-endian (virtio 1.0; `VIRTIO_F_VERSION_1` is offered).
    fn bytes(&self, discard: bool) -> [u8; CONFIG_BYTES] {
        let mut b = [0u8; CONFIG_BYTES];
        b[0..8].copy_from_slice(&self.capacity.to_le_bytes());
        b[8..12].copy_from_slice(&self.size_max.to_le_bytes());
        b[12..16].copy_from_slice(&self.seg_max.to_le_bytes());
        // 16..20: geometry (VIRTIO_BLK_F_GEOMETRY is not offered).
        b[20..24].copy_from_slice(&self.blk_size.to_le_bytes());
        b[24] = self.physical_block_exp;
        b[25] = self.alignment_offset;
        b[26..28].copy_from_slice(&self.min_io_size.to_le_bytes());
        b[28..32].copy_from_slice(&self.opt_io_size.to_le_bytes());
        // 32: wce, 34..36: num_queues (QEMU's), then discard, write zeroes, secure erase and
        // zoned limits: discard and write zeroes only with request lies.
        if discard {
            let sectors = (DISK_BYTES / SECTOR) as u32;
            b[36..40].copy_from_slice(&sectors.to_le_bytes()); // max_discard_sectors
            b[40..44].copy_from_slice(&MAX_DISCARD_SEG.to_le_bytes()); // max_discard_seg
            b[44..48].copy_from_slice(&8u32.to_le_bytes()); // discard_sector_alignment
            b[48..52].copy_from_slice(&sectors.to_le_bytes()); // max_write_zeroes_sectors
            b[52..56].copy_from_slice(&1u32.to_le_bytes()); // max_write_zeroes_seg
            b[56] = 1; // write_zeroes_may_unmap
        }
        b
    }
}

/// Requests served, by outcome.
#[derive(Default)]
struct Stats {
    reads: u64,
    writes: u64,
    flushes: u64,
    get_ids: u64,
    discards: u64,
    write_zeroes: u64,
    lies: u64,
    unsupported: u64,
    ioerr: u64,
    malformed: u64,
    config_reads: u64,
}

/// The request log, shared with the control socket's thread.
type Log = Arc<Mutex<VecDeque<String>>>;

struct BadBlk {
    /// The serial: the config preset's name, or `req-LIE`.
    preset: String,
    lie: Lie,
    log: Log,
    config: Config,
    disk: Vec<u8>,
    event_idx: bool,
    mem: Option<GuestMemoryAtomic<GuestMemoryMmap>>,
    stats: RwLock<Stats>,
}

/// The byte range of `len` bytes at 512-byte sector `sector`, if it lies within the disk.
fn range(sector: u64, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(sector).ok()?.checked_mul(SECTOR)?;
    let end = start.checked_add(len)?;
    (end <= DISK_BYTES).then_some(start..end)
}

impl BadBlk {
    fn new(preset: String, config: Config, lie: Lie, log: Log) -> Self {
        let mut disk = vec![0u8; DISK_BYTES];
        for (s, sector) in disk.chunks_mut(SECTOR).enumerate() {
            let text = format!("baddev sector {s:08}\n");
            sector[..text.len()].copy_from_slice(text.as_bytes());
        }
        BadBlk {
            preset,
            lie,
            log,
            config,
            disk,
            event_idx: false,
            mem: None,
            stats: RwLock::new(Stats::default()),
        }
    }

    /// Whether the request lies are on (and discard and write zeroes offered).
    fn requests_lie(&self) -> bool {
        self.lie != Lie::None
    }

    fn log(&self, line: String) {
        let mut log = self.log.lock().unwrap();
        if log.len() >= LOG_MAX {
            log.pop_front();
        }
        log.push_back(line);
    }

    /// Serves one request; returns the used length (bytes written to the driver's buffers)
    /// and the lie to tell about the used element ([`Lie::None`] if none), or `None` for a
    /// chain that is not a request (no header or no status byte).
    fn serve<M>(&mut self, chain: DescriptorChain<M>) -> Option<(u32, Lie)>
    where
        M: Clone + std::ops::Deref<Target = GuestMemoryMmap>,
    {
        let mem = chain.memory();
        let mut reader = chain.clone().reader(mem).ok()?;
        let mut writer = chain.clone().writer(mem).ok()?;
        let mut hdr = [0u8; 16];
        reader.read_exact(&mut hdr).ok()?;
        let kind = u32::from_le_bytes(hdr[0..4].try_into().unwrap());
        let sector = u64::from_le_bytes(hdr[8..16].try_into().unwrap());
        // The last writable byte is the status; the writable bytes before it are data.
        let data_len = writer.available_bytes().checked_sub(1)?;
        let mut status = writer.split_at(data_len).ok()?;
        let lie = self.lie;
        let lying_read = kind == VIRTIO_BLK_T_IN && sector >= LIE_SECTOR;
        let stats = self.stats.get_mut().unwrap();
        let mut told = Lie::None;
        if lying_read && lie == Lie::Never {
            stats.lies += 1;
            self.log(format!("IN sector={sector} len={data_len} NEVER ANSWERED"));
            return Some((0, Lie::Never));
        }
        let (what, code, written) = match kind {
            VIRTIO_BLK_T_IN if lying_read && lie == Lie::IoErr => {
                told = Lie::IoErr;
                (
                    format!("IN sector={sector} len={data_len}"),
                    VIRTIO_BLK_S_IOERR,
                    0,
                )
            }
            VIRTIO_BLK_T_IN => {
                let what = format!("IN sector={sector} len={data_len}");
                match range(sector, data_len).and_then(|r| writer.write_all(&self.disk[r]).ok()) {
                    Some(()) => {
                        stats.reads += 1;
                        if lying_read
                            && matches!(
                                lie,
                                Lie::UsedLenHuge
                                    | Lie::UsedLenZero
                                    | Lie::BadId
                                    | Lie::DupId
                                    | Lie::IrqStorm
                            )
                        {
                            told = lie;
                        }
                        (what, VIRTIO_BLK_S_OK, data_len)
                    }
                    None => (what, VIRTIO_BLK_S_IOERR, 0),
                }
            }
            VIRTIO_BLK_T_OUT => {
                let len = reader.available_bytes();
                let what = format!("OUT sector={sector} len={len}");
                match range(sector, len).and_then(|r| reader.read_exact(&mut self.disk[r]).ok()) {
                    Some(()) => {
                        stats.writes += 1;
                        (what, VIRTIO_BLK_S_OK, 0)
                    }
                    None => (what, VIRTIO_BLK_S_IOERR, 0),
                }
            }
            VIRTIO_BLK_T_FLUSH => {
                stats.flushes += 1;
                ("FLUSH".to_string(), VIRTIO_BLK_S_OK, 0)
            }
            VIRTIO_BLK_T_GET_ID => {
                let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
                let n = self.preset.len().min(id.len());
                id[..n].copy_from_slice(&self.preset.as_bytes()[..n]);
                let n = data_len.min(id.len());
                writer.write_all(&id[..n]).ok()?;
                stats.get_ids += 1;
                (format!("GET_ID len={data_len}"), VIRTIO_BLK_S_OK, n)
            }
            VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES if lie != Lie::None => {
                // struct virtio_blk_discard_write_zeroes: sector, num_sectors, flags.
                let zeroes = kind == VIRTIO_BLK_T_WRITE_ZEROES;
                let n = reader.available_bytes() / 16;
                let mut what = format!(
                    "{} ranges={n}",
                    if zeroes { "WRITE_ZEROES" } else { "DISCARD" }
                );
                let mut ok = reader.available_bytes() % 16 == 0 && n > 0;
                for _ in 0..n {
                    let mut seg = [0u8; 16];
                    reader.read_exact(&mut seg).ok()?;
                    let s = u64::from_le_bytes(seg[0..8].try_into().unwrap());
                    let num = u32::from_le_bytes(seg[8..12].try_into().unwrap());
                    let flags = u32::from_le_bytes(seg[12..16].try_into().unwrap());
                    what += &format!(" sector={s} sectors={num} flags={flags}");
                    if zeroes {
                        what += &format!(" unmap={}", flags & 1);
                    }
                    match (num as usize)
                        .checked_mul(SECTOR)
                        .and_then(|len| range(s, len))
                    {
                        Some(r) if zeroes => self.disk[r].fill(0),
                        Some(_) => {}
                        None => ok = false,
                    }
                }
                if lie == Lie::Unsupp {
                    told = Lie::Unsupp;
                    (what, VIRTIO_BLK_S_UNSUPP, 0)
                } else if ok {
                    if zeroes {
                        stats.write_zeroes += 1;
                    } else {
                        stats.discards += 1;
                    }
                    (what, VIRTIO_BLK_S_OK, 0)
                } else {
                    (what, VIRTIO_BLK_S_IOERR, 0)
                }
            }
            _ => (
                format!("type={kind} sector={sector}"),
                VIRTIO_BLK_S_UNSUPP,
                0,
            ),
        };
        if told != Lie::None {
            stats.lies += 1;
        }
        match code {
            VIRTIO_BLK_S_IOERR => {
                stats.ioerr += 1;
                if stats.ioerr <= 8 && told == Lie::None {
                    eprintln!(
                        "baddev: {}: type {kind} at sector {sector}, {data_len}+{} bytes: \
                         beyond the {DISK_BYTES}-byte disk, IOERR",
                        self.preset,
                        reader.available_bytes()
                    );
                }
            }
            VIRTIO_BLK_S_UNSUPP => {
                stats.unsupported += 1;
                eprintln!("baddev: {}: request type {kind}: UNSUPP", self.preset);
            }
            _ => {}
        }
        let name = match code {
            VIRTIO_BLK_S_OK => "OK",
            VIRTIO_BLK_S_IOERR => "IOERR",
            _ => "UNSUPP",
        };
        let lie_name = LIES
            .iter()
            .find(|(_, l)| *l == told)
            .map_or("none", |(n, _)| n);
        let line = if told == Lie::None {
            format!("{what} status={name}")
        } else {
            format!("{what} status={name} lie={lie_name}")
        };
        if told != Lie::None && stats.lies <= 8 {
            eprintln!("baddev: {}: {line}", self.preset);
        }
        self.log(line);
        status.write_all(&[code as u8]).ok()?;
        Some((u32::try_from(written + 1).ok()?, told))
    }

    /// Answers every available request; returns whether any was answered.
    fn process_queue(&mut self, vring: &VringRwLock) -> io::Result<bool> {
        let mem = self
            .mem
            .as_ref()
            .ok_or_else(|| io::Error::other("queue kicked before the memory table was set"))?
            .memory();
        let chains: Vec<_> = vring
            .get_mut()
            .get_queue_mut()
            .iter(mem.clone())
            .map_err(|e| io::Error::other(format!("bad available ring: {e:?}")))?
            .collect();
        let any = !chains.is_empty();
        let mut signal = false;
        let mut storm = false;
        for chain in chains {
            let head = chain.head_index();
            let (len, told) = self.serve(chain).unwrap_or_else(|| {
                self.stats.get_mut().unwrap().malformed += 1;
                self.log("MALFORMED".to_string());
                (0, Lie::None)
            });
            if told == Lie::Never {
                // Taken from the available ring, kept, never used.
                continue;
            }
            storm |= told == Lie::IrqStorm;
            let len = match told {
                Lie::UsedLenHuge => u32::MAX,
                Lie::UsedLenZero => 0,
                _ => len,
            };
            let mut q = vring.get_mut();
            let queue = q.get_queue_mut();
            queue
                .add_used(&*mem, head, len)
                .map_err(|e| io::Error::other(format!("add_used: {e:?}")))?;
            match told {
                Lie::DupId => {
                    queue
                        .add_used(&*mem, head, len)
                        .map_err(|e| io::Error::other(format!("add_used: {e:?}")))?;
                    signal = true;
                }
                Lie::BadId => {
                    // add_used refuses an id out of range: write the element by hand.
                    let size = queue.size();
                    let next = queue.next_used();
                    let slot = u64::from(next % size);
                    let ring = GuestAddress(queue.used_ring());
                    // struct vring_used_elem: id, len (le32).
                    let mut elem = [0u8; 8];
                    elem[..4].copy_from_slice(&u32::from(size).to_le_bytes());
                    elem[4..].copy_from_slice(&len.to_le_bytes());
                    let err = |e| io::Error::other(format!("bad-id: {e:?}"));
                    mem.write_slice(&elem, ring.unchecked_add(4 + slot * 8))
                        .map_err(err)?;
                    let next = next.wrapping_add(1);
                    queue.set_next_used(next);
                    mem.store(next.to_le(), ring.unchecked_add(2), Ordering::Release)
                        .map_err(err)?;
                    signal = true;
                }
                _ => {}
            }
        }
        // An id lie bypasses the event index's accounting: always interrupt.
        if signal || storm {
            vring.signal_used_queue()?;
        }
        if storm {
            // Then interrupts with nothing new in the used ring. Each is a write to the call
            // eventfd, which QEMU turns into an MSI-X message; a short pause between them keeps
            // QEMU from merging them all into one.
            for _ in 0..STORM {
                vring.signal_used_queue()?;
                std::thread::sleep(std::time::Duration::from_micros(5));
            }
            self.log(format!("IRQ STORM {STORM}"));
        }
        Ok(any)
    }
}

impl VhostUserBackendMut for BadBlk {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        NUM_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        [
            VIRTIO_F_VERSION_1,
            VIRTIO_RING_F_INDIRECT_DESC,
            VIRTIO_RING_F_EVENT_IDX,
            VIRTIO_BLK_F_SIZE_MAX,
            VIRTIO_BLK_F_SEG_MAX,
            VIRTIO_BLK_F_BLK_SIZE,
            VIRTIO_BLK_F_TOPOLOGY,
            VIRTIO_BLK_F_FLUSH,
            VIRTIO_BLK_F_MQ,
        ]
        .iter()
        .chain(if self.requests_lie() {
            &[VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES][..]
        } else {
            &[]
        })
        .fold(0, |f, &bit| f | 1 << bit)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::CONFIG
    }

    fn set_event_idx(&mut self, enabled: bool) {
        self.event_idx = enabled;
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let n = {
            let mut stats = self.stats.write().unwrap();
            stats.config_reads += 1;
            stats.config_reads
        };
        if n <= 4 {
            eprintln!(
                "baddev: {}: config read: {size} bytes at {offset}",
                self.preset
            );
        }
        // Bytes beyond the struct read as zero: the answer has the size asked for.
        let bytes = self.config.bytes(self.requests_lie());
        (offset as usize..(offset as usize).saturating_add(size as usize))
            .map(|i| bytes.get(i).copied().unwrap_or(0))
            .collect()
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        crate::exit_event()
    }

    fn update_memory(&mut self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        self.mem = Some(mem);
        Ok(())
    }

    fn handle_event(
        &mut self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        let Some(vring) = vrings
            .get(usize::from(device_event))
            .filter(|_| evset == EventSet::IN)
        else {
            return Err(io::Error::other(format!(
                "unexpected event {device_event} ({evset:?})"
            )));
        };
        crate::drain(vring, self.event_idx, |vring| self.process_queue(vring))
    }
}

/// Serves the request log on the unix socket `path`, one command per connection.
fn control(path: &str, log: Log) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(&conn);
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let reply = match line.trim() {
                "log" => log
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect(),
                "clear" => {
                    let mut log = log.lock().unwrap();
                    let n = log.len();
                    log.clear();
                    format!("cleared {n}\n")
                }
                other => format!("error: unknown command '{other}' (log, clear)\n"),
            };
            let _ = (&conn).write_all(reply.as_bytes());
        }
    });
    Ok(())
}

/// Serves one connection on `socket` as the disk of preset `preset` (one of
/// [`PRESET_NAMES`]) and lie `lie` (one of [`LIE_NAMES`]), with the request log on the unix
/// socket `ctl` if given, then prints the requests it served. `None` if there is no such
/// preset or lie.
pub(crate) fn run(socket: &str, preset: &str, lie: &str, ctl: Option<&str>) -> Option<ExitCode> {
    let &(name, config) = PRESETS.iter().find(|(name, _)| *name == preset)?;
    let &(lie_name, lie) = LIES.iter().find(|(name, _)| *name == lie)?;
    if lie != Lie::None && name != "honest" {
        eprintln!("baddev: --lie {lie_name} takes the honest config, not {name}");
        return None;
    }
    let serial = if lie == Lie::None {
        name.to_string()
    } else {
        format!("req-{lie_name}")
    };
    let log: Log = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(path) = ctl {
        if let Err(e) = control(path, log.clone()) {
            eprintln!("baddev: control socket {path}: {e}");
            return Some(ExitCode::FAILURE);
        }
    }
    let backend = Arc::new(RwLock::new(BadBlk::new(serial.clone(), config, lie, log)));
    eprintln!(
        "baddev: listening on {socket}, blk config={name}, lie={lie_name}, control={}: {config:?}",
        ctl.unwrap_or("none")
    );
    let result = crate::serve(socket, backend.clone());
    let b = backend.read().unwrap();
    let s = b.stats.read().unwrap();
    eprintln!(
        "baddev: {serial}: {} config reads; served {} reads, {} writes, {} flushes, {} get_ids, \
         {} discards, {} write-zeroes; {} lies, {} unsupported, {} I/O errors, {} malformed",
        s.config_reads,
        s.reads,
        s.writes,
        s.flushes,
        s.get_ids,
        s.discards,
        s.write_zeroes,
        s.lies,
        s.unsupported,
        s.ioerr,
        s.malformed
    );
    if let Some(path) = ctl {
        let _ = std::fs::remove_file(path);
    }
    Some(result)
}
