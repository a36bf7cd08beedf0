//! The history an execution leaves behind: facts only, no verdicts. The Python oracle judges them
//! (docs/DESIGN.md, section 4, is the contract for their Python form).

use std::hash::{Hash, Hasher};

/// Thread id of the setup code that builds the initial world.
pub const SETUP: i8 = -1;
/// Thread id of the RCU callback context that reclaims deferred frees.
pub const RCU_CALLBACK: i8 = -2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefFn {
    Get,
    Put,
    Init,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    Add,
    Sub,
    Load,
    Store,
    CasOk,
    CasFail,
}

/// Memory ordering of an access as the kernel code spells it. `Plain` is a non-atomic store
/// that happens to hit the counter (the memset in `vma_init`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    Relaxed,
    Release,
    Acquire,
    /// A fully ordered RMW (`atomic_long_add_negative`).
    SeqCst,
    Plain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Warning {
    Saturated,
    ImbalancedPut,
    VmaGetDisabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Start,
    End,
    Pgoff,
    File,
    Policy,
    /// `mapping=root`: the root VMA whose folios this VMA covers (slot + 1; 0: the VMA itself).
    Root,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockMode {
    Read,
    Write,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    OpBegin { t: i8, op: u8 },
    OpEnd { t: i8, op: u8, outcome: &'static str },
    Lookup { t: i8, mm: u8, slot: u8 },
    RefCall { t: i8, slot: u8, f: RefFn },
    RefRet { t: i8, slot: u8, f: RefFn, result: Option<bool> },
    Atomic { t: i8, slot: u8, op: AtomicOp, order: Order, old: u32, new: u32 },
    Fence { t: i8 },
    Warn { t: i8, slot: u8, what: Warning },
    Alloc { t: i8, slot: u8, gen: u32 },
    Free { t: i8, slot: u8, gen: u32 },
    Reclaim { slot: u8, gen: u32 },
    Read { t: i8, slot: u8, field: Field, value: u32 },
    Write { t: i8, slot: u8, field: Field, value: u32 },
    Use { t: i8, slot: u8, page: u8 },
    RcuLock { t: i8 },
    RcuUnlock { t: i8 },
    PreemptOff { t: i8 },
    PreemptOn { t: i8 },
    Lock { t: i8, mode: LockMode },
    Unlock { t: i8, mode: LockMode },
    TreeInsert { t: i8, mm: u8, slot: u8, start: u32, end: u32, pgoff: u32 },
    TreeUpdate { t: i8, mm: u8, slot: u8, start: u32, end: u32, pgoff: u32 },
    TreeRemove { t: i8, mm: u8, slot: u8 },
    MappingLoad { t: i8, page: u8, slot: Option<u8> },
    MappingStore { t: i8, page: u8, slot: u8 },
    /// The folio at `page` was mapped (setup) or its last page-table mapping was zapped.
    FolioMap { t: i8, page: u8, mapped: bool },
    /// `folio_mapped()` as the reader sees it.
    MappedLoad { t: i8, page: u8, mapped: bool },
    Panic { t: i8, message: String },
}

/// A small, fast, stable hasher (the multiply-rotate scheme of rustc's FxHasher). The digest only
/// has to tell histories apart within one campaign, so cryptographic strength buys nothing and
/// SipHash would cost a noticeable share of an execution.
#[derive(Default)]
pub struct Digest(u64);

impl Hasher for Digest {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_i8(&mut self, i: i8) {
        self.write_u64(i as u8 as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub fn digest(events: &[Event]) -> u64 {
    let mut h = Digest::default();
    events.hash(&mut h);
    h.finish()
}
