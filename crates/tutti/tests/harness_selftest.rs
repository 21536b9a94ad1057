//! Self-test of the real-Jamulus test harness (tests/support): a real Jamulus 3.9.1 server and a
//! real headless client (with a jack_metro click) find each other, JSON-RPC works in both, the
//! welcome message and a chat round trip arrive as notifications, and stopping leaves no process.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{
    base64, free_udp_port, require_jamulus, wait_until, ClientOptions, JamulusClient, JamulusServer, ServerOptions,
};

const WAIT: Duration = Duration::from_secs(10);
const WELCOME: &str = "Welcome to the harness self-test";

fn names(clients: &Value) -> Vec<&str> {
    clients.as_array().map_or(vec![], |c| c.iter().filter_map(|e| e["name"].as_str()).collect())
}

#[test]
fn real_server_and_client_talk_and_stop_cleanly() {
    require_jamulus();
    let t0 = Instant::now();

    let mut options = ServerOptions::new(free_udp_port());
    options.welcome = Some(WELCOME.into());
    options.numchannels = 4;
    let server = JamulusServer::start(options);
    let version = server.rpc().call("jamulus/getVersion", json!({}));
    assert_eq!(version["result"]["version"], "3.9.1", "{version}");
    let t_server = t0.elapsed();

    let mut options = ClientOptions::new(server.address());
    options.name = "Harness".into();
    options.metro_bpm = Some(120);
    let client = JamulusClient::start(options);
    let t_client = t0.elapsed();

    let connected = client.rpc().wait_notification("jamulusclient/connected", WAIT, |_| true);
    assert!(
        connected.is_some(),
        "no jamulusclient/connected: {:?}\n{}",
        client.rpc().notifications(),
        client.log_tail()
    );
    let t_connected = t0.elapsed();

    // The server lists the client, under its profile name and at the UDP port we discovered.
    let mut clients = Value::Null;
    let listed = wait_until(WAIT, || {
        clients = server.rpc().call("jamulusserver/getClients", json!({}))["result"]["clients"].clone();
        names(&clients) == ["Harness"]
    });
    assert!(listed, "server's client list: {clients}\n{}", server.log_tail());
    assert_eq!(clients[0]["address"], format!("127.0.0.1:{}", client.udp_port()), "{clients}");

    let welcome = client
        .rpc()
        .wait_notification("jamulusclient/chatTextReceived", WAIT, |p| {
            p["chatText"].as_str().is_some_and(|t| t.contains(WELCOME))
        })
        .expect("the welcome message arrives as a chat notification");
    assert!(welcome["chatText"].as_str().unwrap().starts_with("<b>Server Welcome Message:</b>"), "{welcome}");

    let reply = client.rpc().call("jamulusclient/sendChatText", json!({ "chatText": "hi" }));
    assert_eq!(reply["result"], "ok", "{reply}");
    let echo = client.rpc().wait_notification("jamulusclient/chatTextReceived", WAIT, |p| {
        p["chatText"].as_str().is_some_and(|t| t.ends_with("<b>Harness</b></font> hi"))
    });
    assert!(echo.is_some(), "own chat not echoed: {:?}", client.rpc().notifications());

    let info = client.rpc().call("jamulusclient/getClientInfo", json!({}));
    assert_eq!(info["result"]["connected"], true, "{info}");

    // The metronome is audible: the server's level list shows our channel above 0 (after the
    // client's fade-in).
    let level = client.rpc().wait_notification("jamulusclient/channelLevelListReceived", WAIT, |p| {
        p["channelLevelList"].as_array().is_some_and(|l| l.iter().any(|v| v.as_u64().is_some_and(|v| v > 0)))
    });
    assert!(level.is_some(), "no non-zero level from the metronome\n{}", client.log_tail());
    let t_checks = t0.elapsed();

    let pids: Vec<u32> = client.pids().into_iter().chain([server.pid()]).collect();
    assert_eq!(pids.len(), 4, "Jamulus client, jack_metro, jackd, Jamulus server: {pids:?}");
    assert!(pids.iter().all(|pid| Path::new(&format!("/proc/{pid}")).exists()));
    let client_exit = client.stop();
    let server_exit = server.stop();
    let gone: Vec<bool> = pids.iter().map(|pid| !Path::new(&format!("/proc/{pid}")).exists()).collect();
    assert!(gone.iter().all(|&g| g), "processes left behind: {pids:?} gone={gone:?}");
    assert_eq!((client_exit, server_exit), (Some(0), Some(0)), "both exit cleanly on SIGTERM");
    eprintln!(
        "harness timings: server {:?}, client {:?}, connected {:?}, checks {:?}, stopped {:?}",
        t_server,
        t_client,
        t_connected,
        t_checks,
        t0.elapsed()
    );
}

#[test]
fn base64_matches_rfc4648() {
    for (plain, encoded) in
        [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
    {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
    assert_eq!(base64("Loopback".as_bytes()), "TG9vcGJhY2s=");
}
