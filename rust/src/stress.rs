//! The real-thread runner: the same `vma::run_thread` the deterministic engine drives, executed on
//! OS threads through `DirectEnv`, whose steps never suspend. The OS interleaves the threads, so a
//! program's schedule means nothing here; what this adds is the hardware's own interleavings and
//! memory orderings, which no scheduler enumerates.
//!
//! There is no total order of events across threads, so each thread keeps its own history (in
//! program order) and the RCU callback context keeps the reclaims. The Python side
//! (`pyfuzz.stress`) judges only what needs no total order.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Barrier;

use crate::engine::{self, DirectEnv};
use crate::env::Env;
use crate::event::{Event, LockMode};
use crate::program::{Op, Program};
use crate::rcu::Rcu;
use crate::vma;
use crate::world::{Config, TreeEntry, World, MMS};

/// What one execution of a program on real threads left behind.
pub struct StressRun {
    /// The setup's history (thread `SETUP`).
    pub setup: Vec<Event>,
    /// Each program thread's history, in its program order.
    pub threads: Vec<Vec<Event>>,
    /// The RCU callback context's reclaims, in the order it ran them.
    pub reclaims: Vec<Event>,
    pub final_counters: Vec<u32>,
    /// Each mm's VMA tree at the end.
    pub trees: [Vec<TreeEntry>; MMS],
}

/// Run `program` `iterations` times, each time on a fresh world with its threads on OS threads.
pub fn stress(program: &Program, config: Config, iterations: u32) -> Vec<StressRun> {
    (0..iterations).map(|_| run_once(program, config)).collect()
}

/// A world whose RCU readers are OS threads.
fn os_thread_world(config: Config, threads: usize) -> World {
    World { rcu: Rcu::on_os_threads(threads), ..World::new(config, threads) }
}

fn run_once(program: &Program, config: Config) -> StressRun {
    let world = os_thread_world(config, program.threads.len());
    let setup = RefCell::new(Vec::new());
    engine::setup(&world, program, &setup);
    // The calling thread takes part too, so that it is reclaiming from the first access on.
    let spawned = Barrier::new(program.threads.len() + 1);
    let start = StartLine { runners: program.threads.len(), arrived: AtomicUsize::new(0) };
    let mut reclaims = Vec::new();
    let threads = std::thread::scope(|scope| {
        let workers: Vec<_> = program
            .threads
            .iter()
            .enumerate()
            .map(|(t, ops)| {
                let (world, spawned, start) = (&world, &spawned, &start);
                scope.spawn(move || {
                    spawned.wait();
                    start.cross();
                    run_worker(world, t as i8, ops)
                })
            })
            .collect();
        spawned.wait();
        // The RCU callback context: run each deferred free as soon as its grace period allows.
        while !workers.iter().all(|w| w.is_finished()) {
            world.slab.reclaim_ready(&world.rcu, &mut reclaims);
            std::thread::yield_now();
        }
        let threads = workers.into_iter().map(|w| w.join().expect("a worker catches its own panics")).collect();
        // Joined, the workers' last frees are visible here, and every grace period is over.
        world.slab.reclaim_ready(&world.rcu, &mut reclaims);
        threads
    });
    let trees = world.trees.lock().unwrap().clone();
    StressRun { setup: setup.into_inner(), threads, reclaims, final_counters: world.final_counters(), trees }
}

/// Lets the workers go within a few hundred nanoseconds of each other. A `Barrier` alone wakes its
/// sleepers one by one, microseconds apart: longer than most ops take, so they would rarely
/// overlap. (Measured on the corpus's munmap-vs-rmap programs: behind the barrier alone no reader
/// saw a dying VMA in 10000 runs; with this line one run in a few hundred to a few thousand does.)
struct StartLine {
    runners: usize,
    arrived: AtomicUsize,
}

/// Spinning is what makes the release tight; past this the runner is probably waiting for a thread
/// that has no CPU (more threads than cores), and spinning on would only keep it off.
const SPINS_BEFORE_YIELDING: u32 = 200;

impl StartLine {
    fn cross(&self) {
        self.arrived.fetch_add(1, Release);
        let mut spins = 0;
        while self.arrived.load(Acquire) < self.runners {
            if spins < SPINS_BEFORE_YIELDING {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

fn run_worker(world: &World, tid: i8, ops: &[Op]) -> Vec<Event> {
    let log = RefCell::new(Vec::with_capacity(256));
    let env = DirectEnv { tid, world, log: &log };
    let result = catch_unwind(AssertUnwindSafe(|| engine::block_on(vma::run_thread(&env, ops))));
    let mut events = log.into_inner();
    if let Err(payload) = result {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "worker panicked".into());
        // The other threads would otherwise wait for the lock for ever; the panic is the finding.
        if let Some(mode) = mmap_lock_held(&events) {
            match mode {
                LockMode::Write => world.mmap_lock.store(0, Release),
                LockMode::Read => {
                    world.mmap_lock.fetch_sub(1, Release);
                }
            }
        }
        for (slot, mode) in rmap_locks_held(&events) {
            let lock = &world.slots[slot as usize].rmap_lock;
            match mode {
                LockMode::Write => lock.store(0, Release),
                LockMode::Read => {
                    lock.fetch_sub(1, Release);
                }
            }
        }
        events.push(Event::Panic { t: tid, message: interned(message) });
    }
    events
}

/// A worker's panic message as static text for its event: each distinct message is kept once,
/// for the rest of the process (a panic is a finding, and the messages are few).
fn interned(message: String) -> &'static str {
    static MESSAGES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut messages = MESSAGES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&known) = messages.iter().find(|&&m| m == message) {
        return known;
    }
    let text: &'static str = Box::leak(message.into_boxed_str());
    messages.push(text);
    text
}

/// The mmap_lock mode a thread still holds according to its own history.
fn mmap_lock_held(events: &[Event]) -> Option<LockMode> {
    events.iter().rev().find_map(|e| match e {
        Event::Lock { mode, .. } => Some(Some(*mode)),
        Event::Unlock { .. } => Some(None),
        _ => None,
    })?
}

/// The rmap rwsems (`rmap_lock=rwsem`) a thread still holds according to its own history.
fn rmap_locks_held(events: &[Event]) -> Vec<(u8, LockMode)> {
    let mut held = Vec::new();
    for e in events {
        match *e {
            Event::RmapLock { slot, mode, .. } => held.push((slot, mode)),
            Event::RmapUnlock { slot, mode, .. } => {
                if let Some(i) = held.iter().position(|&h| h == (slot, mode)) {
                    held.remove(i);
                }
            }
            _ => {}
        }
    }
    held
}

/// What `refcount_pairs` measures: the protocol's own get/put, or one of two reference points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairKind {
    /// `vma_get` + `vma_put` on a live VMA, the same code the engine runs, recording its events.
    VmaRef,
    /// The same code in an environment that records nothing: the algorithm's own cost.
    VmaRefUnrecorded,
    /// Bare `fetch_add` + `fetch_sub` on one word: what the hardware allows at best.
    FetchAdd,
    /// The bare pair with a scheduling point of the real-thread `Env` before each access, each
    /// driven by its own `block_on`: what the seam itself costs per call.
    FetchAddThroughSeam,
    /// An `atomic_inc_not_zero` compare-exchange loop + `fetch_sub`, the scheme rcuref replaces.
    IncNotZero,
}

/// Pairs per second of a `refcount_pairs` run, by two clocks.
#[derive(Clone, Copy, Debug)]
pub struct PairRate {
    /// All threads' pairs over the slowest thread's wall-clock time.
    pub wall: f64,
    /// The same over the slowest thread's CPU time: on a shared machine, the time a thread
    /// spends descheduled is not the pair's cost (with two threads, the overlap that makes them
    /// contend still depends on both having a CPU).
    pub cpu: f64,
}

/// The calling thread's CPU time in seconds.
fn thread_cpu_seconds() -> f64 {
    #[cfg(target_os = "linux")]
    {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes the timespec it is given, nothing else.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        assert_eq!(r, 0, "CLOCK_THREAD_CPUTIME_ID is always there on Linux");
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    }
    #[cfg(not(target_os = "linux"))]
    f64::NAN
}

/// Get/put pairs per second over `threads` OS threads hammering one VMA's counter (or one word),
/// `pairs` pairs each. The VMA keeps the tree's reference throughout, so no put releases it.
pub fn refcount_pairs(kind: PairKind, threads: usize, pairs: u64, config: Config) -> PairRate {
    let world = os_thread_world(config, threads);
    world.counter(0).store(crate::rcuref::ONEREF, Relaxed);
    let start = StartLine { runners: threads, arrived: AtomicUsize::new(0) };
    let times: Vec<(f64, f64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (world, start) = (&world, &start);
                scope.spawn(move || {
                    start.cross();
                    let (began, cpu) = (std::time::Instant::now(), thread_cpu_seconds());
                    pair_loop(kind, world, t as i8, pairs);
                    (began.elapsed().as_secs_f64(), thread_cpu_seconds() - cpu)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("pair loops do not panic")).collect()
    });
    let total = (threads as u64 * pairs) as f64;
    let slowest = |f: fn(&(f64, f64)) -> f64| times.iter().map(f).fold(0.0, f64::max);
    PairRate { wall: total / slowest(|t| t.0), cpu: total / slowest(|t| t.1) }
}

/// An environment like `DirectEnv` that drops every event, so that `refcount_pairs` can tell
/// the protocol's cost from the cost of recording its history.
struct UnrecordedEnv<'a> {
    tid: i8,
    world: &'a World,
}

impl Env for UnrecordedEnv<'_> {
    const NEVER_SUSPENDS: bool = true;
    async fn step(&self) {}
    async fn wait(&self, _ready: fn(&World) -> bool) {
        std::thread::yield_now();
    }
    fn emit(&self, _event: Event) {}
    fn world(&self) -> &World {
        self.world
    }
    fn tid(&self) -> i8 {
        self.tid
    }
}

/// Events kept per thread before the log is emptied: enough to include the cost of recording
/// them, little enough to stay in cache like the engine's per-run log.
const LOG_BATCH: u64 = 64;

fn pair_loop(kind: PairKind, world: &World, tid: i8, pairs: u64) {
    let counter = world.counter(0);
    match kind {
        PairKind::VmaRef => {
            let log = RefCell::new(Vec::with_capacity(16 * LOG_BATCH as usize));
            let env = DirectEnv { tid, world, log: &log };
            for i in 0..pairs {
                let got = engine::block_on(vma::vma_get(&env, 0));
                assert!(got, "the VMA is alive throughout");
                engine::block_on(vma::vma_put(&env, 0));
                if i % LOG_BATCH == 0 {
                    log.borrow_mut().clear();
                }
            }
        }
        PairKind::VmaRefUnrecorded => {
            let env = UnrecordedEnv { tid, world };
            for _ in 0..pairs {
                let got = engine::block_on(vma::vma_get(&env, 0));
                assert!(got, "the VMA is alive throughout");
                engine::block_on(vma::vma_put(&env, 0));
            }
        }
        PairKind::FetchAdd => {
            for _ in 0..pairs {
                std::hint::black_box(counter.fetch_add(1, Relaxed));
                std::hint::black_box(counter.fetch_sub(1, Release));
            }
        }
        PairKind::FetchAddThroughSeam => {
            let env = UnrecordedEnv { tid, world };
            for _ in 0..pairs {
                engine::block_on(env.step());
                std::hint::black_box(counter.fetch_add(1, Relaxed));
                engine::block_on(env.step());
                std::hint::black_box(counter.fetch_sub(1, Release));
            }
        }
        PairKind::IncNotZero => {
            // The counter holds references minus one here too, so "zero references" is NOREF.
            for _ in 0..pairs {
                let mut v = counter.load(Relaxed);
                while v != crate::rcuref::NOREF {
                    match counter.compare_exchange_weak(v, v.wrapping_add(1), Relaxed, Relaxed) {
                        Ok(_) => break,
                        Err(now) => v = now,
                    }
                }
                std::hint::black_box(counter.fetch_sub(1, Release));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::engine::testing::op;
    use crate::program::{OpKind, SetupVma};
    use crate::world::SlabMode;

    fn munmap_vs_rmap() -> Program {
        Program {
            setup: vec![SetupVma { start: 0, end: 4, counter: None }],
            threads: vec![vec![op(OpKind::Munmap, 0), op(OpKind::Mmap, 0)], vec![op(OpKind::Rmap, 1), op(OpKind::Rmap, 2)]],
            schedule: vec![],
        }
    }

    fn deferred() -> Config {
        Config { slab: SlabMode::Deferred, ..Config::SEED }
    }

    #[test]
    fn the_world_can_be_shared_between_threads() {
        fn shared<T: Sync>() {}
        shared::<World>();
    }

    #[test]
    fn every_thread_finishes_its_last_op_and_nothing_is_freed_twice() {
        let program = munmap_vs_rmap();
        for config in [Config::SEED, deferred()] {
            for run in stress(&program, config, 200) {
                for (t, (events, ops)) in run.threads.iter().zip(&program.threads).enumerate() {
                    let last = ops.len() as u8 - 1;
                    assert!(
                        matches!(events.last(), Some(Event::OpEnd { op, .. }) if *op == last),
                        "thread {t} ended with {:?}",
                        events.last()
                    );
                }
                let mut freed = HashSet::new();
                for e in run.threads.iter().flatten() {
                    assert!(!matches!(e, Event::Panic { .. }), "{e:?}");
                    if let Event::Free { slot, gen, .. } = e {
                        assert!(freed.insert((*slot, *gen)), "slot {slot} gen {gen} freed twice");
                    }
                }
            }
        }
    }

    #[test]
    fn every_deferred_free_is_reclaimed_once_the_threads_are_done() {
        for run in stress(&munmap_vs_rmap(), deferred(), 200) {
            let freed: HashSet<_> = run
                .threads
                .iter()
                .flatten()
                .filter_map(|e| match e {
                    Event::Free { slot, gen, .. } => Some((*slot, *gen)),
                    _ => None,
                })
                .collect();
            let reclaimed: HashSet<_> = run
                .reclaims
                .iter()
                .filter_map(|e| match e {
                    Event::Reclaim { slot, gen } => Some((*slot, *gen)),
                    _ => None,
                })
                .collect();
            assert_eq!(freed, reclaimed);
            assert_eq!(reclaimed.len(), run.reclaims.len(), "a slot was reclaimed twice");
        }
    }

    /// The engine runs the async expansion of the get/put chain, this runner the plain one (its
    /// `Env` never suspends). On one thread, where the OS has nothing to interleave, the two make
    /// the same history: for random one-thread programs (counter presets included, so the slow
    /// paths run) under every configuration and mutant whose frees wait for no grace period
    /// (with `slab=deferred` this runner's reclaims race with the thread, so slots are reused
    /// at other times).
    #[test]
    fn a_lone_thread_makes_the_same_history_as_the_deterministic_engine() {
        let mut rng = crate::sched::SplitMix(8);
        let mut programs: Vec<Program> = (0..40)
            .map(|_| {
                let bytes: Vec<u8> = (0..8 + rng.below(120)).map(|_| rng.next_u64() as u8).collect();
                let mut program = Program::decode(&bytes);
                program.threads.truncate(1);
                program.schedule.clear();
                program
            })
            .collect();
        let mut handwritten = munmap_vs_rmap();
        handwritten.threads[1].clear();
        programs.push(handwritten);
        let configs: Vec<Config> = Config::variants().into_iter().filter(|c| c.slab == SlabMode::TypesafeByRcu).collect();
        for config in configs {
            for program in &programs {
                let engine = engine::run_program(program, config);
                let run = stress(program, config, 1).pop().unwrap();
                let mut real = run.setup.clone();
                real.extend(run.threads[0].iter().cloned());
                assert_eq!(real, engine.events, "{program:?} under {config:?}");
                assert_eq!(run.final_counters, engine.final_counters);
            }
        }
    }

    #[test]
    fn refcount_pairs_leave_the_reference_count_where_it_started() {
        for kind in [PairKind::VmaRef, PairKind::VmaRefUnrecorded, PairKind::FetchAdd, PairKind::FetchAddThroughSeam, PairKind::IncNotZero] {
            let rate = refcount_pairs(kind, 2, 1000, deferred());
            assert!(rate.wall > 0.0 && rate.cpu > 0.0, "{kind:?}: {rate:?}");
        }
        let world = World::new(deferred(), 1);
        pair_loop(PairKind::VmaRef, &world, 0, 100);
        assert_eq!(world.counter(0).load(Relaxed), crate::rcuref::ONEREF, "every get was put");
    }

    #[test]
    fn the_held_lock_is_read_from_the_thread_history() {
        let lock = |mode| Event::Lock { t: 0, mode };
        let unlock = |mode| Event::Unlock { t: 0, mode };
        assert_eq!(mmap_lock_held(&[]), None);
        assert_eq!(mmap_lock_held(&[lock(LockMode::Write)]), Some(LockMode::Write));
        assert_eq!(mmap_lock_held(&[lock(LockMode::Read), Event::Fence { t: 0 }]), Some(LockMode::Read));
        assert_eq!(mmap_lock_held(&[lock(LockMode::Write), unlock(LockMode::Write)]), None);
    }
}

/// `cargo test --release -p pyfuzz-core pair_throughput -- --ignored --nocapture`: each pair
/// kind on one thread, for profiling (`perf`, `valgrind --tool=callgrind`) without Python.
#[cfg(test)]
mod throughput {
    use super::*;

    #[test]
    #[ignore]
    fn pair_throughput() {
        let pairs = std::env::var("PAIRS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000_000);
        let config = Config { slab: crate::world::SlabMode::Deferred, ..Config::SEED };
        for kind in [PairKind::VmaRef, PairKind::VmaRefUnrecorded, PairKind::FetchAdd, PairKind::FetchAddThroughSeam, PairKind::IncNotZero] {
            if std::env::var("KIND").is_ok_and(|k| !format!("{kind:?}").eq_ignore_ascii_case(&k)) {
                continue;
            }
            let rate = refcount_pairs(kind, 1, pairs, config);
            println!("{kind:?}: {:.1}M pairs/s, {:.1}M per CPU second", rate.wall / 1e6, rate.cpu / 1e6);
        }
    }
}
