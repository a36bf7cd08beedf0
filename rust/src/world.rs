//! The shared state every simulated (or real) thread works on: VMA slots with their rcuref
//! counters, the slab, RCU, the mms' VMA trees and their mmap_lock, and the folios.
//!
//! Everything other threads can touch is an atomic, so the real-thread runner has no data races
//! in the Rust sense; which of those accesses the kernel performs as *plain* accesses is recorded
//! in the events, and that is what the oracle reasons about.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Mutex;

use crate::mutant::Mutant;
use crate::rcu::Rcu;
use crate::slab::Slab;

pub const SLOTS: usize = 8;
pub const PAGES: u32 = 16;
pub const MAX_THREADS: usize = 4;
pub const MIN_THREADS: usize = 2;
/// The most ops a program file or tuple may give one thread. The byte decoder draws at most
/// `program::DECODED_OPS` (campaigns' programs stay small, see `OP_COUNTS`); the larger limit is for
/// programs written out, such as `pyfuzz bench speed`'s 32-op rows.
pub const MAX_OPS: usize = 32;
pub const MAX_SETUP_VMAS: usize = 4;
pub const MMS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabMode {
    /// SLAB_TYPESAFE_BY_RCU: a freed object can be handed out again at once.
    TypesafeByRcu,
    /// kfree_rcu/call_rcu: the memory is reused only after a grace period.
    Deferred,
}

/// How `vma_get` takes its reference (docs/DESIGN.md, "Candidate fixes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetAlgo {
    /// `rcuref_get`: fetch-add, and a slow path that re-reads the counter and may store to it.
    Rcuref,
    /// `file_ref_get` since "don't accidently mark recycled files dead": the add's own result
    /// decides, and a failed get never stores to the counter.
    AddResult,
    /// `__refcount_inc_not_zero_limited_acquire`, as `vma_start_read` takes `vm_refcnt`: a
    /// compare-exchange loop that only ever moves a counter inside the valid zone.
    IncNotZero,
}

/// The folio->mapping policy of ANON_VMA_LAZY (patch 09, not recovered): what a lazy folio's
/// `mapping` names once its VMA is split or merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingPolicy {
    /// Folios are re-pointed to the VMA that covers them after every split and merge.
    Repoint,
    /// Folios keep naming their root VMA; each VMA cut from a root pins it with a reference,
    /// and the reader looks the covering VMA up in the root's mm.
    Root,
}

/// What the lazy reverse-map walker holds while it validates and uses the VMA a folio names
/// (patch 09, not recovered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmapLock {
    /// RCU and a reference only: nothing orders its reads of `vm_start`, `vm_end` and
    /// `vm_pgoff` against a split or merge that moves them.
    None,
    /// The root VMA's rmap rwsem, for read. Split and merge hold it for write from the first
    /// change of a published VMA's range to the end of the tree update (`vma_prepare` ..
    /// `vma_complete`), as they hold the root anon_vma's rwsem for a VMA that has one; the walker
    /// takes it as `folio_lock_anon_vma_read` takes the anon_vma's (a trylock under RCU, else
    /// leave RCU holding the pin, then sleep on it).
    Rwsem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub vma_ref: bool,
    pub slab: SlabMode,
    /// `vma_put` uses `rcuref_put` (preemption disabled) rather than `rcuref_put_rcusafe`.
    pub put_preempt: bool,
    pub debug_vm: bool,
    pub get: GetAlgo,
    /// `init=keep_counter`: the allocation's zeroing skips the counter (as `struct file` and
    /// Jann Horn's review of "fs: port files to file_ref" require), so a recycled VMA's counter
    /// stays in the dead zone until `vma_rcuref_init` makes it live with one release store.
    pub init_keeps_counter: bool,
    pub mapping: MappingPolicy,
    pub rmap_lock: RmapLock,
    /// `lockdep=on`: the kernel's lock and RCU debugging is built in. It changes nothing in the
    /// execution; the oracle's debug rules read it (pyfuzz/oracle/debugchecks.py).
    pub lockdep: bool,
    pub mutant: Mutant,
}

impl Config {
    pub const SEED: Config = Config {
        vma_ref: true,
        slab: SlabMode::TypesafeByRcu,
        put_preempt: true,
        debug_vm: true,
        get: GetAlgo::Rcuref,
        init_keeps_counter: false,
        mapping: MappingPolicy::Repoint,
        rmap_lock: RmapLock::None,
        lockdep: false,
        mutant: Mutant::None,
    };

    /// Keys, allowed values, default first: the single source for Python's `_core.CONFIG`.
    pub const KEYS: &'static [(&'static str, &'static [&'static str])] = &[
        ("vma_ref", &["on", "off"]),
        ("slab", &["typesafe", "deferred"]),
        ("put", &["preempt", "rcusafe"]),
        ("debug_vm", &["on", "off"]),
        ("get", &["rcuref", "add_result", "inc_not_zero"]),
        ("init", &["memset", "keep_counter"]),
        ("mapping", &["repoint", "root"]),
        ("lockdep", &["off", "on"]),
        ("rmap_lock", &["none", "rwsem"]),
    ];

    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let on = |v: &str| match v {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(format!("config {key}: expected on or off, got {v:?}")),
        };
        match key {
            "vma_ref" => self.vma_ref = on(value)?,
            "debug_vm" => self.debug_vm = on(value)?,
            "lockdep" => self.lockdep = on(value)?,
            "slab" => {
                self.slab = match value {
                    "typesafe" => SlabMode::TypesafeByRcu,
                    "deferred" => SlabMode::Deferred,
                    _ => return Err(format!("config slab: expected typesafe or deferred, got {value:?}")),
                }
            }
            "put" => {
                self.put_preempt = match value {
                    "preempt" => true,
                    "rcusafe" => false,
                    _ => return Err(format!("config put: expected preempt or rcusafe, got {value:?}")),
                }
            }
            "get" => {
                self.get = match value {
                    "rcuref" => GetAlgo::Rcuref,
                    "add_result" => GetAlgo::AddResult,
                    "inc_not_zero" => GetAlgo::IncNotZero,
                    _ => return Err(format!("config get: expected rcuref, add_result or inc_not_zero, got {value:?}")),
                }
            }
            "init" => {
                self.init_keeps_counter = match value {
                    "memset" => false,
                    "keep_counter" => true,
                    _ => return Err(format!("config init: expected memset or keep_counter, got {value:?}")),
                }
            }
            "mapping" => {
                self.mapping = match value {
                    "repoint" => MappingPolicy::Repoint,
                    "root" => MappingPolicy::Root,
                    _ => return Err(format!("config mapping: expected repoint or root, got {value:?}")),
                }
            }
            "rmap_lock" => {
                self.rmap_lock = match value {
                    "none" => RmapLock::None,
                    "rwsem" => RmapLock::Rwsem,
                    _ => return Err(format!("config rmap_lock: expected none or rwsem, got {value:?}")),
                }
            }
            _ => return Err(format!("unknown config key {key:?}")),
        }
        Ok(())
    }

    /// For tests over the whole space: the seed, each key's other values on the seed, and each
    /// mutant of the catalog on the seed under both slab modes.
    #[cfg(test)]
    pub fn variants() -> Vec<Config> {
        let mut configs = vec![Config::SEED];
        for (key, values) in Config::KEYS {
            for value in &values[1..] {
                let mut c = Config::SEED;
                c.set(key, value).unwrap();
                configs.push(c);
            }
        }
        for entry in &crate::mutant::CATALOG[1..] {
            for slab in [SlabMode::TypesafeByRcu, SlabMode::Deferred] {
                configs.push(Config { mutant: entry.mutant, slab, ..Config::SEED });
            }
        }
        configs
    }
}

/// One slab object's worth of `struct vm_area_struct`, reduced to the fields the protocol uses.
#[derive(Default)]
pub struct Slot {
    pub counter: AtomicU32,
    pub start: AtomicU32,
    pub end: AtomicU32,
    pub pgoff: AtomicU32,
    pub file: AtomicU32,
    pub policy: AtomicU32,
    pub root: AtomicU32,
    /// `rmap_lock=rwsem`: the rmap rwsem of the VMAs this one is the root of (`WRITER` bit or a
    /// count of readers). Like an anon_vma's rwsem, which its slab constructor initialises once,
    /// it lives with the memory: the allocation's zeroing leaves it alone, so a stale walker that
    /// holds it on a recycled VMA still holds a lock.
    pub rmap_lock: AtomicU32,
}

/// An atomic's value at the moment of the copy, for copying a world no thread is running in.
pub fn copy_u32(a: &AtomicU32) -> AtomicU32 {
    AtomicU32::new(a.load(Relaxed))
}

impl Clone for Slot {
    fn clone(&self) -> Slot {
        Slot {
            counter: copy_u32(&self.counter),
            start: copy_u32(&self.start),
            end: copy_u32(&self.end),
            pgoff: copy_u32(&self.pgoff),
            file: copy_u32(&self.file),
            policy: copy_u32(&self.policy),
            root: copy_u32(&self.root),
            rmap_lock: copy_u32(&self.rmap_lock),
        }
    }
}

/// A VMA's place in an mm, as the tree (maple tree) knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    pub slot: u8,
    pub start: u32,
    pub end: u32,
}

pub struct World {
    pub slots: [Slot; SLOTS],
    pub slab: Slab,
    pub rcu: Rcu,
    /// Per mm, VMAs sorted by start. Only touched with the mmap_lock held, so the Mutex is never
    /// contended; it exists so the real-thread runner stays within safe Rust.
    pub trees: Mutex<[Vec<TreeEntry>; MMS]>,
    /// The mmap_lock rwsem: `WRITER` bit or a count of readers.
    pub mmap_lock: AtomicU32,
    /// folio->mapping for the folio at each page: 0 = none, else slot + 1.
    pub folio_mapping: [AtomicU32; PAGES as usize],
    /// Whether the folio at each page is mapped by a page table (folio_mapped()). Unmapping
    /// comes before the VMA is released, which is what lets a reader trust a mapping it read
    /// while the folio was still mapped.
    pub folio_mapped: [AtomicU32; PAGES as usize],
    pub config: Config,
}

pub const WRITER: u32 = 1 << 31;

impl World {
    pub fn new(config: Config, threads: usize) -> World {
        World {
            slots: Default::default(),
            slab: Slab::new(config.slab),
            rcu: Rcu::new(threads),
            trees: Mutex::new([Vec::new(), Vec::new()]),
            mmap_lock: AtomicU32::new(0),
            folio_mapping: Default::default(),
            folio_mapped: Default::default(),
            config,
        }
    }

    /// A copy of a world no thread is running in: the engine's runs of one program start from
    /// copies of the world its setup built.
    pub fn copy(&self) -> World {
        World {
            slots: self.slots.clone(),
            slab: self.slab.copy(),
            rcu: self.rcu.copy(),
            trees: Mutex::new(self.trees.lock().unwrap().clone()),
            mmap_lock: copy_u32(&self.mmap_lock),
            folio_mapping: std::array::from_fn(|page| copy_u32(&self.folio_mapping[page])),
            folio_mapped: std::array::from_fn(|page| copy_u32(&self.folio_mapped[page])),
            config: self.config,
        }
    }

    pub fn counter(&self, slot: u8) -> &AtomicU32 {
        &self.slots[slot as usize].counter
    }

    pub fn final_counters(&self) -> Vec<u32> {
        self.slots.iter().map(|s| s.counter.load(Relaxed)).collect()
    }

    /// The VMA of `mm` containing `addr`, if any.
    pub fn find_vma(&self, mm: u8, addr: u32) -> Option<TreeEntry> {
        let trees = self.trees.lock().unwrap();
        trees[mm as usize].iter().copied().find(|v| v.start <= addr && addr < v.end)
    }

    /// The VMA that follows `slot` in `mm`, if any.
    pub fn next_vma(&self, mm: u8, slot: u8) -> Option<TreeEntry> {
        let trees = self.trees.lock().unwrap();
        let tree = &trees[mm as usize];
        let i = tree.iter().position(|v| v.slot == slot)?;
        tree.get(i + 1).copied()
    }

    pub fn range_is_free(&self, mm: u8, start: u32, end: u32) -> bool {
        let trees = self.trees.lock().unwrap();
        trees[mm as usize].iter().all(|v| v.end <= start || end <= v.start)
    }
}
