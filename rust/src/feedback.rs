//! Interleaving coverage for libFuzzer.
//!
//! Branch coverage says which code ran, not in which order threads met on shared memory: the
//! rcuref races live in windows a single step wide (a get between another thread's fetch-sub and
//! its cmpxchg) and take no new branch until the oracle sees the bug. So the deterministic engine
//! also reports, for every access to a VMA slot, the pair (class of the previous access to that
//! slot by *another* thread, class of this access), where a class is the kind of access and, for
//! the counter, the zone of the value it found. Each pair is one 8-bit counter handed to
//! libFuzzer like compiler-inserted coverage, so an input that makes two threads meet in a new
//! way is kept in the corpus and mutated further. Nothing here knows about any particular bug.
//!
//! Only the fuzz build (cargo feature `sancov`, built with sanitizer coverage by
//! pyfuzz/build.py) registers the counters; elsewhere `observe` compiles to nothing.

use crate::event::{AtomicOp, Event};
use crate::rcuref::{MAXREF, NOREF, ONEREF, RELEASED};

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

/// Per-slot memory of the last access, owned by one execution.
pub struct Tracker {
    last: [(i8, usize); crate::world::SLOTS],
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker { last: [(i8::MIN, 0); crate::world::SLOTS] }
    }
}

impl Tracker {
    pub fn see(&mut self, event: &Event) {
        if let Some((t, slot, class)) = classify(event) {
            let (prev_t, prev_class) = self.last[slot as usize];
            if prev_t != t && prev_t != i8::MIN {
                counters::hit(prev_class * CLASSES + class);
            }
            self.last[slot as usize] = (t, class);
        }
    }
}

#[cfg(feature = "sancov")]
mod counters {
    use super::PAIRS;
    use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
    use std::sync::Once;

    extern "C" {
        fn __sanitizer_cov_8bit_counters_init(start: *const u8, stop: *const u8);
        fn __sanitizer_cov_pcs_init(start: *const usize, stop: *const usize);
    }

    static COUNTERS: [AtomicU8; PAIRS] = [const { AtomicU8::new(0) }; PAIRS];
    /// Which pairs any execution of this process has met: libFuzzer clears COUNTERS between
    /// executions, and the campaign's status line counts interleaving features apart from code.
    static SEEN: [AtomicBool; PAIRS] = [const { AtomicBool::new(false) }; PAIRS];
    /// libFuzzer wants one (pc, flags) entry per counter; the counters' own addresses serve as
    /// the "pcs", which keeps them distinct from every real pc.
    static PCS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    static REGISTER: Once = Once::new();

    pub fn register() {
        REGISTER.call_once(|| {
            let pcs = PCS.get_or_init(|| COUNTERS.iter().flat_map(|c| [c.as_ptr() as usize, 0]).collect());
            let start = COUNTERS.as_ptr() as *const u8;
            // SAFETY: both ranges are 'static and never move; libFuzzer only reads the pc table
            // and resets/reads the counters between executions, which are plain bytes.
            unsafe {
                __sanitizer_cov_8bit_counters_init(start, start.add(PAIRS));
                __sanitizer_cov_pcs_init(pcs.as_ptr(), pcs.as_ptr().add(pcs.len()));
            }
        });
    }

    pub fn hit(pair: usize) {
        let c = &COUNTERS[pair];
        c.store(c.load(Relaxed).saturating_add(1), Relaxed);
        if !SEEN[pair].load(Relaxed) {
            SEEN[pair].store(true, Relaxed);
        }
    }

    /// The pairs met so far by this process, for the status line.
    pub fn seen() -> Vec<u16> {
        (0..PAIRS).filter(|&p| SEEN[p].load(Relaxed)).map(|p| p as u16).collect()
    }
}

#[cfg(not(feature = "sancov"))]
mod counters {
    pub fn register() {}
    pub fn hit(_pair: usize) {}
    pub fn seen() -> Vec<u16> {
        Vec::new()
    }
}

pub use counters::{register, seen};
