// SPDX-License-Identifier: GPL-2.0

//! The blk model: an honest RAM disk whose config space lies (`-device vhost-user-blk-pci`).
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

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackendMut, VringRwLock, VringT};
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_SEG_MAX,
    VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR,
    VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT,
};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::{DescriptorChain, QueueOwnedT};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
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
    fn bytes(&self) -> [u8; CONFIG_BYTES] {
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
        // zoned limits, none of which is offered.
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
    unsupported: u64,
    ioerr: u64,
    malformed: u64,
    config_reads: u64,
}

struct BadBlk {
    preset: &'static str,
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
    fn new(preset: &'static str, config: Config) -> Self {
        let mut disk = vec![0u8; DISK_BYTES];
        for (s, sector) in disk.chunks_mut(SECTOR).enumerate() {
            let text = format!("baddev sector {s:08}\n");
            sector[..text.len()].copy_from_slice(text.as_bytes());
        }
        BadBlk {
            preset,
            config,
            disk,
            event_idx: false,
            mem: None,
            stats: RwLock::new(Stats::default()),
        }
    }

    /// Serves one request; returns the used length (bytes written to the driver's buffers),
    /// or `None` for a chain that is not a request (no header or no status byte).
    fn serve<M>(&mut self, chain: DescriptorChain<M>) -> Option<u32>
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
        let stats = self.stats.get_mut().unwrap();
        let (code, written) = match kind {
            VIRTIO_BLK_T_IN => {
                match range(sector, data_len).and_then(|r| writer.write_all(&self.disk[r]).ok()) {
                    Some(()) => {
                        stats.reads += 1;
                        (VIRTIO_BLK_S_OK, data_len)
                    }
                    None => (VIRTIO_BLK_S_IOERR, 0),
                }
            }
            VIRTIO_BLK_T_OUT => match range(sector, reader.available_bytes())
                .and_then(|r| reader.read_exact(&mut self.disk[r]).ok())
            {
                Some(()) => {
                    stats.writes += 1;
                    (VIRTIO_BLK_S_OK, 0)
                }
                None => (VIRTIO_BLK_S_IOERR, 0),
            },
            VIRTIO_BLK_T_FLUSH => {
                stats.flushes += 1;
                (VIRTIO_BLK_S_OK, 0)
            }
            VIRTIO_BLK_T_GET_ID => {
                let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
                id[..self.preset.len()].copy_from_slice(self.preset.as_bytes());
                let n = data_len.min(id.len());
                writer.write_all(&id[..n]).ok()?;
                stats.get_ids += 1;
                (VIRTIO_BLK_S_OK, n)
            }
            _ => (VIRTIO_BLK_S_UNSUPP, 0),
        };
        match code {
            VIRTIO_BLK_S_IOERR => {
                stats.ioerr += 1;
                if stats.ioerr <= 8 {
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
        status.write_all(&[code as u8]).ok()?;
        u32::try_from(written + 1).ok()
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
            .iter(mem)
            .map_err(|e| io::Error::other(format!("bad available ring: {e:?}")))?
            .collect();
        let any = !chains.is_empty();
        for chain in chains {
            let head = chain.head_index();
            let len = self.serve(chain).unwrap_or_else(|| {
                self.stats.get_mut().unwrap().malformed += 1;
                0
            });
            vring
                .add_used(head, len)
                .map_err(|e| io::Error::other(format!("add_used: {e:?}")))?;
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
        let bytes = self.config.bytes();
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

/// Serves one connection on `socket` as the disk of preset `preset` (one of
/// [`PRESET_NAMES`]), then prints the requests it served. `None` if there is no such preset.
pub(crate) fn run(socket: &str, preset: &str) -> Option<ExitCode> {
    let &(name, config) = PRESETS.iter().find(|(name, _)| *name == preset)?;
    let backend = Arc::new(RwLock::new(BadBlk::new(name, config)));
    eprintln!("baddev: listening on {socket}, blk config={name}: {config:?}");
    let result = crate::serve(socket, backend.clone());
    let b = backend.read().unwrap();
    let s = b.stats.read().unwrap();
    eprintln!(
        "baddev: {name}: {} config reads; served {} reads, {} writes, {} flushes, {} get_ids; \
         {} unsupported, {} I/O errors, {} malformed",
        s.config_reads,
        s.reads,
        s.writes,
        s.flushes,
        s.get_ids,
        s.unsupported,
        s.ioerr,
        s.malformed
    );
    Some(result)
}
