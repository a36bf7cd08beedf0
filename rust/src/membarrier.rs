//! `membarrier(2)`: a memory barrier on every running thread of this process, issued by one of
//! them. It is what lets the real-thread runner's RCU readers be as cheap as the kernel's (a
//! per-task counter, no atomic read-modify-write, no barrier on the read side): the cost moves to
//! the grace period, which forces the barrier the readers skipped onto them (liburcu's "memb"
//! flavour).
//!
//! `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (Linux 4.14) interrupts only the CPUs running this process's
//! threads and returns once each has executed a full barrier; a process must register for it once.
//! Where the kernel refuses (too old, a seccomp filter, a sandbox that does not implement it),
//! `Barrier::Fences` says so once on stderr, and the readers then pay for a full fence each.

use std::sync::OnceLock;

/// How a grace period gets the barrier that the readers' section entries leave out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Barrier {
    /// Readers order their entry with a compiler fence; grace periods call membarrier.
    Membarrier,
    /// membarrier was refused: readers and grace periods both issue a full fence.
    Fences,
}

/// Register this process for private expedited membarriers, once. The first caller decides for
/// the process's lifetime, and a refusal is reported then.
pub fn barrier() -> Barrier {
    static CHOSEN: OnceLock<Barrier> = OnceLock::new();
    *CHOSEN.get_or_init(|| match register() {
        Ok(()) => Barrier::Membarrier,
        Err(why) => {
            eprintln!(
                "pyfuzz: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is not available ({why}); the real-thread \
                 runner's RCU readers fall back to a full fence per section entry (correct, slower)"
            );
            Barrier::Fences
        }
    })
}

#[cfg(target_os = "linux")]
fn membarrier(cmd: libc::c_int) -> Result<libc::c_long, std::io::Error> {
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_uint, 0 as libc::c_int) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

#[cfg(target_os = "linux")]
fn register() -> Result<(), String> {
    let supported = membarrier(libc::MEMBARRIER_CMD_QUERY).map_err(|e| format!("query: {e}"))?;
    if supported & libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED as libc::c_long == 0 {
        return Err(format!("the kernel offers commands {supported:#x}, without PRIVATE_EXPEDITED"));
    }
    membarrier(libc::MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED).map_err(|e| format!("register: {e}"))?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn register() -> Result<(), String> {
    Err("not Linux".into())
}

/// A full barrier on every thread of this process that is running now; threads not running
/// pass one on their next context switch. Only after `barrier()` returned `Membarrier`.
pub fn heavy() {
    #[cfg(target_os = "linux")]
    if let Err(e) = membarrier(libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
        // Registered and supported, so this cannot fail short of a kernel bug; going on without
        // the barrier could end a grace period early, which the stress checker would blame on
        // the protocol.
        panic!("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registration: {e}");
    }
    #[cfg(not(target_os = "linux"))]
    unreachable!("membarrier is only chosen on Linux");
}
