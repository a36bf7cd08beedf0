//! Schedulers decide which simulated thread performs the next shared-memory access. They see only
//! which threads can run; the runtime (`engine.rs`) owns everything else, so a new exploration
//! strategy is one small type.

pub trait Scheduler {
    /// Pick the thread that takes the next step; `runnable` has at least one true entry.
    fn next(&mut self, runnable: &[bool]) -> usize;
    /// The events the step just taken emitted (with any reclaims it let happen); false ends the
    /// run there. The explorer (`explore.rs`) derives each step's footprint from them.
    fn observe(&mut self, _step: &[crate::event::Event]) -> bool {
        true
    }
}

fn first_runnable_from(runnable: &[bool], from: usize) -> usize {
    let from = from % runnable.len();
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
    index: usize,
    used: u32,
}

impl<'a> ListSchedule<'a> {
    pub fn new(slices: &'a [(u8, u32)]) -> Self {
        ListSchedule { slices, index: 0, used: 0 }
    }
}

impl Scheduler for ListSchedule<'_> {
    fn next(&mut self, runnable: &[bool]) -> usize {
        while let Some(&(t, steps)) = self.slices.get(self.index) {
            if self.used < steps {
                self.used += 1;
                return first_runnable_from(runnable, t as usize);
            }
            self.index += 1;
            self.used = 0;
        }
        first_runnable_from(runnable, 0)
    }
}

/// PCT (Burckhardt et al., ASPLOS 2010): random distinct thread priorities and `depth - 1` random
/// change points at which the running thread drops to the lowest priority. The highest-priority
/// runnable thread always runs. The fuzz harness walks every input with it (depth 16), and
/// `pyfuzz bench bugs` runs it as a baseline (depth 3, no feedback).
pub struct Pct {
    priority: Vec<u32>,
    change_points: Vec<u32>,
    step: u32,
}

impl Pct {
    pub fn new(threads: usize, depth: u32, expected_steps: u32, seed: u64) -> Pct {
        let mut rng = SplitMix(seed);
        let mut priority: Vec<u32> = (0..threads as u32).map(|i| i + depth).collect();
        for i in (1..threads).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            priority.swap(i, j);
        }
        let change_points = (1..depth).map(|_| rng.below(expected_steps.max(1) as u64) as u32).collect();
        Pct { priority, change_points, step: 0 }
    }
}

impl Scheduler for Pct {
    fn next(&mut self, runnable: &[bool]) -> usize {
        let best = |p: &[u32]| (0..runnable.len()).filter(|&i| runnable[i]).max_by_key(|&i| p[i]).unwrap();
        let chosen = best(&self.priority);
        if let Some(k) = self.change_points.iter().position(|&c| c == self.step) {
            // Change point k lowers the running thread below every initial priority.
            self.priority[chosen] = k as u32;
            self.change_points[k] = u32::MAX;
        }
        self.step += 1;
        best(&self.priority)
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

/// A tiny deterministic PRNG (SplitMix64) so baselines replay from their seed.
pub struct SplitMix(pub u64);

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
    fn pct_is_deterministic_per_seed() {
        let run = |seed| {
            let mut p = Pct::new(3, 3, 50, seed);
            (0..60).map(|_| p.next(&[true, true, true])).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
    }
}
