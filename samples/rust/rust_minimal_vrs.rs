// SPDX-License-Identifier: GPL-2.0

//! The smallest out-of-tree Rust module: it proves that the build pipeline
//! (kernel, overlay, out-of-tree modules, initramfs, guest) works end to end.
//!
//! It allocates a vector on load and frees it on unload, so that a leak or a
//! bad free shows up under KASAN and kmemleak on the debug kernel.

use kernel::prelude::*;

module! {
    type: RustMinimalVrs,
    name: "rust_minimal_vrs",
    author: "virtio-rs developers",
    description: "Minimal Rust module proving the virtio-rs build pipeline",
    license: "GPL",
}

struct RustMinimalVrs {
    numbers: KVec<u32>,
}

impl kernel::Module for RustMinimalVrs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut numbers = KVec::new();
        for i in 0..4 {
            numbers.push(i * 7, GFP_KERNEL)?;
        }
        pr_info!("rust_minimal_vrs: loaded ({} numbers)\n", numbers.len());
        Ok(RustMinimalVrs { numbers })
    }
}

impl Drop for RustMinimalVrs {
    fn drop(&mut self) {
        pr_info!(
            "rust_minimal_vrs: unloaded (sum {})\n",
            self.numbers.iter().sum::<u32>()
        );
    }
}
