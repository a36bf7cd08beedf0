//! pyfuzz's core: a faithful model of the kernel's rcuref and of the VMA lifetime protocol that
//! the `CONFIG_VMA_REF` patch builds on it, plus the engines that run it. Python (`pyfuzz/`)
//! owns programs' text form, the oracle, the fuzz loop and the reports.

pub mod engine;
pub mod env;
pub mod event;
pub mod explore;
pub mod feedback;
pub mod membarrier;
pub mod mutant;
pub mod program;
pub mod rcu;
pub mod rcuref;
pub mod sched;
pub mod slab;
pub mod stress;
pub mod vma;
pub mod world;

mod python;
