// SPDX-License-Identifier: GPL-2.0

//! The rng model: a virtio-rng device (`-device vhost-user-rng-pci`) that lies about used
//! lengths.
//!
//! QEMU's own devices never report a wrong used length, so a guest driver's checks of it are
//! never exercised. This model serves the one queue of a virtio-rng device: it fills every
//! writable byte of each request with 0x5a (`Z`, not random: the guest can tell the device's
//! bytes from anything else), and then reports a used length chosen by `--lie`:
//!
//! - `honest`: the size of the writable buffers, as a real device would;
//! - `oversize`: twice that (at least one byte more);
//! - `zero`: 0, although it wrote the whole buffer;
//! - `huge`: 0xffffffff;
//! - `cycle`: honest, oversize, zero, huge, honest, ... request by request.

use std::io;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackendMut, VringRwLock, VringT};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
use virtio_queue::QueueOwnedT;
use vm_memory::{Bytes, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{EventConsumer, EventNotifier};

/// The byte written everywhere the device may write.
const FILL: u8 = 0x5a;
/// The ring size offered to the frontend (QEMU's vhost-user-rng asks for 4).
const QUEUE_SIZE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lie {
    Honest,
    Oversize,
    Zero,
    Huge,
}

const LIES: [Lie; 4] = [Lie::Honest, Lie::Oversize, Lie::Zero, Lie::Huge];

impl Lie {
    fn name(self) -> &'static str {
        match self {
            Lie::Honest => "honest",
            Lie::Oversize => "oversize",
            Lie::Zero => "zero",
            Lie::Huge => "huge",
        }
    }

    /// The used length to report for a request whose writable buffers hold `cap` bytes, all
    /// of which were written.
    fn used_len(self, cap: u32) -> u32 {
        match self {
            Lie::Honest => cap,
            Lie::Oversize => cap.saturating_mul(2).max(cap.saturating_add(1)),
            Lie::Zero => 0,
            Lie::Huge => u32::MAX,
        }
    }
}

/// `--lie`: one lie for every request, or all of them in turn.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Always(Lie),
    Cycle,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        if s == "cycle" {
            return Some(Mode::Cycle);
        }
        LIES.iter()
            .find(|l| l.name() == s)
            .map(|&l| Mode::Always(l))
    }

    fn lie(self, request: u64) -> Lie {
        match self {
            Mode::Always(l) => l,
            Mode::Cycle => LIES[(request % LIES.len() as u64) as usize],
        }
    }
}

struct BadRng {
    mode: Mode,
    event_idx: bool,
    mem: Option<GuestMemoryAtomic<GuestMemoryMmap>>,
    /// Requests answered, per lie (indexed like `LIES`).
    answered: [u64; 4],
    /// Chains that were not a plain writable buffer: returned with length 0.
    malformed: u64,
}

impl BadRng {
    fn requests(&self) -> u64 {
        self.answered.iter().sum()
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
        for chain in chains {
            let head = chain.head_index();
            let mut cap: u32 = 0;
            let mut ok = true;
            for desc in chain.clone() {
                if !desc.is_write_only() {
                    ok = false;
                    continue;
                }
                let fill = vec![FILL; desc.len() as usize];
                if mem.write_slice(&fill, desc.addr()).is_err() {
                    ok = false;
                    continue;
                }
                cap = cap.saturating_add(desc.len());
            }
            let len = if ok {
                let n = self.requests();
                let lie = self.mode.lie(n);
                self.answered[LIES.iter().position(|&l| l == lie).unwrap_or(0)] += 1;
                let len = lie.used_len(cap);
                if n < 8 {
                    eprintln!(
                        "baddev: request {}: wrote {cap} bytes, reported {len} ({})",
                        n + 1,
                        lie.name()
                    );
                }
                len
            } else {
                self.malformed += 1;
                0
            };
            vring
                .add_used(head, len)
                .map_err(|e| io::Error::other(format!("add_used: {e:?}")))?;
        }
        Ok(any)
    }
}

impl VhostUserBackendMut for BadRng {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        1
    }

    fn max_queue_size(&self) -> usize {
        QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_INDIRECT_DESC)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ
    }

    fn set_event_idx(&mut self, enabled: bool) {
        self.event_idx = enabled;
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
        if evset != EventSet::IN || device_event != 0 {
            return Err(io::Error::other(format!(
                "unexpected event {device_event} ({evset:?})"
            )));
        }
        crate::drain(&vrings[0], self.event_idx, |vring| {
            self.process_queue(vring)
        })
    }
}

/// The values `--lie` takes.
pub(crate) const LIE_NAMES: &str = "honest|oversize|zero|huge|cycle";

/// Serves one connection on `socket` with the lie `lie` (one of [`LIE_NAMES`]), then prints
/// how many requests were answered with which lie. `None` if `lie` is not a lie.
pub(crate) fn run(socket: &str, lie: &str) -> Option<ExitCode> {
    let mode = Mode::parse(lie)?;
    let backend = Arc::new(RwLock::new(BadRng {
        mode,
        event_idx: false,
        mem: None,
        answered: [0; 4],
        malformed: 0,
    }));
    eprintln!("baddev: listening on {socket}, lie={mode:?}");
    let result = crate::serve(socket, backend.clone());
    let b = backend.read().unwrap();
    let counts: Vec<String> = LIES
        .iter()
        .zip(b.answered)
        .map(|(l, n)| format!("{}={n}", l.name()))
        .collect();
    eprintln!(
        "baddev: answered {} requests ({}), {} malformed",
        b.requests(),
        counts.join(" "),
        b.malformed
    );
    Some(result)
}
