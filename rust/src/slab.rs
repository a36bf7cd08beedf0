//! The VMA slab cache: a fixed set of slots, a generation per allocation so that a reused slot is
//! told apart from the object that was there before, and the two freeing disciplines.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use crate::env::Env;
use crate::event::Event;
use crate::rcu::Callback;
use crate::world::{SlabMode, SLOTS};

struct Cache {
    /// LIFO like a SLUB per-cpu freelist: the object freed last is the next one handed out,
    /// which is also the most hostile choice for a reader holding a stale pointer.
    free: Vec<u8>,
    generation: [u32; SLOTS],
}

pub struct Slab {
    mode: SlabMode,
    cache: Mutex<Cache>,
    deferred: Mutex<Vec<Callback<u8>>>,
    /// How many frees wait for a grace period: the engine asks after every step, and most runs
    /// have none, so asking must not take the lock.
    pending: AtomicUsize,
}

impl Slab {
    pub fn new(mode: SlabMode) -> Slab {
        // At most one deferred free per slot is pending (a slot is reused only once reclaimed),
        // unless a mutant frees twice: then the queue grows.
        let queue = if mode == SlabMode::Deferred { SLOTS } else { 0 };
        Slab {
            mode,
            cache: Mutex::new(Cache { free: (0..SLOTS as u8).rev().collect(), generation: [0; SLOTS] }),
            deferred: Mutex::new(Vec::with_capacity(queue)),
            pending: AtomicUsize::new(0),
        }
    }

    /// A copy of the slab of a world no thread is running in (`World::copy`).
    pub fn copy(&self) -> Slab {
        let cache = self.cache.lock().unwrap();
        let deferred = self.deferred.lock().unwrap();
        let mut queue = Vec::with_capacity(deferred.capacity());
        queue.extend(deferred.iter().cloned());
        Slab {
            mode: self.mode,
            cache: Mutex::new(Cache { free: cache.free.clone(), generation: cache.generation }),
            deferred: Mutex::new(queue),
            pending: AtomicUsize::new(self.pending.load(Relaxed)),
        }
    }

    pub fn generation(&self, slot: u8) -> u32 {
        self.cache.lock().unwrap().generation[slot as usize]
    }

    /// `kmem_cache_alloc`: None when the cache is exhausted (the caller's -ENOMEM path).
    pub async fn alloc<E: Env>(&self, env: &E) -> Option<u8> {
        env.step().await;
        let (slot, gen) = {
            let mut c = self.cache.lock().unwrap();
            let slot = c.free.pop()?;
            c.generation[slot as usize] += 1;
            (slot, c.generation[slot as usize])
        };
        env.emit(Event::Alloc { t: env.tid(), slot, gen });
        Some(slot)
    }

    /// `kmem_cache_free`, or `call_rcu` of the free in deferred mode.
    pub async fn free<E: Env>(&self, env: &E, slot: u8) {
        env.step().await;
        let gen = self.generation(slot);
        env.emit(Event::Free { t: env.tid(), slot, gen });
        match self.mode {
            SlabMode::TypesafeByRcu => self.cache.lock().unwrap().free.push(slot),
            SlabMode::Deferred => {
                let cb = env.world().rcu.defer(slot, env.mutant() != crate::mutant::Mutant::GpIgnoresPreempt);
                // Counted under the lock, so a reclaim never takes a callback not yet counted.
                let mut queue = self.deferred.lock().unwrap();
                queue.push(cb);
                self.pending.fetch_add(1, Relaxed);
            }
        }
    }

    /// Run the RCU callbacks whose grace period has ended, appending their reclaim events to
    /// `out`.
    pub fn reclaim_ready(&self, rcu: &crate::rcu::Rcu, out: &mut Vec<Event>) {
        rcu.take_ready(&self.deferred, |slot| {
            self.pending.fetch_sub(1, Relaxed);
            let mut c = self.cache.lock().unwrap();
            c.free.push(slot);
            out.push(Event::Reclaim { slot, gen: c.generation[slot as usize] });
        });
    }

    pub fn has_deferred(&self) -> bool {
        self.pending.load(Relaxed) != 0
    }
}
