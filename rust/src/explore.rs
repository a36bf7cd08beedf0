//! Exhaustive exploration of one program's interleavings over the engine's scheduling points
//! (every `env.step()` and every granted `wait` is one point), for `pyfuzz verify`.
//!
//! Three strategies share one execution driver ([`Guide`], a [`Scheduler`] that replays a prefix
//! of thread choices and then extends it):
//! * **DPOR**: source-set DPOR with sleep sets (Abdulla, Aronis, Jonsson, Sagonas, POPL 2014,
//!   "Optimal dynamic partial order reduction", Algorithm 1). Every Mazurkiewicz class of
//!   complete executions is explored at least once (in practice once: sleep sets stop redundant
//!   runs early, counted as `blocked`).
//! * **DFS**: every schedule, no reduction; the baseline DPOR is measured against.
//! * **Bounded** (iterative context bounding, Musuvathi and Qadeer, PLDI 2007, as CHESS does it):
//!   every schedule with at most K preemptions, in order of preemption count, each schedule once.
//!   No partial-order pruning is applied under the bound: DPOR's pruning is unsound when combined
//!   naively with a preemption bound (Coons, Musuvathi, McKinley, OOPSLA 2013), because the one
//!   representative DPOR keeps of a class may need more preemptions than another member.
//!
//! Independence comes from each step's *footprint*, derived from the events the step emitted
//! (the engine hands them to [`Scheduler::observe`]); see [`footprint`] for the objects and for
//! the accesses that emit no event.

use std::collections::HashSet;

use crate::engine::{self, Outcome};
use crate::event::{digest, mix, AtomicOp, Event};
use crate::program::Program;
use crate::sched::Scheduler;
use crate::world::{Config, SlabMode, MAX_THREADS, MMS, PAGES, SLOTS};

// ---- footprints: which shared objects a step read or wrote ----

const COUNTER: u32 = 0;
/// A slot's identity: which allocation lives in it (alloc, free, reclaim write it; every access
/// through a pointer to the slot reads it, as the oracle attributes accesses to allocations).
const LIFE: u32 = COUNTER + SLOTS as u32;
const FIELD: u32 = LIFE + SLOTS as u32;
/// One object per `Field` (`vm_root` included).
const FIELDS: u32 = 6;
const MAPPING: u32 = FIELD + SLOTS as u32 * FIELDS;
const MAPPED: u32 = MAPPING + PAGES;
/// A thread's read-side section state (RCU nesting and preemption count).
const READER: u32 = MAPPED + PAGES;
const TREE: u32 = READER + MAX_THREADS as u32;
const FREE_LIST: u32 = TREE + MMS as u32;
/// The queue of deferred frees and its grace periods.
const GRACE: u32 = FREE_LIST + 1;
const LOCK: u32 = GRACE + 1;
/// Each slot's rmap rwsem (`rmap_lock=rwsem`).
const RMAP_LOCK: u32 = LOCK + 1;
const OBJECTS: u32 = RMAP_LOCK + SLOTS as u32;
const _: () = assert!(OBJECTS <= 128);

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Footprint {
    reads: u128,
    writes: u128,
}

impl Footprint {
    fn read(&mut self, obj: u32) {
        self.reads |= 1 << obj;
    }
    fn write(&mut self, obj: u32) {
        self.writes |= 1 << obj;
    }
    /// Two steps are dependent when one writes an object the other touches.
    pub fn conflicts(&self, other: &Footprint) -> bool {
        self.writes & (other.reads | other.writes) != 0 || other.writes & self.reads != 0
    }
}

/// Each step's footprint in turn, for a sampler that reacts to conflicting steps (POS, sched.rs).
pub struct Footprints(Context);

impl Footprints {
    pub fn new(config: &Config, threads: usize) -> Footprints {
        Footprints(Context { deferred: config.slab == SlabMode::Deferred, threads: threads as u32, pending: 0 })
    }
    pub fn of_step(&mut self, events: &[Event]) -> Footprint {
        footprint(events, &mut self.0)
    }
}

/// What a footprint needs to know beyond the step's own events.
#[derive(Clone, Copy)]
struct Context {
    deferred: bool,
    threads: u32,
    /// Deferred frees whose grace period has not ended yet.
    pending: u32,
}

/// The footprint of one step from the events it emitted (reclaims it let happen included).
///
/// Objects also cover what the oracle compares the order of, not only what the model's state
/// holds: `ref_call`/`ref_ret` count as writes of the counter (linearizability compares operation
/// intervals), a free reads every thread's read-side state (memory safety asks whether a section
/// began before the free), and every access through a pointer reads the slot's identity.
///
/// Accesses that emit no event: tree reads (`find_vma` missing, `range_is_free`, `next_vma`),
/// the page-table and mapping reads of `zap_range`/`repoint_folios`, the slab's free list when
/// an allocation fails, and the mmap_lock attempt of a thread that then waits. The tree and folio
/// reads happen only under the mmap_lock in write mode, and those objects are written only under
/// it, so no other thread's step can touch them in between. The other two leave a step without
/// any access event (it ends in `wait` or goes straight to the unlock's scheduling point): such a
/// step reads the locks (the mmap_lock and every rmap rwsem, the two that `wait`), the trees and
/// the free list. A new kind of `wait` must add its object here.
fn footprint(events: &[Event], ctx: &mut Context) -> Footprint {
    let pending_before = ctx.pending > 0;
    let mut f = Footprint::default();
    let mut accessed = false;
    let all_readers = |f: &mut Footprint| (0..ctx.threads).for_each(|t| f.read(READER + t));
    for e in events {
        match *e {
            Event::OpBegin { .. } | Event::OpEnd { .. } | Event::Warn { .. } | Event::Fence { .. } => {}
            Event::RefCall { slot, .. } | Event::RefRet { slot, .. } => f.write(COUNTER + slot as u32),
            Event::Atomic { slot, op, .. } => {
                accessed = true;
                f.read(LIFE + slot as u32);
                match op {
                    AtomicOp::Load | AtomicOp::CasFail => f.read(COUNTER + slot as u32),
                    _ => f.write(COUNTER + slot as u32),
                }
            }
            Event::Alloc { slot, .. } => {
                accessed = true;
                f.write(FREE_LIST);
                f.write(LIFE + slot as u32);
            }
            Event::Free { slot, .. } => {
                accessed = true;
                f.write(FREE_LIST);
                f.write(GRACE);
                f.write(LIFE + slot as u32);
                all_readers(&mut f);
                if ctx.deferred {
                    ctx.pending += 1;
                }
            }
            Event::Reclaim { slot, .. } => {
                f.write(FREE_LIST);
                f.write(GRACE);
                f.write(LIFE + slot as u32);
                all_readers(&mut f);
                ctx.pending = ctx.pending.saturating_sub(1);
            }
            Event::Read { slot, field, .. } => {
                accessed = true;
                f.read(LIFE + slot as u32);
                f.read(FIELD + slot as u32 * FIELDS + field as u32);
            }
            Event::Write { slot, field, .. } => {
                accessed = true;
                f.read(LIFE + slot as u32);
                f.write(FIELD + slot as u32 * FIELDS + field as u32);
            }
            Event::Use { slot, .. } => {
                accessed = true;
                f.read(LIFE + slot as u32);
            }
            Event::RcuLock { t } | Event::RcuUnlock { t } | Event::PreemptOff { t } | Event::PreemptOn { t } => {
                // Each section change is its own scheduling point (`rcu.rs`).
                accessed = true;
                f.write(READER + t as u32);
                // Leaving a section can end a grace period, and which step ends it decides where
                // the reclaim lands.
                if pending_before {
                    f.write(GRACE);
                }
            }
            Event::Lock { .. } | Event::Unlock { .. } => {
                accessed = true;
                f.write(LOCK);
            }
            Event::RmapLock { slot, .. } | Event::RmapUnlock { slot, .. } => {
                accessed = true;
                f.read(LIFE + slot as u32);
                f.write(RMAP_LOCK + slot as u32);
            }
            Event::Lookup { mm, slot, .. } => {
                accessed = true;
                f.read(TREE + mm as u32);
                f.read(LIFE + slot as u32);
            }
            Event::TreeInsert { mm, slot, .. } | Event::TreeUpdate { mm, slot, .. } | Event::TreeRemove { mm, slot, .. } => {
                accessed = true;
                f.write(TREE + mm as u32);
                f.read(LIFE + slot as u32);
            }
            Event::MappingLoad { page, slot, .. } => {
                accessed = true;
                f.read(MAPPING + page as u32);
                if let Some(s) = slot {
                    f.read(LIFE + s as u32);
                }
            }
            Event::MappingStore { page, slot, .. } => {
                accessed = true;
                f.write(MAPPING + page as u32);
                f.read(LIFE + slot as u32);
            }
            Event::FolioMap { page, .. } => {
                accessed = true;
                f.write(MAPPED + page as u32);
            }
            Event::MappedLoad { page, .. } => {
                accessed = true;
                f.read(MAPPED + page as u32);
            }
            Event::Panic { .. } => {
                accessed = true;
                f.reads = u128::MAX;
                f.writes = u128::MAX;
            }
        }
    }
    if !accessed {
        f.read(LOCK);
        (0..SLOTS as u32).for_each(|slot| f.read(RMAP_LOCK + slot));
        (0..MMS as u32).for_each(|mm| f.read(TREE + mm));
        f.read(FREE_LIST);
    }
    f
}

// ---- one execution, guided ----

#[derive(Clone, Copy, Debug)]
struct Step {
    thread: u8,
    /// Threads that could run at the state before this step (bit per thread).
    enabled: u8,
    fp: Footprint,
    digest: u64,
    /// How many events the step emitted.
    events: u32,
}

type Sleep = Vec<(u8, Footprint)>;

fn mask(sleep: &Sleep) -> u8 {
    sleep.iter().fold(0, |m, &(t, _)| m | 1 << t)
}

/// How a run continues once its prefix is used up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extend {
    /// The lowest thread outside the sleep set; none left means every continuation is covered
    /// elsewhere, and the run stops.
    Sleepy,
    /// The thread that ran last while it can, else the lowest runnable: no preemption.
    NonPreemptive,
}

struct Guide<'a> {
    prefix: &'a [u8],
    extend: Extend,
    steps: Vec<Step>,
    ctx: Context,
    /// Sleep set of the state the next step starts from, once past the prefix.
    sleep: Sleep,
    /// Sleep set (entry sleep plus threads already explored) at the prefix's last state.
    branch_sleep: Sleep,
    /// Sleep sets of the states after the prefix, one per step taken there.
    sleeps: Vec<Sleep>,
    blocked: bool,
}

impl Scheduler for Guide<'_> {
    fn next(&mut self, runnable: &[bool]) -> usize {
        let enabled = runnable.iter().enumerate().fold(0u8, |m, (t, &r)| m | (r as u8) << t);
        let i = self.steps.len();
        let lowest = |m: u8| m.trailing_zeros() as u8;
        let thread = if i < self.prefix.len() && enabled & 1 << self.prefix[i] != 0 {
            self.prefix[i]
        } else if i < self.prefix.len() {
            panic!("explorer: the replayed prefix diverged at step {i} (the engine is not deterministic)");
        } else {
            match self.extend {
                Extend::Sleepy => {
                    let free = enabled & !mask(&self.sleep);
                    self.sleeps.push(self.sleep.clone());
                    if free == 0 {
                        self.blocked = true;
                        lowest(enabled)
                    } else {
                        lowest(free)
                    }
                }
                Extend::NonPreemptive => match self.steps.last() {
                    Some(s) if enabled & 1 << s.thread != 0 => s.thread,
                    _ => lowest(enabled),
                },
            }
        };
        self.steps.push(Step { thread, enabled, fp: Footprint::default(), digest: 0, events: 0 });
        thread as usize
    }

    fn observe(&mut self, events: &[Event]) -> bool {
        if self.blocked {
            self.steps.pop();
            return false;
        }
        let fp = footprint(events, &mut self.ctx);
        let step = self.steps.last_mut().expect("observe follows next");
        step.fp = fp;
        step.digest = digest(events);
        step.events = events.len() as u32;
        if self.extend == Extend::Sleepy && self.steps.len() >= self.prefix.len() {
            let from = if self.steps.len() == self.prefix.len() { &self.branch_sleep } else { &self.sleep };
            self.sleep = from.iter().filter(|(_, g)| !g.conflicts(&fp)).copied().collect();
        }
        true
    }
}

/// A finished (or sleep-blocked) execution.
struct Run {
    steps: Vec<Step>,
    sleeps: Vec<Sleep>,
    blocked: bool,
    /// None when the model panicked (an internal assertion): always a finding.
    outcome: Option<Outcome>,
    panic: Option<String>,
}

fn execute(program: &Program, config: Config, prefix: &[u8], extend: Extend, branch_sleep: Sleep) -> Run {
    let mut guide = Guide {
        prefix,
        extend,
        steps: Vec::with_capacity(256),
        ctx: Context { deferred: config.slab == SlabMode::Deferred, threads: program.threads.len() as u32, pending: 0 },
        sleep: Vec::new(),
        branch_sleep,
        sleeps: Vec::new(),
        blocked: false,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine::run(program, config, &mut guide)));
    let (outcome, panic) = match result {
        Ok(outcome) => (Some(outcome), None),
        Err(e) => {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            (None, Some(message))
        }
    };
    Run { steps: guide.steps, sleeps: guide.sleeps, blocked: guide.blocked, outcome, panic }
}

/// Preemptions of a schedule: switches away from a thread that could still have run.
fn preemptions(steps: &[Step]) -> u32 {
    steps.windows(2).filter(|w| w[1].thread != w[0].thread && w[1].enabled & 1 << w[0].thread != 0).count() as u32
}

/// Happens-before as vector clocks: entry `[j][u]` is how many of thread u's steps precede step j
/// or are step j (program order plus dependent pairs, transitively).
fn clocks(steps: &[Step]) -> Vec<[u16; MAX_THREADS]> {
    let mut vc: Vec<[u16; MAX_THREADS]> = Vec::with_capacity(steps.len());
    let mut count = [0u16; MAX_THREADS];
    for (j, s) in steps.iter().enumerate() {
        let t = s.thread as usize;
        let mut c = [0u16; MAX_THREADS];
        for (l, p) in steps[..j].iter().enumerate() {
            if p.thread == s.thread || p.fp.conflicts(&s.fp) {
                (0..MAX_THREADS).for_each(|u| c[u] = c[u].max(vc[l][u]));
            }
        }
        count[t] += 1;
        c[t] = count[t];
        vc.push(c);
    }
    vc
}

fn happens_before(vc: &[[u16; MAX_THREADS]], steps: &[Step], k: usize, l: usize) -> bool {
    vc[l][steps[k].thread as usize] >= vc[k][steps[k].thread as usize]
}

/// The class of an execution, as a digest: its steps in the lexicographically least order the
/// happens-before relation allows (equivalent executions have the same partial order, so the same
/// least linearization), each step named by its events.
fn class_digest(steps: &[Step], vc: &[[u16; MAX_THREADS]], tail: &[Event]) -> u64 {
    let mut per_thread: Vec<Vec<usize>> = vec![Vec::new(); MAX_THREADS];
    steps.iter().enumerate().for_each(|(j, s)| per_thread[s.thread as usize].push(j));
    let mut done = [0u16; MAX_THREADS];
    let mut h = 0;
    for _ in 0..steps.len() {
        let t = (0..MAX_THREADS)
            .find(|&t| {
                per_thread[t].get(done[t] as usize).is_some_and(|&j| (0..MAX_THREADS).all(|u| u == t || vc[j][u] <= done[u]))
            })
            .expect("a happens-before order has a minimal step");
        let j = per_thread[t][done[t] as usize];
        h = mix(mix(h, t as u64), steps[j].digest);
        done[t] += 1;
    }
    mix(h, digest(tail))
}

// ---- the explorer ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Dpor,
    Dfs,
    /// Iterative context bounding up to the given number of preemptions (None: no bound).
    Bounded(Option<u32>),
}

/// One state of the DPOR stack: the state before step `i` of the current execution.
struct Node {
    thread: u8,
    enabled: u8,
    fp: Footprint,
    backtrack: u8,
    done: Sleep,
    sleep: Sleep,
}

/// An execution whose history or class was not seen before, for the oracle.
pub struct Found {
    pub schedule: Vec<u8>,
    pub preemptions: u32,
    /// The equivalence class's digest (0 for a panicked run).
    pub class: u64,
    pub outcome: Option<Outcome>,
    pub panic: Option<String>,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct Stats {
    pub schedules: u64,
    pub blocked: u64,
    pub histories: u64,
    pub classes: u64,
    /// The preemption bound being explored (bounded mode).
    pub level: u32,
}

pub struct Explorer {
    program: Program,
    config: Config,
    mode: Mode,
    setup_events: usize,
    seen: HashSet<u64>,
    classes: HashSet<u64>,
    pub stats: Stats,
    started: bool,
    finished: bool,
    // DPOR
    stack: Vec<Node>,
    // DFS and bounded: prefixes still to run, this level and the next.
    todo: Vec<Vec<u8>>,
    next_level: Vec<Vec<u8>>,
}

impl Explorer {
    pub fn new(program: Program, config: Config, mode: Mode) -> Explorer {
        let log = std::cell::RefCell::new(Vec::new());
        engine::setup(&crate::world::World::new(config, program.threads.len()), &program, &log);
        let setup_events = log.into_inner().len();
        Explorer {
            program,
            config,
            mode,
            setup_events,
            seen: HashSet::new(),
            classes: HashSet::new(),
            stats: Stats::default(),
            started: false,
            finished: false,
            stack: Vec::new(),
            todo: vec![Vec::new()],
            next_level: Vec::new(),
        }
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Run executions until `want` new histories are found or the space is exhausted.
    pub fn explore(&mut self, want: usize, deadline: Option<std::time::Instant>) -> Vec<Found> {
        let mut found = Vec::new();
        while !self.finished && found.len() < want && deadline.is_none_or(|d| std::time::Instant::now() < d) {
            let run = match self.mode {
                Mode::Dpor => self.dpor_step(),
                Mode::Dfs | Mode::Bounded(_) => self.tree_step(),
            };
            let Some(run) = run else { continue };
            if let Some(f) = self.record(run) {
                found.push(f);
            }
        }
        found
    }

    fn record(&mut self, run: Run) -> Option<Found> {
        self.stats.schedules += 1;
        if run.blocked {
            self.stats.blocked += 1;
            return None;
        }
        let schedule: Vec<u8> = run.steps.iter().map(|s| s.thread).collect();
        let preemptions = preemptions(&run.steps);
        let Some(outcome) = run.outcome else {
            return Some(Found { schedule, preemptions, class: 0, outcome: None, panic: run.panic });
        };
        // Whatever the engine appended after the last step (a deadlock report) belongs to no step.
        let observed = self.setup_events + run.steps.iter().map(|s| s.events as usize).sum::<usize>();
        let vc = clocks(&run.steps);
        let class = class_digest(&run.steps, &vc, &outcome.events[observed..]);
        let new_class = self.classes.insert(class);
        let new_history = self.seen.insert(outcome.digest);
        self.stats.classes += new_class as u64;
        self.stats.histories += new_history as u64;
        if !new_class && !new_history {
            return None;
        }
        Some(Found { schedule, preemptions, class, outcome: Some(outcome), panic: None })
    }

    // -- DFS and iterative context bounding --

    fn tree_step(&mut self) -> Option<Run> {
        let prefix = match self.todo.pop() {
            Some(p) => p,
            None => {
                let bound = match self.mode {
                    Mode::Bounded(b) => b,
                    _ => None,
                };
                if self.next_level.is_empty() || bound.is_some_and(|b| self.stats.level >= b) {
                    self.finished = true;
                    return None;
                }
                self.stats.level += 1;
                self.todo = std::mem::take(&mut self.next_level);
                self.todo.reverse();
                return None;
            }
        };
        let run = execute(&self.program, self.config, &prefix, Extend::NonPreemptive, Vec::new());
        let levels = matches!(self.mode, Mode::Bounded(_));
        let bound_reached = matches!(self.mode, Mode::Bounded(Some(b)) if self.stats.level >= b);
        let steps = &run.steps;
        let mut children = Vec::new();
        for i in prefix.len()..steps.len() {
            let s = steps[i];
            let prev = i.checked_sub(1).map(|p| steps[p].thread);
            let preempting = prev.is_some_and(|p| s.enabled & 1 << p != 0);
            for q in (0..MAX_THREADS as u8).filter(|&q| q != s.thread && s.enabled & 1 << q != 0) {
                let mut child: Vec<u8> = steps[..i].iter().map(|s| s.thread).collect();
                child.push(q);
                if levels && preempting {
                    if !bound_reached {
                        self.next_level.push(child);
                    }
                } else {
                    children.push(child);
                }
            }
        }
        // Depth first, lowest thread first.
        children.reverse();
        self.todo.extend(children);
        Some(run)
    }

    // -- source-set DPOR with sleep sets --

    fn dpor_step(&mut self) -> Option<Run> {
        let (prefix, branch_sleep) = if !self.started {
            self.started = true;
            (Vec::new(), Vec::new())
        } else {
            match self.backtrack() {
                Some(next) => next,
                None => {
                    self.finished = true;
                    return None;
                }
            }
        };
        let run = execute(&self.program, self.config, &prefix, Extend::Sleepy, branch_sleep);
        let diverged = prefix.len().saturating_sub(1);
        // The step at the branching state is the new thread's: refresh its record.
        if let (Some(node), Some(step)) = (self.stack.get_mut(diverged), run.steps.get(diverged)) {
            node.fp = step.fp;
            node.enabled = step.enabled;
        }
        for (k, step) in run.steps.iter().enumerate().skip(prefix.len()) {
            let sleep = run.sleeps[k - prefix.len()].clone();
            self.stack.push(Node { thread: step.thread, enabled: step.enabled, fp: step.fp, backtrack: 1 << step.thread, done: Vec::new(), sleep });
        }
        self.races(&run.steps, diverged);
        Some(run)
    }

    /// For every race `k < j` with `j` at or after the branching state, make sure some thread
    /// that can start the reversed order is in `k`'s backtrack set.
    fn races(&mut self, steps: &[Step], from: usize) {
        let vc = clocks(steps);
        for j in from..steps.len() {
            let tj = steps[j].thread;
            let mut covered = [0u16; MAX_THREADS];
            for k in (0..j).rev() {
                let sk = steps[k];
                let pred = sk.thread == tj || sk.fp.conflicts(&steps[j].fp);
                if !pred {
                    continue;
                }
                let tk = sk.thread as usize;
                if sk.thread != tj && covered[tk] < vc[k][tk] {
                    if sk.enabled & 1 << tj != 0 {
                        self.reverse(steps, &vc, k, j);
                    } else {
                        self.reverse_blocked(steps, &vc, k, j);
                    }
                }
                (0..MAX_THREADS).for_each(|u| covered[u] = covered[u].max(vc[k][u]));
            }
        }
    }

    /// A race whose later step could not have run before the earlier one: `j`'s thread was
    /// waiting (for the lock `k` releases). The order that matters is whether that thread could
    /// have taken the lock before its holder did: reverse `j` with the last step before `k` it
    /// conflicts with and could run beside, as Flanagan and Godefroid's co-enabled rule does, or,
    /// failing one, try every thread at `k`.
    fn reverse_blocked(&mut self, steps: &[Step], vc: &[[u16; MAX_THREADS]], k: usize, j: usize) {
        let tj = steps[j].thread;
        let prev = (0..j).rev().find(|&p| steps[p].thread == tj);
        let earlier = (0..k).rev().find(|&e| {
            steps[e].thread != tj
                && steps[e].enabled & 1 << tj != 0
                && steps[e].fp.conflicts(&steps[j].fp)
                && !prev.is_some_and(|p| happens_before(vc, steps, e, p))
        });
        match earlier {
            Some(e) => self.reverse(steps, vc, e, j),
            None => {
                let node = &mut self.stack[k];
                node.backtrack |= node.enabled & !mask(&node.sleep);
            }
        }
    }

    fn reverse(&mut self, steps: &[Step], vc: &[[u16; MAX_THREADS]], k: usize, j: usize) {
        // v = the steps after k that do not happen after it, then j; its initials are the threads
        // whose first step in v has no predecessor in v.
        let v: Vec<usize> = (k + 1..j).filter(|&l| !happens_before(vc, steps, k, l)).chain([j]).collect();
        let mut initials = 0u8;
        for (a, &l) in v.iter().enumerate() {
            if !v[..a].iter().any(|&p| happens_before(vc, steps, p, l)) {
                initials |= 1 << steps[l].thread;
            }
        }
        let node = &mut self.stack[k];
        let sleeping = mask(&node.sleep);
        if initials & (node.backtrack | mask(&node.done) | sleeping) != 0 {
            return;
        }
        let tj = steps[j].thread;
        let startable = initials & node.enabled;
        node.backtrack |= if startable & 1 << tj != 0 {
            1 << tj
        } else if startable != 0 {
            1 << startable.trailing_zeros()
        } else {
            // No initial can run here: fall back to every thread that can (Flanagan and
            // Godefroid's rule).
            node.enabled & !sleeping
        };
    }

    /// Mark the current choice done, pop exhausted states, and return the next prefix to run
    /// with the sleep set that goes with its branching state.
    fn backtrack(&mut self) -> Option<(Vec<u8>, Sleep)> {
        while let Some(node) = self.stack.last_mut() {
            node.done.push((node.thread, node.fp));
            let todo = node.backtrack & node.enabled & !mask(&node.done) & !mask(&node.sleep);
            if todo != 0 {
                node.thread = todo.trailing_zeros() as u8;
                let prefix = self.stack.iter().map(|n| n.thread).collect();
                let node = self.stack.last().unwrap();
                let sleep = node.sleep.iter().chain(node.done.iter()).copied().collect();
                return Some((prefix, sleep));
            }
            self.stack.pop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::op;
    use crate::program::{Op, OpKind, SetupVma};

    fn classes(program: &Program, mode: Mode) -> HashSet<u64> {
        let mut ex = Explorer::new(program.clone(), Config::SEED, mode);
        while !ex.finished() {
            ex.explore(1 << 20, None);
        }
        ex.classes
    }

    #[test]
    fn dpor_reaches_every_class_dfs_reaches() {
        let p = Program {
            setup: vec![SetupVma { start: 0, end: 1, counter: None }],
            threads: vec![
                vec![op(OpKind::Munmap, 0), Op { kind: OpKind::Mmap, a: 5, b: 1, fail: false }],
                vec![op(OpKind::Get, 0), op(OpKind::Put, 0)],
            ],
            schedule: vec![],
        };
        let dfs = classes(&p, Mode::Dfs);
        let dpor = classes(&p, Mode::Dpor);
        assert!(dfs.is_subset(&dpor), "DPOR missed {} of {} classes", dfs.difference(&dpor).count(), dfs.len());
    }
}
