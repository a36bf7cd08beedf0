//! rcuref: the reference count that `vma_get`/`vma_put` are built on, modelled on the kernel's
//! `include/linux/rcuref.h` and `lib/rcuref.c` (constants, orderings and slow paths as there).
//!
//! How it works
//! ============
//!
//! The counter is a `u32` that stores *references minus one*, so a freshly initialised object
//! with one reference holds `ONEREF == 0`. Reading the word as signed splits it in two halves:
//!
//! ```text
//!  0x00000000 ......... 0x7FFFFFFF | 0x80000000 .. 0xA0000000 .. 0xBFFFFFFF | 0xC0000000 .. 0xE0000000 .. 0xFFFFFFFF
//!  ONEREF               MAXREF     |               SATURATED                | RELEASED      DEAD          NOREF
//!  <-------- valid: alive -------> | <------------ saturation -------------> | <----------- dead ------------------>
//! ```
//!
//! Both `get` and `put` are a single unconditional atomic add. The common case, a result still in
//! the valid half, needs no further work, and no operation ever loops; there is no
//! compare-exchange retry loop whose cost grows with contention (the reason rcuref exists, in
//! place of `atomic_inc_not_zero`).
//!
//! Only a result in the negative half sends an operation to its slow path, and the zones are what
//! make the unconditional add safe there. Each zone is 2^29 or more values wide and the slow paths
//! put the counter back in the middle of its zone (`SATURATED`, `DEAD`) whenever they see it, so the
//! increments and decrements of operations racing with the object's death or saturation can never
//! carry the counter out of the zone it is in.
//!
//! *Dropping the last reference* takes the counter from `ONEREF` to `NOREF` (all ones). That value
//! is not yet dead: the dropping `put` must still claim the death with a compare-exchange
//! `NOREF -> DEAD`. In the window between the two steps, a `get` by a thread that still reaches the
//! object through an RCU-protected pointer may legally bring it back to `ONEREF`; it may even drop
//! that reference again and win the compare-exchange itself. So the compare-exchange can fail, and
//! failure is not an error: it means someone else is now responsible for the object, and the
//! first `put` returns false. Exactly one `put` sees the compare-exchange succeed, and only that
//! one may free the object. That is why the slow path must decide on the *value its own
//! fetch-sub returned*: re-reading the counter (as the kernel did before "rcuref: Plug slowpath
//! race in rcuref_put()") can observe another thread's `DEAD` and report a false imbalanced put.
//!
//! *A `get` after death* lands at `DEAD + 1` (or further into the dead zone if several race). Its
//! slow path sees a value at or above `RELEASED`, stores `DEAD` back and fails. The `RELEASED`
//! boundary sits well below `DEAD` so that racing decrements on a dead counter stay in the zone.
//!
//! *The deconstruction race*: between the fetch-sub that reached `NOREF` and the compare-exchange,
//! another thread may get and put the object and free it. The compare-exchange of the first thread
//! then touches memory that is no longer the object's. rcuref is only correct for objects freed
//! after an RCU grace period, and `rcuref_put` disables preemption around both steps, which holds
//! every grace period off; `rcuref_put_rcusafe` leaves that duty to a caller that is already in an
//! RCU read-side section or atomic context. (Whether `SLAB_TYPESAFE_BY_RCU` memory, which is reused
//! *without* a grace period, meets that requirement is exactly what this fuzzer asks.)
//!
//! *Saturation*: a `get` that goes past `MAXREF` lands in the saturation zone; the slow path warns
//! once and pins the counter at `SATURATED`. The object then leaks rather than being freed with
//! references outstanding. A `put` on a saturated counter restores `SATURATED` and never frees.
//!
//! Ordering
//! ========
//!
//! `get` is relaxed: whatever handed out the pointer (a lock, or RCU's dependency ordering)
//! already orders the caller's later accesses, and a failed `get` only needs the control
//! dependency. `put` is a release fetch-sub, so everything the holder did to the object happens
//! before the count drops, and the release sequence carries every holder's release to the final
//! `put`. The final `put`'s compare-exchange is followed by an acquire fence
//! (`smp_acquire__after_ctrl_dep`), which makes all those accesses happen-before the free.

use std::sync::atomic::Ordering as O;

use crate::env::{twice, Env};
use crate::event::{AtomicOp, Event, Order, RefFn, Warning};
use crate::mutant::Mutant;
use crate::rcu;
use crate::world::GetAlgo;

pub const ONEREF: u32 = 0x0000_0000;
pub const MAXREF: u32 = 0x7FFF_FFFF;
pub const SATURATED: u32 = 0xA000_0000;
pub const RELEASED: u32 = 0xC000_0000;
pub const DEAD: u32 = 0xE000_0000;
pub const NOREF: u32 = 0xFFFF_FFFF;

fn negative(v: u32) -> bool {
    (v as i32) < 0
}

fn rust_order(order: Order) -> O {
    match order {
        Order::Relaxed | Order::Plain => O::Relaxed,
        Order::Release => O::Release,
        Order::Acquire => O::Acquire,
        Order::SeqCst => O::SeqCst,
    }
}

fn warn<E: Env>(env: &E, slot: u8, what: Warning) {
    env.emit(Event::Warn { t: env.tid(), slot, what });
}

/// `rcuref_read`: the number of references, 0 once in the dead zone.
pub fn read(counter: u32) -> u32 {
    if counter >= RELEASED {
        0
    } else {
        counter.wrapping_add(1)
    }
}

/// `rcuref_is_dead`: NOREF is excluded because a concurrent `get` can still revive it.
pub fn is_dead(counter: u32) -> bool {
    (RELEASED..NOREF).contains(&counter)
}

/// `smp_acquire__after_ctrl_dep()`: the accesses of every holder whose release the preceding
/// reads of the counter observed happen before what follows (the free).
fn acquire_after_ctrl_dep<E: Env>(env: &E) {
    std::sync::atomic::fence(O::Acquire);
    env.emit(Event::Fence { t: env.tid() });
}

// The get/put chain, expanded for both runners (env.rs).
twice! {
    [use crate::rcu as rcu;]

    /// One atomic read-modify-write adding `delta` (two's complement) to the counter.
    #[inline(always)]
    fn counter_add(env: &E, slot: u8, delta: u32, op: AtomicOp, order: Order) -> u32 {
        step!(env);
        let old = env.world().counter(slot).fetch_add(delta, rust_order(order));
        let new = old.wrapping_add(delta);
        env.emit(Event::Atomic { t: env.tid(), slot, op, order, old, new });
        new
    }

    fn counter_load(env: &E, slot: u8) -> u32 {
        step!(env);
        let v = env.world().counter(slot).load(O::Relaxed);
        env.emit(Event::Atomic { t: env.tid(), slot, op: AtomicOp::Load, order: Order::Relaxed, old: v, new: v });
        v
    }

    /// `atomic_set`: the slow paths' re-centering stores, `rcuref_init`, and the memset in `vma_init`.
    pub fn counter_store(env: &E, slot: u8, value: u32, order: Order) {
        step!(env);
        let old = env.world().counter(slot).swap(value, rust_order(order));
        env.emit(Event::Atomic { t: env.tid(), slot, op: AtomicOp::Store, order, old, new: value });
    }

    /// `atomic_cmpxchg(counter, expected, new)` with `order` on success: Ok when it swapped, else
    /// the value found.
    fn counter_cmpxchg(env: &E, slot: u8, expected: u32, new: u32, order: Order) -> Result<u32, u32> {
        step!(env);
        let r = env.world().counter(slot).compare_exchange(expected, new, rust_order(order), O::Relaxed);
        let t = env.tid();
        let event = match r {
            Ok(old) => Event::Atomic { t, slot, op: AtomicOp::CasOk, order, old, new },
            Err(old) => Event::Atomic { t, slot, op: AtomicOp::CasFail, order, old, new: old },
        };
        env.emit(event);
        r
    }


    /// `rcuref_init(ref, n)`: a plain atomic store of n - 1.
    pub fn init(env: &E, slot: u8, references: u32) {
        let t = env.tid();
        env.emit(Event::RefCall { t, slot, f: RefFn::Init });
        aw!(counter_store(env, slot, references.wrapping_sub(1), Order::Relaxed));
        env.emit(Event::RefRet { t, slot, f: RefFn::Init, result: None });
    }



    /// `rcuref_get`, or the get the configuration puts in its place: true when a reference was
    /// acquired.
    #[inline(always)]
    pub fn get(env: &E, slot: u8) -> bool {
        let t = env.tid();
        env.emit(Event::RefCall { t, slot, f: RefFn::Get });
        let result = match env.config().get {
            GetAlgo::Rcuref => {
                let added = aw!(counter_add(env, slot, 1, AtomicOp::Add, Order::Relaxed));
                !negative(added) || aw!(get_slowpath(env, slot))
            }
            // `!atomic_long_add_negative(1, ...)`, fully ordered. Nothing re-centres a dead or
            // saturated counter: the zones are wide enough for the stray increments, and a store
            // here could land on the slot's next object.
            GetAlgo::AddResult => !negative(aw!(counter_add(env, slot, 1, AtomicOp::Add, Order::SeqCst))),
            GetAlgo::IncNotZero => aw!(inc_not_zero(env, slot)),
        };
        env.emit(Event::RefRet { t, slot, f: RefFn::Get, result: Some(result) });
        result
    }

    /// The inc-not-zero get in rcuref's encoding: a reference is taken only from a counter in the
    /// valid zone that stays there (the limit of `__refcount_inc_not_zero_limited_acquire`), with an
    /// acquire compare-exchange that is retried while other threads change the counter. A counter
    /// of no references (NOREF, the dead zone) or a saturated one is never written.
    fn inc_not_zero(env: &E, slot: u8) -> bool {
        let mut seen = aw!(counter_load(env, slot));
        while seen < MAXREF {
            match aw!(counter_cmpxchg(env, slot, seen, seen + 1, Order::Acquire)) {
                Ok(_) => return true,
                Err(now) => seen = now,
            }
        }
        false
    }

    /// `rcuref_get_slowpath`: unlike the put slow path, it re-reads the counter, because it only
    /// needs to classify the zone, and every value a racing thread can leave behind stays in it.
    fn get_slowpath(env: &E, slot: u8) -> bool {
        let counter = aw!(counter_load(env, slot));
        if counter >= RELEASED && env.mutant() != Mutant::GetIgnoresDead {
            if env.mutant() == Mutant::GetRecentreCmpxchgRevives {
                // The mutant re-centres only a counter nobody changed since the re-read and takes a
                // change for a get that made it live again, as the put slow path may; here the
                // other writers are gets that fail too.
                return aw!(counter_cmpxchg(env, slot, counter, DEAD, Order::Relaxed)).is_err();
            }
            let recentre = if env.mutant() == Mutant::GetDeadStoresNoref { NOREF } else { DEAD };
            aw!(counter_store(env, slot, recentre, Order::Relaxed));
            return false;
        }
        if counter > MAXREF && env.mutant() != Mutant::NoSaturation {
            warn(env, slot, Warning::Saturated);
            aw!(counter_store(env, slot, SATURATED, Order::Relaxed));
        }
        true
    }

    /// `rcuref_put` (preemption disabled around the whole operation) or, with `preempt == false`,
    /// `rcuref_put_rcusafe`. True when this put released the object: the caller must free it.
    #[inline(always)]
    pub fn put(env: &E, slot: u8, preempt: bool) -> bool {
        let t = env.tid();
        let preempt = preempt && env.mutant() != Mutant::PutNoPreempt;
        if preempt {
            aw!(rcu::preempt_disable(env));
        }
        env.emit(Event::RefCall { t, slot, f: RefFn::Put });
        let order = if env.mutant() == Mutant::PutRelaxed { Order::Relaxed } else { Order::Release };
        let remaining = aw!(counter_add(env, slot, 1u32.wrapping_neg(), AtomicOp::Sub, order));
        let enable_early = preempt && env.mutant() == Mutant::PutPreemptFastOnly;
        if enable_early {
            aw!(rcu::preempt_enable(env));
        }
        let released = negative(remaining) && aw!(put_slowpath(env, slot, remaining));
        env.emit(Event::RefRet { t, slot, f: RefFn::Put, result: Some(released) });
        let fast_path = !negative(remaining);
        if preempt && !enable_early && !(fast_path && env.mutant() == Mutant::PutLeaksPreempt) {
            aw!(rcu::preempt_enable(env));
        }
        released
    }

    /// `rcuref_put_slowpath(ref, cnt)`: decides on `counter`, the value the fetch-sub produced.
    fn put_slowpath(env: &E, slot: u8, counter: u32) -> bool {
        let counter = if env.mutant() == Mutant::PutReread { aw!(counter_load(env, slot)) } else { counter };
        if counter == NOREF {
            let acquire_early = env.mutant() == Mutant::PutAcquireBeforeCmpxchg;
            if acquire_early {
                acquire_after_ctrl_dep(env);
            }
            if env.mutant() == Mutant::PutNoCmpxchg {
                aw!(counter_store(env, slot, DEAD, Order::Release));
            } else if let Err(mut found) = aw!(counter_cmpxchg(env, slot, NOREF, DEAD, Order::Release)) {
                if env.mutant() == Mutant::PutCmpxchgLoop {
                    // try_cmpxchg updates the expected value, so the loop's next try expects what
                    // it found, whoever put it there.
                    while let Err(now) = aw!(counter_cmpxchg(env, slot, found, DEAD, Order::Release)) {
                        found = now;
                    }
                } else if !(env.mutant() == Mutant::PutCasFailFreesDead && found == DEAD) {
                    return false;
                }
            }
            if env.mutant() != Mutant::PutNoAcquire && !acquire_early {
                acquire_after_ctrl_dep(env);
            }
            return true;
        }
        if counter >= RELEASED {
            warn(env, slot, Warning::ImbalancedPut);
            aw!(counter_store(env, slot, DEAD, Order::Relaxed));
            return false;
        }
        if counter > MAXREF {
            aw!(counter_store(env, slot, SATURATED, Order::Relaxed));
        }
        false
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::solo;

    fn after_get(start: u32) -> (u32, bool, Vec<Event>) {
        solo(start, |env| async move { get(&env, 0).await })
    }

    fn after_put(start: u32) -> (u32, bool, Vec<Event>) {
        solo(start, |env| async move { put(&env, 0, true).await })
    }

    fn warned(events: &[Event], what: Warning) -> bool {
        events.iter().any(|e| matches!(e, Event::Warn { what: w, .. } if *w == what))
    }

    #[test]
    fn constants_match_the_kernel() {
        assert_eq!((ONEREF, MAXREF, SATURATED), (0, 0x7FFF_FFFF, 0xA000_0000));
        assert_eq!((RELEASED, DEAD, NOREF), (0xC000_0000, 0xE000_0000, 0xFFFF_FFFF));
    }

    #[test]
    fn read_and_is_dead_by_zone() {
        assert_eq!(read(ONEREF), 1);
        assert_eq!(read(MAXREF), 0x8000_0000);
        assert_eq!(read(DEAD), 0);
        assert_eq!(read(RELEASED), 0);
        assert!(is_dead(RELEASED) && is_dead(DEAD) && is_dead(NOREF - 1));
        assert!(!is_dead(NOREF) && !is_dead(ONEREF) && !is_dead(SATURATED));
    }

    #[test]
    fn init_stores_references_minus_one() {
        let (c, _, _) = solo(DEAD, |env| async move {
            init(&env, 0, 3).await;
            true
        });
        assert_eq!(c, 2);
    }

    #[test]
    fn get_in_valid_zone_takes_fast_path() {
        let (c, ok, ev) = after_get(ONEREF);
        assert!(ok);
        assert_eq!(c, 1);
        assert!(!ev.iter().any(|e| matches!(e, Event::Atomic { op: AtomicOp::Load, .. })));
    }

    #[test]
    fn get_at_maxref_saturates_and_warns() {
        let (c, ok, ev) = after_get(MAXREF);
        assert!(ok);
        assert_eq!(c, SATURATED);
        assert!(warned(&ev, Warning::Saturated));
    }

    #[test]
    fn get_on_saturated_restores_marker() {
        let (c, ok, ev) = after_get(SATURATED);
        assert!(ok && c == SATURATED && warned(&ev, Warning::Saturated));
    }

    #[test]
    fn get_on_dead_fails_and_recenters() {
        for start in [DEAD, RELEASED, DEAD + 5, NOREF - 1] {
            let (c, ok, ev) = after_get(start);
            assert!(!ok, "{start:#x}");
            assert_eq!(c, DEAD);
            assert!(!warned(&ev, Warning::Saturated));
        }
    }

    #[test]
    fn get_on_noref_revives() {
        // NOREF + 1 wraps to ONEREF: the window before the releasing put marks it dead.
        let (c, ok, _) = after_get(NOREF);
        assert!(ok && c == ONEREF);
    }

    #[test]
    fn put_of_last_reference_marks_dead_and_releases() {
        let (c, released, ev) = after_put(ONEREF);
        assert!(released);
        assert_eq!(c, DEAD);
        assert!(ev.iter().any(|e| matches!(e, Event::Fence { .. })));
        assert!(ev.iter().any(|e| matches!(e, Event::PreemptOff { .. })));
    }

    #[test]
    fn put_with_references_left_is_fast() {
        let (c, released, _) = after_put(4);
        assert!(!released && c == 3);
    }

    #[test]
    fn put_on_dead_is_imbalanced() {
        let (c, released, ev) = after_put(DEAD);
        assert!(!released && c == DEAD && warned(&ev, Warning::ImbalancedPut));
    }

    #[test]
    fn put_on_saturated_restores_marker_silently() {
        let (c, released, ev) = after_put(SATURATED);
        assert!(!released && c == SATURATED);
        assert!(ev.iter().all(|e| !matches!(e, Event::Warn { .. })));
    }

    #[test]
    fn put_just_inside_saturation_zone_recenters() {
        let (c, released, _) = after_put(MAXREF + 2);
        assert!(!released && c == SATURATED);
    }

    #[test]
    fn get_up_to_maxref_stays_on_the_fast_path() {
        let (c, ok, ev) = after_get(MAXREF - 1);
        assert!(ok && c == MAXREF && !warned(&ev, Warning::Saturated));
    }

    #[test]
    fn put_on_noref_is_imbalanced() {
        // Nobody holds a reference at NOREF, so one more put is one too many.
        let (c, released, ev) = after_put(NOREF);
        assert!(!released && c == DEAD && warned(&ev, Warning::ImbalancedPut));
    }

    #[test]
    fn put_at_the_dead_zone_boundary_lands_in_saturation() {
        // RELEASED - 1 is the top of the saturation zone: the slow path restores SATURATED,
        // silently, exactly as the kernel's boundary arithmetic does.
        let (c, released, ev) = after_put(RELEASED);
        assert!(!released && c == SATURATED && !warned(&ev, Warning::ImbalancedPut));
    }

    #[test]
    fn put_from_lowest_saturated_value_falls_back_to_valid() {
        // 0x80000000 - 1 is MAXREF again: the fast path sees no sign bit, as in the kernel.
        let (c, released, _) = after_put(MAXREF + 1);
        assert!(!released && c == MAXREF);
    }
}
