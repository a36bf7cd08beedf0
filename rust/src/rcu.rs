//! RCU as the protocol sees it: read-side sections (rcu_read_lock or disabled preemption) and
//! grace periods that wait for every section that was running when they began.
//!
//! Entering or leaving a section is a scheduling point like any shared-memory access: a grace
//! period that starts just before `rcu_read_lock` does not wait for the section, and one that
//! starts just after must, so other threads have to be able to run between a load and the
//! section that should protect it (and between the end of a section and what follows it).
//! A deferred free records which threads were inside a section at that moment
//! and how many sections each had finished; the grace period is over once each of them has
//! finished one more. Callbacks run as soon as that holds, the most hostile legal timing.
//!
//! The read side costs what the kernel's does: a thread's nesting counts are its own (per task
//! or per CPU there), so it changes them with a plain load and store, no atomic read-modify-write
//! and no barrier. The barrier a section's entry needs (its loads must not run before a grace
//! period can see it inside) is paid by the grace period instead: on OS threads it forces one onto
//! every running reader with `membarrier` before it looks at their counts (`membarrier.rs`).
//! Leaving is a release store, which orders the section's accesses before the grace period that
//! sees it over.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{compiler_fence, fence, AtomicU32, AtomicU64};
use std::sync::Mutex;

use crate::env::{twice, Env};
use crate::event::Event;
use crate::membarrier::{self, Barrier};
use crate::world::{copy_u32, MAX_THREADS};

/// What runs the readers, which decides what orders a section's entry before a grace period's
/// look at it.
#[derive(Clone, Copy)]
enum Readers {
    /// The deterministic engine: one OS thread runs every simulated thread in the order its
    /// scheduler picks, so program order is the only order there is.
    Simulated,
    /// The real-thread runner's OS threads.
    OsThreads(Barrier),
}

/// One thread's read-side state: written by that thread alone, read by grace periods. Each on its
/// own pair of cache lines, so that one reader's stores never take another's line away (the
/// adjacent-line prefetcher pulls lines in pairs).
#[derive(Default)]
#[repr(align(128))]
struct ReaderState {
    rcu_nesting: AtomicU32,
    preempt_count: AtomicU32,
    /// Incremented each time the thread leaves its outermost read-side section.
    sections_done: AtomicU64,
}

impl ReaderState {
    /// The owner's view of its own counts, which no other thread writes.
    fn in_section(&self) -> bool {
        self.rcu_nesting.load(Relaxed) > 0 || self.preempt_count.load(Relaxed) > 0
    }
    /// What a grace period waits for; `preempt == false` is the mutant `gp_ignores_preempt`.
    /// Acquire: a section seen over has its accesses ordered before what the grace period allows.
    fn holds_grace_period(&self, preempt: bool) -> bool {
        self.rcu_nesting.load(Acquire) > 0 || preempt && self.preempt_count.load(Acquire) > 0
    }
}

/// A callback queued by `call_rcu`, waiting for the readers it must outlive.
#[derive(Clone)]
pub struct Callback<T> {
    pub payload: T,
    /// Per thread: how many sections it had finished, if it was inside one when the callback was
    /// queued (None: the grace period need not wait for it).
    waits_for: [Option<u64>; MAX_THREADS],
}

pub struct Rcu {
    /// Inline, one per thread a program may have: the engine builds a world for every run, and a
    /// thread that does not exist is never inside a section, so no grace period waits for it.
    readers: [ReaderState; MAX_THREADS],
    run_by: Readers,
}

impl Rcu {
    /// The deterministic engine's RCU.
    pub fn new(threads: usize) -> Rcu {
        assert!(threads <= MAX_THREADS, "at most {MAX_THREADS} readers");
        Rcu { readers: Default::default(), run_by: Readers::Simulated }
    }

    /// The RCU of readers on OS threads, with membarrier where the kernel offers it.
    pub fn on_os_threads(threads: usize) -> Rcu {
        Rcu { run_by: Readers::OsThreads(membarrier::barrier()), ..Rcu::new(threads) }
    }

    /// A copy of the RCU state of a world no thread is running in (`World::copy`).
    pub fn copy(&self) -> Rcu {
        let readers = std::array::from_fn(|t| {
            let r = &self.readers[t];
            ReaderState {
                rcu_nesting: copy_u32(&r.rcu_nesting),
                preempt_count: copy_u32(&r.preempt_count),
                sections_done: AtomicU64::new(r.sections_done.load(Relaxed)),
            }
        });
        Rcu { readers, run_by: self.run_by }
    }

    fn reader<E: Env>(&self, env: &E) -> &ReaderState {
        &self.readers[env.tid() as usize]
    }

    /// The reader's own count goes up; its section's loads come after.
    fn enter(&self, count: &AtomicU32) {
        count.store(count.load(Relaxed).wrapping_add(1), Relaxed);
        match self.run_by {
            Readers::OsThreads(Barrier::Fences) => fence(SeqCst),
            // The grace period's membarrier orders the CPU; this keeps the compiler from moving
            // the section's accesses above the store.
            _ => compiler_fence(SeqCst),
        }
    }

    /// The reader's own count goes down, after everything its section did.
    fn exit<E: Env>(&self, env: &E, count: &AtomicU32) {
        count.store(count.load(Relaxed).wrapping_sub(1), Release);
        let r = self.reader(env);
        if !r.in_section() {
            r.sections_done.store(r.sections_done.load(Relaxed) + 1, Release);
        }
    }

    /// What every reader's section entry left out, before a grace period looks at the readers.
    fn grace_period_barrier(&self) {
        match self.run_by {
            Readers::Simulated => {}
            Readers::OsThreads(Barrier::Membarrier) => membarrier::heavy(),
            Readers::OsThreads(Barrier::Fences) => fence(SeqCst),
        }
    }

    /// `call_rcu`: the payload becomes ready after a grace period starting now, which waits for
    /// preempt-disabled regions too unless `preempt` is false.
    pub fn defer<T>(&self, payload: T, preempt: bool) -> Callback<T> {
        self.grace_period_barrier();
        // The count is read first: a reader that leaves between the two reads is then either
        // seen outside (and needs no waiting) or waited for one section end too many, never
        // one section end that has already happened.
        let mut waits_for = [None; MAX_THREADS];
        for (waits, r) in waits_for.iter_mut().zip(&self.readers) {
            let done = r.sections_done.load(Acquire);
            if r.holds_grace_period(preempt) {
                *waits = Some(done);
            }
        }
        Callback { payload, waits_for }
    }

    pub fn grace_period_over<T>(&self, cb: &Callback<T>) -> bool {
        cb.waits_for.iter().zip(&self.readers).all(|(waits, r)| waits.is_none_or(|done| r.sections_done.load(Acquire) > done))
    }

    /// Run `f` on the payload of every callback whose grace period has ended, in queue order,
    /// with the queue locked.
    pub fn take_ready<T>(&self, queue: &Mutex<Vec<Callback<T>>>, mut f: impl FnMut(T)) {
        let mut q = queue.lock().unwrap();
        let mut i = 0;
        while i < q.len() {
            if self.grace_period_over(&q[i]) {
                f(q.remove(i).payload);
            } else {
                i += 1;
            }
        }
    }
}

// The read side is on the get/put path (`rcuref_put` disables preemption), so it is expanded for
// both runners (env.rs).
twice! {
    []

    /// `rcu_read_lock`.
    #[inline(always)]
    pub fn read_lock(env: &E) {
        step!(env);
        let rcu = &env.world().rcu;
        rcu.enter(&rcu.reader(env).rcu_nesting);
        env.emit(Event::RcuLock { t: env.tid() });
    }

    /// `rcu_read_unlock`.
    #[inline(always)]
    pub fn read_unlock(env: &E) {
        step!(env);
        let rcu = &env.world().rcu;
        rcu.exit(env, &rcu.reader(env).rcu_nesting);
        env.emit(Event::RcuUnlock { t: env.tid() });
    }

    /// `preempt_disable`: a read-side section for every grace period but `gp_ignores_preempt`'s.
    #[inline(always)]
    pub fn preempt_disable(env: &E) {
        step!(env);
        let rcu = &env.world().rcu;
        rcu.enter(&rcu.reader(env).preempt_count);
        env.emit(Event::PreemptOff { t: env.tid() });
    }

    /// `preempt_enable`.
    #[inline(always)]
    pub fn preempt_enable(env: &E) {
        step!(env);
        let rcu = &env.world().rcu;
        rcu.exit(env, &rcu.reader(env).preempt_count);
        env.emit(Event::PreemptOn { t: env.tid() });
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::engine::DirectEnv;
    use crate::world::{Config, World};

    /// rcutorture in miniature, on OS threads: a reader keeps dereferencing the current object
    /// inside read-side sections while an updater keeps replacing it and poisoning the old one
    /// once a grace period has passed. A grace period that ends while a reader still holds the
    /// old object (e.g. a section entry the grace period did not see) shows as a poisoned read.
    /// (With the membarrier call taken out of `grace_period_barrier`, this saw hundreds of
    /// poisoned reads per run whenever both threads had a CPU at once.)
    #[test]
    fn a_grace_period_outlasts_every_reader_that_could_see_the_old_object() {
        const OBJECTS: usize = 4;
        // Both bounds: the threads overlap only when both have a CPU, which a loaded machine
        // may give them late.
        const REPLACEMENTS: u32 = 20_000;
        const SECTIONS: u64 = 200_000;
        let world = World { rcu: Rcu::on_os_threads(2), ..World::new(Config::SEED, 2) };
        let rcu = &world.rcu;
        let current = AtomicU32::new(0);
        let poisoned: [AtomicBool; OBJECTS] = Default::default();
        let (sections, done) = (AtomicU64::new(0), AtomicBool::new(false));
        let bad_reads = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let log = RefCell::new(Vec::new());
                let env = DirectEnv { tid: 0, world: &world, log: &log };
                let mut bad = 0u32;
                for n in 0.. {
                    if done.load(Relaxed) {
                        break;
                    }
                    // Both kinds of section: rcu_read_lock and disabled preemption.
                    let preempt = n % 2 == 1;
                    if preempt { now::preempt_disable(&env) } else { now::read_lock(&env) }
                    let object = current.load(Acquire) as usize;
                    // Look for a while: a premature grace period poisons within some 100 ns.
                    for _ in 0..4 {
                        bad += poisoned[object].load(Relaxed) as u32;
                        std::hint::spin_loop();
                    }
                    if preempt { now::preempt_enable(&env) } else { now::read_unlock(&env) }
                    log.borrow_mut().clear();
                    sections.store(n + 1, Relaxed);
                }
                bad
            });
            let mut i = 0;
            while i < REPLACEMENTS || sections.load(Relaxed) < SECTIONS {
                i += 1;
                let (old, new) = ((i as usize - 1) % OBJECTS, i as usize % OBJECTS);
                poisoned[new].store(false, Relaxed);
                current.store(new as u32, Release);
                let cb = rcu.defer(old, true);
                while !rcu.grace_period_over(&cb) {
                    std::hint::spin_loop();
                }
                poisoned[cb.payload].store(true, Relaxed);
            }
            done.store(true, Relaxed);
            reader.join().unwrap()
        });
        assert_eq!(bad_reads, 0, "a reader saw its object poisoned inside its read-side section");
    }
}
