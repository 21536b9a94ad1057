//! The stream's threads (encoder, HTTP, Icecast) yield to the audio tick: each lowers itself to the
//! normal scheduling class at nice 10 when it starts. A server run at real-time priority (`chrt`) keeps
//! only its jam thread there, and on a normal one the tick's thread wins the core from any number of
//! listeners.

/// Lowers the calling thread below the jam thread. Failing to is harmless (it stays as it was).
pub(crate) fn below_the_jam() {
    #[cfg(target_os = "linux")]
    {
        let normal = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain system calls on the calling thread (pid 0) with a valid, initialised parameter.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal);
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        }
    }
}
