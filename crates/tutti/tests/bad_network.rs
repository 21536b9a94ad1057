//! A bad network between musicians and `tutti server`: a tutti client and a real Jamulus 3.9.1 client each
//! reach the server through a link with 10 % loss and 20 ms ± 10 ms delay (so datagrams also arrive out of
//! order), and 30 % loss for 5 s in the middle, for 60 s. Both stay connected the whole time; every chat
//! message each of them sends arrives exactly once at an unimpaired listener (reliable delivery with resends,
//! and no duplicates from the resends); each name change of the tutti client reaches the listener; audio keeps
//! flowing, and the tutti client reports the frames it lost and concealed.
//!
//! The link is a user-space relay (support::impair), not `tc netem`: the kernel of this project's machines
//! has no netem, and the relay needs no privileges and is seeded, so every run sees the same losses.

mod support;
mod tutti_process;

use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::impair::ImpairedLink;
use support::{free_tcp_port, free_udp_port, require_jamulus, ClientOptions, JamulusClient, JsonRpc, StateDir};
use tutti_process::Tutti;

const SECRET: &str = "bad-network-secret-0123456789";
const RUN: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(20);

#[test]
fn musicians_stay_connected_and_every_message_arrives_once_over_a_lossy_reordering_link() {
    require_jamulus();
    let state = StateDir::new("tutti-bad-network");
    let secret_file = state.file("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let port = free_udp_port();
    let server_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = Tutti::start(&["server", "--port", &port.to_string(), "--serverbindip", "127.0.0.1"]);
    assert!(server.wait_for_log("listening", WAIT), "tutti did not start:\n{}", server.log());
    let secs = |d: Duration| format!("{}", d.as_secs() + 12);
    let listener =
        Tutti::start(&["client", "-c", &server_addr.to_string(), "--name", "Listener", "--duration", &secs(RUN)]);

    let delay = Duration::from_millis(20);
    let jitter = Duration::from_millis(10);
    let tutti_link = ImpairedLink::start(server_addr, 100, delay, jitter, 7);
    let jamulus_link = ImpairedLink::start(server_addr, 100, delay, jitter, 11);
    let rpc_port = free_tcp_port();
    let mut wobbly = Tutti::start(&[
        "client",
        "-c",
        &tutti_link.address().to_string(),
        "--name",
        "Wobbly0",
        "--input",
        "tone:440",
        "--jsonrpcport",
        &rpc_port.to_string(),
        "--jsonrpcsecretfile",
        secret_file.to_str().unwrap(),
        "--duration",
        &secs(RUN),
    ]);
    let wobbly_rpc = JsonRpc::connect(rpc_port, SECRET);
    let mut options = ClientOptions::new(jamulus_link.address());
    options.name = "RealWobbly".into();
    options.small_buffers = false;
    options.jack_period = 128;
    let real = JamulusClient::start(options);
    real.rpc().wait_notification("jamulusclient/connected", WAIT, |_| true).expect("the real client connected");
    // Both clients' JSON-RPC says "connected" only once audio flows.
    assert!(
        support::wait_until(WAIT, || {
            real.rpc().call("jamulusclient/sendChatText", json!({ "chatText": "hello" }))["result"] == "ok"
        }),
        "the real client's audio started"
    );
    assert!(wobbly.wait_for_log("connected: channel", WAIT), "the tutti client connected:\n{}", wobbly.log());
    // Its JSON-RPC says "connected" once audio flows, as Jamulus' does.
    assert!(
        support::wait_until(WAIT, || wobbly_rpc.call("jamulusclient/getChannelInfo", json!({}))["result"].is_object()
            && wobbly_rpc.call("jamulusclient/sendChatText", json!({ "chatText": "hello" }))["result"] == "ok"),
        "the tutti client's audio started:\n{}",
        wobbly.log()
    );

    let start = Instant::now();
    let mut step = 0u32;
    let mut names = vec!["Wobbly0".to_string()];
    while start.elapsed() < RUN {
        let at = Duration::from_secs(5 * u64::from(step));
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        match step {
            6 => {
                tutti_link.set_loss_permille(300);
                jamulus_link.set_loss_permille(300);
            }
            7 => {
                tutti_link.set_loss_permille(100);
                jamulus_link.set_loss_permille(100);
            }
            _ => {}
        }
        let reply = wobbly_rpc.call("jamulusclient/sendChatText", json!({ "chatText": format!("tutti-m{step:02}") }));
        assert_eq!(reply["result"], "ok", "{reply}");
        let reply = real.rpc().call("jamulusclient/sendChatText", json!({ "chatText": format!("real-m{step:02}") }));
        assert_eq!(reply["result"], "ok", "{reply}");
        if step % 2 == 1 {
            let name = format!("Wobbly{}", step / 2 + 1);
            let reply = wobbly_rpc.call("jamulusclient/setName", json!({ "name": name }));
            assert_eq!(reply["result"], "ok", "{reply}");
            names.push(name);
        }
        step += 1;
    }
    std::thread::sleep(Duration::from_secs(4)); // resends of the last messages

    let heard = listener.log();
    for k in 0..step {
        for who in ["tutti", "real"] {
            let marker = format!(" {who}-m{k:02}");
            let times = heard.lines().filter(|l| l.starts_with("chat: ") && l.ends_with(&marker)).count();
            assert_eq!(times, 1, "{marker} reached the listener {times} times:\n{heard}");
        }
    }
    for name in &names {
        assert!(
            heard.contains(&format!("musicians: {name}")) || heard.contains(&format!(", {name}")),
            "{name} never reached the listener:\n{heard}"
        );
    }
    let own = wobbly.log();
    assert!(!own.contains("disconnected"), "the tutti client was disconnected:\n{own}");
    assert!(
        real.rpc().notifications().iter().all(|n| n["method"] != "jamulusclient/disconnected"),
        "the real client was disconnected"
    );
    let real_echoes = real
        .rpc()
        .notifications()
        .iter()
        .filter(|n| n["method"] == "jamulusclient/chatTextReceived")
        .filter(|n| n["params"]["chatText"].as_str().is_some_and(|t| t.contains("real-m")))
        .count();
    assert_eq!(real_echoes, step as usize, "the real client's own messages came back once each");

    assert_eq!(wobbly.wait_exit(WAIT), Some(0), "the tutti client ended cleanly:\n{}", wobbly.log());
    let own = wobbly.log();
    let report =
        own.lines().find(|l| l.contains("audio packets;")).unwrap_or_else(|| panic!("no reception report:\n{own}"));
    let numbers: Vec<u64> = report.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    let (packets, lost) = (numbers[0], numbers[1]);
    let dropped = tutti_link.impairment.dropped.load(std::sync::atomic::Ordering::Relaxed);
    println!("bad network: {report}; the link dropped {dropped} datagrams");
    assert!(packets as f64 >= 0.6 * 375.0 * RUN.as_secs_f64(), "audio stopped flowing: {report}");
    assert!(lost > 0, "10 % loss must show as lost frames: {report}");
    drop(real);
    assert_eq!(server.stop(), Some(0), "clean exit:\n{}", server.log());
}
