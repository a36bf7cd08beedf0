//! The deterministic engine: simulated threads are futures, and the scheduler picks which one
//! performs the next shared-memory access. No OS threads, no clocks, no hashing of addresses:
//! the same program and schedule give the same history, bit for bit.
//!
//! Each poll of a thread grants it exactly one access: `step()` completes once per grant and
//! suspends otherwise. Purely thread-local bookkeeping runs in the poll around that access, i.e.
//! as early as it legally could; RCU and preemption state changes are steps of their own.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use crate::env::Env;
use crate::event::{self, Event, SETUP};
use crate::program::Program;
use crate::rcuref;
use crate::sched::{ListSchedule, Scheduler};
use crate::vma::{self, Range, PARENT_MM};
use crate::world::{Config, World, MAX_THREADS};

/// Runs far beyond any real program (4 threads of 32 ops of every kind stay near 2,000 steps); reaching it
/// means a livelock in the model, which is reported as a finding.
pub(crate) const STEP_LIMIT: u32 = 20_000;
/// The panic at the step limit (a test checks that it names `STEP_LIMIT`).
const NO_PROGRESS: &str = "no progress after 20000 steps";

type Ready = fn(&World) -> bool;

#[derive(Default)]
struct ThreadState {
    granted: Cell<bool>,
    waiting_for: Cell<Option<Ready>>,
    /// The op the thread is executing, for the record of steps taken.
    op: Cell<u8>,
}

/// What the threads' scheduling points and the engine's loop share. The boundary between two
/// steps (count the step, run the callbacks it let through, show its events to the scheduler,
/// pick the next thread) runs at the scheduling point a thread reaches after its access, not
/// after its poll returns: when the scheduler picks the same thread again, the thread goes on in
/// the same poll instead of unwinding every nested future to the engine and descending again.
/// Either way the boundary does the same work at the same moment of the execution, so the
/// history is the same.
struct Runtime<'a, 's, S: Scheduler> {
    world: &'a World,
    log: RefCell<Vec<Event>>,
    /// The history's digest so far: every event is folded in as it is recorded.
    digest: Cell<u64>,
    states: [ThreadState; MAX_THREADS],
    threads: usize,
    sched: RefCell<Sched<'a, 's, S>>,
    /// The thread the last boundary picked, for the engine's loop to poll; None: the run is over.
    next: Cell<Option<usize>>,
    /// How many threads are parked in `Wait`.
    waiting: Cell<u8>,
}

struct Sched<'a, 's, S: Scheduler> {
    scheduler: &'s mut S,
    live: [bool; MAX_THREADS],
    steps: u32,
    taken: Vec<(u8, u8)>,
    /// Where the events of the step being taken begin.
    seen: usize,
    interleavings: crate::feedback::Tracker<'a>,
}

impl<S: Scheduler> Runtime<'_, '_, S> {
    /// The step just taken is over: count it and show it to the scheduler, which may end the run.
    #[inline]
    fn end_step(&self, s: &mut Sched<S>) -> bool {
        s.steps += 1;
        if self.world.slab.has_deferred() {
            let mut log = self.log.borrow_mut();
            let before = log.len();
            self.world.slab.reclaim_ready(&self.world.rcu, &mut log);
            self.record_digest(&log[before..]);
        }
        if !S::OBSERVES && !crate::feedback::ENABLED {
            return true;
        }
        let log = self.log.borrow();
        let step_events = &log[s.seen..];
        if crate::feedback::ENABLED {
            step_events.iter().for_each(|e| s.interleavings.see(e));
        }
        let go_on = s.scheduler.observe(step_events);
        s.seen = log.len();
        go_on
    }

    /// Pick the thread that takes the next step and record it; None ends the run (nothing can
    /// run, or the step limit).
    #[inline(always)]
    fn begin_step(&self, s: &mut Sched<S>) -> Option<usize> {
        // Threads wait only for the mmap_lock: mostly none is waiting, and every live one can run.
        let mut runnable = s.live;
        if self.waiting.get() != 0 {
            for (r, state) in runnable.iter_mut().zip(&self.states) {
                *r = *r && state.waiting_for.get().is_none_or(|ready| ready(self.world));
            }
        }
        let any = runnable != [false; MAX_THREADS];
        if !any || s.steps == STEP_LIMIT {
            self.stuck(s, any);
            return None;
        }
        let t = s.scheduler.next(&runnable[..self.threads]);
        // The thread is suspended inside the op whose access this step performs.
        s.taken.push((t as u8, self.states[t].op.get()));
        Some(t)
    }

    /// Why no step can be taken: every thread has finished, every live one is blocked, or the
    /// step limit is reached.
    #[cold]
    fn stuck(&self, s: &Sched<S>, any_runnable: bool) {
        let message = if any_runnable {
            NO_PROGRESS
        } else if s.live.contains(&true) {
            "deadlock: every live thread is blocked"
        } else {
            return;
        };
        let panic = Event::Panic { t: SETUP, message };
        self.record_digest(std::slice::from_ref(&panic));
        self.log.borrow_mut().push(panic);
    }

    fn record_digest(&self, events: &[Event]) {
        self.digest.set(events.iter().fold(self.digest.get(), |h, e| e.fold_into(h)));
    }

    /// The boundary after a step: None when the run is over, else the thread taking the next.
    #[inline(never)]
    fn after_step(&self) -> Option<usize> {
        let mut s = self.sched.borrow_mut();
        if self.end_step(&mut s) {
            self.begin_step(&mut s)
        } else {
            None
        }
    }

    /// A thread reached a scheduling point after its access: whether it takes the next step too.
    /// Otherwise the thread the boundary picked (if any) is left for the engine's loop.
    #[inline]
    fn boundary(&self, tid: usize) -> bool {
        let next = self.after_step();
        if next == Some(tid) {
            return true;
        }
        self.next.set(next);
        false
    }
}

struct SimEnv<'a, 'r, 's, S: Scheduler> {
    tid: i8,
    /// Also in `rt`: here the algorithms reach it (and the configuration) with one load less.
    world: &'a World,
    rt: &'r Runtime<'a, 's, S>,
    state: &'r ThreadState,
}

struct Grant<'e, 'a, 'r, 's, S: Scheduler>(&'e SimEnv<'a, 'r, 's, S>);

impl<S: Scheduler> Future for Grant<'_, '_, '_, '_, S> {
    type Output = ();
    #[inline]
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let env = self.0;
        if env.state.granted.replace(false) || env.rt.boundary(env.tid as usize) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

struct Wait<'e, 'a, 'r, 's, S: Scheduler> {
    env: &'e SimEnv<'a, 'r, 's, S>,
    ready: Ready,
    parked: bool,
}

impl<S: Scheduler> Future for Wait<'_, '_, '_, '_, S> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let state = self.env.state;
        let waiting = &self.env.rt.waiting;
        if !self.parked {
            self.parked = true;
            state.waiting_for.set(Some(self.ready));
            waiting.set(waiting.get() + 1);
            if !self.env.rt.boundary(self.env.tid as usize) {
                return Poll::Pending;
            }
        } else if !state.granted.replace(false) {
            return Poll::Pending;
        }
        state.waiting_for.set(None);
        waiting.set(waiting.get() - 1);
        Poll::Ready(())
    }
}

impl<S: Scheduler> Env for SimEnv<'_, '_, '_, S> {
    fn step(&self) -> impl Future<Output = ()> {
        Grant(self)
    }
    fn wait(&self, ready: Ready) -> impl Future<Output = ()> {
        Wait { env: self, ready, parked: false }
    }
    /// Inlined at every call site, where the event's kind is known: folding it into the digest
    /// costs a few shifts and two multiplies there.
    #[inline(always)]
    fn emit(&self, event: Event) {
        if let Event::OpBegin { op, .. } = event {
            self.state.op.set(op);
        }
        self.rt.digest.set(event.fold_into(self.rt.digest.get()));
        self.rt.log.borrow_mut().push(event);
    }
    fn world(&self) -> &World {
        self.world
    }
    fn tid(&self) -> i8 {
        self.tid
    }
}

/// An environment whose steps never suspend: `setup` (for the real-thread runner and the
/// explorer), and each OS thread of the real-thread runner.
pub struct DirectEnv<'a> {
    pub tid: i8,
    pub world: &'a World,
    pub log: &'a RefCell<Vec<Event>>,
}

impl Env for DirectEnv<'_> {
    const NEVER_SUSPENDS: bool = true;
    async fn step(&self) {}
    async fn wait(&self, _ready: Ready) {
        std::thread::yield_now();
    }
    #[inline(always)]
    fn emit(&self, event: Event) {
        self.log.borrow_mut().push(event);
    }
    fn world(&self) -> &World {
        self.world
    }
    fn tid(&self) -> i8 {
        self.tid
    }
}

/// Drive a future whose every await completes immediately.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The deterministic engine's setup code: its steps never suspend, and it folds each event into
/// the history's digest where it records it, as `SimEnv` does.
struct SetupEnv<'a> {
    world: &'a World,
    log: &'a RefCell<Vec<Event>>,
    digest: &'a Cell<u64>,
}

impl Env for SetupEnv<'_> {
    const NEVER_SUSPENDS: bool = true;
    async fn step(&self) {}
    async fn wait(&self, _ready: Ready) {
        unreachable!("the setup runs alone: nothing holds a lock")
    }
    #[inline(always)]
    fn emit(&self, event: Event) {
        self.digest.set(event.fold_into(self.digest.get()));
        self.log.borrow_mut().push(event);
    }
    fn world(&self) -> &World {
        self.world
    }
    fn tid(&self) -> i8 {
        SETUP
    }
}

/// Build the initial world: the setup VMAs, their folios, and any counter presets.
pub fn setup(world: &World, program: &Program, log: &RefCell<Vec<Event>>) {
    build(&DirectEnv { tid: SETUP, world, log }, program);
}

fn build<E: Env>(env: &E, program: &Program) {
    block_on(async {
        for v in &program.setup {
            let range = Range { start: v.start, end: v.end, pgoff: v.start };
            let slot = vma::map_new(env, PARENT_MM, range).await.expect("setup fits in the slab");
            // Without CONFIG_VMA_REF there is no counter to preset.
            if let (Some(counter), true) = (v.counter, env.config().vma_ref) {
                rcuref::counter_store(env, slot, counter, crate::event::Order::Relaxed).await;
            }
            for page in v.start..v.end {
                vma::mapping_store(env, page, slot).await;
                vma::folio_set_mapped(env, page, true).await;
            }
        }
    });
}

pub struct Outcome {
    pub events: Vec<Event>,
    /// How many of `events` the setup recorded: the same first events in every run of the program.
    pub setup_events: usize,
    pub steps: u32,
    /// (thread, op index) of every step in the order taken: replaying it as a schedule gives the
    /// same interleaving, and dropping an op's steps keeps everyone else's order (the minimizer).
    pub taken: Vec<(u8, u8)>,
    pub final_counters: Vec<u32>,
    pub digest: u64,
}

/// The world a program's setup builds under a configuration, with the setup's events and their
/// digest so far: the same for every run of the program, so a caller that runs one program many
/// times (the fuzz loop: its own schedule, then its walks) builds it once, and each run starts
/// from a copy (`run_from`). A single run builds it in place (`run`): the copy costs about half
/// of building it.
pub struct Setup {
    world: World,
    events: Vec<Event>,
    digest: u64,
}

impl Setup {
    pub fn new(program: &Program, config: Config) -> Setup {
        let world = World::new(config, program.threads.len());
        let (log, digest) = (RefCell::new(Vec::with_capacity(log_capacity(program))), Cell::new(0));
        build(&SetupEnv { world: &world, log: &log, digest: &digest }, program);
        Setup { world, events: log.into_inner(), digest: digest.get() }
    }
}

/// Run `program` under `config`, letting `scheduler` interleave its threads. Generic rather than
/// `&mut dyn`: each scheduler kind gets its own copy of the runtime, with its choice and its
/// look at each step inlined into the step boundary instead of two indirect calls per step.
pub fn run<S: Scheduler>(program: &Program, config: Config, scheduler: &mut S) -> Outcome {
    let Setup { world, events, digest } = Setup::new(program, config);
    run_in(&world, RefCell::new(events), Cell::new(digest), program, scheduler)
}

/// `run` from `setup`, which must be `Setup::new(program, config)`.
pub fn run_from<S: Scheduler>(setup: &Setup, program: &Program, scheduler: &mut S) -> Outcome {
    let world = setup.world.copy();
    let mut events = Vec::with_capacity(log_capacity(program).max(setup.events.len()));
    events.extend_from_slice(&setup.events);
    run_in(&world, RefCell::new(events), Cell::new(setup.digest), program, scheduler)
}

fn ops(program: &Program) -> usize {
    program.threads.iter().map(Vec::len).sum()
}

/// A run records at most about 15 events and takes about 10 steps per op (random programs of
/// 2-4 threads x 8-32 ops): its log (here) and its steps taken (`run_in`) are sized for that, so
/// that a long run's are not copied as they grow (a 3 x 16 run's log was, once per run).
fn log_capacity(program: &Program) -> usize {
    (16 * ops(program)).max(512)
}

/// The run itself, from the world the setup left and the setup's events and digest.
fn run_in<S: Scheduler>(world: &World, log: RefCell<Vec<Event>>, digest: Cell<u64>, program: &Program, scheduler: &mut S) -> Outcome {
    let n = program.threads.len();
    let seen = log.borrow().len();
    let mut live = [false; MAX_THREADS];
    live[..n].fill(true);
    let rt = Runtime {
        world,
        log,
        digest,
        states: Default::default(),
        threads: n,
        sched: RefCell::new(Sched {
            scheduler,
            live,
            steps: 0,
            taken: Vec::with_capacity((10 * ops(program)).max(256)),
            seen,
            interleavings: crate::feedback::Tracker::new(&program.threads),
        }),
        next: Cell::new(None),
        waiting: Cell::new(0),
    };

    {
        // Fixed arrays sized for the most threads a program may have, and the threads' futures
        // pinned in place on this stack frame: no allocation per thread, and polling calls the one
        // concrete future type directly instead of through a vtable.
        let envs: [SimEnv<S>; MAX_THREADS] = std::array::from_fn(|t| SimEnv { tid: t as i8, world, rt: &rt, state: &rt.states[t] });
        let threads: [Option<_>; MAX_THREADS] =
            std::array::from_fn(|t| program.threads.get(t).map(|ops| vma::run_thread(&envs[t], ops)));
        let mut threads = pin!(threads);

        let mut cx = Context::from_waker(Waker::noop());
        let mut next = rt.begin_step(&mut rt.sched.borrow_mut());
        while let Some(t) = next {
            rt.states[t].granted.set(true);
            // SAFETY: the futures never move: they stay in the pinned array until it is dropped,
            // and a finished one is only marked, never taken out.
            let thread = unsafe { threads.as_mut().map_unchecked_mut(|a| &mut a[t]) };
            let thread = thread.as_pin_mut().expect("scheduler picked a runnable thread");
            next = if thread.poll(&mut cx).is_ready() {
                // A finished thread reaches no scheduling point: the boundary after its last
                // step is taken here.
                rt.sched.borrow_mut().live[t] = false;
                rt.after_step()
            } else {
                rt.next.take()
            };
        }
    }
    let Sched { steps, taken, .. } = rt.sched.into_inner();
    let events = rt.log.into_inner();
    Outcome { digest: event::finish(rt.digest.get(), events.len()), final_counters: world.final_counters(), events, setup_events: seen, steps, taken }
}

/// Run a program under its own schedule.
pub fn run_program(program: &Program, config: Config) -> Outcome {
    run(program, config, &mut ListSchedule::new(&program.schedule))
}

#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::program::{Op, OpKind};

    /// An op for hand-written test programs; `mmap` maps four pages.
    pub fn op(kind: OpKind, a: u32) -> Op {
        Op { kind, a, b: if kind == OpKind::Mmap { 4 } else { 0 }, fail: false }
    }

    /// Run one operation on slot 0 whose counter starts at `counter`, on a single thread.
    pub fn solo<F, Fut>(counter: u32, f: F) -> (u32, bool, Vec<Event>)
    where
        F: FnOnce(DirectEnv<'static>) -> Fut,
        Fut: Future<Output = bool>,
    {
        let world: &'static World = Box::leak(Box::new(World::new(Config::SEED, 1)));
        let log: &'static RefCell<Vec<Event>> = Box::leak(Box::new(RefCell::new(Vec::new())));
        world.slots[0].counter.store(counter, std::sync::atomic::Ordering::Relaxed);
        let result = block_on(f(DirectEnv { tid: 0, world, log }));
        (world.slots[0].counter.load(std::sync::atomic::Ordering::Relaxed), result, log.borrow().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::testing::op;
    use crate::program::{OpKind, SetupVma};

    fn reader_vs_unmap_remap() -> Program {
        Program {
            setup: vec![SetupVma { start: 0, end: 4, counter: None }],
            threads: vec![vec![op(OpKind::Munmap, 0), op(OpKind::Mmap, 8)], vec![op(OpKind::Rmap, 1)]],
            schedule: vec![(1, 1), (0, 9), (1, 1), (0, 7), (1, 5)],
        }
    }

    #[test]
    fn same_program_same_history() {
        let p = reader_vs_unmap_remap();
        let a = run_program(&p, Config::SEED);
        let b = run_program(&p, Config::SEED);
        assert_eq!(a.events, b.events);
        assert_eq!(a.digest, b.digest);
    }

    #[test]
    fn different_schedules_give_different_histories() {
        let p = reader_vs_unmap_remap();
        let mut q = p.clone();
        q.schedule.clear();
        assert_ne!(run_program(&p, Config::SEED).digest, run_program(&q, Config::SEED).digest);
    }

    /// The export shares one tuple among the events of one key (python.rs), so two events with
    /// one key must be equal: checked on every event of random programs under every
    /// configuration value and mutant, under their own schedules and PCT walks.
    #[test]
    fn events_with_one_key_are_equal() {
        use crate::sched::{Pct, SplitMix};
        let mut rng = SplitMix(5);
        let inputs: Vec<Vec<u8>> = (0..25).map(|_| (0..8 + rng.below(249)).map(|_| rng.next_u64() as u8).collect()).collect();
        let mut by_key = std::collections::HashMap::new();
        for config in Config::variants() {
            for (i, data) in inputs.iter().enumerate() {
                let program = Program::decode(data);
                let own = run_program(&program, config);
                let walk = run(&program, config, &mut Pct::new(program.threads.len(), 32, own.steps, i as u64));
                for e in own.events.into_iter().chain(walk.events) {
                    if let Some(key) = e.key() {
                        let first = by_key.entry(key).or_insert(e);
                        assert_eq!(*first, e, "two events share the key {key:x?}");
                    }
                }
            }
        }
        assert!(by_key.len() > 1000, "too few events to tell: {}", by_key.len());
    }

    /// A run from a copy of the setup's world is the run that builds it in place.
    #[test]
    fn a_run_from_the_setup_is_the_run() {
        use crate::sched::{Pct, SplitMix};
        let mut rng = SplitMix(11);
        let inputs: Vec<Vec<u8>> = (0..25).map(|_| (0..8 + rng.below(249)).map(|_| rng.next_u64() as u8).collect()).collect();
        for config in Config::variants() {
            for (i, data) in inputs.iter().enumerate() {
                let program = Program::decode(data);
                let setup = Setup::new(&program, config);
                let pct = || Pct::new(program.threads.len(), 32, 60, i as u64);
                let pairs = [
                    (run_program(&program, config), run_from(&setup, &program, &mut ListSchedule::new(&program.schedule))),
                    (run(&program, config, &mut pct()), run_from(&setup, &program, &mut pct())),
                ];
                for (a, b) in pairs {
                    assert_eq!((a.events, a.digest, a.steps, a.taken, a.final_counters), (b.events, b.digest, b.steps, b.taken, b.final_counters));
                }
            }
        }
    }

    #[test]
    fn the_step_limit_panic_names_the_limit() {
        assert_eq!(NO_PROGRESS, format!("no progress after {STEP_LIMIT} steps"));
    }

    #[test]
    fn sequential_munmap_frees_the_vma() {
        let p = Program {
            setup: vec![SetupVma { start: 0, end: 4, counter: None }],
            threads: vec![vec![op(OpKind::Munmap, 2)], vec![]],
            schedule: vec![],
        };
        let out = run_program(&p, Config::SEED);
        assert!(out.events.iter().any(|e| matches!(e, Event::Free { slot: 0, gen: 1, .. })));
        assert_eq!(out.final_counters[0], rcuref::DEAD);
    }

    #[test]
    fn writers_exclude_each_other() {
        let p = Program {
            setup: vec![SetupVma { start: 0, end: 4, counter: None }],
            threads: vec![vec![op(OpKind::Split, 2)], vec![op(OpKind::Munmap, 0)]],
            schedule: (0..20).map(|i| ((i % 2) as u8, 1)).collect(),
        };
        let out = run_program(&p, Config::SEED);
        let mut holder = None;
        for e in &out.events {
            match e {
                Event::Lock { t, .. } => {
                    assert_eq!(holder, None, "two writers inside mmap_lock");
                    holder = Some(*t);
                }
                Event::Unlock { .. } => holder = None,
                _ => {}
            }
        }
        assert!(!out.events.iter().any(|e| matches!(e, Event::Panic { .. })));
    }
}

/// `cargo test --release -p pyfuzz-core engine_throughput -- --ignored --nocapture`: steps per
/// second of the engine alone on random programs, for profiling without Python in the way.
#[cfg(test)]
mod throughput {
    use super::*;
    use crate::sched::SplitMix;

    /// `count` random inputs of 8-256 bytes (the count overridable by the environment variable),
    /// the same for a given seed on every run, so before/after measurements see the same programs.
    fn random_inputs(seed: u64, count_var: &str, default: usize) -> Vec<Vec<u8>> {
        let mut rng = SplitMix(seed);
        let count = std::env::var(count_var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
        (0..count).map(|_| (0..8 + rng.below(249)).map(|_| rng.next_u64() as u8).collect()).collect()
    }

    #[test]
    #[ignore]
    fn engine_throughput() {
        let inputs = random_inputs(2024, "THROUGHPUT_RUNS", 20_000);
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let steps: u64 = inputs
                .iter()
                .map(|data| run_program(&Program::decode(data), Config { slab: crate::world::SlabMode::Deferred, ..Config::SEED }).steps as u64)
                .sum();
            let s = start.elapsed().as_secs_f64();
            println!("{:.0} runs/s, {:.2}M steps/s ({steps} steps)", inputs.len() as f64 / s, steps as f64 / s / 1e6);
        }
    }

    /// `cargo test --release -p pyfuzz-core engine_fingerprint -- --ignored --nocapture`: one
    /// hash over everything runs leave behind (events, digest, steps, steps taken, final
    /// counters) for random programs under every configuration value, every mutant and four
    /// schedulers. A change to the engine's internals that claims to change no history prints
    /// the same hash before and after; the second hash leaves the digest out, for a change of
    /// the digest function alone. Every run's digest must be `event::digest` of its events.
    #[test]
    #[ignore]
    fn engine_fingerprint() {
        use crate::sched::{Pct, Pos, RandomWalk};
        use std::hash::{DefaultHasher, Hash, Hasher};
        let inputs = random_inputs(77, "FINGERPRINT_RUNS", 300);
        let configs = Config::variants();
        let (mut h, mut histories) = (DefaultHasher::new(), DefaultHasher::new());
        let mut total = 0u64;
        for config in &configs {
            for (i, data) in inputs.iter().enumerate() {
                let program = Program::decode(data);
                let n = program.threads.len();
                let seed = i as u64;
                // Each scheduler by its own type: `run` is compiled once per scheduler kind.
                let outcomes = [
                    run(&program, *config, &mut ListSchedule::new(&program.schedule)),
                    run(&program, *config, &mut Pct::new(n, 3, 60, seed)),
                    run(&program, *config, &mut RandomWalk(SplitMix(seed))),
                    run(&program, *config, &mut Pos::new(config, n, seed)),
                ];
                for out in outcomes {
                    assert_eq!(out.digest, event::digest(&out.events), "the run's digest is its history's");
                    let events = format!("{:?}", out.events);
                    events.hash(&mut h);
                    (out.digest, out.steps, &out.taken, &out.final_counters).hash(&mut h);
                    events.hash(&mut histories);
                    (out.steps, &out.taken, &out.final_counters).hash(&mut histories);
                    total += out.steps as u64;
                }
            }
        }
        println!(
            "fingerprint {:016x} (histories without the digest: {:016x}) over {} configurations x {} programs x 4 schedulers, {total} steps",
            h.finish(),
            histories.finish(),
            configs.len(),
            inputs.len()
        );
    }
}
