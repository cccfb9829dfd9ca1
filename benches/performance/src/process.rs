//! The driver's child processes (`tongban serve`, Splink's Python): none may outlive
//! the driver. An interrupted run drops them (killed and reaped by their guards); a
//! driver killed outright (SIGKILL, a crash) runs no destructor, so the kernel is asked
//! to kill them when it goes (`PR_SET_PDEATHSIG`).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

/// Makes the child started by `command` get SIGKILL when the driver dies.
///
/// Linux sends it when the *thread* that started the child ends, not only the process:
/// start children from the main thread (which polls the whole run) or from a thread
/// that waits for them, never from a pooled thread that may end before the child does.
pub fn die_with_driver(command: &mut Command) {
    let driver = libc::pid_t::try_from(std::process::id()).unwrap_or(libc::pid_t::MAX);
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe work is allowed: it makes two system calls (prctl, getppid)
    // and builds an io::Error from an errno, without allocating or taking a lock.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The driver died between fork and prctl: no signal will come, so give up.
            if libc::getppid() != driver {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// A child the run waits for; killed and reaped if the guard is dropped first (an
/// error, Ctrl-C or SIGTERM dropping the run).
pub struct Running(Option<Child>);

impl Running {
    pub fn new(child: Child) -> Running {
        Running(Some(child))
    }

    /// Waits for the child to exit without blocking the runtime (polled: the driver
    /// has no tokio `process` feature, and a blocking wait could not be cancelled).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            let Some(child) = &mut self.0 else {
                return Err(std::io::Error::other("the child was already waited for"));
            };
            if let Some(status) = child.try_wait()? {
                self.0 = None;
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
