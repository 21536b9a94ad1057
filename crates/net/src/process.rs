//! CPU time and resident memory of a process, read from Linux `/proc` (for the load generator's
//! report and the benchmark). CPU is user + system time of all threads.

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
        Ok(ProcessSample { cpu: parse_cpu(&stat)?, rss_kib: parse_rss(&status) })
    }
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
    fn reads_itself() {
        let sample = ProcessSample::of_self().unwrap();
        assert!(sample.rss_kib > 0);
    }
}
