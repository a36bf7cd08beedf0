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

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;

use crate::env::Env;
use crate::event::Event;

#[derive(Default)]
struct ReaderState {
    rcu_nesting: AtomicU32,
    preempt_count: AtomicU32,
    /// Incremented each time the thread leaves its outermost read-side section.
    sections_done: AtomicU64,
}

impl ReaderState {
    fn in_section(&self) -> bool {
        self.holds_grace_period(true)
    }
    /// What a grace period waits for; `preempt == false` is the mutant `gp_ignores_preempt`.
    fn holds_grace_period(&self, preempt: bool) -> bool {
        self.rcu_nesting.load(SeqCst) > 0 || preempt && self.preempt_count.load(SeqCst) > 0
    }
}

/// A callback queued by `call_rcu`, waiting for the readers it must outlive.
pub struct Callback<T> {
    pub payload: T,
    waits_for: Vec<(usize, u64)>,
}

pub struct Rcu {
    readers: Vec<ReaderState>,
}

impl Rcu {
    pub fn new(threads: usize) -> Rcu {
        Rcu { readers: (0..threads).map(|_| ReaderState::default()).collect() }
    }

    fn reader<E: Env>(&self, env: &E) -> &ReaderState {
        &self.readers[env.tid() as usize]
    }

    fn leave<E: Env>(&self, env: &E) {
        let r = self.reader(env);
        if !r.in_section() {
            r.sections_done.fetch_add(1, SeqCst);
        }
    }

    pub async fn read_lock<E: Env>(&self, env: &E) {
        env.step().await;
        self.reader(env).rcu_nesting.fetch_add(1, SeqCst);
        env.emit(Event::RcuLock { t: env.tid() });
    }

    pub async fn read_unlock<E: Env>(&self, env: &E) {
        env.step().await;
        self.reader(env).rcu_nesting.fetch_sub(1, SeqCst);
        env.emit(Event::RcuUnlock { t: env.tid() });
        self.leave(env);
    }

    pub async fn preempt_disable<E: Env>(&self, env: &E) {
        env.step().await;
        self.reader(env).preempt_count.fetch_add(1, SeqCst);
        env.emit(Event::PreemptOff { t: env.tid() });
    }

    pub async fn preempt_enable<E: Env>(&self, env: &E) {
        env.step().await;
        self.reader(env).preempt_count.fetch_sub(1, SeqCst);
        env.emit(Event::PreemptOn { t: env.tid() });
        self.leave(env);
    }

    /// `call_rcu`: the payload becomes ready after a grace period starting now, which waits for
    /// preempt-disabled regions too unless `preempt` is false.
    pub fn defer<T>(&self, payload: T, preempt: bool) -> Callback<T> {
        // The count is read first: a reader that leaves between the two reads is then either
        // seen outside (and needs no waiting) or waited for one section end too many, never
        // one section end that has already happened.
        let waits_for = self
            .readers
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let done = r.sections_done.load(SeqCst);
                r.holds_grace_period(preempt).then_some((i, done))
            })
            .collect();
        Callback { payload, waits_for }
    }

    pub fn grace_period_over<T>(&self, cb: &Callback<T>) -> bool {
        cb.waits_for.iter().all(|&(i, done)| self.readers[i].sections_done.load(SeqCst) > done)
    }

    /// Take every callback whose grace period has ended, in queue order.
    pub fn take_ready<T>(&self, queue: &Mutex<Vec<Callback<T>>>) -> Vec<T> {
        let mut q = queue.lock().unwrap();
        let mut ready = Vec::new();
        let mut i = 0;
        while i < q.len() {
            if self.grace_period_over(&q[i]) {
                ready.push(q.remove(i).payload);
            } else {
                i += 1;
            }
        }
        ready
    }
}
