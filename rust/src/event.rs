//! The history an execution leaves behind: facts only, no verdicts. The Python oracle judges them
//! (docs/DESIGN.md, section 4, is the contract for their Python form).

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

/// Plain data, `Copy`: a history is dropped and copied without a pass over its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// `rmap_lock=rwsem`: the rmap rwsem of the root VMA in `slot` acquired / released.
    RmapLock { t: i8, slot: u8, mode: LockMode },
    RmapUnlock { t: i8, slot: u8, mode: LockMode },
    /// The message is static text: the engine's are literals, and the real-thread runner's come
    /// from `stress::interned`.
    Panic { t: i8, message: &'static str },
}

impl Event {
    /// The event packed into two words for the digest: a tag, the thread and up to six small
    /// fields in the first, the 32-bit values in the second. Distinct events of one history give
    /// distinct words (the panic message is hashed apart).
    #[inline(always)]
    fn words(&self) -> (u64, u64) {
        use Event::*;
        let w = |tag: u64, t: i8, a: u64, b: u64, c: u64, d: u64| {
            tag | (t as u8 as u64) << 8 | a << 16 | b << 24 | c << 32 | d << 40
        };
        let pair = |x: u32, y: u32| x as u64 | (y as u64) << 32;
        match *self {
            OpBegin { t, op } => (w(0, t, op as u64, 0, 0, 0), 0),
            // Outcomes are short distinct literals: their length and first bytes tell them apart.
            OpEnd { t, op, outcome } => {
                let mut head = [0u8; 8];
                let n = outcome.len().min(8);
                head[..n].copy_from_slice(&outcome.as_bytes()[..n]);
                (w(1, t, op as u64, outcome.len() as u64, 0, 0), u64::from_le_bytes(head))
            }
            Lookup { t, mm, slot } => (w(2, t, mm as u64, slot as u64, 0, 0), 0),
            RefCall { t, slot, f } => (w(3, t, slot as u64, f as u64, 0, 0), 0),
            RefRet { t, slot, f, result } => (w(4, t, slot as u64, f as u64, result.map_or(2, |r| r as u64), 0), 0),
            Atomic { t, slot, op, order, old, new } => {
                (w(5, t, slot as u64, op as u64, order as u64, 0), pair(old, new))
            }
            Fence { t } => (w(6, t, 0, 0, 0, 0), 0),
            Warn { t, slot, what } => (w(7, t, slot as u64, what as u64, 0, 0), 0),
            Alloc { t, slot, gen } => (w(8, t, slot as u64, 0, 0, 0), gen as u64),
            Free { t, slot, gen } => (w(9, t, slot as u64, 0, 0, 0), gen as u64),
            Reclaim { slot, gen } => (w(10, 0, slot as u64, 0, 0, 0), gen as u64),
            Read { t, slot, field, value } => (w(11, t, slot as u64, field as u64, 0, 0), value as u64),
            Write { t, slot, field, value } => (w(12, t, slot as u64, field as u64, 0, 0), value as u64),
            Use { t, slot, page } => (w(13, t, slot as u64, page as u64, 0, 0), 0),
            RcuLock { t } => (w(14, t, 0, 0, 0, 0), 0),
            RcuUnlock { t } => (w(15, t, 0, 0, 0, 0), 0),
            PreemptOff { t } => (w(16, t, 0, 0, 0, 0), 0),
            PreemptOn { t } => (w(17, t, 0, 0, 0, 0), 0),
            Lock { t, mode } => (w(18, t, mode as u64, 0, 0, 0), 0),
            Unlock { t, mode } => (w(19, t, mode as u64, 0, 0, 0), 0),
            TreeInsert { t, mm, slot, start, end, pgoff } => {
                (w(20, t, mm as u64, slot as u64, 0, 0) | (pgoff as u64) << 32, pair(start, end))
            }
            TreeUpdate { t, mm, slot, start, end, pgoff } => {
                (w(21, t, mm as u64, slot as u64, 0, 0) | (pgoff as u64) << 32, pair(start, end))
            }
            TreeRemove { t, mm, slot } => (w(22, t, mm as u64, slot as u64, 0, 0), 0),
            MappingLoad { t, page, slot } => (w(23, t, page as u64, slot.map_or(0xFF, |s| s as u64), 0, 0), 0),
            MappingStore { t, page, slot } => (w(24, t, page as u64, slot as u64, 0, 0), 0),
            FolioMap { t, page, mapped } => (w(25, t, page as u64, mapped as u64, 0, 0), 0),
            MappedLoad { t, page, mapped } => (w(26, t, page as u64, mapped as u64, 0, 0), 0),
            Panic { t, message } => (w(27, t, 0, 0, 0, 0), message.len() as u64),
            RmapLock { t, slot, mode } => (w(28, t, slot as u64, mode as u64, 0, 0), 0),
            RmapUnlock { t, slot, mode } => (w(29, t, slot as u64, mode as u64, 0, 0), 0),
        }
    }
}

impl Event {
    /// Two words that tell any two distinct events apart, for the export's table of shared
    /// tuples (python.rs); None for a panic, whose message does not fit. The digest's words,
    /// but for an op's end the outcome's address and length: the digest's few bytes of it tell
    /// the outcomes the operations return apart, but nothing makes them tell every two strings
    /// apart, and a key that merged two events would export one in place of the other.
    #[inline(always)]
    pub fn key(&self) -> Option<(u64, u64)> {
        match self {
            Event::Panic { .. } => None,
            Event::OpEnd { outcome, .. } => Some((self.words().0, outcome.as_ptr() as u64)),
            _ => Some(self.words()),
        }
    }
}

/// The multiply-rotate step of rustc's FxHasher. The digest only has to tell histories apart
/// within one campaign, so cryptographic strength buys nothing; two mixes per event (its packed
/// words) instead of one per field keep it a small share of a run.
#[inline(always)]
pub fn mix(state: u64, word: u64) -> u64 {
    (state.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

/// The digest of a history: its events folded in order into a running state (starting at 0),
/// then its length. In that order the engine folds each event where it records it (the event's
/// kind known there, so its words cost a few shifts), instead of a pass over the history that
/// dispatches on every event's kind.
pub fn digest(events: &[Event]) -> u64 {
    finish(events.iter().fold(0, |h, e| e.fold_into(h)), events.len())
}

/// The digest from the state after the last event and the number of events.
pub fn finish(state: u64, events: usize) -> u64 {
    mix(state, events as u64)
}

impl Event {
    /// The running digest state after this event.
    #[inline(always)]
    pub fn fold_into(&self, state: u64) -> u64 {
        let (a, b) = self.words();
        let h = mix(mix(state, a), b);
        match self {
            Event::Panic { message, .. } => message.bytes().fold(h, |h, byte| mix(h, byte as u64)),
            _ => h,
        }
    }
}
