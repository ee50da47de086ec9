//! Lowest CPU and I/O priority for the engine, and killing its process group.
//!
//! The only unsafe code in the crate: three raw syscalls in the forked child before `exec`,
//! `killpg`, `flock`/`access` for the host-wide slice slots, and the CPU affinity that
//! bounds PrusaSlicer's threads. Done in the child (not after spawn from the parent) so every engine thread
//! starts idle: Linux scheduling attributes are per thread and inherited at thread creation.
//!
//! Measured: CuraEngine 4.13 calls `setpriority(PRIO_PROCESS, 0, 10)` itself at start-up, so a
//! plain `nice -n 19` ends up at nice 10. The `SCHED_IDLE` policy survives that call (it only
//! changes the nice value, which `SCHED_IDLE` ignores) and is weaker than any nice level: the
//! engine gets CPU time only when nothing else wants it.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// `IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT` (linux/ioprio.h): disk time only when idle.
const IOPRIO_IDLE: libc::c_int = 3 << 13;
/// `IOPRIO_WHO_PROCESS` (linux/ioprio.h).
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// Make `cmd` start in its own process group (so the whole tree can be killed at once) and,
/// if `idle`, with the `SCHED_IDLE` CPU policy, nice 19 and the idle I/O class.
pub(crate) fn isolate(cmd: &mut Command, idle: bool) {
    cmd.process_group(0);
    if !idle {
        return;
    }
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe operations are allowed. It makes three raw syscalls
    // (sched_setscheduler, setpriority, ioprio_set) with a stack-local parameter, allocates
    // nothing, takes no locks and touches no shared state. Failures are ignored on purpose: a
    // kernel without SCHED_IDLE or ioprio must still be able to slice.
    unsafe {
        cmd.pre_exec(|| {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_IDLE);
            Ok(())
        });
    }
}

/// Send SIGKILL to the process group `pgid` (the engine and anything it started).
pub(crate) fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return; // never signal "every process" or init's group
    }
    // SAFETY: killpg only sends a signal; `pgid` is the group the supervisor created for the
    // engine (process_group(0) makes it equal to the child's pid) and is > 1.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Try to take an exclusive `flock` on `file` without blocking; `Ok(false)` when another open
/// file (in this or another process) holds it. Released when `file` is closed.
pub(crate) fn try_lock_exclusive(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `file` owns a valid open descriptor for the duration of the call; flock only
    // changes the lock state of that open file description.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Whether any process of group `pgid` is still alive.
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: signal 0 performs only the existence/permission check, delivering nothing.
    unsafe { libc::killpg(pgid, 0) == 0 }
}

/// Whether this process may create files in `dir` (`access(W_OK|X_OK)`, which honours the
/// real uid as a lock directory shared between users needs).
pub(crate) fn can_write(dir: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call; access only
    // checks permissions.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Let `cmd` run on at most `n` of the CPUs this process may use (the first ones): engines
/// whose thread pools size themselves from the affinity mask (PrusaSlicer's oneTBB) then use
/// `n` threads.
pub(crate) fn limit_cpus(cmd: &mut Command, n: usize) {
    // SAFETY: sched_getaffinity writes into the zeroed, correctly sized set we own.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is the empty set.
    let mut wanted: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let mut taken = 0;
    for cpu in 0..libc::CPU_SETSIZE as usize {
        if taken == n {
            break;
        }
        // SAFETY: `cpu` < CPU_SETSIZE, inside both sets.
        if unsafe { libc::CPU_ISSET(cpu, &allowed) } {
            unsafe { libc::CPU_SET(cpu, &mut wanted) };
            taken += 1;
        }
    }
    // SAFETY: runs in the child between fork and exec; sched_setaffinity is a plain syscall
    // on a set copied into the closure (no allocation, no locks). Failure leaves the
    // inherited mask: the slice still runs.
    unsafe {
        cmd.pre_exec(move || {
            libc::sched_setaffinity(0, size, &wanted);
            Ok(())
        });
    }
}
