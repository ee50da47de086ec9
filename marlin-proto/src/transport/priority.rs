//! Raising the I/O thread's scheduling priority, so CPU load elsewhere (a slicer, a browser
//! refresh) cannot delay the serial stream.
#![allow(unsafe_code)]

/// What [`raise_io_thread_priority`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PriorityOutcome {
    /// Real-time round-robin scheduling (`SCHED_RR`) at this priority.
    RealTime(i32),
    /// A higher nice level (negative) for this thread.
    Nice(i32),
    /// Not permitted (no `CAP_SYS_NICE`, or not Linux): normal priority.
    Unchanged,
}

/// Raises the calling thread's priority as far as the OS allows: `SCHED_RR` first, then a
/// negative nice value, else nothing. Never fails; the outcome says what happened.
pub fn raise_io_thread_priority() -> PriorityOutcome {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_param` is plain data; zeroing then setting the priority gives a valid
        // value. `pthread_self()` is always a valid handle for the calling thread, and
        // `pthread_setschedparam` only reads the struct we pass.
        let rr = unsafe {
            let mut param: libc::sched_param = std::mem::zeroed();
            param.sched_priority = 10;
            libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_RR, &param)
        };
        if rr == 0 {
            return PriorityOutcome::RealTime(10);
        }
        // SAFETY: `gettid` has no preconditions; `setpriority` on our own thread id only
        // changes this thread's nice value.
        let nice = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -10)
        };
        if nice == 0 {
            return PriorityOutcome::Nice(-10);
        }
    }
    PriorityOutcome::Unchanged
}

/// CPU time (user + system) the calling thread has used, where the OS reports it.
pub fn thread_cpu_time() -> Option<std::time::Duration> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `rusage` is plain data; `getrusage` fills it for the calling thread.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            if libc::getrusage(libc::RUSAGE_THREAD, &mut usage) != 0 {
                return None;
            }
            usage
        };
        let tv = |t: libc::timeval| {
            std::time::Duration::from_secs(t.tv_sec as u64)
                + std::time::Duration::from_micros(t.tv_usec as u64)
        };
        Some(tv(usage.ru_utime) + tv(usage.ru_stime))
    }
    #[cfg(not(target_os = "linux"))]
    None
}
