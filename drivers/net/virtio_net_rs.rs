// SPDX-License-Identifier: GPL-2.0

//! Network driver for virtio, in Rust: the twin of `virtio_net.c`, one queue pair so far.
//!
//! The device has a receive queue (`input.0`) and a transmit queue (`output.0`). Every packet
//! on either starts with a virtio-net header: 12 bytes on a modern device, 10 on a legacy one
//! (there is no `MRG_RXBUF` yet). No offload is negotiated, so the header is all zero on
//! transmit and ignored on receive.
//!
//! - **Receive** ("small buffers", as C without `MRG_RXBUF` or big packets): the ring is kept
//!   full of empty skbs with room for a header and a full-sized Ethernet frame. The queue's
//!   interrupt schedules NAPI; the poll takes the filled skbs back, strips the header, hands
//!   the frames to GRO, refills the ring and re-arms the interrupt when it is done.
//! - **Transmit**: the header is pushed in front of the frame and the skb goes to the ring as
//!   one buffer. Sent skbs are freed on the next transmit, or when the queue, stopped on a full
//!   ring, is woken by the device's interrupt (C's `napi_tx=0` mode); so skbs are orphaned
//!   first, as C does then, not to hold their sockets back.
//! - **Link**: the MAC address comes from config space (`VIRTIO_NET_F_MAC`, else random) and
//!   the carrier from `status` (`VIRTIO_NET_F_STATUS`, else always up), re-read on a config
//!   change.
//!
//! The net device is registered once the device is live, and unregistered first on remove.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    c_str,
    net::{
        dev::{LinkStats, NetDevice, Operations, Registration},
        napi::Napi,
        skb::{SkBuff, ETH_HLEN},
    },
    net_virtio::{NetConfig, RxSkb, TxSkb, MAX_HDR_LEN},
    prelude::*,
    spinlock_irq::{new_spinlock_irq, SpinLockIrq},
    virtio::{self, config_field, Device, Probe, QueueSpec, Virtqueue},
};

#[path = "virtio_net_rs/rx.rs"]
mod rx;

use rx::{fill, RxQueue};

kernel::module_virtio_driver! {
    type: VirtioNet,
    name: "virtio_net_rs",
    author: "virtio-rs authors",
    description: "Virtio network driver (Rust)",
    license: "GPL",
}

/// Feature bits (`include/uapi/linux/virtio_net.h`, `virtio_config.h`).
mod f {
    pub(crate) const MAC: u32 = 5;
    pub(crate) const STATUS: u32 = 16;
    /// `VIRTIO_F_ANY_LAYOUT`: legacy devices take the header and the frame in one buffer.
    pub(crate) const ANY_LAYOUT: u32 = 27;
}

/// `VIRTIO_NET_S_LINK_UP`, in `status`.
const S_LINK_UP: u16 = 1;

/// The virtio-net header of a modern device (`struct virtio_net_hdr_v1`).
const HDR_LEN_MODERN: usize = 12;
/// The virtio-net header of a legacy device without `MRG_RXBUF` (`struct virtio_net_hdr`).
const HDR_LEN_LEGACY: usize = 10;
/// The largest frame a small buffer takes: `ETH_HLEN + VLAN_HLEN + ETH_DATA_LEN`, as C's
/// `GOOD_PACKET_LEN`.
const GOOD_PACKET_LEN: usize = ETH_HLEN + 4 + 1500;
/// The size of a receive buffer: a header (the longer one, whichever the device uses) and a
/// full frame.
pub(crate) const BUF_LEN: usize = MAX_HDR_LEN + GOOD_PACKET_LEN;

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
        self.rx.enable();
        // Takes what came while the device was down, refills, and re-enables the interrupt.
        self.rx.schedule();
        dev.start_queue();
        Ok(())
    }

    fn stop(&self, _dev: &NetDevice) -> Result {
        self.rx.disable();
        Ok(())
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
        let rx = self.rx.data();
        stats.rx_packets = rx.packets.load(Relaxed);
        stats.rx_bytes = rx.bytes.load(Relaxed);
        stats.rx_dropped = rx.dropped.load(Relaxed);
        stats.rx_length_errors = rx.length_errors.load(Relaxed);
        stats.rx_errors = stats.rx_length_errors;
        stats.tx_packets = self.tx_packets.load(Relaxed);
        stats.tx_bytes = self.tx_bytes.load(Relaxed);
        stats.tx_dropped = self.tx_dropped.load(Relaxed);
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

    const FEATURES: &'static [u32] = &[f::MAC, f::STATUS];
    const FEATURES_LEGACY: Option<&'static [u32]> = Some(&[f::MAC, f::STATUS, f::ANY_LAYOUT]);

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
        let mut queues = dev.find_vqs(&[
            QueueSpec::new(c_str!("input.0")),
            QueueSpec::new(c_str!("output.0")),
        ])?;
        let rxvq = queues.take::<(), RxSkb>(0)?;
        let mut txvq = queues.take::<TxSkb, ()>(1)?;
        // Sent packets are reclaimed on transmit; the interrupt is only for a full ring.
        txvq.disable_cb();
        let reg = Registration::<Nic>::new(dev.as_dev(), move |ndev| {
            let mut rxvq = rxvq;
            if fill(&mut rxvq, ndev, GFP_KERNEL) == 0 {
                return Err(ENOMEM);
            }
            rxvq.kick();
            // Built here: the initialiser may not borrow `ndev`.
            let rx = Napi::new(ndev, RxQueue::new(rxvq, hdr_len));
            Ok(try_pin_init!(Nic {
                rx <- rx,
                tx <- new_spinlock_irq!(TxQueue { vq: txvq }, "virtio_net_rs_tx"),
                hdr_len,
                tx_packets: AtomicU64::new(0),
                tx_bytes: AtomicU64::new(0),
                tx_dropped: AtomicU64::new(0),
            }? Error))
        })?;
        match dev.read_opt(config_field!(NetConfig, mac))? {
            Some(mac) => reg.set_mac(&mac)?,
            None => reg.set_random_mac()?,
        }
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
            // Room in the ring again: the next transmit frees what was sent.
            nic.tx.lock().vq.disable_cb();
            self.netdev.dev().wake_queue();
        }
    }

    fn config_work(&self, dev: &Device) {
        if let Ok(up) = link_up(dev) {
            self.netdev.set_carrier(up);
        }
    }

    fn remove(&self, _dev: &Device) {
        self.netdev.unregister();
    }
}
