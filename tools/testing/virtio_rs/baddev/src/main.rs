// SPDX-License-Identifier: GPL-2.0

//! baddev: virtio devices that lie, as vhost-user backends.
//!
//! QEMU's own devices are honest, so a guest driver's checks of what a device hands over are
//! never exercised. baddev plays a device on one of QEMU's vhost-user frontends and lies in a
//! chosen way. Two models:
//!
//! - `rng` ([`rng`], `-device vhost-user-rng-pci`): a virtio-rng device that reports wrong
//!   used lengths (`--lie`);
//! - `blk` ([`blk`], `-device vhost-user-blk-pci`): an 8 MiB RAM disk whose config space
//!   lies (`--config`), or whose answers to requests lie (`--lie`); it logs every request and
//!   serves the log on a control socket (`--control`).
//!
//! usage:
//!
//! ```text
//! baddev [rng] --socket PATH [--lie honest|oversize|zero|huge|cycle]
//! baddev blk --socket PATH [--config PRESET] [--lie LIE] [--control PATH]
//! ```
//!
//! Without a model name, baddev is the rng (its original command line). It listens on PATH,
//! serves one connection and exits when the frontend (QEMU) goes away, printing what it was
//! asked and how it answered. Split rings only.
//!
//! There is no input model: QEMU 7.2's `vhost-user-input-pci` refuses to start without KVM
//! ("vhost initialization failed: requires kvm"; QEMU 8.2 dropped the check), and the tests
//! run under TCG. The lying virtio-input devices are played inside the guest by the test
//! module `vrs_badinput` (`tools/testing/selftests/virtio_rs/test_modules/vrs_badinput.c`).

mod blk;
mod rng;

use std::io;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use vhost_user_backend::{VhostUserBackendMut, VhostUserDaemon, VringRwLock, VringT};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

/// Serves one vhost-user connection on `socket` with `backend`, until the frontend hangs up.
fn serve<B>(socket: &str, backend: Arc<RwLock<B>>) -> ExitCode
where
    B: VhostUserBackendMut<Bitmap = (), Vring = VringRwLock> + 'static,
{
    let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
    let mut daemon = match VhostUserDaemon::new("baddev".to_string(), backend, mem) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("baddev: {e}");
            return ExitCode::FAILURE;
        }
    };
    match daemon.serve(socket) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baddev: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The exit event of a model's vring worker thread: without one, the worker never returns
/// and dropping the daemon after the frontend hung up would wait for it forever.
fn exit_event() -> Option<(EventConsumer, EventNotifier)> {
    new_event_consumer_and_notifier(EventFlag::NONBLOCK).ok()
}

/// Answers what is available on `vring` with `process` (which returns whether it answered
/// anything), and notifies the driver as `VIRTIO_RING_F_EVENT_IDX` (`event_idx`) says.
fn drain(
    vring: &VringRwLock,
    event_idx: bool,
    mut process: impl FnMut(&VringRwLock) -> io::Result<bool>,
) -> io::Result<()> {
    let err = |e| io::Error::other(format!("{e:?}"));
    if !event_idx {
        if process(vring)? {
            vring.signal_used_queue()?;
        }
        return Ok(());
    }
    // The queue reads the available index once per iteration: go on until re-enabling
    // notifications finds nothing new.
    loop {
        vring.disable_notification().map_err(err)?;
        process(vring)?;
        if !vring.enable_notification().map_err(err)? {
            break;
        }
    }
    if vring.needs_notification().map_err(err)? {
        vring.signal_used_queue()?;
    }
    Ok(())
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: baddev [rng] --socket PATH [--lie {}]\n       baddev blk --socket PATH \
         [--config {}] [--lie {}] [--control PATH]",
        rng::LIE_NAMES,
        blk::PRESET_NAMES.join("|"),
        blk::LIE_NAMES.join("|")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let model = match args.first().map(String::as_str) {
        Some(m @ ("rng" | "blk")) => {
            let m = m.to_string();
            args.remove(0);
            m
        }
        // The original command line: `baddev --socket PATH [--lie MODE]` is the rng.
        _ => "rng".to_string(),
    };
    let valid: &[&str] = if model == "rng" {
        &["--socket", "--lie"]
    } else {
        &["--socket", "--config", "--lie", "--control"]
    };
    let mut opts = std::collections::HashMap::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match it.next() {
            Some(v) if valid.contains(&arg.as_str()) => {
                opts.insert(arg, v);
            }
            _ => return usage(),
        }
    }
    let Some(socket) = opts.get("--socket") else {
        return usage();
    };
    let opt = |k: &str| opts.get(k).map(String::as_str);
    let result = if model == "rng" {
        rng::run(socket, opt("--lie").unwrap_or("oversize"))
    } else {
        blk::run(
            socket,
            opt("--config").unwrap_or("honest"),
            opt("--lie").unwrap_or("none"),
            opt("--control"),
        )
    };
    result.unwrap_or_else(usage)
}
