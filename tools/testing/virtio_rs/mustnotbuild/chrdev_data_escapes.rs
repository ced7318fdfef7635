// SPDX-License-Identifier: GPL-2.0

//! Must not build: a file's data kept past the call that borrowed it.
//!
//! `read`, `write` and `poll` get the file's data borrowed for the call;
//! only `release` gets it back, by value, so nothing can reach it after the
//! file is gone. Handing the borrow to deferred work would let that work use
//! the data after `release` dropped it.
//
// expect: lifetime may not live long enough
// expect: E0597

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    c_str,
    chrdev::{self, File, Region},
    sync::{Arc, ArcBorrow},
    uaccess::UserSliceWriter,
    workqueue,
};

module! {
    type: Mnb,
    name: "chrdev_data_escapes",
    author: "virtio-rs authors",
    description: "mustnotbuild: chrdev file data kept past its call",
    license: "GPL",
}

struct Port {
    bytes: usize,
}

struct Ops;

#[vtable]
impl chrdev::Operations for Ops {
    type Port = Port;
    type Data = Arc<Port>;

    fn open(port: &Arc<Port>, _file: &File) -> Result<Arc<Port>> {
        Ok(port.clone())
    }

    fn read(port: ArcBorrow<'_, Port>, _file: &File, _buf: &mut UserSliceWriter) -> Result<usize> {
        // forbidden: a borrow of the file's data, handed to work that may run after release
        let bytes: &'static usize = &port.bytes;
        let _ = workqueue::system().try_spawn(GFP_KERNEL, move || pr_info!("{}\n", bytes));
        Ok(0)
    }
}

struct Mnb {
    _region: Arc<Region<Ops>>,
}

impl kernel::Module for Mnb {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let region = Region::new(c_str!("mnb"), c_str!("mnb"), 1, kernel::chrdev_fops!(Ops))?;
        Ok(Self { _region: region })
    }
}
