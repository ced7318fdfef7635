// SPDX-License-Identifier: GPL-2.0

//! CPU masks, the online CPUs and the CPU hotplug lock.
//!
//! A driver that spreads its queues over the CPUs (interrupt affinity, XPS) reads the online
//! CPUs and builds a mask for each queue. The online CPUs are stable only while CPU hotplug is
//! held off: [`cpus_read_locked`] runs a closure under `cpus_read_lock()` and hands it a
//! [`CpusLocked`] token, which [`CpusLocked::online`] and the users of a mask that must agree
//! with the online CPUs (such as `__netif_set_xps_queue()`) ask for. A CPU hotplug callback
//! receives the same token: the hotplug machinery holds the lock for writing while it runs.
//!
//! [`Cpumask`] is a `struct cpumask` owned by Rust, on the heap (as C's `cpumask_var_t` with
//! `CONFIG_CPUMASK_OFFSTACK`), zeroed when made.
//!
//! C header: [`include/linux/cpumask.h`](srctree/include/linux/cpumask.h)

use crate::{alloc::Flags, bindings, prelude::*, types::Opaque};
use core::marker::PhantomData;

/// The bits in one word of a `struct cpumask`.
const WORD_BITS: u32 = usize::BITS;

/// The number of CPU ids (`nr_cpu_ids`): every CPU number is below it.
pub fn nr_cpu_ids() -> u32 {
    // SAFETY: `nr_cpu_ids` is set during early boot and only read after.
    unsafe { bindings::nr_cpu_ids }
}

/// A set of CPUs (`struct cpumask`), owned: zeroed when made, freed on drop.
///
/// # Invariants
///
/// `mask` is a `struct cpumask` that only this value accesses.
pub struct Cpumask {
    mask: KBox<Opaque<bindings::cpumask>>,
}

// SAFETY: A `Cpumask` is plain bits that only its owner accesses.
unsafe impl Send for Cpumask {}
// SAFETY: `&Cpumask` only reads.
unsafe impl Sync for Cpumask {}

impl Cpumask {
    /// An empty mask (C's `zalloc_cpumask_var()`).
    pub fn new(flags: Flags) -> Result<Self> {
        // SAFETY: A `struct cpumask` is an array of integers: all zeroes is an empty mask.
        let zero: bindings::cpumask = unsafe { core::mem::zeroed() };
        Ok(Self {
            mask: KBox::new(Opaque::new(zero), flags)?,
        })
    }

    fn words(&self) -> &[usize] {
        // SAFETY: The mask is ours alone (type invariant), and `&self` keeps it from changing;
        // `bits` is an array of `unsigned long`, the size of `usize` in the kernel.
        let bits = unsafe { &(*self.mask.get()).bits };
        // SAFETY: As above: `c_ulong` and `usize` have the same size and alignment.
        unsafe { core::slice::from_raw_parts(bits.as_ptr().cast(), bits.len()) }
    }

    fn words_mut(&mut self) -> &mut [usize] {
        // SAFETY: As in `words`, with `&mut self` for exclusive access.
        let bits = unsafe { &mut (*self.mask.get()).bits };
        // SAFETY: As in `words`.
        unsafe { core::slice::from_raw_parts_mut(bits.as_mut_ptr().cast(), bits.len()) }
    }

    /// Adds `cpu` (`cpumask_set_cpu()`). `EINVAL` if it is not a CPU number (at least
    /// [`nr_cpu_ids`]).
    pub fn set(&mut self, cpu: u32) -> Result {
        if cpu >= nr_cpu_ids() {
            return Err(EINVAL);
        }
        let word = self
            .words_mut()
            .get_mut((cpu / WORD_BITS) as usize)
            .ok_or(EINVAL)?;
        *word |= 1 << (cpu % WORD_BITS);
        Ok(())
    }

    /// Whether `cpu` is in the mask (`cpumask_test_cpu()`).
    pub fn test(&self, cpu: u32) -> bool {
        cpu < nr_cpu_ids()
            && self
                .words()
                .get((cpu / WORD_BITS) as usize)
                .is_some_and(|w| w & (1 << (cpu % WORD_BITS)) != 0)
    }

    /// Empties the mask (`cpumask_clear()`).
    pub fn clear(&mut self) {
        self.words_mut().fill(0);
    }

    /// The number of CPUs in the mask (`cpumask_weight()`).
    pub fn weight(&self) -> u32 {
        self.words().iter().map(|w| w.count_ones()).sum()
    }

    /// The `struct cpumask`, for C functions that read it while the borrow lasts.
    pub fn as_raw(&self) -> *const bindings::cpumask {
        self.mask.get()
    }
}

/// Proof that CPU hotplug is held off: the CPU hotplug lock is held (for reading, by
/// [`cpus_read_locked`], or for writing, by the hotplug machinery around its callbacks), so the
/// online CPUs do not change while a `&CpusLocked` exists.
///
/// # Invariants
///
/// A `&CpusLocked` exists only while the current thread, or the hotplug operation it runs a
/// callback for, holds the CPU hotplug lock. It is not `Send`: it stays with that thread.
pub struct CpusLocked {
    _not_send: PhantomData<*mut ()>,
}

impl CpusLocked {
    /// # Safety
    ///
    /// The CPU hotplug lock is held, by this thread or by the hotplug operation it runs a
    /// callback for, for as long as the returned reference lives.
    pub(crate) unsafe fn assume<'a>() -> &'a Self {
        // INVARIANT: By the safety requirements.
        &CpusLocked {
            _not_send: PhantomData,
        }
    }

    /// The online CPUs, in increasing order (`for_each_online_cpu()`).
    pub fn online(&self) -> OnlineCpus<'_> {
        OnlineCpus {
            next: 0,
            _locked: PhantomData,
        }
    }

    /// The number of online CPUs (`num_online_cpus()`).
    pub fn num_online(&self) -> u32 {
        self.online().count() as u32
    }
}

/// Runs `f` with CPU hotplug held off (`cpus_read_lock()`). Process context; sleeps. Must not
/// be called from a CPU hotplug callback, which has its own [`CpusLocked`] (the hotplug
/// machinery holds the lock for writing then).
pub fn cpus_read_locked<R>(f: impl FnOnce(&CpusLocked) -> R) -> R {
    // SAFETY: Process context, as documented.
    unsafe { bindings::cpus_read_lock() };
    // SAFETY: The lock is held until `f` returns, and the reference cannot outlive the call
    // (`f` takes it for any lifetime, so it cannot keep it).
    let r = f(unsafe { CpusLocked::assume() });
    // SAFETY: Taken above.
    unsafe { bindings::cpus_read_unlock() };
    r
}

/// The online CPUs, in increasing order: see [`CpusLocked::online`]. Cloning restarts nothing:
/// the clone goes on from the same CPU.
#[derive(Clone)]
pub struct OnlineCpus<'a> {
    next: u32,
    _locked: PhantomData<&'a CpusLocked>,
}

impl Iterator for OnlineCpus<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let n = nr_cpu_ids();
        // SAFETY: `__cpu_online_mask` is a static `struct cpumask`; while the hotplug lock is
        // held (invariant of `CpusLocked`, borrowed for `'a`) nothing changes it. Its address
        // is taken without making a reference to a `static mut`.
        let bits = unsafe { core::ptr::addr_of!(bindings::__cpu_online_mask.bits) };
        // SAFETY: As above, `bits` is valid for reads.
        let len = unsafe { (*bits).len() } as u32;
        while self.next < n && self.next / WORD_BITS < len {
            let cpu = self.next;
            self.next += 1;
            // SAFETY: As above; `cpu / WORD_BITS < len`.
            let word = unsafe { (*bits)[(cpu / WORD_BITS) as usize] };
            if word & (1 << (cpu % WORD_BITS)) != 0 {
                return Some(cpu);
            }
        }
        None
    }
}
