// SPDX-License-Identifier: GPL-2.0

//! Network driver for virtio, in Rust: the twin of `virtio_net.c`, one queue pair so far.
//!
//! The device has a receive queue (`input.0`) and a transmit queue (`output.0`). Every packet
//! on either starts with a virtio-net header: 12 bytes on a modern device, 10 on a legacy one
//! (there is no `MRG_RXBUF` yet). On transmit it describes the offloads the device does for
//! us (checksum, segmentation: `CSUM`, `HOST_TSO4`/`6`, `HOST_ECN`, `HOST_USO`, as C
//! negotiates them); on receive no offload is negotiated yet, and it is ignored.
//!
//! - **Receive** ("small buffers", as C without `MRG_RXBUF` or big packets): the ring is kept
//!   full of empty skbs with room for a header and a full-sized Ethernet frame. The queue's
//!   interrupt schedules NAPI; the poll takes the filled skbs back, strips the header, hands
//!   the frames to GRO, refills the ring and re-arms the interrupt when it is done.
//! - **Transmit** (in [`tx`]): the header, the linear part and the paged fragments of each skb
//!   go to the ring as the segments of one request, and the device is notified once per batch
//!   (`xmit_more`). Sent skbs are freed by a NAPI poll on the queue's interrupt, with byte
//!   queue limits (`napi_tx`, the default), or else on the next transmit (`napi_tx=0`).
//! - **Link**: the MAC address comes from config space (`VIRTIO_NET_F_MAC`, else random) and
//!   the carrier from `status` (`VIRTIO_NET_F_STATUS`, else always up), re-read on a config
//!   change.
//!
//! The net device is registered once the device is live, and unregistered first on remove.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    c_str,
    net::{
        dev::{Features, LinkStats, NetDevice, Operations, Registration},
        napi::{Napi, NapiPoll, Poll},
        skb::{SkBuff, ETH_HLEN},
    },
    net_virtio::{NetConfig, RxSkb, TxSkb, MAX_HDR_LEN},
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::{self, config_field, Device, Probe, QueueSpec, Validate, Virtqueue},
};

#[path = "virtio_net_rs/ethtool.rs"]
mod ethtool;
#[path = "virtio_net_rs/tx.rs"]
mod tx;

use tx::SendQueue;

kernel::module_virtio_driver! {
    type: VirtioNet,
    name: "virtio_net_rs",
    author: "virtio-rs authors",
    description: "Virtio network driver (Rust)",
    license: "GPL",
    params: {
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
            description: "Free sent packets from a NAPI poll on the transmit interrupt, with byte queue limits (as virtio_net's napi_tx; read-only here)",
        },
    },
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
        *p::napi_tx.value()
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
    /// Legacy: the device segments any packet (TSO4, TSO6, ECN in one bit).
    pub(crate) const GSO: u32 = 6;
    pub(crate) const MAC: u32 = 5;
    /// `mtu` in config space: the largest MTU the device takes.
    pub(crate) const MTU: u32 = 3;
    /// `speed` and `duplex` in config space.
    pub(crate) const SPEED_DUPLEX: u32 = 63;
    /// The device segments TCP over IPv4, TCP over IPv6, TCP with ECN, UDP (fragmentation).
    pub(crate) const HOST_TSO4: u32 = 11;
    pub(crate) const HOST_TSO6: u32 = 12;
    pub(crate) const HOST_ECN: u32 = 13;
    pub(crate) const HOST_UFO: u32 = 14;
    /// The device segments UDP (`GSO_UDP_L4`).
    pub(crate) const HOST_USO: u32 = 56;
    pub(crate) const STATUS: u32 = 16;
    /// `VIRTIO_F_ANY_LAYOUT`: legacy devices take the header and the frame in one buffer.
    pub(crate) const ANY_LAYOUT: u32 = 27;
}

/// `VIRTIO_NET_S_LINK_UP`, in `status`.
const S_LINK_UP: u16 = 1;

/// The MTU range without `VIRTIO_NET_F_MTU` (`ETH_MIN_MTU`, `ETH_MAX_MTU`), as C.
const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 65535;

/// The virtio-net header of a modern device (`struct virtio_net_hdr_v1`).
const HDR_LEN_MODERN: usize = 12;
/// The virtio-net header of a legacy device without `MRG_RXBUF` (`struct virtio_net_hdr`).
const HDR_LEN_LEGACY: usize = 10;
/// The largest frame a small buffer takes: `ETH_HLEN + VLAN_HLEN + ETH_DATA_LEN`, as C's
/// `GOOD_PACKET_LEN`.
const GOOD_PACKET_LEN: usize = ETH_HLEN + 4 + 1500;
/// The size of a receive buffer: a header (the longer one, whichever the device uses) and a
/// full frame.
const BUF_LEN: usize = MAX_HDR_LEN + GOOD_PACKET_LEN;

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
    /// The send queue, polled by NAPI in `napi_tx` mode.
    #[pin]
    tx: Napi<SendQueue>,
    /// What ethtool reports: bus name, speed and duplex.
    settings: ethtool::Settings,
}

/// The receive queue and its counters.
#[pin_data]
struct RxQueue {
    #[pin]
    vq: SpinLockIrq<Virtqueue<(), RxSkb>>,
    hdr_len: usize,
    packets: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    length_errors: AtomicU64,
}

/// Fills the free slots of `vq` with empty buffers; returns how many it added.
fn fill(vq: &mut Virtqueue<(), RxSkb>, dev: &NetDevice, gfp: kernel::alloc::Flags) -> usize {
    let mut added = 0;
    while vq.num_free() > 0 {
        let Ok(buf) = RxSkb::alloc(dev, BUF_LEN) else {
            break;
        };
        if vq.add((), buf, gfp).is_err() {
            break;
        }
        added += 1;
    }
    added
}

impl RxQueue {
    fn new(vq: Virtqueue<(), RxSkb>, hdr_len: usize) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            vq <- new_spinlock_irq!(vq, "virtio_net_rs_rx"),
            hdr_len,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            length_errors: AtomicU64::new(0),
        }? Error)
    }

    /// Hands the frame in `buf` (`len` bytes from the device, header included) to the stack.
    fn receive(&self, napi: &mut NapiPoll<'_>, buf: RxSkb, len: usize) {
        if len < self.hdr_len + ETH_HLEN {
            // As C: a length error, not a drop.
            self.length_errors.fetch_add(1, Relaxed);
            return;
        }
        let mut skb = buf.finish(len);
        if skb.pull(self.hdr_len).is_err() {
            self.length_errors.fetch_add(1, Relaxed);
            return;
        }
        let bytes = skb.len() as u64;
        skb.record_rx_queue(0);
        if napi.gro_receive(skb).is_ok() {
            self.packets.fetch_add(1, Relaxed);
            self.bytes.fetch_add(bytes, Relaxed);
        } else {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

impl Poll for RxQueue {
    fn poll(&self, mut napi: NapiPoll<'_>, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            // Not under the lock while the stack runs: take one buffer at a time.
            let Some(used) = self.vq.lock().get_buf() else {
                break;
            };
            done += 1;
            self.receive(&mut napi, used.writable, used.len);
        }
        {
            let mut vq = self.vq.lock();
            if fill(&mut vq, napi.dev(), GFP_ATOMIC) > 0 {
                vq.kick();
            }
        }
        if let Some(completed) = napi.complete_done(done) {
            let mut vq = self.vq.lock();
            if !vq.enable_cb() {
                // Buffers came back meanwhile: poll again, without interrupts.
                vq.disable_cb();
                drop(vq);
                completed.reschedule();
            }
        }
        done
    }
}

#[vtable]
impl Operations for Nic {
    fn open(&self, dev: &NetDevice) -> Result {
        self.rx.enable();
        // Takes what came while the device was down, refills, and re-enables the interrupt.
        self.rx.schedule();
        SendQueue::open(&self.tx);
        dev.start_queue();
        Ok(())
    }

    fn stop(&self, _dev: &NetDevice) -> Result {
        self.rx.disable();
        SendQueue::stop(&self.tx);
        Ok(())
    }

    fn start_xmit(&self, dev: &NetDevice, skb: SkBuff) -> Result<(), SkBuff> {
        SendQueue::xmit(&self.tx, dev, skb)
    }

    fn get_stats64(&self, _dev: &NetDevice, stats: &mut LinkStats) {
        let rx = self.rx.data();
        stats.rx_packets = rx.packets.load(Relaxed);
        stats.rx_bytes = rx.bytes.load(Relaxed);
        stats.rx_dropped = rx.dropped.load(Relaxed);
        stats.rx_length_errors = rx.length_errors.load(Relaxed);
        stats.rx_errors = stats.rx_length_errors;
        self.tx.data().stats(stats);
    }

    fn set_features(&self, dev: &NetDevice, features: Features) -> Result {
        // C changes hardware GRO and receive hashing through the control queue; without one,
        // neither is in `hw_features`, so neither changes. The transmit offloads need no
        // device command.
        if (dev.features() ^ features).intersects(Features::GRO_HW | Features::RXHASH) {
            return Err(EINVAL);
        }
        Ok(())
    }

    fn tx_timeout(&self, dev: &NetDevice, queue: u32) {
        self.tx.data().timeout(dev, queue);
    }
}

/// The receive and the transmit queue.
fn find_queues(dev: &Device<Probe>) -> Result<(Virtqueue<(), RxSkb>, Virtqueue<TxSkb, ()>)> {
    let mut queues = dev.find_vqs(&[
        QueueSpec::new(c_str!("input.0")),
        QueueSpec::new(c_str!("output.0")),
    ])?;
    Ok((queues.take(0)?, queues.take(1)?))
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

    const FEATURES: &'static [u32] = &[
        f::CSUM,
        f::MAC,
        f::MTU,
        f::HOST_TSO4,
        f::HOST_UFO,
        f::HOST_TSO6,
        f::HOST_ECN,
        f::HOST_USO,
        f::STATUS,
        f::SPEED_DUPLEX,
    ];
    const FEATURES_LEGACY: Option<&'static [u32]> = Some(&[
        f::CSUM,
        f::MAC,
        f::MTU,
        f::HOST_TSO4,
        f::HOST_UFO,
        f::HOST_TSO6,
        f::HOST_ECN,
        f::HOST_USO,
        f::STATUS,
        f::SPEED_DUPLEX,
        f::GSO,
        f::ANY_LAYOUT,
    ]);

    fn validate(dev: &Device<Validate>) -> Result {
        // As C: an MTU below the minimum is no MTU.
        if dev
            .read_opt(config_field!(NetConfig, mtu))?
            .is_some_and(|mtu| u32::from(mtu) < MIN_MTU)
        {
            dev.clear_feature(f::MTU);
        }
        Ok(())
    }

    fn probe(dev: &Device<Probe>) -> Result<impl PinInit<Self, Error>> {
        let hdr_len = if dev.is_modern() {
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
        let (rxvq, txvq) = find_queues(dev)?;
        let little_endian = dev.little_endian();
        let settings = ethtool::Settings::new(dev)?;
        let reg = Registration::<Nic>::new(dev.as_dev(), move |ndev| {
            let mut rxvq = rxvq;
            if fill(&mut rxvq, ndev, GFP_KERNEL) == 0 {
                return Err(ENOMEM);
            }
            rxvq.kick();
            // Built here: the initialiser may not borrow `ndev`.
            let rx = Napi::new(ndev, RxQueue::new(rxvq, hdr_len));
            let tx = Napi::new(
                ndev,
                SendQueue::new(txvq, hdr_len, little_endian, param::napi_tx()),
            );
            Ok(try_pin_init!(Nic {
                rx <- rx,
                tx <- tx,
                settings,
            }? Error))
        })?;
        match dev.read_opt(config_field!(NetConfig, mac))? {
            Some(mac) => reg.set_mac(&mac)?,
            None => reg.set_random_mac()?,
        }
        let (hw, on) = tx_features(dev);
        reg.add_features(hw, on)?;
        // As C (which has no `ndo_change_mtu`): any MTU up to the device's, if it has one.
        match dev.read_opt(config_field!(NetConfig, mtu))? {
            Some(mtu) => reg.set_mtu_range(MIN_MTU, mtu.into(), Some(mtu.into()))?,
            None => reg.set_mtu_range(MIN_MTU, MAX_MTU, None)?,
        }
        reg.set_ethtool_ops()?;
        reg.set_carrier(link_up(dev)?);
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
            SendQueue::interrupt(&nic.tx, self.netdev.dev());
        }
    }

    fn config_work(&self, dev: &Device) {
        if let Ok(up) = link_up(dev) {
            if up {
                // As C: the link's settings may have changed with it.
                self.netdev.data().settings.update(dev);
            }
            self.netdev.set_carrier(up);
        }
    }

    fn remove(&self, _dev: &Device) {
        self.netdev.unregister();
    }

    fn freeze(&self, _dev: &Device) -> Result {
        // As C's `virtnet_freeze_down`: the interface stays (same index, same addresses),
        // absent, with its polls stopped; the adapter then resets the device and revokes the
        // queues.
        let (nic, ndev) = (self.netdev.data(), self.netdev.dev());
        ndev.with_tx_lock(|_| ndev.device_detach());
        if ndev.is_running() {
            nic.rx.disable();
            SendQueue::stop(&nic.tx);
        }
        Ok(())
    }

    fn restore(&self, dev: &Device<Probe>) -> Result {
        // As C's `virtnet_restore_up`: new queues, the receive ring full again, the polls
        // back if the interface is up, then present again. The buffers of the old queues
        // are freed as they are replaced.
        let (nic, ndev) = (self.netdev.data(), self.netdev.dev());
        let (mut rxvq, txvq) = find_queues(dev)?;
        if fill(&mut rxvq, ndev, GFP_KERNEL) == 0 {
            return Err(ENOMEM);
        }
        rxvq.kick();
        let old = core::mem::replace(&mut *nic.rx.data().vq.lock(), rxvq);
        drop(old);
        nic.tx.data().restore(ndev, txvq);
        if ndev.is_running() {
            nic.rx.enable();
            nic.rx.schedule();
            SendQueue::open(&nic.tx);
        }
        ndev.with_tx_lock(|_| ndev.device_attach());
        Ok(())
    }
}
