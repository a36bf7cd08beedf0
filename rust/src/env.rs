//! The seam between the algorithms and the two ways of running them.
//!
//! Every algorithm in this crate (rcuref, the slab, RCU, the VMA operations, the reverse-map
//! reader) is an `async fn` generic over [`Env`]. Each shared-memory access is written as
//! `env.step().await` followed by the access itself on the real atomics of [`World`]. The
//! deterministic engine (`engine.rs`) makes `step()` suspend, so that its scheduler decides which
//! simulated thread performs the next access; the real-thread runner (`stress.rs`) makes `step()`
//! complete at once, so the same code runs at full speed on OS threads. Nothing else differs.
//!
//! Complete at once is not free, though: each `async fn` is a state machine whose `poll` LLVM
//! keeps out of line, so a chain of them (`vma_put` -> `rcuref::put` -> `counter_add`) pays for
//! spilling its state and dispatching on it at every level even when nothing ever suspends. The
//! hot chain is therefore written once inside [`twice!`], which expands each function both as an
//! `async fn` (what the engine polls) and as a plain `fn` in a `now` submodule (what an [`Env`]
//! whose steps never suspend runs); the async expansion hands over to the plain one for such an
//! `Env`, so the real-thread runner and the engine's setup run the same source without the
//! polls.

use std::future::Future;

use crate::event::Event;
use crate::mutant::Mutant;
use crate::world::{Config, World};

pub trait Env {
    /// True when `step` and `wait` complete within their first poll and `step` does nothing:
    /// then the functions written in [`twice!`] run their plain expansion, in which steps vanish.
    const NEVER_SUSPENDS: bool = false;
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

/// One source, two expansions. Each function in the block, written with `aw!(call)` for a call
/// to another async function and `step!(env)` for a scheduling point, becomes
///
/// - an `async fn` generic over [`Env`] in which `aw!(call)` is `call.await` and `step!(env)` is
///   `env.step().await`: the code the deterministic engine suspends in, token for token what it
///   would be written by hand; for an `Env` that never suspends it calls its twin below instead;
/// - a plain `fn` of the same name in the submodule `now`, in which `aw!(call)` is `call` and
///   `step!(env)` is nothing (so it is only for an `Env` with `NEVER_SUSPENDS`).
///
/// A call in a body resolves in the module it is expanded in, so a plain expansion calls the
/// plain expansions of its neighbours. The block starts with a bracketed header:
///
/// - `use path as name;` for a module the bodies call into as `name` (imported by hand for the
///   async expansion): the plain expansion sees `path::now` under that name;
/// - `cold fn name(args) -> ret;` for a function written only as `async fn` (a path too cold to
///   expand twice) that a plain expansion calls: it drives it with `block_on`, in one poll, since
///   nothing suspends.
///
/// A call left unexpanded by mistake is a future dropped unpolled, which `deny(unused_must_use)`
/// turns into a compile error.
macro_rules! twice {
    (
        [
            $(use $($module:ident)::+ as $alias:ident;)*
            $(cold fn $cold:ident ($($cold_arg:ident : $cold_ty:ty),* $(,)?) $(-> $cold_ret:ty)?;)*
        ]
        $(
            $(#[$meta:meta])*
            $vis:vis fn $name:ident ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
        )*
    ) => {
        $(
            $(#[$meta])*
            $vis async fn $name<E: $crate::env::Env>($($arg: $ty),*) $(-> $ret)? {
                if E::NEVER_SUSPENDS {
                    return now::$name($($arg),*);
                }
                #[allow(unused_imports)]
                use $crate::env::{await_suspending as aw, step_suspending as step};
                $body
            }
        )*

        /// The plain expansion of this module's functions written in `twice!`, for an `Env`
        /// whose steps never suspend.
        #[deny(unused_must_use)]
        pub mod now {
            #[allow(unused_imports)]
            use super::*;
            $(use $($module)::+::now as $alias;)*
            $(
                fn $cold<E: $crate::env::Env>($($cold_arg: $cold_ty),*) $(-> $cold_ret)? {
                    $crate::engine::block_on(super::$cold($($cold_arg),*))
                }
            )*
            $(
                $(#[$meta])*
                pub fn $name<E: $crate::env::Env>($($arg: $ty),*) $(-> $ret)? {
                    // Not a const assertion: the async expansion's hand-over is instantiated
                    // for every Env, dead or not.
                    debug_assert!(E::NEVER_SUSPENDS, "the plain expansion is for an Env that never suspends");
                    #[allow(unused_imports)]
                    use $crate::env::{await_immediate as aw, step_immediate as step};
                    $body
                }
            )*
        }
    };
}

macro_rules! await_suspending {
    ($call:expr) => {
        $call.await
    };
}

macro_rules! await_immediate {
    ($call:expr) => {
        $call
    };
}

macro_rules! step_suspending {
    ($env:expr) => {
        $env.step().await
    };
}

macro_rules! step_immediate {
    ($env:expr) => {
        ()
    };
}

pub(crate) use {await_immediate, await_suspending, step_immediate, step_suspending, twice};

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::task::Poll;

    use super::*;
    use crate::engine::{block_on, setup, DirectEnv};
    use crate::program::{Program, SetupVma};
    use crate::rcuref::{self, DEAD, MAXREF, NOREF, ONEREF, RELEASED, SATURATED};
    use crate::vma;

    /// The async expansion as the engine runs it: every step suspends once before it completes.
    struct Suspending<'a> {
        world: &'a World,
        log: &'a RefCell<Vec<Event>>,
        steps: Cell<u32>,
    }

    impl Env for Suspending<'_> {
        async fn step(&self) {
            self.steps.set(self.steps.get() + 1);
            let mut suspended = false;
            std::future::poll_fn(|_| if std::mem::replace(&mut suspended, true) { Poll::Ready(()) } else { Poll::Pending }).await
        }
        async fn wait(&self, _ready: fn(&World) -> bool) {}
        fn emit(&self, event: Event) {
            self.log.borrow_mut().push(event);
        }
        fn world(&self) -> &World {
            self.world
        }
        fn tid(&self) -> i8 {
            0
        }
    }

    /// The get/put entry points, each as it would be called from code written for either runner.
    #[derive(Clone, Copy, Debug)]
    enum Call {
        Get,
        Put { preempt: bool },
        VmaGet,
        VmaPut,
    }

    /// One call on a mapped VMA in slot 0 whose counter starts at `counter`, by one expansion:
    /// (history after the setup, counter after, result, steps taken by the async expansion).
    fn one_call(config: Config, counter: u32, call: Call, suspend: bool) -> (Vec<Event>, u32, bool, u32) {
        let world = World::new(config, 1);
        let log = RefCell::new(Vec::new());
        let program = Program { setup: vec![SetupVma { start: 0, end: 2, counter: Some(counter) }], threads: vec![vec![]], schedule: vec![] };
        setup(&world, &program, &log);
        log.borrow_mut().clear();
        let (result, steps) = if suspend {
            let env = Suspending { world: &world, log: &log, steps: Cell::new(0) };
            let result = block_on(async {
                match call {
                    Call::Get => rcuref::get(&env, 0).await,
                    Call::Put { preempt } => rcuref::put(&env, 0, preempt).await,
                    Call::VmaGet => vma::vma_get(&env, 0).await,
                    Call::VmaPut => vma::vma_put(&env, 0).await,
                }
            });
            (result, env.steps.get())
        } else {
            let env = DirectEnv { tid: 0, world: &world, log: &log };
            let result = match call {
                Call::Get => rcuref::now::get(&env, 0),
                Call::Put { preempt } => rcuref::now::put(&env, 0, preempt),
                Call::VmaGet => vma::now::vma_get(&env, 0),
                Call::VmaPut => vma::now::vma_put(&env, 0),
            };
            (result, 0)
        };
        (log.into_inner(), world.counter(0).load(std::sync::atomic::Ordering::Relaxed), result, steps)
    }

    /// The plain expansion does what the async one does, event for event, in every zone of the
    /// counter under every configuration and mutant (the slow paths included: this is where the
    /// mutants' switches are).
    #[test]
    fn both_expansions_make_the_same_history() {
        let counters = [ONEREF, 4, MAXREF - 1, MAXREF, MAXREF + 1, MAXREF + 2, SATURATED, RELEASED - 1, RELEASED, DEAD, DEAD + 1, NOREF - 1, NOREF];
        let calls = [Call::Get, Call::Put { preempt: true }, Call::Put { preempt: false }, Call::VmaGet, Call::VmaPut];
        let mut suspended = 0;
        for config in Config::variants() {
            for counter in counters {
                for call in calls {
                    let (events, after, result, steps) = one_call(config, counter, call, true);
                    let plain = one_call(config, counter, call, false);
                    assert_eq!((&events, after, result), (&plain.0, plain.1, plain.2), "{call:?} from {counter:#x} under {config:?}");
                    suspended += steps;
                }
            }
        }
        assert!(suspended > 0, "the async expansion never suspended: the comparison would be vacuous");
    }
}
