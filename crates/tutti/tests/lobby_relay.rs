//! The lobby with a TURN relay, in Debian's Chromium (fake media, npm `playwright-core`, see
//! `lobby_support/js/relay.mjs`): pages whose WebSocket is blocked fall back to HTTP long-polling and still
//! meet and call; "hide my IP" (the page's switch, and `--relay-only` for everyone) connects two pages
//! through `tutti turn`, through coturn's `turnserver` started with the same secret and no other change, and
//! through the relay of `--turn-embedded`, with no host or srflx candidate in anything a page received, on
//! loopback and, in a network namespace, on a public address (each page's peer is then the other's allocation
//! on the same server);
//! credentials that expired before they were handed out (the lobby's clock an hour behind, by libfaketime)
//! fail the call, through `tutti turn` and through coturn. The secret reaches no page and no log line; the
//! credentials in `matched` verify with it, scaled out over Redis too.
//! Every process is started here on loopback and stopped by PID. Screenshots go to `<target>/tmp/lobby-relay/`.

mod lobby_support;
mod turn_support;
mod tutti_process;

use lobby_support::{node, node_by, Client, Lobby, Redis};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use turn_support::{free_port, require_coturn};
use tutti_process::Tutti;

const SECRET: &str = "lobby-relay-test-secret";
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn artifacts() -> PathBuf {
    lobby_support::browser_artifacts("lobby-relay")
}

/// Runs one scenario of relay.mjs against `lobby` (the script checks that SECRET reaches no page).
fn scenario(name: &str, lobby: &Lobby) {
    let out = artifacts();
    std::env::set_var("SECRET", SECRET);
    let (ok, output) = node("relay.mjs", &[name, &lobby.url(), out.to_str().unwrap()], Duration::from_secs(90));
    assert!(
        ok && output.contains("relay ok"),
        "relay scenario {name} failed (screenshots in {}):\n{output}",
        out.display()
    );
    eprintln!("{output}");
    lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(10));
}

/// A file holding the shared secret, removed on drop.
struct SecretFile(PathBuf);

impl SecretFile {
    fn new() -> SecretFile {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tutti-lobby-relay-secret-{}-{n}", std::process::id()));
        std::fs::write(&path, format!("{SECRET}\n")).unwrap();
        SecretFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `tutti turn` on 127.0.0.1:`port` with the secret, loopback peers allowed (the pages' relay addresses are
/// on 127.0.0.1), and its metrics.
fn start_tutti_turn(port: u16, secret: &SecretFile) -> Tutti {
    let port = port.to_string();
    let argv = ["turn", "--listening-ip", "127.0.0.1", "--listening-port", &port, "--allow-loopback-peers"];
    let mut argv = argv.to_vec();
    argv.extend(["--static-auth-secret-file", secret.path(), "--metrics", "127.0.0.1:0"]);
    let tutti = Tutti::start(&argv);
    assert!(tutti.wait_for_log("(UDP and TCP)", Duration::from_secs(10)), "tutti turn did not start: {}", tutti.log());
    tutti
}

/// The flags that point the lobby at a relay on 127.0.0.1:`port`, over UDP and TCP.
fn turn_flags(port: u16, secret: &SecretFile) -> Vec<String> {
    let mut flags = vec!["--turn-url".into(), format!("turn:127.0.0.1:{port}")];
    flags.extend(["--turn-url".into(), format!("turn:127.0.0.1:{port}?transport=tcp")]);
    flags.extend(["--turn-secret-file".into(), secret.path().into()]);
    flags
}

fn start_lobby(flags: &[String]) -> Lobby {
    Lobby::start(&flags.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn pages_without_websocket_fall_back_to_long_polling_and_still_call() {
    let lobby = Lobby::start(&[]);
    scenario("polling", &lobby);
}

#[test]
fn hide_my_ip_connects_through_tutti_turn_with_relay_candidates_only() {
    let secret = SecretFile::new();
    let port = free_port();
    let turn = start_tutti_turn(port, &secret);
    let lobby = start_lobby(&turn_flags(port, &secret));
    scenario("switch", &lobby);
    let metrics = turn_support::metrics(&turn.log());
    let count = |name: &str| turn_support::metric(&metrics, name);
    assert!(count("tutti_turn_allocations_total") >= 2, "{metrics}");
    assert!(count("tutti_turn_packets_to_peers_total") > 100, "the media went through tutti turn:\n{metrics}");
}

#[test]
fn relay_only_lobby_connects_through_coturn_with_the_same_flags() {
    require_coturn();
    let secret = SecretFile::new();
    let port = free_port();
    let _coturn = turn_support::start_coturn(port, (43000, 43499), true, SECRET, "tutti.test");
    let mut flags = turn_flags(port, &secret);
    flags.push("--relay-only".into());
    let lobby = start_lobby(&flags);
    scenario("forced", &lobby);
}

#[test]
fn relay_only_lobby_with_its_embedded_relay() {
    let lobby = Lobby::start(&[
        "--turn-embedded",
        "--turn-listening-ip",
        "127.0.0.1",
        "--turn-listening-port",
        "0",
        "--turn-allow-loopback-peers",
        "--relay-only",
    ]);
    scenario("forced", &lobby);
}

/// A network namespace of this test's own with a veth pair carrying 198.51.100.1 and 198.51.100.2 (TEST-NET-2:
/// public addresses to a relay's peer policy, unlike loopback), removed on drop.
struct Namespace(String);

impl Namespace {
    fn new(tag: &str) -> Namespace {
        let name = format!("tutti-{tag}-{}", std::process::id());
        let ip = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("run ip (iproute2)");
            assert!(status.success(), "ip {args:?} failed (the test needs root for a network namespace)");
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        ip(&["netns", "add", &name]);
        let ns = Namespace(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.0, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        for (dev, addr) in [("v0", "198.51.100.1/24"), ("v1", "198.51.100.2/24")] {
            ip(&["-n", &ns.0, "addr", "add", addr, "dev", dev]);
            ip(&["-n", &ns.0, "link", "set", dev, "up"]);
        }
        ns
    }

    /// `program` run inside the namespace (`ip netns exec` becomes it: the PID is the program's).
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.0, program]);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Relay-only calls between two pages whose relay addresses are the same public address: each page's peer is
/// the other's allocation on the same server (the relay refuses its own address but for its relay ports).
/// Everything runs in a namespace of its own; no loopback peer is allowed.
fn relay_only_on_a_public_address(relay: &str) {
    let ns = Namespace::new(relay);
    let secret = SecretFile::new();
    let tutti = env!("CARGO_BIN_EXE_tutti");
    let turn = if relay == "coturn" {
        let argv = turn_support::coturn_args("198.51.100.1", 3478, (49152, 65535), SECRET, "tutti.test");
        turn_support::start_coturn_by(&["ip", "netns", "exec", &ns.0], &argv)
    } else {
        let argv =
            ["netns", "exec", &ns.0, tutti, "turn", "--listening-ip", "198.51.100.1", "--static-auth-secret-file"];
        let turn = turn_support::Proc::start("ip", &turn_support::args(&[&argv[..], &[secret.path()]].concat()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !turn.log().contains("(UDP and TCP)") {
            assert!(std::time::Instant::now() < deadline, "tutti turn did not start:\n{}", turn.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        turn
    };
    let mut command = ns.command(tutti);
    command.args(["lobby", "--listen", "127.0.0.1:0", "--relay-only", "--turn-url", "turn:198.51.100.1:3478"]);
    command.args(["--turn-secret-file", secret.path()]);
    let lobby = Lobby::spawn(command);
    let out = artifacts();
    std::env::set_var("SECRET", SECRET);
    let args = ["forced", &lobby.url(), out.to_str().unwrap()];
    let (ok, output) = node_by(ns.command("node"), "relay.mjs", &args, Duration::from_secs(90));
    assert!(ok && output.contains("relay ok"), "{relay} on 198.51.100.1 failed:\n{output}\n{}", turn.log());
    eprintln!("{output}");
    drop(lobby);
    drop(turn);
}

#[test]
fn relay_only_through_tutti_turn_on_a_public_address() {
    relay_only_on_a_public_address("tutti");
}

#[test]
fn relay_only_through_coturn_on_a_public_address() {
    require_coturn();
    relay_only_on_a_public_address("coturn");
}

/// A relay-only lobby pointed at the relay on `port` whose clock runs an hour behind (libfaketime): the 600 s
/// credentials it mints expired 50 minutes ago.
fn lobby_an_hour_behind(port: u16, secret: &SecretFile) -> Lobby {
    assert!(Path::new(LIBFAKETIME).exists(), "libfaketime is needed: run ./scripts/test.sh, which installs faketime");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
    command.args(["lobby", "--listen", "127.0.0.1:0", "--relay-only"]).args(turn_flags(port, secret));
    command.env("LD_PRELOAD", LIBFAKETIME).env("FAKETIME", "-1h").env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    Lobby::spawn(command)
}

#[test]
fn expired_credentials_fail_the_call_through_coturn() {
    require_coturn();
    let secret = SecretFile::new();
    let port = free_port();
    let _coturn = turn_support::start_coturn(port, (43500, 43999), true, SECRET, "tutti.test");
    scenario("expired", &lobby_an_hour_behind(port, &secret));
}

#[test]
fn expired_credentials_fail_the_call() {
    let secret = SecretFile::new();
    let port = free_port();
    let turn = start_tutti_turn(port, &secret);
    let lobby = lobby_an_hour_behind(port, &secret);
    scenario("expired", &lobby);
    // the pages asked the relay (which told them their credentials had expired): no allocation was made
    let metrics = turn_support::metrics(&turn.log());
    let count = |name: &str| turn_support::metric(&metrics, name);
    assert!(count("tutti_turn_requests_total") >= 4, "{metrics}");
    assert_eq!(count("tutti_turn_allocations_total"), 0, "{metrics}");
    assert_eq!(count("tutti_turn_refused_total{reason=\"wrong_credentials\"}"), 0, "{metrics}");
}

/// The secret is never sent: not in the page, its config or anything a matched socket gets; the credentials
/// in `matched` are fresh REST credentials that verify with it; no log line carries the secret or them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_reaches_no_page_and_credentials_verify_and_expire() {
    let secret = SecretFile::new();
    let log = std::env::temp_dir().join(format!("tutti-lobby-relay-stderr-{}", std::process::id()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
    command.args(["lobby", "--listen", "127.0.0.1:0", "--turn-ttl", "120"]).args(turn_flags(3478, &secret));
    command.env("RUST_LOG", "debug,tutti_lobby=trace,tutti=trace");
    command.stderr(std::fs::File::create(&log).unwrap());
    let lobby = Lobby::spawn(command);
    let mut served = String::new();
    for path in ["/", "/app.js", "/hideip.js", "/identity.js", "/config.json", "/vendor/socket.io.min.js"] {
        served += &lobby.get(path);
    }
    assert!(!served.contains(SECRET));
    let config: serde_json::Value = serde_json::from_str(&lobby.get("/config.json")).unwrap();
    assert_eq!((config["relay"].as_bool(), config["relayOnly"].as_bool()), (Some(true), Some(false)), "{config}");

    let mut a = Client::connect(lobby.addr).await;
    let mut b = Client::connect(lobby.addr).await;
    assert_eq!(a.call("find", json!({})).await, json!({ "ok": true }));
    assert_eq!(b.call("find", json!({})).await, json!({ "ok": true }));
    let now = tutti_turn::unix_now();
    let mut usernames = Vec::new();
    for client in [&a, &b] {
        let matched = client.next_event("matched", Duration::from_secs(5)).await.expect("matched");
        let servers = matched["iceServers"].as_array().expect("iceServers in matched").clone();
        assert_eq!(servers.len(), 1, "{matched}");
        let urls: Vec<&str> = servers[0]["urls"].as_array().unwrap().iter().filter_map(|u| u.as_str()).collect();
        assert_eq!(urls, ["turn:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=tcp"]);
        let username = servers[0]["username"].as_str().unwrap().to_string();
        let credential = servers[0]["credential"].as_str().unwrap();
        assert_eq!(credential, tutti_turn::credentials::rest_password(SECRET, &username), "coturn's REST password");
        let (expiry, id) = tutti_turn::credentials::check_rest_username(&username, now).expect("valid now");
        assert!((now + 119..=now + 121).contains(&expiry), "expires after --turn-ttl 120: {expiry} vs {now}");
        assert_eq!(id.len(), 12, "a random user ID: {username}");
        assert!(tutti_turn::credentials::check_rest_username(&username, now + 122).is_err(), "expired after the TTL");
        usernames.push((username, credential.to_string()));
    }
    assert_ne!(usernames[0].0, usernames[1].0, "each matched user gets its own credentials");
    // a new match mints new credentials
    let mut c = Client::connect(lobby.addr).await;
    assert_eq!(c.call("find", json!({})).await, json!({ "ok": true }));
    assert_eq!(a.call("next", json!(null)).await, json!({ "ok": true }));
    let again = a.next_event("matched", Duration::from_secs(5)).await.expect("matched again");
    assert_ne!(again["iceServers"][0]["username"].as_str().unwrap(), usernames[0].0);
    for client in [&a, &b, &c] {
        let received = serde_json::to_string(&client.history()).unwrap();
        assert!(!received.contains(SECRET), "a socket received the secret: {received}");
    }
    a.close();
    b.close();
    c.close();
    lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
    drop(lobby);
    let diagnostics = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(!diagnostics.contains(SECRET), "{diagnostics}");
    for (username, credential) in &usernames {
        assert!(
            !diagnostics.contains(username.as_str()) && !diagnostics.contains(credential.as_str()),
            "{diagnostics}"
        );
    }
}

/// Scaled out, the process that decides a match mints credentials for both partners, also the one on the
/// other process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_out_both_partners_get_credentials() {
    let redis = Redis::start();
    let secret = SecretFile::new();
    let mut flags = turn_flags(3478, &secret);
    flags.extend(["--redis".into(), redis.url()]);
    let (one, two) = (start_lobby(&flags), start_lobby(&flags));
    let mut a = Client::connect(one.addr).await;
    let mut b = Client::connect(two.addr).await;
    assert_eq!(a.call("find", json!({})).await, json!({ "ok": true }));
    assert_eq!(b.call("find", json!({})).await, json!({ "ok": true }));
    for client in [&a, &b] {
        let matched = client.next_event("matched", Duration::from_secs(5)).await.expect("matched");
        let username = matched["iceServers"][0]["username"].as_str().expect("credentials").to_string();
        let credential = matched["iceServers"][0]["credential"].as_str().unwrap();
        assert_eq!(credential, tutti_turn::credentials::rest_password(SECRET, &username));
    }
}

#[test]
fn turn_flags_are_checked() {
    let secret = SecretFile::new();
    let refused = |args: &[&str], why: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tutti")).arg("lobby").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(why), "{args:?}: {stderr}");
    };
    refused(&["--relay-only"], "--relay-only needs a TURN relay");
    refused(&["--turn-url", "turn:127.0.0.1:3478"], "--turn-secret-file");
    refused(&["--turn-secret-file", secret.path()], "--turn-url");
    refused(&["--turn-url", "stun:127.0.0.1:3478", "--turn-secret-file", secret.path()], "turn: or turns:");
    refused(&["--turn-embedded", "--turn-secret-file", secret.path()], "makes its own secret");
    refused(&["--turn-listening-port", "3478"], "add --turn-embedded");
    refused(&["--turn-ttl", "0", "--turn-url", "turn:x", "--turn-secret-file", secret.path()], "--turn-ttl");
}
