//! The seam between the algorithms and the two ways of running them.
//!
//! Every algorithm in this crate (rcuref, the slab, RCU, the VMA operations, the reverse-map
//! reader) is an `async fn` generic over [`Env`]. Each shared-memory access is written as
//! `env.step().await` followed by the access itself on the real atomics of [`World`]. The
//! deterministic engine (`engine.rs`) makes `step()` suspend, so that its scheduler decides which
//! simulated thread performs the next access; the real-thread runner (`stress.rs`) makes `step()`
//! complete at once, so the same code runs at full speed on OS threads. Nothing else differs.

use std::future::Future;

use crate::event::Event;
use crate::mutant::Mutant;
use crate::world::{Config, World};

pub trait Env {
    /// A scheduling point: called immediately before every access to shared memory.
    fn step(&self) -> impl Future<Output = ()>;
    /// The thread cannot make progress until `ready` holds (another thread released a lock). Like
    /// `step`, completing it grants the thread its next shared-memory access.
    fn wait(&self, ready: fn(&World) -> bool) -> impl Future<Output = ()>;
    /// Record what just happened. The deterministic engine keeps a total order of events.
    fn emit(&self, event: Event);
    fn world(&self) -> &World;
    fn tid(&self) -> i8;
    fn config(&self) -> &Config {
        &self.world().config
    }
    fn mutant(&self) -> Mutant {
        self.config().mutant
    }
}
