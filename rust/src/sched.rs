//! Schedulers decide which simulated thread performs the next shared-memory access. They see only
//! which threads can run; the runtime (`engine.rs`) owns everything else, so a new exploration
//! strategy is one small type.

use crate::engine::STEP_LIMIT;
use crate::event::Event;
use crate::explore::{Footprint, Footprints};
use crate::world::{Config, MAX_THREADS};

pub trait Scheduler {
    /// Whether `observe` looks at the steps; if not, the engine skips showing them (the default
    /// is true, so a scheduler that overrides `observe` sees every step).
    const OBSERVES: bool = true;
    /// Pick the thread that takes the next step; `runnable` has at least one true entry.
    fn next(&mut self, runnable: &[bool]) -> usize;
    /// The events the step just taken emitted (with any reclaims it let happen); false ends the
    /// run there. The explorer (`explore.rs`) derives each step's footprint from them.
    fn observe(&mut self, _step: &[Event]) -> bool {
        true
    }
}

#[inline]
fn first_runnable_from(runnable: &[bool], from: usize) -> usize {
    // Schedules name threads of the program, so the common case needs neither the division
    // nor the search.
    let from = if from < runnable.len() { from } else { from % runnable.len() };
    if runnable[from] {
        return from;
    }
    (from..runnable.len())
        .chain(0..from)
        .find(|&i| runnable[i])
        .expect("scheduler called with no runnable thread")
}

/// The schedule a program carries: "thread T runs N steps", in order. A chosen thread that is
/// finished or blocked passes its turn to the next runnable one; once the list is used up the
/// threads run to completion one after another, in index order.
pub struct ListSchedule<'a> {
    slices: &'a [(u8, u32)],
    /// The next slice to start.
    index: usize,
    /// The current slice's thread and the steps it has left.
    thread: usize,
    left: u32,
}

impl<'a> ListSchedule<'a> {
    pub fn new(slices: &'a [(u8, u32)]) -> Self {
        ListSchedule { slices, index: 0, thread: 0, left: 0 }
    }

    /// The current slice is used up: start the next one that has steps, or, past the list's
    /// end, the lowest runnable thread.
    #[inline(never)]
    fn next_slice(&mut self, runnable: &[bool]) -> usize {
        while let Some(&(t, steps)) = self.slices.get(self.index) {
            self.index += 1;
            if steps > 0 {
                (self.thread, self.left) = (t as usize, steps - 1);
                return first_runnable_from(runnable, self.thread);
            }
        }
        first_runnable_from(runnable, 0)
    }
}

impl Scheduler for ListSchedule<'_> {
    const OBSERVES: bool = false;
    /// Inlined into the engine's step boundary: most steps stay inside the current slice.
    #[inline]
    fn next(&mut self, runnable: &[bool]) -> usize {
        if self.left == 0 {
            return self.next_slice(runnable);
        }
        self.left -= 1;
        first_runnable_from(runnable, self.thread)
    }
}

/// PCT (Burckhardt et al., ASPLOS 2010): random distinct thread priorities and `depth - 1` random
/// change points at which the running thread drops to the lowest priority. The highest-priority
/// runnable thread always runs. The fuzz harness walks every input with it (depth 32,
/// `harness.WALK_DEPTH`), and `pyfuzz bench bugs` runs it as a baseline (depth 3, no feedback).
pub struct Pct {
    priority: [u32; MAX_THREADS],
    /// The program's threads by priority, highest first: the thread that runs is the first
    /// runnable one in it (the priorities are distinct: the initial ones are `depth` and up,
    /// change point k gives k, and each k is drawn at one step at most). Only the running
    /// thread moves in it, at a change point, instead of a search for the highest priority at
    /// every step.
    order: [u8; MAX_THREADS],
    threads: usize,
    /// For each step a run can reach, the change point drawn at it (`NO_CHANGE`: none); change
    /// point k gives the running thread priority k. Two drawn at one step count once, with the
    /// lower k, as a search of the drawn list in order would find. A run stops at `STEP_LIMIT`
    /// steps, so points drawn at or past it are never reached and are not kept.
    change_at: Vec<u32>,
    step: u32,
}

const NO_CHANGE: u32 = u32::MAX;

impl Pct {
    pub fn new(threads: usize, depth: u32, expected_steps: u32, seed: u64) -> Pct {
        assert!(threads <= MAX_THREADS, "a program has at most {MAX_THREADS} threads");
        let mut rng = SplitMix(seed);
        let mut priority = [0; MAX_THREADS];
        for (i, p) in priority[..threads].iter_mut().enumerate() {
            *p = i as u32 + depth;
        }
        for i in (1..threads).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            priority.swap(i, j);
        }
        let mut change_at = vec![NO_CHANGE; expected_steps.clamp(1, STEP_LIMIT) as usize];
        let steps = Divisor::new(expected_steps.max(1) as u64);
        for k in 0..depth.saturating_sub(1) {
            let at = steps.rem(rng.next_u64()) as usize;
            if let Some(slot @ &mut NO_CHANGE) = change_at.get_mut(at) {
                *slot = k;
            }
        }
        // The initial priorities are `depth` to `depth + threads - 1`: the highest comes first.
        let mut order = [0; MAX_THREADS];
        for (t, &p) in priority[..threads].iter().enumerate() {
            order[(depth + threads as u32 - 1 - p) as usize] = t as u8;
        }
        Pct { priority, order, threads, change_at, step: 0 }
    }

    /// The thread that runs, and where it is in `order`.
    #[inline]
    fn best(&self, runnable: &[bool]) -> (usize, usize) {
        let (at, &t) = self.order[..self.threads].iter().enumerate().find(|&(_, &t)| runnable[t as usize]).expect("a runnable thread");
        (t as usize, at)
    }

    /// The thread at `at` in `order` takes priority `p` and moves to its place in the order (up
    /// or down: a thread lowered before may be the one that runs now). A sort at each change
    /// point (one at every third step of a walk) was 6% of the fuzz loop's time (perf), most of
    /// it mispredicted branches.
    #[inline]
    fn reprioritize(&mut self, mut at: usize, p: u32) {
        let (priority, order) = (&mut self.priority, &mut self.order[..self.threads]);
        priority[order[at] as usize] = p;
        while at > 0 && priority[order[at - 1] as usize] < p {
            order.swap(at - 1, at);
            at -= 1;
        }
        while at + 1 < order.len() && priority[order[at + 1] as usize] > p {
            order.swap(at, at + 1);
            at += 1;
        }
    }
}

impl Scheduler for Pct {
    const OBSERVES: bool = false;
    #[inline(always)]
    fn next(&mut self, runnable: &[bool]) -> usize {
        let (chosen, at) = self.best(runnable);
        let step = self.step as usize;
        self.step += 1;
        match self.change_at.get(step) {
            Some(&k) if k != NO_CHANGE => {
                // Change point k lowers the running thread below every initial priority.
                self.reprioritize(at, k);
                self.best(runnable).0
            }
            _ => chosen,
        }
    }
}

/// Uniformly random choice among the runnable threads at every step (baseline).
pub struct RandomWalk(pub SplitMix);

impl Scheduler for RandomWalk {
    fn next(&mut self, runnable: &[bool]) -> usize {
        let choices: Vec<usize> = (0..runnable.len()).filter(|&i| runnable[i]).collect();
        choices[self.0.below(choices.len() as u64) as usize]
    }
}

/// POS (Yuan et al., "Partial Order Aware Concurrency Sampling", CAV 2018): every pending step
/// has a random priority and the highest runnable one runs; after a step, the thread that took it
/// and every thread whose pending step races with it draw fresh priorities. The engine cannot see
/// a suspended thread's next access before granting it, so a thread's last step stands in for its
/// pending one: the protocol's accesses come in runs on one object (a fetch-sub, then the
/// compare-exchange on the same counter), which makes the last footprint a close guess.
pub struct Pos {
    rng: SplitMix,
    priority: Vec<u64>,
    footprints: Footprints,
    last: Vec<Footprint>,
    /// The thread granted the step being observed.
    running: usize,
}

impl Pos {
    pub fn new(config: &Config, threads: usize, seed: u64) -> Pos {
        let mut rng = SplitMix(seed);
        let priority = (0..threads).map(|_| rng.next_u64()).collect();
        let footprints = Footprints::new(config, threads);
        Pos { rng, priority, footprints, last: vec![Footprint::default(); threads], running: 0 }
    }
}

impl Scheduler for Pos {
    fn next(&mut self, runnable: &[bool]) -> usize {
        self.running = (0..runnable.len()).filter(|&i| runnable[i]).max_by_key(|&i| self.priority[i]).unwrap();
        self.running
    }
    fn observe(&mut self, events: &[Event]) -> bool {
        let step = self.footprints.of_step(events);
        for u in 0..self.priority.len() {
            if u == self.running || self.last[u].conflicts(&step) {
                self.priority[u] = self.rng.next_u64();
            }
        }
        self.last[self.running] = step;
        true
    }
}

/// A random walk weighted by each thread's remaining steps, as in SURW/URW (Zhao et al.,
/// "Selectively Uniform Concurrency Testing", ASPLOS 2025): choosing a thread with probability
/// proportional to the steps it still has to take samples interleavings uniformly, where a
/// uniform choice per step crowds into the few that switch threads at every step and almost
/// never lets one thread run far ahead. The counts come from a run of the same program
/// (its own schedule); a thread that overruns its estimate keeps weight 1.
pub struct WeightedWalk {
    rng: SplitMix,
    remaining: Vec<u32>,
}

impl WeightedWalk {
    pub fn new(thread_steps: Vec<u32>, seed: u64) -> WeightedWalk {
        WeightedWalk { rng: SplitMix(seed), remaining: thread_steps }
    }
}

impl Scheduler for WeightedWalk {
    fn next(&mut self, runnable: &[bool]) -> usize {
        let weight = |i: usize| if runnable[i] { self.remaining[i].max(1) as u64 } else { 0 };
        let total: u64 = (0..runnable.len()).map(weight).sum();
        let mut pick = self.rng.below(total);
        let chosen = (0..runnable.len())
            .find(|&i| {
                let w = weight(i);
                if pick < w {
                    return true;
                }
                pick -= w;
                false
            })
            .expect("a runnable thread has weight");
        self.remaining[chosen] = self.remaining[chosen].saturating_sub(1);
        chosen
    }
}

/// Delay bounding (Emmi, Qadeer and Rakamaric, POPL 2011), sampled: a non-preemptive round
/// robin (the running thread continues until it blocks or ends, then the next one by index) that
/// is delayed at `delays` random steps of the run, each time passing the turn to the next
/// runnable thread. Thomson et al. found most SCTBench bugs within a few delays.
pub struct DelayBounded {
    current: usize,
    delay_at: Vec<u32>,
    step: u32,
}

impl DelayBounded {
    pub fn new(delays: u32, expected_steps: u32, seed: u64) -> DelayBounded {
        let mut rng = SplitMix(seed);
        let delay_at = (0..delays).map(|_| rng.below(expected_steps.max(1) as u64) as u32).collect();
        DelayBounded { current: 0, delay_at, step: 0 }
    }
}

impl Scheduler for DelayBounded {
    fn next(&mut self, runnable: &[bool]) -> usize {
        let delays = self.delay_at.iter().filter(|&&d| d == self.step).count();
        self.step += 1;
        let mut t = first_runnable_from(runnable, self.current);
        for _ in 0..delays {
            t = first_runnable_from(runnable, t + 1);
        }
        self.current = t;
        t
    }
}

/// The walks `Engine.run_bytes_with` offers, as one type: the engine is compiled once for it,
/// and each step's choice is a jump on the kind rather than a call through a vtable.
pub enum Walk {
    Random(RandomWalk),
    Pct(Pct),
    Pos(Pos),
    Delay(DelayBounded),
    Weighted(WeightedWalk),
}

impl Scheduler for Walk {
    #[inline]
    fn next(&mut self, runnable: &[bool]) -> usize {
        match self {
            Walk::Random(s) => s.next(runnable),
            Walk::Pct(s) => s.next(runnable),
            Walk::Pos(s) => s.next(runnable),
            Walk::Delay(s) => s.next(runnable),
            Walk::Weighted(s) => s.next(runnable),
        }
    }
    #[inline]
    fn observe(&mut self, step: &[Event]) -> bool {
        match self {
            Walk::Pos(s) => s.observe(step),
            Walk::Random(_) | Walk::Pct(_) | Walk::Delay(_) | Walk::Weighted(_) => true,
        }
    }
}

/// A tiny deterministic PRNG (SplitMix64) so baselines replay from their seed.
pub struct SplitMix(pub u64);

/// `x % n` by multiplications (Lemire, Kaser and Kurz, "Faster remainder by direct computation",
/// 2019: with a 128-bit reciprocal it is exact for every 64-bit `x`), for many remainders by one
/// `n`: PCT draws its 31 change points modulo the run's length, and the 64-bit divisions were
/// about half of building a walk (perf).
struct Divisor {
    n: u64,
    /// ceil(2^128 / n), or 0 for n = 1 (every remainder is 0).
    reciprocal: u128,
}

impl Divisor {
    fn new(n: u64) -> Divisor {
        assert!(n > 0, "a remainder by zero");
        Divisor { n, reciprocal: if n == 1 { 0 } else { u128::MAX / n as u128 + 1 } }
    }

    /// `x % n`: the fraction x / n is in the low 128 bits of `reciprocal * x`; times n, its
    /// integer part is the remainder.
    #[inline]
    fn rem(&self, x: u64) -> u64 {
        let fraction = self.reciprocal.wrapping_mul(x as u128);
        let (high, low) = ((fraction >> 64) as u64, fraction as u64);
        let carry = (low as u128 * self.n as u128) >> 64;
        ((high as u128 * self.n as u128 + carry) >> 64) as u64
    }
}

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_schedule_passes_turns_and_then_runs_in_order() {
        let slices = [(1u8, 2u32), (0, 1)];
        let mut s = ListSchedule::new(&slices);
        assert_eq!(s.next(&[true, true]), 1);
        assert_eq!(s.next(&[true, false]), 0, "a blocked thread passes its turn on");
        assert_eq!(s.next(&[true, true]), 0);
        assert_eq!(s.next(&[false, true]), 1, "after the list: lowest runnable");
    }

    #[test]
    fn weighted_walk_lets_the_longer_thread_run_more_often() {
        let mut w = WeightedWalk::new(vec![90, 10], 3);
        let picks: Vec<usize> = (0..100).map(|_| w.next(&[true, true])).collect();
        let ones = picks.iter().filter(|&&t| t == 1).count();
        assert!(ones < 40, "thread 1 has a tenth of the steps but ran {ones} of 100");
        assert_eq!(w.next(&[false, true]), 1, "a blocked thread is never picked");
    }

    #[test]
    fn delay_bounding_runs_round_robin_between_its_delays() {
        let mut d = DelayBounded::new(0, 10, 1);
        assert_eq!((0..3).map(|_| d.next(&[true, true])).collect::<Vec<_>>(), [0, 0, 0]);
        assert_eq!(d.next(&[false, true]), 1, "the turn passes on when the thread blocks");
        assert_eq!(d.next(&[true, true]), 1, "and stays with the new thread");
        let mut d = DelayBounded { current: 0, delay_at: vec![1], step: 0 };
        assert_eq!((0..3).map(|_| d.next(&[true, true])).collect::<Vec<_>>(), [0, 1, 1]);
    }

    #[test]
    fn pos_redraws_the_priorities_of_threads_that_raced() {
        use crate::event::{AtomicOp, Order};
        let touch = |t: i8, slot: u8| Event::Atomic { t, slot, op: AtomicOp::Add, order: Order::Relaxed, old: 0, new: 1 };
        let mut p = Pos::new(&Config::SEED, 3, 9);
        let step = |p: &mut Pos, t: usize, slot: u8| {
            p.running = t;
            p.observe(&[touch(t as i8, slot)]);
        };
        step(&mut p, 1, 0);
        step(&mut p, 2, 5);
        let before = p.priority.clone();
        step(&mut p, 0, 0);
        assert_ne!(p.priority[0], before[0], "the thread that stepped draws again");
        assert_ne!(p.priority[1], before[1], "thread 1 raced on slot 0");
        assert_eq!(p.priority[2], before[2], "thread 2 touched another slot");
    }

    #[test]
    fn pct_meets_its_change_points_as_a_search_of_the_drawn_list_would() {
        // The definition the sorted list must keep: at each step the first drawn change point
        // equal to the step applies, once. 31 points over 40 steps draw many at one step.
        let (threads, depth, expected) = (4, 32, 40);
        for seed in 0..200 {
            let mut pct = Pct::new(threads, depth, expected, seed);
            let mut rng = SplitMix(seed);
            let mut priority: Vec<u32> = (0..threads as u32).map(|i| i + depth).collect();
            for i in (1..threads).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                priority.swap(i, j);
            }
            let mut drawn: Vec<u32> = (1..depth).map(|_| rng.below(expected as u64) as u32).collect();
            for step in 0..60u32 {
                let runnable = [step % 3 != 0, true, step % 5 != 1, step % 7 != 2];
                let best = |p: &[u32]| (0..threads).filter(|&i| runnable[i]).max_by_key(|&i| p[i]).unwrap();
                let chosen = best(&priority);
                if let Some(k) = drawn.iter().position(|&c| c == step) {
                    priority[chosen] = k as u32;
                    drawn[k] = u32::MAX;
                }
                assert_eq!(pct.next(&runnable), best(&priority), "seed {seed}, step {step}");
            }
        }
    }

    #[test]
    fn a_divisor_gives_the_remainder() {
        let mut rng = SplitMix(3);
        let mut ns: Vec<u64> = (1..300).chain([1 << 20, (1 << 32) - 1, 1 << 32, u64::MAX - 1, u64::MAX]).collect();
        ns.extend((0..200).map(|_| rng.next_u64() >> (rng.next_u64() % 64)).filter(|&n| n > 0));
        for n in ns {
            let d = Divisor::new(n);
            for x in [0, 1, n - 1, n, n.wrapping_add(1), u64::MAX, u64::MAX - 1, u64::MAX / 2] {
                assert_eq!(d.rem(x), x % n, "{x} % {n}");
            }
            for _ in 0..200 {
                let x = rng.next_u64();
                assert_eq!(d.rem(x), x % n, "{x} % {n}");
            }
        }
    }

    #[test]
    fn pct_is_deterministic_per_seed() {
        let run = |seed| {
            let mut p = Pct::new(3, 3, 50, seed);
            (0..60).map(|_| p.next(&[true, true, true])).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
    }
}
