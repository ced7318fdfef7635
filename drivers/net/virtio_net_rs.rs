// SPDX-License-Identifier: GPL-2.0

//! Network driver for virtio, in Rust: the twin of `virtio_net.c`, one queue pair so far.
//!
//! The device has a receive queue (`input.0`) and a transmit queue (`output.0`). Every packet
//! on either starts with a virtio-net header: 12 bytes on a modern device or with
//! `MRG_RXBUF`, else 10. No transmit offload is negotiated, so the header is all zero on
//! transmit.
//!
//! - **Receive** (the `rx` module): the ring is kept full of empty buffers: small buffers,
//!   mergeable buffers (`MRG_RXBUF`) or big packets (guest GSO or a large MTU), chosen as C
//!   chooses them. The queue's interrupt schedules NAPI; the poll takes the filled buffers
//!   back, builds the skbs, applies the header's offload metadata (the guest offloads C
//!   negotiates: checksum, TSO, ECN, UFO, USO), hands the frames to GRO, refills the ring and
//!   re-arms the interrupt when it is done. The `napi_weight` parameter is its budget, as in C.
//!   The MTU is the device's (`VIRTIO_NET_F_MTU`) when it has one.
//! - **Transmit**: the header is pushed in front of the frame and the skb goes to the ring as
//!   one buffer. Sent skbs are freed on the next transmit, or when the queue, stopped on a full
//!   ring, is woken by the device's interrupt (C's `napi_tx=0` mode); so skbs are orphaned
//!   first, as C does then, not to hold their sockets back.
//! - **Link**: the MAC address comes from config space (`VIRTIO_NET_F_MAC`, else random) and
//!   the carrier from `status` (`VIRTIO_NET_F_STATUS`, else always up), re-read on a config
//!   change.
//!
//! - **Control** (`VIRTIO_NET_F_CTRL_VQ`, see [`ctrl`]): the receive filter (promiscuous,
//!   all-multicast, the unicast and multicast tables), the VLAN filter and the address are
//!   programmed through the control queue, and announcement requests are acknowledged, as C.
//!
//! The net device is registered once the device is live, and unregistered first on remove.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    c_str,
    net::{
        dev::{
            features, LinkStats, NetDevice, Operations, Registration, RxMode, ETH_ALEN,
            ETH_MAX_MTU, ETH_MIN_MTU,
        },
        napi::Napi,
        skb::{SkBuff, ETH_HLEN, MAX_SKB_FRAGS},
    },
    net_virtio::{NetConfig, TxSkb, MAX_HDR_LEN},
    page::PAGE_SIZE,
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::{self, config_field, Device, Probe, QueueSpec, Validate, Virtqueue},
};

#[path = "virtio_net_rs/ctrl.rs"]
mod ctrl;
#[path = "virtio_net_rs/rx.rs"]
mod rx;

use ctrl::Ctrl;
use rx::{Ring, RxQueue};

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
    },
}

/// The budget of a receive poll: the `napi_weight` parameter (negative counts as 0).
fn napi_weight() -> u32 {
    (*module_parameters::napi_weight.value()).max(0) as u32
}

/// Feature bits (`include/uapi/linux/virtio_net.h`, `virtio_config.h`).
mod f {
    pub(crate) const GUEST_CSUM: u32 = 1;
    pub(crate) const MTU: u32 = 3;
    pub(crate) const MAC: u32 = 5;
    /// `VIRTIO_NET_F_GSO` (legacy only), negotiated as C does.
    pub(crate) const GSO: u32 = 6;
    pub(crate) const GUEST_TSO4: u32 = 7;
    pub(crate) const GUEST_TSO6: u32 = 8;
    pub(crate) const GUEST_ECN: u32 = 9;
    pub(crate) const GUEST_UFO: u32 = 10;
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
    /// The receive queue, polled by NAPI.
    #[pin]
    rx: Napi<RxQueue>,
    #[pin]
    tx: SpinLockIrq<TxQueue>,
    hdr_len: usize,
    /// The control queue, with `CTRL_VQ`.
    ctrl: Option<Pin<KBox<Ctrl>>>,
    /// Whether the device takes the receive filter (`CTRL_RX`) and the address
    /// (`CTRL_MAC_ADDR`) over the control queue.
    ctrl_rx: bool,
    ctrl_mac: bool,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_dropped: AtomicU64,
}

struct TxQueue {
    vq: Virtqueue<TxSkb, ()>,
}

impl TxQueue {
    /// Frees the packets the device has sent.
    fn free_old(&mut self) {
        while let Some(used) = self.vq.get_buf() {
            used.readable.into_skb().consume();
        }
    }
}

#[vtable]
impl Operations for Nic {
    fn open(&self, dev: &NetDevice) -> Result {
        // As C: fill the ring; if memory is short, the refill work keeps trying.
        dev.enable_work();
        if !self.rx.data().fill(dev, GFP_KERNEL).1 {
            dev.schedule_work(0);
        }
        self.rx.enable();
        // Takes what came while the device was down, refills, and re-enables the interrupt.
        self.rx.schedule();
        dev.start_queue();
        Ok(())
    }

    fn stop(&self, dev: &NetDevice) -> Result {
        dev.disable_work();
        self.rx.disable();
        Ok(())
    }

    fn work(&self, dev: &NetDevice) {
        rx::refill(&self.rx, dev);
    }

    fn start_xmit(&self, dev: &NetDevice, mut skb: SkBuff) -> Result<(), SkBuff> {
        // Sent packets are freed late (on a later transmit): let their sockets go on now.
        skb.orphan();
        let hdr = [0u8; MAX_HDR_LEN];
        let mut tx = self.tx.lock();
        tx.free_old();
        match TxSkb::new(skb, &hdr[..self.hdr_len]) {
            Ok(pkt) => {
                let len = pkt.packet_len() as u64;
                match tx.vq.add(pkt, (), GFP_ATOMIC) {
                    Ok(()) => {
                        self.tx_packets.fetch_add(1, Relaxed);
                        self.tx_bytes.fetch_add(len, Relaxed);
                    }
                    // Dropping the error frees the packet.
                    Err(_) => {
                        self.tx_dropped.fetch_add(1, Relaxed);
                    }
                }
            }
            Err(_skb) => {
                self.tx_dropped.fetch_add(1, Relaxed);
            }
        }
        if tx.vq.num_free() == 0 {
            // Full: stop until the device has sent most of it (then its interrupt wakes us).
            dev.stop_queue();
            if !tx.vq.enable_cb_delayed() {
                // It has sent some already.
                tx.vq.disable_cb();
                tx.free_old();
                if tx.vq.num_free() > 0 {
                    dev.start_queue();
                }
            }
        }
        tx.vq.kick();
        Ok(())
    }

    fn get_stats64(&self, _dev: &NetDevice, stats: &mut LinkStats) {
        self.rx.data().stats(stats);
        stats.tx_packets = self.tx_packets.load(Relaxed);
        stats.tx_bytes = self.tx_bytes.load(Relaxed);
        stats.tx_dropped = self.tx_dropped.load(Relaxed);
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
                pr_warn!("virtio_net_rs: failed to set mac address by vq command: {:?}\n", e);
                EINVAL
            }),
            _ => Ok(()),
        }
    }
}

/// Whether the link is up: `status` if the device reports it, else always.
fn link_up(dev: &Device) -> Result<bool> {
    Ok(dev
        .read_opt(config_field!(NetConfig, status))?
        .map_or(true, |s| s & S_LINK_UP != 0))
}

#[vtable]
impl virtio::Driver for VirtioNet {
    const ID_TABLE: virtio::IdTable = virtio::id_table![virtio::DeviceId::new(virtio::id::NET)];

    // The bits of C's feature table this driver implements, in C's order.
    const FEATURES: &'static [u32] = &[
        f::GUEST_CSUM,
        f::MAC,
        f::GUEST_TSO4,
        f::GUEST_TSO6,
        f::GUEST_ECN,
        f::GUEST_UFO,
        f::GUEST_USO4,
        f::GUEST_USO6,
        f::MRG_RXBUF,
        f::STATUS,
        f::CTRL_VQ,
        f::CTRL_RX,
        f::CTRL_VLAN,
        f::GUEST_ANNOUNCE,
        f::CTRL_MAC_ADDR,
        f::MTU,
    ];
    const FEATURES_LEGACY: Option<&'static [u32]> = Some(&[
        f::GUEST_CSUM,
        f::MAC,
        f::GUEST_TSO4,
        f::GUEST_TSO6,
        f::GUEST_ECN,
        f::GUEST_UFO,
        f::GUEST_USO4,
        f::GUEST_USO6,
        f::MRG_RXBUF,
        f::STATUS,
        f::CTRL_VQ,
        f::CTRL_RX,
        f::CTRL_VLAN,
        f::GUEST_ANNOUNCE,
        f::CTRL_MAC_ADDR,
        f::MTU,
        f::GSO,
        f::ANY_LAYOUT,
    ]);

    fn validate(dev: &Device<Validate>) -> Result {
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
        let hdr_len = if dev.is_modern() || mergeable {
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
        let specs = [
            QueueSpec::new(c_str!("input.0")),
            QueueSpec::new(c_str!("output.0")),
            // As C: no callback, the sender polls.
            QueueSpec::new(c_str!("control")).without_callback(),
        ];
        let mut queues = dev.find_vqs(&specs[..if has_cvq { 3 } else { 2 }])?;
        let largest = if big.is_some() {
            IP_MAX_MTU
        } else {
            max_mtu as usize
        };
        let (rxvq, mode) = Ring::take(&mut queues, 0, hdr_len, mergeable, big, largest)?;
        let mut txvq = queues.take::<TxSkb, ()>(1)?;
        let ctrl = if has_cvq {
            let cvq = queues.take(2)?;
            Some(KBox::pin_init(Ctrl::new(cvq, dev.is_modern()), GFP_KERNEL)?)
        } else {
            None
        };
        let ctrl_rx = has_cvq && dev.has_feature(f::CTRL_RX);
        let ctrl_mac = has_cvq && dev.has_feature(f::CTRL_MAC_ADDR);
        // Sent packets are reclaimed on transmit; the interrupt is only for a full ring.
        txvq.disable_cb();
        let reg = Registration::<Nic>::new(dev.as_dev(), move |ndev| {
            // Built here: the initialiser may not borrow `ndev`. The ring is filled in `open`.
            let rx = Napi::with_weight(
                ndev,
                napi_weight(),
                RxQueue::new(rxvq, mode, hdr_len, little_endian),
            );
            Ok(try_pin_init!(Nic {
                rx <- rx,
                tx <- new_spinlock_irq!(TxQueue { vq: txvq }, "virtio_net_rs_tx"),
                hdr_len,
                ctrl,
                ctrl_rx,
                ctrl_mac,
                tx_packets: AtomicU64::new(0),
                tx_bytes: AtomicU64::new(0),
                tx_dropped: AtomicU64::new(0),
            }? Error))
        })?;
        // As C: the device validates receive checksums, or they are left for the stack to
        // check; and it may merge TCP segments (`GRO_HW`), which cannot be turned off without
        // a control queue.
        let gro_hw = if has(&[f::GUEST_TSO4, f::GUEST_TSO6]) {
            features::GRO_HW
        } else {
            0
        };
        reg.add_features(features::RXCSUM | gro_hw, 0)?;
        reg.set_mtu(mtu.unwrap_or(ETH_DATA_LEN as u32), ETH_MIN_MTU, max_mtu)?;
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
        self.netdev.register()
    }

    fn queue_event(&self, queue: usize) {
        let nic = self.netdev.data();
        if queue == 0 {
            // NAPI takes it from here; its poll re-enables the interrupt when done.
            nic.rx.data().vq.lock().disable_cb();
            nic.rx.schedule();
        } else {
            // Room in the ring again: the next transmit frees what was sent.
            nic.tx.lock().vq.disable_cb();
            self.netdev.dev().wake_queue();
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
        self.netdev
            .set_carrier(status.map_or(true, |s| s & S_LINK_UP != 0));
    }

    fn remove(&self, _dev: &Device) {
        self.netdev.unregister();
    }
}
