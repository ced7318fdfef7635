// SPDX-License-Identifier: GPL-2.0

//! Must-not-build control for the character-device cases: a module with a
//! region of one minor and file operations whose `read` borrows the file's
//! data for the call only, under `#![forbid(unsafe_code)]`. If this does not
//! build, the chrdev cases' results are void.
//
// expect: builds

#![forbid(unsafe_code)]

use kernel::prelude::*;
use kernel::{
    c_str,
    chrdev::{self, File, Region},
    sync::{Arc, ArcBorrow},
    uaccess::UserSliceWriter,
};

module! {
    type: Mnb,
    name: "chrdev_control",
    author: "virtio-rs authors",
    description: "mustnotbuild: the chrdev control case",
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
        Ok(port.bytes.min(0))
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
