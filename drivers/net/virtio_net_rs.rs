// SPDX-License-Identifier: GPL-2.0

//! Network driver for virtio, in Rust: the twin of `virtio_net.c`.
//!
//! The device has queue pairs of a receive queue (`input.N`) and a transmit queue
//! (`output.N`): one, or with `MQ` (which needs `CTRL_VQ`) `max_virtqueue_pairs` of them, up
//! to 16 here (a device with more is driven with one, `MQ` declined); and, with `CTRL_VQ`, a
//! control queue (`control`), last, in C's order (`input.0`, `output.0`, `input.1`, ...). Every
//! packet on the pairs starts with a virtio-net header: 12 bytes on a modern device or with `MRG_RXBUF`, else 10. It carries the
//! offloads (checksum, segmentation) each way.
//!
//! - **Receive** (the `rx` module): the ring is kept full of empty buffers: small buffers,
//!   mergeable buffers (`MRG_RXBUF`) or big packets (guest GSO or a large MTU), chosen as C
//!   chooses them. The queue's interrupt schedules NAPI; the poll takes the filled buffers
//!   back, builds the skbs, applies the header's offload metadata (the guest offloads C
//!   negotiates: checksum, TSO, ECN, UFO, USO), hands the frames to GRO, refills the ring and
//!   re-arms the interrupt when it is done. The `napi_weight` parameter is its budget, as in C.
//!   With mergeable buffers, each receive queue shows the size of its next buffers in
//!   `queues/rx-N/virtio_net/mergeable_rx_buffer_size`, as C's.
//!   The MTU is the device's (`VIRTIO_NET_F_MTU`) when it has one.
//! - **Transmit** (in [`tx`]): the header, the linear part and the paged fragments of each skb
//!   go to the ring as the segments of one request, and the device is notified once per batch
//!   (`xmit_more`). Sent skbs are freed by a NAPI poll on the queue's interrupt, with byte
//!   queue limits (`napi_tx`, the default), or else on the next transmit (`napi_tx=0`). As in
//!   C, root may write `napi_tx` at any time; a device probed after the change uses it. The
//!   host offloads C negotiates (`CSUM`, `HOST_TSO4`/`6`, `HOST_ECN`, `HOST_UFO`, `HOST_USO`)
//!   follow the `csum` and `gso` parameters.
//! - **Queue pairs** (`MQ`): the net device has one transmit and one receive queue per pair,
//!   each pair its NAPI contexts (a [`NapiVec`] each way); a packet goes to the send queue of
//!   the transmit queue the stack chose for it, which is stopped, woken and BQL-accounted on
//!   its own. As C, as many pairs are in use as there are CPUs (at most the device's), which
//!   the device is told through the control queue (`VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET`) and
//!   `ethtool -L combined N` changes. As C's `virtnet_set_affinity`, each pair in use gets a
//!   share of the online CPUs: its two interrupts go there (with that affinity hint; on
//!   virtio-pci, where each queue has its interrupt) and its transmit queue is theirs (XPS);
//!   at probe, after `ethtool -L`, on restore and when a CPU comes online or dies (CPU
//!   hotplug, through the net device's `cpu_*` callbacks; a CPU about to go down clears the
//!   hints, as C).
//! - **ethtool** (in [`ethtool`]): driver information, link settings (`SPEED_DUPLEX`), link,
//!   ring sizes, channels (`-l`, `-L`) and C's per-queue statistics (`-S`).
//! - **Link**: the MAC address comes from config space (`VIRTIO_NET_F_MAC`, else random) and
//!   the carrier from `status` (`VIRTIO_NET_F_STATUS`, else always up), re-read on a config
//!   change.
//! - **Control** (`VIRTIO_NET_F_CTRL_VQ`, see [`ctrl`]): the receive filter (promiscuous,
//!   all-multicast, the unicast and multicast tables), the VLAN filter and the address are
//!   programmed through the control queue, and announcement requests are acknowledged, as C.
//!
//! - **RSS** (`RSS`, `HASH_REPORT`, in [`rss`]): the indirection table, key and hash types go
//!   to the device through the control queue (`ethtool -x/-X`, `-n/-N rx-flow-hash`), and the
//!   reported hash to the skb with `rxhash` on, as C. `HASH_REPORT` is taken only with `RSS`.
//!
//! Not yet, where C has them: the page-end hole C gives the last
//! mergeable buffer of a page (the buffers come from the shared page-fragment cache, whose page
//! ends the driver does not see), `HASH_REPORT` without `RSS`, and XDP. XDP needs what
//! `kernel::net` does not have yet: `ndo_bpf` and `ndo_xdp_xmit`, a `bpf_prog` handle that runs
//! a program on an `xdp_buff` built over a receive buffer (with `XDP_PACKET_HEADROOM` reserved
//! in it, as C's buffers then are), `xdp_rxq_info` registration per receive queue, transmit
//! queues of their own for `XDP_TX` and redirects, and `xdp_do_flush` at the end of a poll.
//!
//! The net device is registered once the device is live, and unregistered first on remove.
//! Freeze and restore keep it (same interface, same addresses), as C's.

use kernel::{
    c_str,
    cpumask::{cpus_read_locked, Cpumask, CpusLocked},
    net::{
        dev::{
            num_online_cpus, AttrWriter, Features, LinkStats, NetDevice, Operations, Registration,
            RxMode, RxQueueAttribute, RxQueueAttributes, RxQueueGroup, ETH_ALEN, ETH_MAX_MTU,
            ETH_MIN_MTU,
        },
        napi::{NapiVec, NAPI_POLL_WEIGHT},
        skb::{SkBuff, ETH_HLEN, MAX_SKB_FRAGS},
    },
    net_virtio::{NetConfig, TxSkb},
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::Mutex,
    virtio::{self, config_field, Affinity, Device, Probe, QueueSpec, Queues, Validate, Virtqueue},
};

#[path = "virtio_net_rs/ctrl.rs"]
mod ctrl;
#[path = "virtio_net_rs/ethtool.rs"]
mod ethtool;
#[path = "virtio_net_rs/rss.rs"]
mod rss;
#[path = "virtio_net_rs/rx.rs"]
mod rx;
#[path = "virtio_net_rs/tx.rs"]
mod tx;

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use ctrl::Ctrl;
use rss::Rss;
use rx::{Mode, Ring, RxQueue};
use tx::SendQueue;

kernel::module_virtio_driver! {
    type: VirtioNet,
    name: "virtio_net_rs",
    author: "virtio-rs authors",
    description: "Virtio network driver (Rust)",
    license: "GPL",
    params: {
        napi_weight: i32 {
            default: 64,
            description: "The budget of a receive NAPI poll (as virtio_net's napi_weight)",
        },
        csum: bool {
            default: true,
            description: "Checksum offload on transmit, if the device has it (as virtio_net's csum)",
        },
        gso: bool {
            default: true,
            description: "Segmentation offload (TSO) on transmit, if the device has it (as virtio_net's gso)",
        },
        napi_tx: bool {
            default: true,
            description: "Free sent packets from a NAPI poll on the transmit interrupt, with byte queue limits (as virtio_net's napi_tx; writable, read when a device is probed)",
            permissions: 0o644,
        },
    },
}

/// The budget of a receive poll: the `napi_weight` parameter (negative counts as 0).
fn napi_weight() -> u32 {
    (*module_parameters::napi_weight.value()).max(0) as u32
}

/// The module parameters, as in `virtio_net.c`.
mod param {
    use super::module_parameters as p;

    /// Whether checksum offload starts on, when the device has it.
    pub(crate) fn csum() -> bool {
        *p::csum.value()
    }
    /// Whether segmentation offload starts on, when the device has it.
    pub(crate) fn gso() -> bool {
        *p::gso.value()
    }
    /// Whether sent packets are freed by a NAPI poll (else late, orphaned).
    pub(crate) fn napi_tx() -> bool {
        p::napi_tx.value()
    }
}

/// The transmit offloads the device offers (`hw_features`) and those that start on, as C's
/// `virtnet_probe`.
fn tx_features(dev: &Device) -> (Features, Features) {
    let (mut hw, mut on) = (Features::EMPTY, Features::HIGHDMA);
    if !dev.has_feature(f::CSUM) {
        return (hw, on);
    }
    // "This opens up the world of extra features."
    hw |= Features::HW_CSUM | Features::SG;
    if param::csum() {
        on |= Features::HW_CSUM | Features::SG;
    }
    if dev.has_feature(f::GSO) {
        hw |= Features::TSO | Features::TSO_ECN | Features::TSO6;
    }
    for (bit, feature) in [
        (f::HOST_TSO4, Features::TSO),
        (f::HOST_TSO6, Features::TSO6),
        (f::HOST_ECN, Features::TSO_ECN),
        (f::HOST_USO, Features::GSO_UDP_L4),
    ] {
        if dev.has_feature(bit) {
            hw |= feature;
        }
    }
    on |= Features::GSO_ROBUST;
    if param::gso() {
        // Without `csum`, `register_netdev` turns these off again, as in C.
        on |= hw & Features::ALL_TSO;
    }
    (hw, on)
}

/// Feature bits (`include/uapi/linux/virtio_net.h`, `virtio_config.h`).
mod f {
    /// The device checksums packets it is given with a partial checksum.
    pub(crate) const CSUM: u32 = 0;
    pub(crate) const GUEST_CSUM: u32 = 1;
    /// The guest offloads may be changed through the control queue.
    pub(crate) const CTRL_GUEST_OFFLOADS: u32 = 2;
    pub(crate) const MTU: u32 = 3;
    pub(crate) const MAC: u32 = 5;
    /// `VIRTIO_NET_F_GSO` (legacy only), negotiated as C does.
    pub(crate) const GSO: u32 = 6;
    pub(crate) const GUEST_TSO4: u32 = 7;
    pub(crate) const GUEST_TSO6: u32 = 8;
    pub(crate) const GUEST_ECN: u32 = 9;
    pub(crate) const GUEST_UFO: u32 = 10;
    /// The device segments TCP over IPv4, TCP over IPv6, TCP with ECN, UDP (fragmentation).
    pub(crate) const HOST_TSO4: u32 = 11;
    pub(crate) const HOST_TSO6: u32 = 12;
    pub(crate) const HOST_ECN: u32 = 13;
    pub(crate) const HOST_UFO: u32 = 14;
    pub(crate) const MRG_RXBUF: u32 = 15;
    pub(crate) const STATUS: u32 = 16;
    pub(crate) const CTRL_VQ: u32 = 17;
    pub(crate) const CTRL_RX: u32 = 18;
    pub(crate) const CTRL_VLAN: u32 = 19;
    pub(crate) const GUEST_ANNOUNCE: u32 = 21;
    pub(crate) const MQ: u32 = 22;
    pub(crate) const CTRL_MAC_ADDR: u32 = 23;
    pub(crate) const RSS: u32 = 60;
    pub(crate) const HASH_REPORT: u32 = 57;
    pub(crate) const NOTF_COAL: u32 = 53;
    pub(crate) const VQ_NOTF_COAL: u32 = 52;
    pub(crate) const GUEST_USO4: u32 = 54;
    pub(crate) const GUEST_USO6: u32 = 55;
    /// The device segments UDP (`GSO_UDP_L4`).
    pub(crate) const HOST_USO: u32 = 56;
    /// `speed` and `duplex` in config space.
    pub(crate) const SPEED_DUPLEX: u32 = 63;
    /// `VIRTIO_F_ANY_LAYOUT`: legacy devices take the header and the frame in one buffer.
    pub(crate) const ANY_LAYOUT: u32 = 27;
}

/// `VIRTIO_NET_S_LINK_UP`, in `status`.
const S_LINK_UP: u16 = 1;
/// `VIRTIO_NET_S_ANNOUNCE`, in `status`: the device asks the driver to announce itself.
const S_ANNOUNCE: u16 = 2;

/// The features that need the control queue, with their names for the message C prints when
/// a device offers one without it (`virtnet_validate_features`).
const NEED_CTRL_VQ: &[(u32, &str)] = &[
    (f::CTRL_RX, "VIRTIO_NET_F_CTRL_RX"),
    (f::CTRL_VLAN, "VIRTIO_NET_F_CTRL_VLAN"),
    (f::GUEST_ANNOUNCE, "VIRTIO_NET_F_GUEST_ANNOUNCE"),
    (f::MQ, "VIRTIO_NET_F_MQ"),
    (f::CTRL_MAC_ADDR, "VIRTIO_NET_F_CTRL_MAC_ADDR"),
    (f::RSS, "VIRTIO_NET_F_RSS"),
    (f::HASH_REPORT, "VIRTIO_NET_F_HASH_REPORT"),
    (f::NOTF_COAL, "VIRTIO_NET_F_NOTF_COAL"),
    (f::VQ_NOTF_COAL, "VIRTIO_NET_F_VQ_NOTF_COAL"),
];

/// The virtio-net header of a modern device (`struct virtio_net_hdr_v1`).
const HDR_LEN_MODERN: usize = 12;
/// The virtio-net header with `HASH_REPORT` (`struct virtio_net_hdr_v1_hash`).
const HDR_LEN_HASH: usize = 20;
/// The virtio-net header of a legacy device without `MRG_RXBUF` (`struct virtio_net_hdr`).
const HDR_LEN_LEGACY: usize = 10;
/// The MTU of Ethernet (`ETH_DATA_LEN`).
const ETH_DATA_LEN: usize = 1500;
/// The largest frame a small buffer takes: `ETH_HLEN + VLAN_HLEN + ETH_DATA_LEN`, as C's
/// `GOOD_PACKET_LEN`.
pub(crate) const GOOD_PACKET_LEN: usize = ETH_HLEN + 4 + ETH_DATA_LEN;
/// The largest IP packet (`IP_MAX_MTU`).
const IP_MAX_MTU: usize = 0xffff;

/// One device: its net device, whose private data is the NIC.
#[pin_data]
struct VirtioNet {
    netdev: Registration<Nic>,
}

/// The private data of the net device.
#[pin_data]
struct Nic {
    /// The receive queues (`input.N`), polled by NAPI: as many as the device has pairs.
    #[pin]
    rx: NapiVec<RxQueue>,
    /// The send queues (`output.N`), polled by NAPI in `napi_tx` mode, one per receive queue.
    #[pin]
    tx: NapiVec<SendQueue>,
    /// The queue pairs in use (C's `curr_queue_pairs`), at least 1 and at most the device's:
    /// changed under RTNL (`ethtool -L`).
    curr_pairs: AtomicUsize,
    /// What ethtool reports: bus name, speed and duplex.
    settings: ethtool::Settings,
    /// The guest offloads the device can turn off (`CTRL_GUEST_OFFLOADS`), as
    /// `VIRTIO_NET_F_GUEST_*` bits; 0 without.
    guest_offloads: u64,
    /// How the receive ring was set up, for restore.
    rx_setup: RxSetup,
    /// The control queue, with `CTRL_VQ`.
    ctrl: Option<Pin<KBox<Ctrl>>>,
    /// Whether the device takes the receive filter (`CTRL_RX`) and the address
    /// (`CTRL_MAC_ADDR`) over the control queue.
    ctrl_rx: bool,
    ctrl_mac: bool,
    /// Whether the number of pairs in use goes to the device (`MQ`, with the control queue).
    ctrl_mq: bool,
    /// RSS and hash reports, with `RSS` or `HASH_REPORT` (both need the control queue).
    rss: Option<Rss>,
    /// Whether the pairs' interrupts have an affinity hint (C's `affinity_hint_set`).
    affinity_set: AtomicBool,
    /// Where each pair's receive and send queue interrupts go (set in process context, which
    /// the queues' IRQ-safe locks are not); replaced with the queues on restore.
    #[pin]
    irqs: Mutex<KVec<(Affinity, Affinity)>>,
}

impl Nic {
    /// The queue pairs in use.
    fn pairs(&self) -> usize {
        self.curr_pairs.load(Relaxed)
    }

    /// Uses `pairs` queue pairs (C's `virtnet_set_queues`): tells the device (with `MQ`),
    /// then, if the interface is up, lets the refill work fill the receive queues that are
    /// new. The stack's view of the queues is the caller's to change.
    fn set_queues(&self, dev: &NetDevice, pairs: usize) -> Result {
        if let (Some(ctrl), true) = (&self.ctrl, self.ctrl_mq) {
            // As C: with `RSS` and a table the user did not set, the table spread over the
            // pairs goes to the device, with the pairs in use (`max_tx_vq`).
            if let Some(rss) = self.rss.as_ref().filter(|r| r.has_rss) {
                if !dev.is_rxfh_configured() {
                    rss.set_pairs(ctrl, pairs).map_err(|_| {
                        pr_warn!(
                            "{}: Fail to set num of queue pairs to {}, because committing RSS failed\n",
                            dev.name(),
                            pairs
                        );
                        EINVAL
                    })?;
                    return self.pairs_set(dev, pairs);
                }
            }
            ctrl.set_queue_pairs(pairs as u16).map_err(|e| {
                pr_warn!(
                    "{}: Fail to set num of queue pairs to {}: {:?}\n",
                    dev.name(),
                    pairs,
                    e
                );
                EINVAL
            })?;
            if let Some(rss) = &self.rss {
                rss.note_pairs(pairs);
            }
        }
        self.pairs_set(dev, pairs)
    }

    /// The pairs in use are `pairs` now: the refill work fills those that are new.
    fn pairs_set(&self, dev: &NetDevice, pairs: usize) -> Result {
        self.curr_pairs.store(pairs, Relaxed);
        if dev.is_running() {
            dev.schedule_work(0);
        }
        Ok(())
    }

    /// Spreads the pairs in use over the online CPUs, as C's `virtnet_set_affinity`: pair `i`
    /// gets the next `stride` CPUs (one more for the first `stragglers` pairs), wrapping
    /// around when there are more pairs than CPUs; its two queues' interrupts go there, and
    /// those CPUs send on its transmit queue (XPS). The pairs out of use keep what they had.
    fn set_affinity(&self, dev: &NetDevice, cpus: &CpusLocked) {
        let Ok(mut mask) = Cpumask::new(GFP_KERNEL) else {
            self.clean_affinity();
            return;
        };
        let pairs = self.pairs().max(1);
        let num_cpu = cpus.num_online() as usize;
        let stride = (num_cpu / pairs).max(1);
        let stragglers = if num_cpu >= pairs { num_cpu % pairs } else { 0 };
        let mut cpu = cpus.online().cycle();
        let irqs = self.irqs.lock();
        for (i, (rx, tx)) in irqs.iter().take(pairs).enumerate() {
            let group = stride + usize::from(i < stragglers);
            for c in cpu.by_ref().take(group) {
                // An online CPU is a CPU number.
                let _ = mask.set(c);
            }
            // As C, failures are not reported: the interrupts stay where they were.
            let _ = rx.set(Some(&mask));
            let _ = tx.set(Some(&mask));
            let _ = dev.set_xps_queue(cpus, &mask, i as u16);
            mask.clear();
        }
        self.affinity_set.store(true, Relaxed);
    }

    /// Clears the interrupts' affinity hints of every pair, if they were set, as C's
    /// `virtnet_clean_affinity` (the interrupts stay where they are, and so does XPS).
    fn clean_affinity(&self) {
        if self.affinity_set.swap(false, Relaxed) {
            for (rx, tx) in self.irqs.lock().iter() {
                let _ = rx.set(None);
                let _ = tx.set(None);
            }
        }
    }

    /// Sends the RSS or hash configuration (with `RSS` or `HASH_REPORT`), as C's probe does.
    fn commit_rss(&self) {
        if let (Some(rss), Some(ctrl)) = (&self.rss, &self.ctrl) {
            if rss.commit_current(ctrl).is_err() {
                pr_warn!("virtio_net_rs: RSS disabled because committing failed.\n");
            }
        }
    }

    /// Brings every queue pair up, as C's `virtnet_open`: the receive rings of the pairs in
    /// use filled (if memory is short, the refill work keeps trying), every poll enabled.
    fn up(&self, dev: &NetDevice) {
        dev.enable_work();
        let pairs = self.pairs();
        for (i, (rx, tx)) in self.rx.iter().zip(self.tx.iter()).enumerate() {
            if i < pairs && !rx.data().fill(GFP_KERNEL).1 {
                dev.schedule_work(0);
            }
            rx.enable();
            // Takes what came while the device was down, refills, and re-enables the interrupt.
            rx.schedule();
            SendQueue::open(tx);
        }
    }

    /// Stops every poll, as C's `virtnet_close`.
    fn down(&self, dev: &NetDevice) {
        dev.disable_work();
        for (rx, tx) in self.rx.iter().zip(self.tx.iter()) {
            rx.disable();
            SendQueue::stop(tx);
        }
    }
}

/// C's `virtio_net_mrg_rx_group`: with mergeable buffers, each receive queue shows the size
/// its next buffers get, in `queues/rx-N/virtio_net/mergeable_rx_buffer_size`.
const MRG_RX_BUFFER_SIZE: u32 = 0;
static MRG_RX_BUFFER_SIZE_ATTR: RxQueueAttribute<Nic> =
    RxQueueAttribute::new::<MRG_RX_BUFFER_SIZE>(c_str!("mergeable_rx_buffer_size"));
static MRG_RX_ATTRS: RxQueueAttributes<Nic, 2> =
    RxQueueAttributes::new([Some(&MRG_RX_BUFFER_SIZE_ATTR), None]);
static MRG_RX_GROUP: RxQueueGroup<Nic> = RxQueueGroup::new(c_str!("virtio_net"), &MRG_RX_ATTRS);

#[vtable]
impl Operations for Nic {
    fn open(&self, dev: &NetDevice) -> Result {
        self.up(dev);
        dev.start_all_queues();
        Ok(())
    }

    fn stop(&self, dev: &NetDevice) -> Result {
        self.down(dev);
        Ok(())
    }

    fn work(&self, dev: &NetDevice) {
        // As C's `refill_work`: the receive queues in use.
        for rx in self.rx.iter().take(self.pairs()) {
            rx::refill(rx, dev);
        }
    }

    fn start_xmit(&self, dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff> {
        // The queue the stack chose (below the pairs in use), whose lock it holds.
        match self.tx.get(usize::from(skb.queue_mapping())) {
            Some(tx) => SendQueue::xmit(tx, dev, skb),
            // Not one of ours: cannot happen (as many transmit queues as send queues).
            None => Ok(()),
        }
    }

    fn get_stats64(&self, _dev: &NetDevice, stats: &mut LinkStats) {
        // As C: every pair, in use or not.
        for (rx, tx) in self.rx.iter().zip(self.tx.iter()) {
            rx.data().stats(stats);
            tx.data().stats(stats);
        }
    }

    fn set_features(&self, dev: &NetDevice, features: Features) -> Result {
        // As C's `virtnet_set_features`: hardware GRO goes on and off through the control
        // queue (`CTRL_GUEST_OFFLOADS`, the only way it is in `hw_features`); so does receive
        // hashing (`RSS` or `HASH_REPORT`), below. The transmit offloads need no device command.
        let changed = dev.features() ^ features;
        if changed.intersects(Features::GRO_HW) {
            let ctrl = self.ctrl.as_ref().ok_or(EINVAL)?;
            let offloads = if features.intersects(Features::GRO_HW) {
                self.guest_offloads
            } else {
                self.guest_offloads & !GRO_HW_OFFLOADS
            };
            ctrl.set_guest_offloads(offloads).map_err(|e| {
                pr_warn!("virtio_net_rs: failed to set guest offloads: {:?}\n", e);
                EINVAL
            })?;
        }
        if changed.intersects(Features::RXHASH) {
            // As C: the hash types chosen, or none.
            let (Some(rss), Some(ctrl)) = (&self.rss, &self.ctrl) else {
                return Err(EINVAL);
            };
            rss.set_rxhash(ctrl, features.intersects(Features::RXHASH))
                .map_err(|_| EINVAL)?;
        }
        Ok(())
    }

    fn tx_timeout(&self, dev: &NetDevice, queue: u32) {
        if let Some(tx) = self.tx.get(queue as usize) {
            tx.data().timeout(dev, queue);
        }
    }

    // CPU hotplug, as C's `virtnet_cpu_online`, `virtnet_cpu_down_prep` and
    // `virtnet_cpu_dead`: the pairs spread over the CPUs online again.
    fn cpu_online(&self, dev: &NetDevice, cpus: &CpusLocked, _cpu: u32) {
        self.set_affinity(dev, cpus);
    }

    fn cpu_down_prep(&self, _dev: &NetDevice, _cpus: &CpusLocked, _cpu: u32) {
        self.clean_affinity();
    }

    fn cpu_dead(&self, dev: &NetDevice, cpus: &CpusLocked, _cpu: u32) {
        self.set_affinity(dev, cpus);
    }

    fn set_rx_mode(&self, _dev: &NetDevice, mode: &RxMode) {
        if let (Some(ctrl), true) = (&self.ctrl, self.ctrl_rx) {
            ctrl.set_rx_mode(mode);
        }
    }

    // As C, a VLAN the device refused is reported, not failed: the stack would only undo it.
    fn vlan_rx_add_vid(&self, _dev: &NetDevice, vid: u16) -> Result {
        if let Some(Err(e)) = self.ctrl.as_ref().map(|c| c.vlan(true, vid)) {
            pr_warn!("virtio_net_rs: failed to add VLAN ID {}: {:?}\n", vid, e);
        }
        Ok(())
    }

    fn vlan_rx_kill_vid(&self, _dev: &NetDevice, vid: u16) -> Result {
        if let Some(Err(e)) = self.ctrl.as_ref().map(|c| c.vlan(false, vid)) {
            pr_warn!("virtio_net_rs: failed to kill VLAN ID {}: {:?}\n", vid, e);
        }
        Ok(())
    }

    // As C: through the control queue with `CTRL_MAC_ADDR`, else only here (a legacy device's
    // writable config `mac`, which C also writes, is not supported).
    fn set_mac_address(&self, _dev: &NetDevice, addr: &[u8; ETH_ALEN]) -> Result {
        match (&self.ctrl, self.ctrl_mac) {
            (Some(ctrl), true) => ctrl.set_mac(addr).map_err(|e| {
                pr_warn!(
                    "virtio_net_rs: failed to set mac address by vq command: {:?}\n",
                    e
                );
                EINVAL
            }),
            _ => Ok(()),
        }
    }

    fn rx_queue_attr_show(
        &self,
        _dev: &NetDevice,
        queue: u32,
        id: u32,
        w: &mut AttrWriter<'_>,
    ) -> Result {
        let rx = self.rx.get(queue as usize).ok_or(EINVAL)?;
        match (id, rx.data().mergeable_buf_len()) {
            (MRG_RX_BUFFER_SIZE, Some(len)) => writeln!(w, "{len}").map_err(|_| EINVAL),
            _ => Err(EINVAL),
        }
    }
}

/// The guest offloads that are hardware GRO (C's `GUEST_OFFLOAD_GRO_HW_MASK`): turned off
/// together when the user turns `rx-gro-hw` off.
const GRO_HW_OFFLOADS: u64 = (1 << f::GUEST_TSO4)
    | (1 << f::GUEST_TSO6)
    | (1 << f::GUEST_ECN)
    | (1 << f::GUEST_UFO)
    | (1 << f::GUEST_USO4)
    | (1 << f::GUEST_USO6);

/// How the receive ring is set up: chosen in probe, the same again on restore.
#[derive(Clone, Copy)]
struct RxSetup {
    hdr_len: usize,
    mergeable: bool,
    big: Option<usize>,
    largest: usize,
}

/// The most queue pairs this driver uses: a device with more (`max_virtqueue_pairs`) is
/// driven with one pair, `MQ` declined (the queues' names are static strings).
const MAX_PAIRS: usize = 16;

/// The names of the queues of each pair, as C's: `input.N`, `output.N`.
macro_rules! queue_names {
    ($($n:literal),*) => {
        [$((c_str!(concat!("input.", $n)), c_str!(concat!("output.", $n)))),*]
    };
}
const QUEUE_NAMES: [(&CStr, &CStr); MAX_PAIRS] = queue_names!(
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"
);

/// The receive rings and the transmit queues of `pairs` pairs, and the control queue (with
/// `CTRL_VQ`), in C's order: `input.0`, `output.0`, `input.1`, ..., `control`.
type FoundQueues = (
    KVec<Option<(Ring, Mode)>>,
    KVec<Option<Virtqueue<TxSkb, ()>>>,
    Option<Virtqueue<KVec<u8>, KBox<u8>>>,
);

fn find_queues(dev: &Device<Probe>, rx: RxSetup, pairs: usize) -> Result<FoundQueues> {
    let has_cvq = dev.has_feature(f::CTRL_VQ);
    let mut specs = KVec::with_capacity(2 * pairs + 1, GFP_KERNEL)?;
    for &(input, output) in QUEUE_NAMES.iter().take(pairs) {
        specs.push(QueueSpec::new(input), GFP_KERNEL)?;
        specs.push(QueueSpec::new(output), GFP_KERNEL)?;
    }
    if has_cvq {
        // As C: no callback, the sender polls.
        specs.push(
            QueueSpec::new(c_str!("control")).without_callback(),
            GFP_KERNEL,
        )?;
    }
    let mut queues: Queues<'_> = dev.find_vqs(&specs)?;
    let mut rings = KVec::with_capacity(pairs, GFP_KERNEL)?;
    let mut txvqs = KVec::with_capacity(pairs, GFP_KERNEL)?;
    for i in 0..pairs {
        let ring = Ring::take(
            &mut queues,
            2 * i,
            rx.hdr_len,
            rx.mergeable,
            rx.big,
            rx.largest,
        )?;
        rings.push(Some(ring), GFP_KERNEL)?;
        txvqs.push(Some(queues.take(2 * i + 1)?), GFP_KERNEL)?;
    }
    let cvq = if has_cvq {
        Some(queues.take(2 * pairs)?)
    } else {
        None
    };
    Ok((rings, txvqs, cvq))
}

/// The queue pairs of the device: `max_virtqueue_pairs` with `MQ` (which `validate` kept only
/// if it is at most [`MAX_PAIRS`]), else 1.
fn max_pairs(dev: &Device) -> Result<usize> {
    Ok(dev
        .read_opt(config_field!(NetConfig, max_virtqueue_pairs))?
        .map_or(1, |n| usize::from(n).clamp(1, MAX_PAIRS)))
}

/// Whether the link is up: `status` if the device reports it, else always.
fn link_up(dev: &Device) -> Result<bool> {
    Ok(dev
        .read_opt(config_field!(NetConfig, status))?
        .map_or(true, |s| s & S_LINK_UP != 0))
}

/// The bits of C's feature table (`VIRTNET_FEATURES`) this driver implements, in C's order,
/// then `extra` (the legacy table adds `GSO` and `ANY_LAYOUT`).
macro_rules! virtnet_features {
    ($($extra:expr),*) => {
        &[
            f::CSUM,
            f::GUEST_CSUM,
            f::MAC,
            f::HOST_TSO4,
            f::HOST_UFO,
            f::HOST_TSO6,
            f::HOST_ECN,
            f::GUEST_TSO4,
            f::GUEST_TSO6,
            f::GUEST_ECN,
            f::GUEST_UFO,
            f::HOST_USO,
            f::GUEST_USO4,
            f::GUEST_USO6,
            f::MRG_RXBUF,
            f::STATUS,
            f::CTRL_VQ,
            f::CTRL_RX,
            f::CTRL_VLAN,
            f::GUEST_ANNOUNCE,
            f::MQ,
            f::CTRL_MAC_ADDR,
            f::MTU,
            f::CTRL_GUEST_OFFLOADS,
            f::SPEED_DUPLEX,
            f::RSS,
            f::HASH_REPORT,
            $($extra,)*
        ]
    };
}

#[vtable]
impl virtio::Driver for VirtioNet {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::NET)];

    const FEATURES: &'static [u32] = virtnet_features!();
    const FEATURES_LEGACY: Option<&'static [u32]> = Some(virtnet_features!(f::GSO, f::ANY_LAYOUT));

    fn validate(dev: &Device<Validate>) -> Result {
        // As C, no multiqueue without the control queue or with no pair; and none with more
        // pairs than this driver has queue names for.
        if let Some(n) = dev.read_opt(config_field!(NetConfig, max_virtqueue_pairs))? {
            if usize::from(n) > MAX_PAIRS {
                pr_info!(
                    "virtio{}: {} queue pairs: more than {}, using one\n",
                    dev.index(),
                    n,
                    MAX_PAIRS
                );
                dev.clear_feature(f::MQ);
            }
        }
        // The RSS fields of config space, which `HASH_REPORT` alone also has, are gated on
        // `RSS` (`NetConfig`): no hash reports without it.
        if dev.has_feature(f::HASH_REPORT) && !dev.has_feature(f::RSS) {
            pr_info!(
                "virtio{}: VIRTIO_NET_F_HASH_REPORT without VIRTIO_NET_F_RSS: not supported\n",
                dev.index()
            );
            dev.clear_feature(f::HASH_REPORT);
        }
        // As C: an MTU below the minimum is ignored.
        if let Some(mtu) = dev.read_opt(config_field!(NetConfig, mtu))? {
            if u32::from(mtu) < ETH_MIN_MTU {
                dev.clear_feature(f::MTU);
            }
        }
        Ok(())
    }

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let mergeable = dev.has_feature(f::MRG_RXBUF);
        let hdr_len = if dev.has_feature(f::HASH_REPORT) {
            HDR_LEN_HASH
        } else if dev.is_modern() || mergeable {
            HDR_LEN_MODERN
        } else if dev.has_feature(f::ANY_LAYOUT) {
            HDR_LEN_LEGACY
        } else {
            // The header would need a buffer of its own.
            pr_err!(
                "virtio{}: legacy device without ANY_LAYOUT: not supported\n",
                dev.index()
            );
            return Err(EINVAL);
        };
        // C's `any_header_sg`: the header may share a buffer with the frame.
        let any_layout = dev.is_modern() || dev.has_feature(f::ANY_LAYOUT);
        let has_cvq = dev.has_feature(f::CTRL_VQ);
        if !has_cvq {
            for &(bit, name) in NEED_CTRL_VQ {
                if dev.has_feature(bit) {
                    pr_err!(
                        "virtio{}: device advertises feature {} but not VIRTIO_NET_F_CTRL_VQ\n",
                        dev.index(),
                        name
                    );
                    return Err(EINVAL);
                }
            }
        }
        // A legacy device uses the machine's byte order.
        let little_endian = dev.is_modern() || cfg!(target_endian = "little");
        let mtu = dev.read_opt(config_field!(NetConfig, mtu))?.map(u32::from);
        let max_mtu = mtu.unwrap_or(ETH_MAX_MTU);
        // As C's `virtnet_set_big_packets`: big packets if the device may send GSO packets or
        // frames above 1500 bytes (used only without mergeable buffers).
        let has = |bits: &[u32]| bits.iter().any(|&b| dev.has_feature(b));
        let guest_gso = has(&[f::GUEST_TSO4, f::GUEST_TSO6, f::GUEST_ECN, f::GUEST_UFO])
            || (dev.has_feature(f::GUEST_USO4) && dev.has_feature(f::GUEST_USO6));
        let mtu_len = mtu.unwrap_or(0) as usize;
        let big = if guest_gso {
            Some(MAX_SKB_FRAGS)
        } else if mtu_len > ETH_DATA_LEN {
            Some(mtu_len.div_ceil(PAGE_SIZE))
        } else {
            None
        };
        let largest = if big.is_some() {
            IP_MAX_MTU
        } else {
            max_mtu as usize
        };
        let setup = RxSetup {
            hdr_len,
            mergeable,
            big,
            largest,
        };
        let max_pairs = max_pairs(dev)?;
        let (mut rings, mut txvqs, cvq) = find_queues(dev, setup, max_pairs)?;
        let ctrl = match cvq {
            Some(cvq) => Some(KBox::pin_init(Ctrl::new(cvq, little_endian), GFP_KERNEL)?),
            None => None,
        };
        let ctrl_rx = has_cvq && dev.has_feature(f::CTRL_RX);
        let ctrl_mac = has_cvq && dev.has_feature(f::CTRL_MAC_ADDR);
        let ctrl_mq = has_cvq && dev.has_feature(f::MQ);
        // As C: as many pairs in use as there are CPUs, up to the device's.
        let pairs = max_pairs.min(num_online_cpus().max(1) as usize);
        // As C: the guest offloads the device has, which `CTRL_GUEST_OFFLOADS` may change.
        let guest_offloads = if has_cvq && dev.has_feature(f::CTRL_GUEST_OFFLOADS) {
            [
                f::GUEST_CSUM,
                f::GUEST_TSO4,
                f::GUEST_TSO6,
                f::GUEST_ECN,
                f::GUEST_UFO,
                f::GUEST_USO4,
                f::GUEST_USO6,
            ]
            .iter()
            .filter(|&&b| dev.has_feature(b))
            .fold(0u64, |m, &b| m | (1 << b))
        } else {
            0
        };
        let settings = ethtool::Settings::new(dev)?;
        // `NEED_CTRL_VQ` made sure of the control queue.
        let rss = Rss::probe(dev, pairs)?;
        let (rxfh_indir, rxfh_key) = rss
            .as_ref()
            .map_or((0, 0), |r| (u32::from(r.indir_size), u32::from(r.key_size)));
        let rxhash = if rss.is_some() {
            Features::RXHASH
        } else {
            Features::EMPTY
        };
        let mut irqs = KVec::with_capacity(max_pairs, GFP_KERNEL)?;
        for (ring, tx) in rings.iter().zip(txvqs.iter()) {
            if let (Some((ring, _)), Some(tx)) = (ring, tx) {
                irqs.push((ring.affinity(), tx.affinity()), GFP_KERNEL)?;
            }
        }
        let nq = max_pairs as u32;
        let reg = Registration::<Nic>::new_mq(dev.as_dev(), nq, nq, move |_ndev| {
            // The NAPI contexts join the device whose private area they are built in. The
            // rings are filled in `open`.
            let rx = NapiVec::new(max_pairs, napi_weight(), move |i| {
                let (ring, mode) = rings.get_mut(i).and_then(Option::take).ok_or(EINVAL)?;
                Ok(RxQueue::new(ring, mode, hdr_len, little_endian, i as u16))
            });
            let tx = NapiVec::new(max_pairs, NAPI_POLL_WEIGHT, move |i| {
                let vq = txvqs.get_mut(i).and_then(Option::take).ok_or(EINVAL)?;
                Ok(SendQueue::new(
                    vq,
                    hdr_len,
                    little_endian,
                    any_layout,
                    param::napi_tx(),
                    i as u16,
                ))
            });
            Ok(try_pin_init!(Nic {
                rx <- rx,
                tx <- tx,
                curr_pairs: AtomicUsize::new(pairs),
                settings,
                guest_offloads,
                rx_setup: setup,
                ctrl,
                ctrl_rx,
                ctrl_mac,
                ctrl_mq,
                rss,
                affinity_set: AtomicBool::new(false),
                irqs <- new_mutex!(irqs, "virtio_net_rs_irqs"),
            }? Error))
        })?;
        // As C's `init_vqs`: the pairs in use spread over the CPUs.
        cpus_read_locked(|cpus| reg.data().set_affinity(reg.dev(), cpus));
        reg.set_real_num_queues(pairs as u32, pairs as u32)?;
        // As C: the device validates receive checksums, or they are left for the stack to
        // check; it may merge TCP segments (`GRO_HW`), which the user may turn off with
        // `CTRL_GUEST_OFFLOADS`; the transmit offloads as `tx_features` says.
        let gro_hw = if has(&[f::GUEST_TSO4, f::GUEST_TSO6]) {
            Features::GRO_HW
        } else {
            Features::EMPTY
        };
        // As C: toggleable whenever the device takes `CTRL_GUEST_OFFLOADS`.
        let gro_hw_toggle = if has_cvq && dev.has_feature(f::CTRL_GUEST_OFFLOADS) {
            Features::GRO_HW
        } else {
            Features::EMPTY
        };
        let (hw, on) = tx_features(dev);
        // As C: receive hashing can be turned on (it starts off) with `RSS` or `HASH_REPORT`.
        reg.add_features(hw | gro_hw_toggle | rxhash, on | Features::RXCSUM | gro_hw)?;
        reg.set_rxfh_sizes(rxfh_indir, rxfh_key)?;
        // As C (which has no `ndo_change_mtu`): any MTU up to the device's, if it has one.
        reg.set_mtu_range(ETH_MIN_MTU, max_mtu, mtu)?;
        if any_layout {
            // As C: room for the header before the frame, which then goes in one piece.
            reg.set_needed_headroom(hdr_len as u16)?;
        }
        reg.set_ethtool_ops()?;
        if mergeable {
            reg.set_rx_queue_group(&MRG_RX_GROUP)?;
        }
        match dev.read_opt(config_field!(NetConfig, mac))? {
            Some(mac) => reg.set_mac(&mac)?,
            None => reg.set_random_mac()?,
        }
        reg.set_carrier(link_up(dev)?);
        // As C: secondary unicast addresses go to the filter, and the address may change while
        // up; the VLAN filter is the device's with `CTRL_VLAN`.
        reg.filter_unicast()?;
        reg.allow_live_addr_change()?;
        if has_cvq && dev.has_feature(f::CTRL_VLAN) {
            reg.filter_vlans()?;
        }
        Ok(try_pin_init!(Self { netdev: reg }? Error))
    }

    fn ready(&self, _dev: &Device) -> Result {
        // As C (after the device is ready): the pairs in use to the device; a refusal is only
        // reported.
        let (nic, ndev) = (self.netdev.data(), self.netdev.dev());
        nic.commit_rss();
        let _ = nic.set_queues(ndev, nic.pairs());
        self.netdev.register()
    }

    fn queue_event(&self, queue: usize) {
        let nic = self.netdev.data();
        // C's order: `input.N` is queue 2N, `output.N` 2N + 1 (the control queue has no
        // callback).
        let pair = queue / 2;
        if queue % 2 == 0 {
            if let Some(rx) = nic.rx.get(pair) {
                // NAPI takes it from here; its poll re-enables the interrupt when done.
                rx.data().vq.lock().disable_cb();
                rx.schedule();
            }
        } else if let Some(tx) = nic.tx.get(pair) {
            SendQueue::interrupt(tx, self.netdev.dev());
        }
    }

    fn config_work(&self, dev: &Device) {
        let Ok(status) = dev.read_opt(config_field!(NetConfig, status)) else {
            return;
        };
        if status.is_some_and(|s| s & S_ANNOUNCE != 0) && dev.has_feature(f::GUEST_ANNOUNCE) {
            self.netdev.notify_peers();
            if let Some(Err(e)) = self.netdev.data().ctrl.as_ref().map(|c| c.ack_announce()) {
                pr_warn!("virtio_net_rs: failed to ack link announce: {:?}\n", e);
            }
        }
        let up = status.map_or(true, |s| s & S_LINK_UP != 0);
        if up {
            // As C: the link's settings may have changed with it.
            self.netdev.data().settings.update(dev);
        }
        self.netdev.set_carrier(up);
    }

    fn remove(&self, _dev: &Device) {
        self.netdev.unregister();
        // As C's `virtnet_del_vqs`.
        self.netdev.data().clean_affinity();
    }

    fn freeze(&self, _dev: &Device) -> Result {
        // As C's `virtnet_freeze_down`: the interface stays (same index, same addresses),
        // absent, with its polls stopped; the adapter then resets the device and revokes the
        // queues.
        let (nic, ndev) = (self.netdev.data(), self.netdev.dev());
        ndev.with_tx_lock(|_| ndev.device_detach());
        if ndev.is_running() {
            nic.down(ndev);
        }
        // As C's `virtnet_del_vqs`.
        nic.clean_affinity();
        Ok(())
    }

    fn restore(&self, dev: &Device<Probe>) -> Result {
        // As C's `virtnet_restore_up`: new queues (the same kinds: the features do not
        // change), the receive ring full again, the polls back if the interface is up, then
        // present again. The buffers of the old queues are freed as they are replaced.
        let (nic, ndev) = (self.netdev.data(), self.netdev.dev());
        let ctrl = nic.ctrl.as_ref();
        let (mut rings, mut txvqs, cvq) = find_queues(dev, nic.rx_setup, nic.rx.len())?;
        let mut irqs = KVec::with_capacity(rings.len(), GFP_KERNEL)?;
        for (ring, tx) in rings.iter().zip(txvqs.iter()) {
            if let (Some((ring, _)), Some(tx)) = (ring, tx) {
                irqs.push((ring.affinity(), tx.affinity()), GFP_KERNEL)?;
            }
        }
        *nic.irqs.lock() = irqs;
        for (i, (rx, tx)) in nic.rx.iter().zip(nic.tx.iter()).enumerate() {
            if let Some(Some((ring, _mode))) = rings.get_mut(i).map(Option::take) {
                let old = core::mem::replace(&mut *rx.data().vq.lock(), ring);
                drop(old);
            }
            if let Some(Some(txvq)) = txvqs.get_mut(i).map(Option::take) {
                tx.data().restore(ndev, txvq);
            }
        }
        if let (Some(c), Some(cvq)) = (ctrl, cvq) {
            c.replace(cvq);
        }
        // As C's `init_vqs`: the new queues' interrupts spread over the CPUs again.
        cpus_read_locked(|cpus| nic.set_affinity(ndev, cpus));
        if ndev.is_running() {
            nic.up(ndev);
        }
        ndev.with_tx_lock(|_| ndev.device_attach());
        // As C's `virtnet_restore`: the pairs in use to the device again (and the RSS
        // configuration, which the reset lost).
        nic.commit_rss();
        let _ = nic.set_queues(ndev, nic.pairs());
        Ok(())
    }
}
