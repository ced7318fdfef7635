// SPDX-License-Identifier: GPL-2.0

//! The smallest out-of-tree Rust module: it proves that the build pipeline
//! (kernel, overlay, out-of-tree modules, initramfs, guest) works end to end.
//!
//! It allocates a vector on load and frees it on unload, so that a leak or a
//! bad free shows up under KASAN and kmemleak on the debug kernel. Its two
//! module parameters say how long the vector is and where it starts:
//!
//! ```text
//! insmod rust_minimal_vrs.ko numbers=6 first=-10
//! cat /sys/module/rust_minimal_vrs/parameters/numbers     # 6
//! ```

use kernel::prelude::*;

module! {
    type: RustMinimalVrs,
    name: "rust_minimal_vrs",
    author: "virtio-rs developers",
    description: "Minimal Rust module proving the virtio-rs build pipeline",
    license: "GPL",
    params: {
        numbers: u32 {
            default: 4,
            description: "How many numbers to allocate on load (at most 1024)",
        },
        first: i32 {
            default: 0,
            description: "The first number; each next one is 7 more",
        },
    },
}

/// The most numbers the module allocates: more is refused with `EINVAL`.
const MAX_NUMBERS: u32 = 1024;

struct RustMinimalVrs {
    numbers: KVec<i64>,
}

impl kernel::Module for RustMinimalVrs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let count = *module_parameters::numbers.value();
        let first = *module_parameters::first.value();
        if count > MAX_NUMBERS {
            pr_err!("numbers={count} is more than {MAX_NUMBERS}\n");
            return Err(EINVAL);
        }
        let mut numbers = KVec::with_capacity(count as usize, GFP_KERNEL)?;
        for i in 0..i64::from(count) {
            numbers.push(i64::from(first) + i * 7, GFP_KERNEL)?;
        }
        pr_info!(
            "rust_minimal_vrs: loaded ({} numbers), first {}\n",
            numbers.len(),
            first
        );
        Ok(RustMinimalVrs { numbers })
    }
}

impl Drop for RustMinimalVrs {
    fn drop(&mut self) {
        pr_info!(
            "rust_minimal_vrs: unloaded (sum {})\n",
            self.numbers.iter().sum::<i64>()
        );
    }
}
