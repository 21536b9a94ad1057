//! Child processes that are stopped by PID only (SIGTERM, up to 5 s, then SIGKILL), state dirs,
//! and reading which UDP ports a process has bound from `/proc`.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How long a process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A process-wide counter for unique names (state dirs, JACK server and client names).
pub fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` from one long-lived helper thread. The child gets PR_SET_PDEATHSIG
/// `death_signal`, which fires when the *thread* that forked it ends; forking from a thread that
/// lives as long as the test process means it is told to quit if the test binary dies without
/// running its destructors (SIGKILL, abort), and never earlier.
fn spawn_from_helper(mut command: Command, death_signal: libc::c_int) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("jamulus-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the process spawner thread");
        tx
    });
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe functions.
    unsafe {
        let parent = libc::getpid();
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != parent {
                libc::_exit(1); // the test process is already gone
            }
            Ok(())
        });
    }
    // Own process group: a Ctrl-C in the terminal reaches the test binary only, and the harness
    // stops the peers in order (clients before servers before jackd).
    command.process_group(0);
    let (tx, rx) = mpsc::channel();
    spawner.send((command, tx)).map_err(|_| io::Error::other("spawner thread is gone"))?;
    rx.recv().map_err(|_| io::Error::other("spawner thread is gone"))?
}

/// A child process we started. It is only ever signalled by its PID, and only while it is still
/// our unreaped child whose `/proc/PID/cmdline` contains `expect`.
pub struct Proc {
    label: String,
    expect: String,
    pid: u32,
    child: Option<Child>,
    exit: Option<ExitStatus>,
    log: PathBuf,
}

impl Proc {
    /// Starts `program args…` with stdin from /dev/null and stdout+stderr appended to `log`. If the
    /// test binary dies without unwinding, the process gets SIGTERM.
    pub fn spawn(label: &str, program: &str, args: &[String], envs: &[(&str, &str)], log: &Path) -> Proc {
        Proc::spawn_with_death_signal(label, program, args, envs, log, libc::SIGTERM)
    }

    /// [`Proc::spawn`] with another signal for when the test binary dies (SIGKILL for jack_metro,
    /// which hangs in its SIGTERM handler when jackd quits at the same time).
    pub fn spawn_with_death_signal(
        label: &str,
        program: &str,
        args: &[String],
        envs: &[(&str, &str)],
        log: &Path,
        death_signal: libc::c_int,
    ) -> Proc {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("create log {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log file handle");
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = spawn_from_helper(command, death_signal)
            .unwrap_or_else(|e| panic!("start {label} ({program} {args:?}): {e}"));
        let expect = Path::new(program).file_name().map_or(program.to_string(), |n| n.to_string_lossy().into_owned());
        Proc { label: label.into(), expect, pid: child.id(), child: Some(child), exit: None, log: log.to_path_buf() }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// True while the process has not exited (reaps it if it has).
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else { return false };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.exit = Some(status);
                self.child = None;
                false
            }
            Err(_) => false,
        }
    }

    /// The exit status once the process has been reaped.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit
    }

    /// Sends `signal` if the process is still our running child running the expected binary.
    pub fn signal(&mut self, signal: libc::c_int) -> bool {
        if !self.is_running() || !cmdline_matches(self.pid, &self.expect) {
            return false;
        }
        // SAFETY: plain kill(2) on a PID we spawned and have not reaped yet (so it cannot be reused).
        unsafe { libc::kill(self.pid as libc::pid_t, signal) == 0 }
    }

    /// SIGTERM (plus SIGCONT, in case it is stopped), up to 5 s for it to exit, then SIGKILL.
    /// Returns the exit status; idempotent.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.child.is_none() {
            return self.exit;
        }
        if self.signal(libc::SIGTERM) {
            self.signal(libc::SIGCONT);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.is_running() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut child) = self.child.take() {
            eprintln!("harness: {} (PID {}) ignored SIGTERM for 5 s, sending SIGKILL", self.label, self.pid);
            let _ = child.kill();
            self.exit = child.wait().ok();
        }
        self.exit
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `/proc/PID/cmdline` names the binary we started (its first or second word, the latter
/// for interpreters).
fn cmdline_matches(pid: u32, expect: &str) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    raw.split(|&b| b == 0).take(2).any(|word| {
        let word = String::from_utf8_lossy(word);
        word == expect || Path::new(word.as_ref()).file_name().is_some_and(|n| n == expect)
    })
}

/// A private temporary directory, removed (with its contents) on drop.
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(prefix: &str) -> StateDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{}-{nanos}", std::process::id(), unique()));
        fs::DirBuilder::new().mode(0o700).create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        StateDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Writes a fresh random JSON-RPC secret (48 hex characters) to `path`, mode 0600. Returns it.
pub fn write_secret(path: &Path) -> String {
    let mut bytes = [0u8; 24];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    writeln!(file, "{secret}").expect("write secret file");
    secret
}

/// The last `lines` lines of a log file, under a header naming it.
pub fn tail_file(title: &str, path: &Path, lines: usize) -> String {
    let text = fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!("==== {title} ({}) ====\n{}\n", path.display(), all[start..].join("\n"))
}

/// Local UDP ports of the sockets that process `pid` holds (IPv4 and IPv6), in /proc order.
pub fn udp_ports_of(pid: u32) -> Vec<u16> {
    let mut inodes = HashSet::new();
    if let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in entries.flatten() {
            if let Ok(target) = fs::read_link(entry.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || !inodes.contains(fields[9]) {
                continue;
            }
            if let Some(port) = fields[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) {
                ports.push(port);
            }
        }
    }
    ports
}

/// Standard base64 (RFC 4648, with padding), as Jamulus expects in `*_base64` ini entries.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
