//! tutti's side of the integration tests: starts the `tutti` binary under test as a child process
//! and stops it by PID (SIGTERM, then SIGKILL after 5 s, also when the test panics), and runs
//! tutti's own client as a silent listener that records the mix it hears.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Tutti {
    child: Option<Child>,
    log: PathBuf,
}

impl Tutti {
    /// `tutti ARGS…`, with stdout/stderr captured to a log file.
    pub fn start(args: &[&str]) -> Tutti {
        Tutti::spawn(Command::new(env!("CARGO_BIN_EXE_tutti")), args)
    }

    /// `tutti ARGS…` that may not write files larger than `bytes` (RLIMIT_FSIZE, set by
    /// util-linux `prlimit`, which then becomes tutti: the PID is tutti's). Its log counts too.
    pub fn start_with_file_size_limit(bytes: u64, args: &[&str]) -> Tutti {
        assert!(
            std::path::Path::new("/usr/bin/prlimit").exists(),
            "/usr/bin/prlimit (util-linux) is needed to limit the file size: apt-get install util-linux"
        );
        let mut command = Command::new("/usr/bin/prlimit");
        command.arg(format!("--fsize={bytes}")).arg(env!("CARGO_BIN_EXE_tutti"));
        Tutti::spawn(command, args)
    }

    /// `tutti ARGS…` started with file-creation mask `mask` (e.g. 0: every mode it asks for is kept, so
    /// the modes of what it writes are its own choice, not the test runner's umask).
    pub fn start_with_umask(mask: libc::mode_t, args: &[&str]) -> Tutti {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
        // SAFETY: umask(2) is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
        Tutti::spawn(command, args)
    }

    fn spawn(mut command: Command, args: &[&str]) -> Tutti {
        let log = std::env::temp_dir().join(format!("tutti-test-{}-{}.log", std::process::id(), unique()));
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start tutti");
        Tutti { child: Some(child), log }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits for a line `PREFIX ADDR/` in the log (as `tutti registry: listening on http://` prints)
    /// and parses ADDR.
    pub fn wait_for_http_addr(&self, prefix: &str, timeout: Duration) -> Option<SocketAddr> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let found = self.log().lines().find_map(|line| {
                line.strip_prefix(prefix).and_then(|rest| rest.trim().trim_end_matches('/').parse().ok())
            });
            if found.is_some() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit code, or None if it is
    /// still running (or died from a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return status.code();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGTERM, then up to 5 s for a clean exit (SIGKILL after that). Returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Tutti {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The PID of the traced `tutti` under the `strace` process `tracer`: its child whose command line
/// is `strace`'s command (strace also forks short-lived children of its own to probe the kernel's
/// ptrace features, so the first child is not always tutti).
pub fn traced_child(tracer: u32, command: &[&str]) -> u32 {
    let wanted: Vec<u8> = command.iter().flat_map(|arg| arg.bytes().chain([0])).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let children = std::fs::read_to_string(format!("/proc/{tracer}/task/{tracer}/children")).unwrap_or_default();
        for pid in children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
            if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted) {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("strace did not start {command:?}");
}

/// `strace` and the `tutti` it traces; both are killed if the test ends early (a failed assertion
/// must not leave them running and holding the test runner's output open).
pub struct Traced {
    pub tracer: Child,
    pub tutti: u32,
}

impl Drop for Traced {
    fn drop(&mut self) {
        if self.tracer.try_wait().ok().flatten().is_none() {
            signal(self.tutti, libc::SIGKILL);
            let _ = self.tracer.kill();
            let _ = self.tracer.wait();
        }
    }
}

/// `command` (tutti's path first) under `strace -f -qq -s 64 -e trace=SYSCALLS -o TRACE`, in `dir`, with
/// the most verbose diagnostics on (`RUST_LOG=trace`: even they must not leak) going to `stderr`. `-s 64`
/// prints sendmmsg batches (up to 64 datagrams) in full, not as "[...]". Waits until tutti runs.
pub fn strace(syscalls: &str, trace: &Path, dir: &Path, stderr: &Path, command: &[&str]) -> Traced {
    assert!(
        Command::new("strace").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "strace is needed: run ./scripts/test.sh, which installs it"
    );
    let tracer = Command::new("strace")
        .args(["-f", "-qq", "-s", "64", "-e", &format!("trace={syscalls}"), "-o"])
        .arg(trace)
        .args(command)
        .env("RUST_LOG", "trace")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).expect("the stderr file"))
        .spawn()
        .expect("start strace");
    let tutti = traced_child(tracer.id(), command);
    Traced { tracer, tutti }
}

impl Traced {
    /// SIGTERM, then waits up to `limit` for a clean exit; panics (with the threads' states) otherwise.
    pub fn terminate(&mut self, limit: Duration) {
        signal(self.tutti, libc::SIGTERM);
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.tracer.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                panic!("tutti did not stop within {limit:?} of SIGTERM:\n{}", process_state(self.tutti));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "tutti exits cleanly on SIGTERM");
    }
}

/// Threads, states and kernel wait channels of a process, for a failure message.
pub fn process_state(pid: u32) -> String {
    let mut out = String::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let path = task.path();
            let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
            let state = read("status").lines().find(|l| l.starts_with("State")).unwrap_or("").to_string();
            out += &format!("{:?} {} {} {}\n", task.file_name(), read("comm").trim(), read("wchan"), state);
        }
    }
    out
}

/// The destination of every datagram in an strace of sendto/sendmsg/sendmmsg (IPv4), in order.
/// Panics if strace abbreviated a batch ("[...]"): a left-out datagram would go unchecked.
pub fn datagram_destinations(trace: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in trace.lines().filter(|l| l.contains("send") && !l.contains("= -1")) {
        assert!(!line.contains("[...]") && !line.contains(", ...]"), "strace left out datagrams: {line}");
        assert!(!line.contains("sin6_port"), "an IPv6 destination (this parser reads IPv4 only): {line}");
        for rest in line.split("sin_port=htons(").skip(1) {
            let port: u16 = rest.split(')').next().and_then(|p| p.parse().ok()).expect("a port");
            let ip = rest.split("inet_addr(\"").nth(1).and_then(|r| r.split('"').next()).expect("an address");
            out.push(SocketAddr::new(ip.parse().expect("an IPv4 address"), port));
        }
    }
    out
}

/// Every path an strace of open/openat/creat/rename shows opened for writing, created or renamed into
/// place (successful calls only; /dev and /proc left out), sorted, once each.
pub fn written_files(trace: &str) -> Vec<String> {
    let mut written: Vec<String> = trace
        .lines()
        .filter(|l| l.contains("O_WRONLY") || l.contains("O_RDWR") || l.contains("O_CREAT") || l.contains("rename"))
        .filter(|l| !l.contains("= -1"))
        .flat_map(|l| l.split('"').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>())
        .filter(|p| !p.starts_with("/dev/") && !p.starts_with("/proc/"))
        .collect();
    written.sort();
    written.dedup();
    written
}

/// Sends `signal` to process `pid` (a plain kill(2): no helper process to spawn, nothing to wait on).
pub fn signal(pid: u32, signal: i32) {
    let pid = libc::pid_t::try_from(pid).expect("a PID fits pid_t");
    assert!(pid > 0, "signal a real process, not a group");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A mono tutti client named `name` playing a sine of `hz` at a quarter of full scale.
pub fn tone_client(server: SocketAddr, name: &str, hz: f32) -> tutti_net::RunningClient {
    let profile = tutti_proto::message::Profile { name: name.into(), ..Default::default() };
    let config = tutti_jam::ClientConfig { profile, channels: 1, ..Default::default() };
    let mut tone = tutti_net::Tone::new(hz, 1);
    let source = Box::new(move |pcm: &mut [f32]| tone.fill(pcm));
    tutti_net::RunningClient::start(SocketAddr::from(([127, 0, 0, 1], 0)), server, config, source, Box::new(|_| {}))
        .expect("start tutti's client")
}

/// A silent tutti client named `name` with `channels` channels, recording its decoded mix (interleaved).
pub fn listening_client(
    server: SocketAddr,
    name: &str,
    channels: u8,
) -> (tutti_net::RunningClient, Arc<Mutex<Vec<f32>>>) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    let profile = tutti_proto::message::Profile { name: name.into(), ..Default::default() };
    let config = tutti_jam::ClientConfig { profile, channels, ..Default::default() };
    let client = tutti_net::RunningClient::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        server,
        config,
        Box::new(|pcm: &mut [f32]| pcm.fill(0.0)),
        Box::new(move |pcm: &[f32]| sink.lock().unwrap().extend_from_slice(pcm)),
    )
    .expect("start tutti's client");
    (client, heard)
}
