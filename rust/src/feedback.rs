//! Interleaving coverage for libFuzzer.
//!
//! Branch coverage says which code ran, not in which order threads met on shared memory: the
//! rcuref races live in windows a single step wide (a get between another thread's fetch-sub and
//! its cmpxchg) and take no new branch until the oracle sees the bug. So the deterministic engine
//! also reports, for every access to a VMA slot, the pair (class of the previous access to that
//! slot by *another* thread, class of this access), where a class is the kind of access and, for
//! the counter, the zone of the value it found. Each pair is one 8-bit counter handed to
//! libFuzzer like compiler-inserted coverage, so an input that makes two threads meet in a new
//! way is kept in the corpus and mutated further.
//!
//! Two more feature families describe the interleaving rather than the code, abstracted from
//! thread ids, slot and page numbers to the op each thread is executing and the kind of object:
//! *reads-from pairs* (RFF, ASPLOS 2024): for each read of a counter, a field, a folio mapping or
//! a folio's mapped state, the site (op kind, access class) of the other thread's write it
//! observed and its own site; and *hand-off sequences* (Fray's Fest, NSDI 2026): per object, the
//! last three changes of the thread touching it, as (op kind before, op kind after). Nothing here
//! knows about any particular bug.
//!
//! The mode (`set_mode`) says which families libFuzzer is told of; all three are tracked in every
//! mode, and `novel` counts the features of any family this process meets for the first time.
//! That count is the harness's signal for how many walks an input deserves (pyfuzz/harness.py):
//! libFuzzer does not tell it whether it kept an input, and the walk schedule should not depend on
//! which families guide the corpus.
//!
//! Only the fuzz build (cargo feature `sancov`, built with sanitizer coverage by
//! pyfuzz/build.py) registers the counters; elsewhere `observe` compiles to nothing.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use crate::event::{mix, AtomicOp, Event};
use crate::program::{Op, OpKind};
use crate::rcuref::{MAXREF, NOREF, ONEREF, RELEASED};
use crate::world::{MAX_THREADS, PAGES, SLOTS};

const ZONES: usize = 5;
const ATOMIC_CLASSES: usize = 6 * ZONES;
const CLASSES: usize = ATOMIC_CLASSES + 7;
pub const PAIRS: usize = CLASSES * CLASSES;
/// Whether anyone reads the counters: the engine skips tracking entirely in other builds.
pub const ENABLED: bool = cfg!(feature = "sancov");

fn zone(counter: u32) -> usize {
    match counter {
        ONEREF => 0,
        c if c <= MAXREF => 1,
        NOREF => 2,
        c if c >= RELEASED => 3,
        _ => 4,
    }
}

/// The slot an event touches and its class, if it touches one.
pub fn classify(event: &Event) -> Option<(i8, u8, usize)> {
    use Event::*;
    Some(match *event {
        Atomic { t, slot, op, old, .. } => {
            let op = match op {
                AtomicOp::Add => 0,
                AtomicOp::Sub => 1,
                AtomicOp::Load => 2,
                AtomicOp::Store => 3,
                AtomicOp::CasOk => 4,
                AtomicOp::CasFail => 5,
            };
            (t, slot, op * ZONES + zone(old))
        }
        Alloc { t, slot, .. } => (t, slot, ATOMIC_CLASSES),
        Free { t, slot, .. } => (t, slot, ATOMIC_CLASSES + 1),
        Reclaim { slot, .. } => (crate::event::RCU_CALLBACK, slot, ATOMIC_CLASSES + 2),
        Read { t, slot, .. } => (t, slot, ATOMIC_CLASSES + 3),
        Write { t, slot, .. } => (t, slot, ATOMIC_CLASSES + 4),
        Use { t, slot, .. } => (t, slot, ATOMIC_CLASSES + 5),
        MappingLoad { t, slot: Some(slot), .. } => (t, slot, ATOMIC_CLASSES + 6),
        _ => return None,
    })
}

/// Which interleaving features are reported (`set_mode`), so that `pyfuzz bench bugs` can
/// measure what each family buys (methods `pyfuzz-full`, `pyfuzz`, `pyfuzz-branches`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// Only the class pairs: the default. With the reads-from pairs and hand-offs as well, the
    /// campaign found nothing sooner on the hard tier and missed `put_no_cmpxchg` on one seed in
    /// 30 s that the pairs alone found on every seed (BENCHMARKS.md).
    Pairs,
    /// Class pairs, reads-from pairs and hand-off sequences.
    Full,
}

static MODE: AtomicU8 = AtomicU8::new(Mode::Pairs as u8);

pub fn set_mode(mode: Mode) {
    MODE.store(mode as u8, Relaxed);
}

fn mode() -> u8 {
    MODE.load(Relaxed)
}

/// Reads-from pairs and hand-off sequences are hashed into tables of this many counters each.
const READS_FROM: usize = 1 << 14;
const HANDOFFS: usize = 1 << 14;
pub const FEATURES: usize = PAIRS + READS_FROM + HANDOFFS;

/// The objects reads-from and hand-offs are tracked on: each slot's counter and its other fields,
/// each page's folio->mapping and its mapped state.
const OBJECTS: usize = 2 * SLOTS + 2 * PAGES as usize;
/// An op kind per thread, plus one for the setup and RCU callback contexts.
const KINDS: usize = OpKind::ALL.len() + 1;

/// Access classes of the page events, which `classify` leaves out (they touch no slot).
const PAGE_CLASSES: usize = 4;
const SITES: usize = KINDS * (CLASSES + PAGE_CLASSES);

/// The thread, the object an event accesses, whether it reads and whether it writes it, and its
/// access class (`classify`'s, or one of the page classes).
fn access(event: &Event) -> Option<(i8, usize, bool, bool, usize)> {
    use Event::*;
    let field = |slot: u8| SLOTS + slot as usize;
    let mapping = |page: u8| 2 * SLOTS + page as usize;
    let mapped = |page: u8| 2 * SLOTS + PAGES as usize + page as usize;
    let class = || classify(event).map_or(0, |(_, _, class)| class);
    Some(match *event {
        Atomic { t, slot, op: AtomicOp::Load | AtomicOp::CasFail, .. } => (t, slot as usize, true, false, class()),
        Atomic { t, slot, op: AtomicOp::Store, .. } => (t, slot as usize, false, true, class()),
        Atomic { t, slot, .. } => (t, slot as usize, true, true, class()),
        Read { t, slot, .. } | Use { t, slot, .. } => (t, field(slot), true, false, class()),
        Write { t, slot, .. } => (t, field(slot), false, true, class()),
        MappingStore { t, page, .. } => (t, mapping(page), false, true, CLASSES),
        MappingLoad { t, page, .. } => (t, mapping(page), true, false, CLASSES + 1),
        FolioMap { t, page, .. } => (t, mapped(page), false, true, CLASSES + 2),
        MappedLoad { t, page, .. } => (t, mapped(page), true, false, CLASSES + 3),
        _ => return None,
    })
}

/// The kind of object, which is all a feature keeps of it: slots and pages are interchangeable.
fn object_kind(object: usize) -> usize {
    [SLOTS, 2 * SLOTS, 2 * SLOTS + PAGES as usize].iter().filter(|&&end| object >= end).count()
}

/// One execution's memory of who touched what last, owned by the engine's run.
pub struct Tracker<'a> {
    threads: &'a [Vec<Op>],
    /// Per slot: the last access (thread, class), for the class pairs.
    last: [(i8, usize); SLOTS],
    /// Per thread (setup and RCU callback last): the kind of the op it is executing.
    kind: [u8; MAX_THREADS + 2],
    /// Per object: the thread and site (op kind, access class) of the last write.
    last_write: [Option<(i8, usize)>; OBJECTS],
    /// Per object: the thread that accessed it last and the kinds of its last three hand-offs.
    owner: [i8; OBJECTS],
    handoffs: [u32; OBJECTS],
    /// The feedback mode, read once per run: a run's features follow one mode throughout.
    mode: u8,
}

impl<'a> Tracker<'a> {
    pub fn new(threads: &'a [Vec<Op>]) -> Self {
        Tracker {
            threads,
            last: [(i8::MIN, 0); SLOTS],
            kind: [OpKind::ALL.len() as u8; MAX_THREADS + 2],
            last_write: [None; OBJECTS],
            owner: [i8::MIN; OBJECTS],
            handoffs: [0; OBJECTS],
            mode: mode(),
        }
    }

    fn thread_kind(&self, t: i8) -> usize {
        self.kind[if t >= 0 { t as usize } else { MAX_THREADS + (-1 - t) as usize }] as usize
    }

    pub fn see(&mut self, event: &Event) {
        let mode = self.mode;
        if let Event::OpBegin { t, op } = *event {
            if let Some(o) = self.threads.get(t as usize).and_then(|ops| ops.get(op as usize)) {
                self.kind[t as usize] = OpKind::ALL.iter().position(|&k| k == o.kind).unwrap_or(0) as u8;
            }
            return;
        }
        // Every family is tracked in every mode: the mode says which ones libFuzzer is told of,
        // while the harness spends its walks by what is new in all of them (`novel`).
        if let Some((t, slot, class)) = classify(event) {
            let (prev_t, prev_class) = self.last[slot as usize];
            if prev_t != t && prev_t != i8::MIN {
                counters::hit(prev_class * CLASSES + class, mode != Mode::Off as u8);
            }
            self.last[slot as usize] = (t, class);
        }
        let reported = mode == Mode::Full as u8;
        let Some((t, object, reads, writes, class)) = access(event) else { return };
        let site = self.thread_kind(t) * (CLASSES + PAGE_CLASSES) + class;
        if reads {
            if let Some((writer, write_site)) = self.last_write[object] {
                if writer != t {
                    let h = mix(object_kind(object) as u64, (write_site * SITES + site) as u64);
                    counters::hit(PAIRS + h as usize % READS_FROM, reported);
                }
            }
        }
        if writes {
            self.last_write[object] = Some((t, site));
        }
        let owner = self.owner[object];
        if owner != t {
            if owner != i8::MIN {
                let handoff = (self.thread_kind(owner) * KINDS + self.thread_kind(t)) as u32;
                self.handoffs[object] = (self.handoffs[object] << 8 | handoff) & 0xFF_FFFF;
                let h = mix(object_kind(object) as u64, self.handoffs[object] as u64);
                counters::hit(PAIRS + READS_FROM + h as usize % HANDOFFS, reported);
            }
            self.owner[object] = t;
        }
    }
}

#[cfg(feature = "sancov")]
mod counters {
    use super::FEATURES;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
    use std::sync::Once;

    extern "C" {
        fn __sanitizer_cov_8bit_counters_init(start: *const u8, stop: *const u8);
        fn __sanitizer_cov_pcs_init(start: *const usize, stop: *const usize);
    }

    static COUNTERS: [AtomicU8; FEATURES] = [const { AtomicU8::new(0) }; FEATURES];
    /// Which features any execution of this process has met: libFuzzer clears COUNTERS between
    /// executions, and the campaign's status line counts interleaving features apart from code.
    static SEEN: [AtomicBool; FEATURES] = [const { AtomicBool::new(false) }; FEATURES];
    /// libFuzzer wants one (pc, flags) entry per counter; the counters' own addresses serve as
    /// the "pcs", which keeps them distinct from every real pc.
    static PCS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    static REGISTER: Once = Once::new();
    /// Every feature of every family met so far, reported or not, and how many those are: what
    /// the harness's walk schedule asks after each run (pyfuzz/harness.py).
    static MET: [AtomicBool; FEATURES] = [const { AtomicBool::new(false) }; FEATURES];
    static NOVEL: AtomicU64 = AtomicU64::new(0);

    pub fn register() {
        REGISTER.call_once(|| {
            let pcs = PCS.get_or_init(|| COUNTERS.iter().flat_map(|c| [c.as_ptr() as usize, 0]).collect());
            let start = COUNTERS.as_ptr() as *const u8;
            // SAFETY: both ranges are 'static and never move; libFuzzer only reads the pc table
            // and resets/reads the counters between executions, which are plain bytes.
            unsafe {
                __sanitizer_cov_8bit_counters_init(start, start.add(FEATURES));
                __sanitizer_cov_pcs_init(pcs.as_ptr(), pcs.as_ptr().add(pcs.len()));
            }
        });
    }

    /// Feature `pair` met by this run: counted for libFuzzer if `reported` (the mode's families),
    /// and in every case remembered for `novel`.
    pub fn hit(pair: usize, reported: bool) {
        if reported {
            let c = &COUNTERS[pair];
            c.store(c.load(Relaxed).saturating_add(1), Relaxed);
            // Unconditionally: a branch taken only the first time a pair is met would be
            // coverage that depends on what the process ran before, not on this input.
            SEEN[pair].store(true, Relaxed);
        }
        // Without a branch, for the same reason: the first meeting only changes a count. Plain
        // loads and stores, not locked read-modify-writes, as for COUNTERS: one engine runs at a
        // time in the harness, and this is on every shared access of every run.
        let first = !MET[pair].load(Relaxed) as u64;
        MET[pair].store(true, Relaxed);
        NOVEL.store(NOVEL.load(Relaxed) + first, Relaxed);
    }

    pub fn novel() -> u64 {
        NOVEL.load(Relaxed)
    }

    /// The interleaving features met so far by this process, for the status line.
    /// One byte per pair, 1 once met: the same work on every call, so that calling it after each
    /// input adds no coverage of its own that depends on the history.
    pub fn seen() -> Vec<u8> {
        SEEN.iter().map(|s| s.load(Relaxed) as u8).collect()
    }
}

#[cfg(not(feature = "sancov"))]
mod counters {
    pub fn register() {}
    pub fn hit(_pair: usize, _reported: bool) {}
    pub fn seen() -> Vec<u8> {
        Vec::new()
    }
    pub fn novel() -> u64 {
        0
    }
}

pub use counters::{novel, register, seen};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_told_apart_by_kind_only() {
        assert_eq!(object_kind(0), 0);
        assert_eq!(object_kind(SLOTS - 1), 0);
        assert_eq!(object_kind(SLOTS), 1);
        assert_eq!(object_kind(2 * SLOTS), 2);
        assert_eq!(object_kind(2 * SLOTS + PAGES as usize - 1), 2);
        assert_eq!(object_kind(OBJECTS - 1), 3);
    }

    #[test]
    fn a_read_remembers_the_other_threads_write() {
        let threads = vec![vec![], vec![]];
        let mut tracker = Tracker::new(&threads);
        tracker.mode = Mode::Full as u8;
        tracker.see(&Event::MappingStore { t: 0, page: 3, slot: 1 });
        tracker.see(&Event::MappingLoad { t: 1, page: 3, slot: Some(1) });
        let object = 2 * SLOTS + 3;
        assert_eq!(tracker.last_write[object].map(|(t, _)| t), Some(0));
        assert_eq!(tracker.owner[object], 1);
        assert_ne!(tracker.handoffs[object], 0, "the object changed hands once");
    }
}
