//! `tutti turn` against coturn's own test tools, side by side with coturn 4.6 (`turnserver`) started here with
//! the same secret: `turnutils_uclient` relays through both over UDP and TCP (channels and Send indications) to a
//! `turnutils_peer` echo, a wrong secret is refused by both, loopback peers are refused by both by default, and
//! tutti's log and metrics carry no address. Every process is started here and stopped by PID.

mod tutti_process;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tutti_process::{signal, Tutti};

const SECRET: &str = "logical-turn-secret";
const REALM: &str = "tutti.test";
const TOOLS: [&str; 3] = ["/usr/bin/turnserver", "/usr/bin/turnutils_uclient", "/usr/bin/turnutils_peer"];

fn require_coturn() {
    let missing: Vec<&str> = TOOLS.into_iter().filter(|p| !Path::new(p).exists()).collect();
    assert!(missing.is_empty(), "coturn is needed: run ./scripts/test.sh, which installs it (missing: {missing:?})");
}

/// A port free on 127.0.0.1 for both UDP and TCP a moment ago.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP on 127.0.0.1");
        let port = udp.local_addr().expect("local address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A child process that is stopped by PID (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    fn start(program: &str, args: &[String]) -> Proc {
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        signal(self.child.id(), libc::SIGTERM);
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

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn start_tutti(port: u16, relay_ports: (u16, u16), loopback: bool, metrics: bool) -> Tutti {
    let port = port.to_string();
    let (min, max) = (relay_ports.0.to_string(), relay_ports.1.to_string());
    let mut argv = vec!["turn", "--listening-ip", "127.0.0.1", "--listening-port", &port, "--min-port", &min];
    argv.extend(["--max-port", &max, "--static-auth-secret", SECRET, "--realm", REALM]);
    if loopback {
        argv.push("--allow-loopback-peers");
    }
    if metrics {
        argv.extend(["--metrics", "127.0.0.1:0"]);
    }
    // Every log line tutti has, to show that none carries an address (both tests set the same value).
    std::env::set_var("RUST_LOG", "debug");
    let tutti = Tutti::start(&argv);
    assert!(tutti.wait_for_log("(UDP and TCP)", Duration::from_secs(10)), "tutti turn did not start: {}", tutti.log());
    tutti
}

fn start_coturn(port: u16, relay_ports: (u16, u16), loopback: bool) -> Proc {
    let pidfile = std::env::temp_dir().join(format!("tutti-turn-test-coturn-{}-{port}.pid", std::process::id()));
    let mut argv = args(&["-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--use-auth-secret"]);
    argv.extend(args(&["--static-auth-secret", SECRET, "--realm", REALM, "--no-cli", "--no-tls", "--no-dtls"]));
    argv.extend(args(&["--log-file", "stdout", "--no-stun-backward-compatibility"]));
    argv.extend(["--listening-port".into(), port.to_string(), "--pidfile".into(), pidfile.display().to_string()]);
    argv.extend(["--min-port".into(), relay_ports.0.to_string(), "--max-port".into(), relay_ports.1.to_string()]);
    if loopback {
        argv.push("--allow-loopback-peers".into());
    }
    let coturn = Proc::start(TOOLS[0], &argv);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !coturn.log().contains("Total General servers") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    coturn
}

/// Runs turnutils_uclient (`extra` flags, `m` clients of `n` messages each) and returns its output.
fn uclient(port: u16, peer_port: u16, secret: &str, extra: &[&str]) -> String {
    let mut argv = args(extra);
    argv.extend(args(&["-W", secret, "-e", "127.0.0.1", "-n", "10", "-m", "2", "-z", "5"]));
    argv.extend(["-r".into(), peer_port.to_string(), "-p".into(), port.to_string(), "127.0.0.1".into()]);
    let output = Command::new(TOOLS[1]).args(&argv).stdin(Stdio::null()).output().expect("run turnutils_uclient");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Whether uclient's report says all 20 messages came back through the relay.
fn relayed_all(output: &str) -> bool {
    output.contains("tot_send_msgs=20, tot_recv_msgs=20") && output.contains("Total lost packets 0 ")
}

#[test]
fn coturn_client_relays_through_tutti_as_through_coturn_and_both_refuse_a_wrong_secret() {
    require_coturn();
    let peer_port = free_port();
    let _peer = Proc::start(TOOLS[2], &args(&["-L", "127.0.0.1", "-p", &peer_port.to_string()]));
    let (tutti_port, coturn_port) = (free_port(), free_port());
    let tutti = start_tutti(tutti_port, (41000, 41499), true, true);
    let coturn = start_coturn(coturn_port, (41500, 41999), true);
    let modes: [&[&str]; 3] = [&[], &["-t"], &["-s"]];
    let runs: Vec<_> = modes
        .iter()
        .flat_map(|mode| [(tutti_port, *mode), (coturn_port, *mode)])
        .map(|(port, mode)| {
            let mode: Vec<&'static str> = mode.to_vec();
            std::thread::spawn(move || (port, mode.clone(), uclient(port, peer_port, SECRET, &mode)))
        })
        .collect();
    for run in runs {
        let (port, mode, output) = run.join().expect("uclient thread");
        let server = if port == tutti_port { "tutti" } else { "coturn" };
        assert!(relayed_all(&output), "{server} {mode:?}: not all relayed:\n{output}");
    }
    for port in [tutti_port, coturn_port] {
        let output = uclient(port, peer_port, "not-the-secret", &[]);
        assert!(output.contains("Cannot complete Allocation"), "a wrong secret must be refused:\n{output}");
        assert!(!output.contains("tot_recv_msgs=20"), "{output}");
    }
    let metrics = metrics_of(&tutti);
    let count = |name: &str| -> u64 {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or_else(|| panic!("{name}"))
    };
    assert!(count("tutti_turn_packets_to_peers_total ") >= 60, "{metrics}");
    assert!(count("tutti_turn_packets_to_clients_total ") >= 60, "{metrics}");
    assert!(metrics.contains("tutti_turn_refused_total{reason=\"unauthorized\"}"));
    assert!(!metrics.contains("127.0.0.1"), "metrics are counts only");
    drop(coturn);
    let log = tutti.log();
    for line in log.lines().filter(|l| l.contains("127.0.0.1")) {
        assert!(line.starts_with("tutti turn: "), "tutti logged an address: {line}");
    }
}

/// GET /metrics from tutti's metrics address (printed on start).
fn metrics_of(tutti: &Tutti) -> String {
    let addr: std::net::SocketAddr = tutti
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("tutti turn: metrics on http://")?.strip_suffix("/metrics")?.parse().ok())
        .expect("the metrics address");
    std::thread::sleep(Duration::from_millis(600));
    let mut stream = TcpStream::connect(addr).expect("connect to metrics");
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("read metrics");
    body
}

#[test]
fn loopback_peers_are_refused_by_default_by_both() {
    require_coturn();
    let peer_port = free_port();
    let _peer = Proc::start(TOOLS[2], &args(&["-L", "127.0.0.1", "-p", &peer_port.to_string()]));
    let (tutti_port, coturn_port) = (free_port(), free_port());
    let _tutti = start_tutti(tutti_port, (42000, 42499), false, false);
    let _coturn = start_coturn(coturn_port, (42500, 42999), false);
    for (server, port) in [("tutti", tutti_port), ("coturn", coturn_port)] {
        let output = uclient(port, peer_port, SECRET, &[]);
        assert!(output.contains("error 403"), "{server} must refuse the loopback peer with 403:\n{output}");
        assert!(!relayed_all(&output), "{server}: {output}");
    }
}
