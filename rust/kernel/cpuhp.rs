// SPDX-License-Identifier: GPL-2.0

//! CPU hotplug notifications.
//!
//! Drivers that spread work over the CPUs follow CPU hotplug as C's do with a multi-instance
//! state: one instance per device, told when a CPU came online, when one is about to go down
//! and when one is dead. Every Rust user shares one pair of states, set up at boot by
//! `rust/helpers/cpuhp.c` (`rust/cpuhp:online` in `CPUHP_AP_ONLINE_DYN`, `rust/cpuhp:dead` in
//! `CPUHP_BP_PREPARE_DYN`); an instance is a pinned [`Node`] whose event function finds its
//! owner.
//!
//! [`Node`] is a building block for the abstractions that own the state an instance reaches
//! (the net device's [`Operations`](crate::net::dev::Operations) `cpu_*` callbacks): they add
//! the node once that state is set up and remove it before it goes.
//!
//! C header: [`include/linux/cpuhotplug.h`](srctree/include/linux/cpuhotplug.h)

use crate::{bindings, error::to_result, prelude::*, types::Opaque};
use core::ffi::c_uint;

/// What happened to a CPU, as the event function of a [`Node`] gets it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// The CPU came online: the event runs on it, which is online.
    Online,
    /// The CPU is about to go offline: the event runs on it, still online.
    DownPrep,
    /// The CPU is dead: the event runs on another CPU; it is not online any more.
    Dead,
}

impl Event {
    /// The event numbered as `rust/helpers/cpuhp.c` numbers it.
    pub(crate) fn from_raw(event: c_uint) -> Option<Self> {
        match event {
            0 => Some(Event::Online),
            1 => Some(Event::DownPrep),
            2 => Some(Event::Dead),
            _ => None,
        }
    }
}

/// The event function of a [`Node`]: the node's first `hlist_node`, the event and the CPU.
pub(crate) type EventFn = unsafe extern "C" fn(*mut bindings::hlist_node, c_uint, c_uint);

/// `struct rust_cpuhp_node` of `rust/helpers/cpuhp.c`.
#[repr(C)]
struct RawNode {
    online: bindings::hlist_node,
    dead: bindings::hlist_node,
    event: Option<EventFn>,
}

const _: () = {
    let hlist = core::mem::size_of::<bindings::hlist_node>();
    assert!(core::mem::offset_of!(RawNode, dead) == hlist);
    assert!(core::mem::offset_of!(RawNode, event) == 2 * hlist);
};

/// One instance of the Rust CPU hotplug states.
///
/// # Invariants
///
/// `raw.event` is the event function given to [`Node::new`]; the nodes are linked into the
/// states' lists only between a successful [`Node::add`] and the matching [`Node::remove`].
#[repr(transparent)]
#[pin_data]
pub struct Node {
    #[pin]
    raw: Opaque<RawNode>,
}

// SAFETY: The nodes are touched only by the CPU hotplug core, under its locks, and through
// `add` and `remove`, whose callers serialise them.
unsafe impl Send for Node {}
// SAFETY: As above.
unsafe impl Sync for Node {}

impl Node {
    /// A node that is not added, whose events go to `event`.
    pub(crate) fn new(event: EventFn) -> impl PinInit<Self> {
        pin_init!(Self {
            raw <- Opaque::ffi_init(move |slot: *mut RawNode| {
                // SAFETY: `slot` is valid for writes; the nodes are plain pointers, set up when
                // the node is added.
                unsafe {
                    slot.write(RawNode {
                        online: core::mem::zeroed(),
                        dead: core::mem::zeroed(),
                        event: Some(event),
                    })
                }
            }),
        })
    }

    /// The node's first `hlist_node`, which the event function gets.
    pub(crate) fn as_raw(&self) -> *mut bindings::hlist_node {
        // SAFETY: `raw` is a valid `RawNode`; this computes a field address.
        unsafe { core::ptr::addr_of_mut!((*self.raw.get()).online) }
    }

    /// Adds the node to the states (`cpuhp_state_add_instance_nocalls()`): from now on its
    /// event function runs for each CPU that comes online, is about to go down or is dead,
    /// with the CPU hotplug lock held. Process context.
    ///
    /// # Safety
    ///
    /// The node is not added; calls to `add` and `remove` are serialised; the event function
    /// may be called, with this node, until `remove` returns, which is called before the node
    /// and what its event function reaches through it go.
    pub(crate) unsafe fn add(&self) -> Result {
        // SAFETY: The node is pinned (it is only ever built in place) and initialised, and
        // not added (safety requirements).
        to_result(unsafe { bindings::cpuhp_node_add(self.as_raw()) })
    }

    /// Removes the node added by [`Node::add`] (`cpuhp_state_remove_instance_nocalls()`),
    /// waiting for its events that are running. Process context; must not be called from an
    /// event.
    ///
    /// # Safety
    ///
    /// The node was added, and not removed since; calls to `add` and `remove` are serialised.
    pub(crate) unsafe fn remove(&self) {
        // SAFETY: By the safety requirements.
        unsafe { bindings::cpuhp_node_remove(self.as_raw()) }
    }
}
