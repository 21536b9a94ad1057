//! The TURN tests' side: coturn's tools (checked to be installed), free loopback ports, child processes
//! stopped by PID (SIGTERM, then SIGKILL) when dropped, and coturn's `turnserver` started on loopback with
//! a REST secret (`use-auth-secret`), as `tutti turn` is.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOOLS: [&str; 3] = ["/usr/bin/turnserver", "/usr/bin/turnutils_uclient", "/usr/bin/turnutils_peer"];

pub fn require_coturn() {
    let missing: Vec<&str> = TOOLS.into_iter().filter(|p| !Path::new(p).exists()).collect();
    assert!(missing.is_empty(), "coturn is needed: run ./scripts/test.sh, which installs it (missing: {missing:?})");
}

/// A port free on 127.0.0.1 for both UDP and TCP a moment ago.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP on 127.0.0.1");
        let port = udp.local_addr().expect("local address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A child process that is stopped by PID (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    pub fn start(program: &str, args: &[String]) -> Proc {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("tutti-turn-test-{}-{n}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("create a log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Proc { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// coturn on 127.0.0.1:`port` (relays on 127.0.0.1, ports `relay_ports`) with the REST secret `secret`.
pub fn start_coturn(port: u16, relay_ports: (u16, u16), loopback: bool, secret: &str, realm: &str) -> Proc {
    let mut argv = coturn_args("127.0.0.1", port, relay_ports, secret, realm);
    if loopback {
        argv.push("--allow-loopback-peers".into());
    }
    start_coturn_by(&[], &argv)
}

/// coturn's flags for listening and relaying on `ip`, with the REST secret, as the tests run it.
pub fn coturn_args(ip: &str, port: u16, relay_ports: (u16, u16), secret: &str, realm: &str) -> Vec<String> {
    let pidfile = std::env::temp_dir().join(format!("tutti-turn-test-coturn-{}-{port}.pid", std::process::id()));
    let mut argv = args(&["-n", "--listening-ip", ip, "--relay-ip", ip, "--use-auth-secret"]);
    argv.extend(args(&["--static-auth-secret", secret, "--realm", realm, "--no-cli", "--no-tls", "--no-dtls"]));
    argv.extend(args(&["--log-file", "stdout", "--no-stun-backward-compatibility"]));
    argv.extend(["--listening-port".into(), port.to_string(), "--pidfile".into(), pidfile.display().to_string()]);
    argv.extend(["--min-port".into(), relay_ports.0.to_string(), "--max-port".into(), relay_ports.1.to_string()]);
    argv
}

/// `turnserver ARGV…`, after `wrapper` (e.g. `ip netns exec NS`) if any, once it says it serves.
pub fn start_coturn_by(wrapper: &[&str], argv: &[String]) -> Proc {
    let coturn = match wrapper.split_first() {
        None => Proc::start(TOOLS[0], argv),
        Some((program, rest)) => {
            let mut all = args(rest);
            all.push(TOOLS[0].into());
            all.extend_from_slice(argv);
            Proc::start(program, &all)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !coturn.log().contains("Total General servers") {
        assert!(Instant::now() < deadline, "coturn did not start within 20 s:\n{}", coturn.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    coturn
}

/// GET /metrics from the metrics address that `tutti turn` printed in `log` (after the counters' next refresh).
pub fn metrics(log: &str) -> String {
    let addr: std::net::SocketAddr = log
        .lines()
        .find_map(|l| l.strip_prefix("tutti turn: metrics on http://")?.strip_suffix("/metrics")?.parse().ok())
        .expect("the metrics address");
    std::thread::sleep(Duration::from_millis(600));
    let mut stream = TcpStream::connect(addr).expect("connect to metrics");
    // one write: the metrics server reads the request once
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("read metrics");
    body
}

/// The value of the metric `name` (a name, with its labels if any) in a Prometheus text.
pub fn metric(metrics: &str, name: &str) -> u64 {
    let prefix = format!("{name} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
}
