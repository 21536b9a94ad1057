//! The real Jami daemon (Debian `jami-daemon`) registers a name on `tutti registry`, is refused the
//! same name for a second account, and resolves the name and the address through it. Everything runs
//! in a network namespace of this test's own with only loopback, so the daemon cannot reach anything
//! else even where it tries to. See docs/registry-jami.md for what the daemon sends and expects.

mod tutti_process;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tutti_process::Tutti;
use tutti_registry::registration::{verify_answer, NameAnswer};
use tutti_registry::test_http::get;
use tutti_registry::Name;

const JAMID: &str = "/usr/libexec/jamid";
const DBUS_RUN_SESSION: &str = "/usr/bin/dbus-run-session";
/// Debian's Python, which has python3-dbus and python3-gi (a `python3` earlier on PATH may not).
const PYTHON: &str = "/usr/bin/python3";
const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/registry_jami/driver.py");
const PACKAGES: &str = "apt-get install jami-daemon dbus-daemon python3-dbus python3-gi iproute2";
/// The whole scenario, daemon start to the last lookup (about 3 to 10 s here, mostly the accounts'
/// RSA-4096 keys).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// What the daemon's D-Bus signals report (cx.ring.Ring.ConfigurationManager).
const REGISTRATION_SUCCESS: i64 = 0;
const REGISTRATION_ALREADY_TAKEN: i64 = 3;
const LOOKUP_SUCCESS: i64 = 0;
const LOOKUP_NOT_FOUND: i64 = 2;

#[test]
fn the_real_jami_daemon_registers_and_resolves_through_tutti_registry() {
    if let Some(reason) = missing_tools() {
        eprintln!("registry_jami: SKIPPED, {reason}");
        return;
    }
    // Network namespaces belong to threads: only this thread (and what it starts) enters the new one,
    // and the namespace goes away with the last of them.
    let outcome = std::thread::spawn(|| {
        // SAFETY: unshare(2) takes a flag word and changes only this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let error = std::io::Error::last_os_error();
            return Err(format!("cannot make a network namespace (unshare: {error}); run as root"));
        }
        scenario_in_namespace();
        Ok(())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    if let Err(reason) = outcome {
        eprintln!("registry_jami: SKIPPED, {reason}");
    }
}

/// The first thing this machine lacks for the test, with what to install.
fn missing_tools() -> Option<String> {
    for path in [JAMID, DBUS_RUN_SESSION, PYTHON] {
        if !Path::new(path).exists() {
            return Some(format!("{path} is missing ({PACKAGES})"));
        }
    }
    if ip_command().is_none() {
        return Some(format!("the `ip` command is missing ({PACKAGES})"));
    }
    let modules = Command::new(PYTHON)
        .args(["-c", "import dbus, dbus.mainloop.glib; from gi.repository import GLib"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !modules.is_ok_and(|s| s.success()) {
        return Some(format!("{PYTHON} cannot import dbus and gi ({PACKAGES})"));
    }
    None
}

fn ip_command() -> Option<&'static str> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].into_iter().find(|p| Path::new(p).exists())
}

fn scenario_in_namespace() {
    let ip = ip_command().unwrap();
    let up = Command::new(ip).args(["link", "set", "lo", "up"]).status().expect("run ip");
    assert!(up.success(), "ip link set lo up failed in the new namespace");
    let links = Command::new(ip).args(["-o", "link"]).output().expect("run ip");
    let links = String::from_utf8_lossy(&links.stdout).into_owned();
    assert_eq!(links.lines().count(), 1, "the namespace must have only loopback:\n{links}");
    assert!(links.contains(": lo:"), "the namespace must have only loopback:\n{links}");

    let scratch = Scratch::new();
    let data_dir = scratch.path.join("registry");
    let home = scratch.path.join("jami");
    std::fs::create_dir_all(&home).unwrap();

    // All addresses of the namespace (only loopback exists), so the same registry is reachable under
    // several host names: the daemon keeps one answer cache per name server host.
    let registry = Tutti::start(&[
        "registry",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--log-requests",
    ]);
    let listening = registry
        .wait_for_http_addr("tutti registry: listening on http://", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("tutti registry did not start:\n{}", registry.log()));
    let port = listening.port();
    let name = random_name();

    let started = Instant::now();
    let mut run = DriverRun::start(&home, port, &name);
    let steps = run.steps(SCENARIO_TIMEOUT);
    let elapsed = started.elapsed();
    let diagnostics = run.diagnostics(&home);
    let context = || format!("{diagnostics}\n--- registry log:\n{}", registry.log());
    if let Some(error) = steps.iter().find(|s| s["step"] == "error") {
        panic!("the driver failed: {}\n{}", error["message"], context());
    }
    assert!(steps.last().is_some_and(|s| s["step"] == "done"), "the driver did not finish\n{}", context());
    run.finish();
    eprintln!("registry_jami: the daemon's part took {:.1} s", elapsed.as_secs_f64());

    let step = |kind: &str, alias: &str, nth: usize| -> &Value {
        steps
            .iter()
            .filter(|s| s["step"] == kind && s["alias"] == alias)
            .nth(nth)
            .unwrap_or_else(|| panic!("no {kind} step #{nth} for {alias:?}\n{}", context()))
    };
    let address_a = step("account", "A", 0)["address"].as_str().unwrap().to_owned();
    let address_b = step("account", "B", 0)["address"].as_str().unwrap().to_owned();
    for address in [&address_a, &address_b] {
        assert!(
            address.len() == 40 && address.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "a Jami ID is 40 lowercase hex digits: {address:?}"
        );
    }

    // A registers the name, and its daemon knows it both ways.
    let registered = step("register", "A", 0);
    assert_eq!(registered["status"], REGISTRATION_SUCCESS, "A's registration: {registered}\n{}", context());
    let found = step("lookup_name", "A", 0);
    assert_eq!((&found["status"], &found["address"]), (&Value::from(LOOKUP_SUCCESS), &Value::from(&*address_a)));
    let found = step("lookup_address", "A", 0);
    assert_eq!((&found["status"], &found["name"]), (&Value::from(LOOKUP_SUCCESS), &Value::from(&*name)));

    // B, through a host with an empty cache: the name is taken, and it resolves to A's address.
    let refused = step("register", "B", 0);
    assert_eq!(refused["status"], REGISTRATION_ALREADY_TAKEN, "B's registration: {refused}\n{}", context());
    let found = step("lookup_name", "B", 0);
    assert_eq!((&found["status"], &found["address"]), (&Value::from(LOOKUP_SUCCESS), &Value::from(&*address_a)));
    let unknown = step("lookup_name", "B", 1);
    assert_eq!(unknown["status"], LOOKUP_NOT_FOUND, "an unregistered name: {unknown}");
    // The address, without an account, through a third host.
    let found = step("lookup_address", "", 0);
    assert_eq!((&found["status"], &found["name"]), (&Value::from(LOOKUP_SUCCESS), &Value::from(&*name)));

    // Each of those answers came from the registry (its request log, read before this test's own
    // requests below add to it).
    let log = registry.log();
    for line in [
        "POST /name/{name} 200",
        "POST /name/{name} 403",
        "GET /name/{name} 200",
        "GET /name/{name} 404",
        "GET /addr/{addr} 200",
    ] {
        assert!(log.contains(line), "the registry did not see {line:?}:\n{log}");
    }

    // The registry's record: A's ID, with the key and the signature that prove it.
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let answer = get(local, &format!("/name/{name}")).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let record = answer.json();
    assert_eq!(record["addr"], format!("0x{address_a}"));
    let record: NameAnswer = serde_json::from_value(record).unwrap();
    assert!(record.publickey.is_some() && record.signature.is_some(), "{record:?}");
    let verified = verify_answer(&Name::parse(&name).unwrap(), &record).expect("the record verifies");
    assert_eq!(verified.to_string(), format!("0x{address_a}"));
    let answer = get(local, &format!("/addr/{address_a}")).unwrap();
    assert_eq!((answer.status, answer.json()["name"].clone()), (200, Value::from(&*name)));
    let answer = get(local, &format!("/addr/{address_b}")).unwrap();
    assert_eq!(answer.status, 404, "B has no name: {}", answer.body);
}

/// `jam-` and 8 random hex digits.
fn random_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    format!("jam-{:08x}", hasher.finish() as u32)
}

/// A temporary directory, removed at the end (also when the test fails).
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let path = std::env::temp_dir().join(format!("tutti-registry-jami-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `dbus-run-session -- python3 driver.py …`: a private session bus, the driver, and the jamid it
/// starts. Every one of them is stopped by PID when this is dropped, whatever happened.
struct DriverRun {
    session: Option<Child>,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
    /// PIDs the driver reported (jamid, the driver, dbus-daemon) with the program each must be.
    reported: Vec<(u32, &'static str)>,
}

impl DriverRun {
    fn start(home: &Path, port: u16, name: &str) -> DriverRun {
        let stderr = home.join("driver.stderr");
        let mut session = Command::new(DBUS_RUN_SESSION)
            .args(["--", PYTHON, DRIVER])
            .arg(format!("--nameserver-a=http://127.0.0.1:{port}"))
            .arg(format!("--nameserver-b=http://localhost:{port}"))
            .arg(format!("--nameserver-c=http://127.0.0.2:{port}"))
            .arg(format!("--name={name}"))
            .arg(format!("--home={}", home.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start dbus-run-session");
        let (send, lines) = mpsc::channel();
        let stdout = session.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        DriverRun { session: Some(session), lines, stderr, reported: Vec::new() }
    }

    /// The driver's JSON steps until `done` or `error`, or until `timeout`.
    fn steps(&mut self, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut steps = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let Ok(step) = serde_json::from_str::<Value>(&line) else { continue };
            let pid = |key: &str| step[key].as_u64().and_then(|p| u32::try_from(p).ok());
            match step["step"].as_str() {
                Some("driver") => {
                    self.reported.extend(pid("pid").map(|p| (p, "driver.py")));
                    self.reported.extend(pid("dbus_daemon_pid").map(|p| (p, "dbus-daemon")));
                }
                Some("jamid_started") => self.reported.extend(pid("pid").map(|p| (p, "jamid"))),
                _ => {}
            }
            let last = matches!(step["step"].as_str(), Some("done" | "error"));
            steps.push(step);
            if last {
                break;
            }
        }
        steps
    }

    /// After `done`: the session ends by itself (the driver stops jamid, dbus-run-session its bus),
    /// and nothing of it is left running.
    fn finish(&mut self) {
        let mut session = self.session.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while session.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "dbus-run-session did not end after the driver finished");
            std::thread::sleep(Duration::from_millis(50));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some((pid, program)) = self.reported.iter().find(|(pid, program)| is_running(*pid, program)) {
            assert!(Instant::now() < deadline, "{program} (PID {pid}) is still running after the session ended");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn diagnostics(&self, home: &Path) -> String {
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let jamid = std::fs::read_to_string(home.join("jamid.log")).unwrap_or_default();
        let tail: Vec<&str> = jamid.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("--- driver stderr:\n{stderr}\n--- jamid log (last 40 lines):\n{}", tail.join("\n"))
    }
}

impl Drop for DriverRun {
    fn drop(&mut self) {
        // Reported as driver, dbus-daemon, jamid: stopped the other way round, then the session.
        for (pid, program) in self.reported.iter().rev() {
            if is_running(*pid, program) {
                tutti_process::signal(*pid, libc::SIGKILL);
            }
        }
        if let Some(mut session) = self.session.take() {
            let _ = session.kill();
            let _ = session.wait();
        }
    }
}

/// Whether PID is alive (not a zombie) and still the program it was (not a reused PID).
fn is_running(pid: u32, program: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    state != Some('Z') && String::from_utf8_lossy(&cmdline).contains(program)
}
