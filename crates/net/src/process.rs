//! CPU time and resident memory of a process, read from Linux `/proc` (for the load generator's
//! report and the benchmark). CPU is the scheduler's run time of all live threads (`se.sum_exec_runtime`
//! in `/proc/PID/task/*/sched`, microsecond precision), or utime + stime in 10 ms ticks where that
//! file is missing.

use std::io;
use std::time::Duration;

/// `/proc/PID/stat` counts CPU in clock ticks of USER_HZ, which Linux fixes at 100 on every
/// architecture it exports to user space.
const USER_HZ: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessSample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Resident memory now, in KiB.
    pub rss_kib: u64,
}

impl ProcessSample {
    /// Reads process `pid`.
    pub fn of(pid: u32) -> io::Result<Self> {
        Self::read(&pid.to_string())
    }

    /// Reads this process.
    pub fn of_self() -> io::Result<Self> {
        Self::read("self")
    }

    fn read(pid: &str) -> io::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read /proc/{pid}/stat: {e}")))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read /proc/{pid}/status: {e}")))?;
        let cpu = threads_run_time(pid).map_or_else(|| parse_cpu(&stat), Ok)?;
        Ok(ProcessSample { cpu, rss_kib: parse_rss(&status) })
    }
}

/// The sum of every thread's `se.sum_exec_runtime` (milliseconds with six decimals).
fn threads_run_time(pid: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let sched = std::fs::read_to_string(task.ok()?.path().join("sched")).ok()?;
        total += parse_sched(&sched)?;
    }
    Some(Duration::from_secs_f64(total / 1e3))
}

fn parse_sched(sched: &str) -> Option<f64> {
    let line = sched.lines().find(|l| l.trim_start().starts_with("se.sum_exec_runtime"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

/// utime + stime (fields 14 and 15) from a `/proc/PID/stat` line; the command name (field 2) may
/// contain spaces and parentheses, so fields are counted after its closing parenthesis.
fn parse_cpu(stat: &str) -> io::Result<Duration> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/PID/stat format");
    let rest = &stat[stat.rfind(')').ok_or_else(bad)? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || fields.next().and_then(|f| f.parse::<u64>().ok()).ok_or_else(bad);
    let ticks = next()? + next()?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

fn parse_rss(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let stat = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 1000 50";
        assert_eq!(parse_cpu(stat).unwrap(), Duration::from_millis(3250));
        assert_eq!(parse_rss("Name:\tx\nVmRSS:\t  5120 kB\n"), 5120);
    }

    #[test]
    fn scheduler_run_time() {
        let sched = "x (1, #threads: 1)\n---\nse.exec_start  :  1.0\nse.sum_exec_runtime   :   1234.567890\n";
        assert_eq!(parse_sched(sched), Some(1234.56789));
    }

    #[test]
    fn reads_itself() {
        let sample = ProcessSample::of_self().unwrap();
        assert!(sample.rss_kib > 0);
    }
}
