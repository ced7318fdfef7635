// SPDX-License-Identifier: GPL-2.0

//! The control messages of a multiport console device (specification 5.3.6.2), parsed and
//! built here so that their layout has unit tests (the doctests below run in KUnit).
//!
//! A message is `struct virtio_console_control { le32 id; le16 event; le16 value; }`, followed
//! by a payload for some events: the port's name for `PORT_NAME`, and the console's size for
//! `RESIZE`. Legacy devices use the guest's byte order (`__virtio16`/`__virtio32`).

/// `VIRTIO_CONSOLE_*` control events.
pub mod event {
    /// Driver to device: the driver is ready (id `BAD_ID`), or not.
    pub const DEVICE_READY: u16 = 0;
    /// Device to driver: a port was added.
    pub const DEVICE_ADD: u16 = 1;
    /// Device to driver: a port was removed.
    pub const DEVICE_REMOVE: u16 = 2;
    /// Driver to device: the port is ready, or could not be added.
    pub const PORT_READY: u16 = 3;
    /// Device to driver: the port is a console.
    pub const CONSOLE_PORT: u16 = 4;
    /// Device to driver: the console's size changed (payload: [`super::Resize`]).
    pub const RESIZE: u16 = 5;
    /// Both ways: a program holds the port open (1), or closed it (0).
    pub const PORT_OPEN: u16 = 6;
    /// Device to driver: the port's name (payload: the name).
    pub const PORT_NAME: u16 = 7;
}

/// `VIRTIO_CONSOLE_BAD_ID`: the id of messages about the device itself.
pub const BAD_ID: u32 = !0;

/// The size of a control message's header.
pub const CONTROL_LEN: usize = 8;

/// A control message's header.
///
/// # Examples
///
/// ```
/// use kernel::virtio::console::{event, Control};
///
/// let m = Control { id: 2, event: event::PORT_OPEN, value: 1 };
/// let bytes = m.to_bytes(true);
/// assert_eq!(bytes, [2, 0, 0, 0, 6, 0, 1, 0]);
/// assert_eq!(Control::parse(&bytes, true), Some(m));
/// // Shorter than a header: not a message.
/// assert_eq!(Control::parse(&bytes[..7], true), None);
/// // A legacy device on a big-endian guest would send this (native order).
/// let native = Control { id: 1, event: event::DEVICE_ADD, value: 0 }.to_bytes(false);
/// assert_eq!(Control::parse(&native, false).map(|m| m.id), Some(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    /// The port's id ([`BAD_ID`] for the device).
    pub id: u32,
    /// One of [`event`].
    pub event: u16,
    /// The event's value.
    pub value: u16,
}

impl Control {
    /// Parses the header at the start of `msg`; `le`: the device is little-endian (virtio 1.0),
    /// else it uses the guest's byte order. `None` if `msg` is shorter than [`CONTROL_LEN`].
    pub fn parse(msg: &[u8], le: bool) -> Option<Self> {
        let h: &[u8; CONTROL_LEN] = msg.get(..CONTROL_LEN)?.try_into().ok()?;
        let id = [h[0], h[1], h[2], h[3]];
        let ev = [h[4], h[5]];
        let val = [h[6], h[7]];
        Some(if le {
            Self {
                id: u32::from_le_bytes(id),
                event: u16::from_le_bytes(ev),
                value: u16::from_le_bytes(val),
            }
        } else {
            Self {
                id: u32::from_ne_bytes(id),
                event: u16::from_ne_bytes(ev),
                value: u16::from_ne_bytes(val),
            }
        })
    }

    /// The message's bytes, in the device's byte order (`le` as in [`parse`](Self::parse)).
    pub fn to_bytes(&self, le: bool) -> [u8; CONTROL_LEN] {
        let (i, e, v) = if le {
            (
                self.id.to_le_bytes(),
                self.event.to_le_bytes(),
                self.value.to_le_bytes(),
            )
        } else {
            (
                self.id.to_ne_bytes(),
                self.event.to_ne_bytes(),
                self.value.to_ne_bytes(),
            )
        };
        let mut m = [0u8; CONTROL_LEN];
        m[0..4].copy_from_slice(&i);
        m[4..6].copy_from_slice(&e);
        m[6..8].copy_from_slice(&v);
        m
    }
}

/// The payload of a `RESIZE` message: the console's size.
///
/// The payload is `cols` then `rows`, each 16 bits, as Linux's C driver reads it (and as the
/// specification's `struct virtio_console_resize` has it since virtio 1.1).
///
/// # Examples
///
/// ```
/// use kernel::virtio::console::{event, Control, Resize};
///
/// // A RESIZE message for port 0: 80 columns, 25 rows, little-endian.
/// let mut msg = [0u8; 12];
/// msg[..8].copy_from_slice(&Control { id: 0, event: event::RESIZE, value: 0 }.to_bytes(true));
/// msg[8..].copy_from_slice(&[80, 0, 25, 0]);
/// assert_eq!(Resize::parse(&msg, true), Some(Resize { rows: 25, cols: 80 }));
/// // Big values, both bytes used.
/// let mut big = msg;
/// big[8..12].copy_from_slice(&[0x34, 0x12, 0x02, 0x01]);
/// assert_eq!(Resize::parse(&big, true), Some(Resize { rows: 0x0102, cols: 0x1234 }));
/// // A payload cut short is refused, not read past its end.
/// assert_eq!(Resize::parse(&msg[..11], true), None);
/// assert_eq!(Resize::parse(&msg[..8], true), None);
/// // Native order (legacy devices).
/// let mut n = msg;
/// n[8..10].copy_from_slice(&132u16.to_ne_bytes());
/// n[10..12].copy_from_slice(&43u16.to_ne_bytes());
/// assert_eq!(Resize::parse(&n, false), Some(Resize { rows: 43, cols: 132 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl Resize {
    /// Parses the payload of the whole message `msg` (header included); `None` if it is too
    /// short. `le` as in [`Control::parse`].
    pub fn parse(msg: &[u8], le: bool) -> Option<Self> {
        let p = msg.get(CONTROL_LEN..CONTROL_LEN + 4)?;
        let (cols, rows) = ([p[0], p[1]], [p[2], p[3]]);
        Some(if le {
            Self {
                rows: u16::from_le_bytes(rows),
                cols: u16::from_le_bytes(cols),
            }
        } else {
            Self {
                rows: u16::from_ne_bytes(rows),
                cols: u16::from_ne_bytes(cols),
            }
        })
    }
}

/// The name in the payload of a `PORT_NAME` message `msg` (header included), up to its first
/// NUL byte; `None` if it is not UTF-8.
///
/// # Examples
///
/// ```
/// use kernel::virtio::console::port_name;
///
/// let msg = *b"\x01\0\0\0\x07\0\x01\0org.qemu.guest_agent.0\0junk";
/// assert_eq!(port_name(&msg), Some("org.qemu.guest_agent.0"));
/// assert_eq!(port_name(&msg[..8]), Some(""));
/// assert_eq!(port_name(&[0u8; 3]), Some(""));
/// assert_eq!(port_name(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff]), None);
/// ```
pub fn port_name(msg: &[u8]) -> Option<&str> {
    let name = msg.get(CONTROL_LEN..).unwrap_or(&[]);
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    core::str::from_utf8(&name[..end]).ok()
}
