//! `tutti turn` against coturn's own test tools, side by side with coturn 4.6 (`turnserver`) started here with
//! the same secret: `turnutils_uclient` relays through both over UDP and TCP (channels and Send indications) to a
//! `turnutils_peer` echo, a wrong secret is refused by both, loopback peers are refused by both by default, and
//! tutti's log and metrics carry no address. Every process is started here and stopped by PID.

mod turn_support;
mod tutti_process;

use std::process::{Command, Stdio};
use std::time::Duration;
use turn_support::{args, free_port, require_coturn, Proc, TOOLS};
use tutti_process::Tutti;

const SECRET: &str = "logical-turn-secret";
const REALM: &str = "tutti.test";

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
    turn_support::start_coturn(port, relay_ports, loopback, SECRET, REALM)
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
            std::thread::spawn(move || {
                // uclient does not resend: over UDP, on a machine busy enough to delay an echo past
                // its wait, one run can come up short for either server. A second run decides.
                let first = uclient(port, peer_port, SECRET, &mode);
                let output = if relayed_all(&first) { first } else { uclient(port, peer_port, SECRET, &mode) };
                (port, mode.clone(), output)
            })
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
    // the counters are published about twice a second: a busy machine may need a later scrape
    let relayed = |m: &str| {
        ["tutti_turn_packets_to_peers_total", "tutti_turn_packets_to_clients_total"]
            .iter()
            .all(|name| turn_support::metric(m, name) >= 60)
    };
    let mut metrics = turn_support::metrics(&tutti.log());
    for _ in 0..8 {
        if relayed(&metrics) {
            break;
        }
        metrics = turn_support::metrics(&tutti.log());
    }
    assert!(relayed(&metrics), "{metrics}");
    assert!(metrics.contains("tutti_turn_refused_total{reason=\"unauthorized\"}"));
    assert!(!metrics.contains("127.0.0.1"), "metrics are counts only");
    drop(coturn);
    let log = tutti.log();
    for line in log.lines().filter(|l| l.contains("127.0.0.1")) {
        assert!(line.starts_with("tutti turn: "), "tutti logged an address: {line}");
    }
}

#[test]
fn loopback_peers_are_refused_by_default_by_both() {
    require_coturn();
    let peer_port = free_port();
    let _peer = Proc::start(TOOLS[2], &args(&["-L", "127.0.0.1", "-p", &peer_port.to_string()]));
    let (tutti_port, coturn_port) = (free_port(), free_port());
    // tutti's relay range holds the peer's port (CI once drew such a port by chance): a port of the range with
    // no allocation on it is a port of the host like any other, refused
    let _tutti = start_tutti(tutti_port, (peer_port - 250, peer_port + 249), false, false);
    let _coturn = start_coturn(coturn_port, (42500, 42999), false);
    for (server, port) in [("tutti", tutti_port), ("coturn", coturn_port)] {
        let output = uclient(port, peer_port, SECRET, &[]);
        assert!(output.contains("error 403"), "{server} must refuse the loopback peer with 403:\n{output}");
        assert!(!relayed_all(&output), "{server}: {output}");
    }
}
