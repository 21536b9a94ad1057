//! Musicians keep playing while someone floods the server (and the directory keeps listing real servers while
//! someone floods it, at the end of this file): `tutti server` with 20 emulated clients
//! (`tutti loadgen`) and one real Jamulus 3.9.1 client, while this test sends at least 100,000 hostile datagrams
//! a second for 10 s from many source addresses and ports: random bytes, frames with a bad CRC, truncated and
//! never-finished split messages, audio of the wrong size, forged connection-less requests, and well-formed audio
//! from new addresses trying to take the free channels.
//!
//! Pass: the server lives; its memory grows by at most 32 MiB; the 20 emulated musicians stay at full rate and
//! lose ≤ 0.5 % of frames; the flood makes the server miss at most 0.5 % more of the frames its 21 musicians
//! send than it misses without the flood; the real client's chat
//! and profile change still round-trip during the flood; the channel table never exceeds its maximum and nobody
//! who was playing is evicted (the table is full, so every new address is refused).

mod support;
mod tutti_process;

use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::flood::{flood, rss_kib};
use support::{
    free_tcp_port, free_udp_port, require_jamulus, ClientOptions, JamulusClient, JamulusServer, ServerOptions,
};
use tutti_net::fetch_server_list;
use tutti_process::Tutti;
use tutti_proto::message::id;
use tutti_proto::split::SplitPart;
use tutti_proto::Message;

/// The two floods take both cores of a small machine: they run one after the other, never together.
static ONE_FLOOD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const WAIT: Duration = Duration::from_secs(20);
/// Exactly the musicians: audio from new addresses must be refused (server full), never take a seat.
const CHANNELS: usize = 21;
const FLOOD: Duration = Duration::from_secs(10);
const FLOOD_RATE: u64 = 110_000;

#[test]
fn musicians_keep_playing_through_a_flood_of_hostile_datagrams() {
    require_jamulus();
    let _alone = ONE_FLOOD_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_udp_port();
    let metrics_port = free_tcp_port();
    let server_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = Tutti::start(&[
        "server",
        "--port",
        &port.to_string(),
        "--serverbindip",
        "127.0.0.1",
        "--numchannels",
        &CHANNELS.to_string(),
        "--metrics",
        &metrics_port.to_string(),
    ]);
    assert!(server.wait_for_log("listening", Duration::from_secs(10)), "tutti did not start:\n{}", server.log());
    let server_pid = server.pid();

    let mut options = ClientOptions::new(server_addr);
    options.name = "Steady".into();
    // 128-sample frames, as the emulated clients send: one frame per musician per tick.
    options.small_buffers = false;
    options.jack_period = 128;
    let real = JamulusClient::start(options);
    real.rpc().wait_notification("jamulusclient/connected", WAIT, |_| true).expect("the real client connected");

    let mut load = Tutti::start(&[
        "loadgen",
        "-c",
        &server_addr.to_string(),
        "-n",
        "20",
        "--warmup",
        "4",
        "--duration",
        "13",
        "--summary",
    ]);
    assert!(
        support::wait_until(WAIT, || metric(metrics_port, "tutti_clients_connected") == Some(21)),
        "21 musicians connected: {:?}\n{}",
        metric(metrics_port, "tutti_clients_connected"),
        load.log()
    );
    // Inside loadgen's window from here on: 4 s without the flood (what the musicians lose anyway, e.g. to
    // the real client's dummy sound card), then the flood.
    std::thread::sleep(Duration::from_secs(1));
    let quiet = Counters::read(metrics_port);
    std::thread::sleep(Duration::from_secs(4));
    let rss_before = rss_kib(server_pid);
    let before = Counters::read(metrics_port);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || flood(server_addr, &hostile_datagrams(), FLOOD_RATE, FLOOD, &stop, &sent))
    };
    let most_channels = Arc::new(AtomicU64::new(0));
    let fewest_channels = Arc::new(AtomicU64::new(u64::MAX));
    let watcher = {
        let (stop, most, fewest) = (stop.clone(), most_channels.clone(), fewest_channels.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(n) = metric(metrics_port, "tutti_clients_connected") {
                    most.fetch_max(n, Ordering::Relaxed);
                    fewest.fetch_min(n, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // During the flood: chat and a profile change of the real client round-trip through the server.
    std::thread::sleep(Duration::from_secs(2));
    let marker = format!("still here {}", std::process::id());
    let reply = real.rpc().call("jamulusclient/sendChatText", json!({ "chatText": marker }));
    assert_eq!(reply["result"], "ok", "{reply}");
    real.rpc()
        .wait_notification("jamulusclient/chatTextReceived", WAIT, |p| {
            p["chatText"].as_str().is_some_and(|t| t.contains(&marker))
        })
        .expect("the real client's chat came back during the flood");
    let reply = real.rpc().call("jamulusclient/setName", json!({ "name": "Steadier" }));
    assert_eq!(reply["result"], "ok", "{reply}");
    real.rpc()
        .wait_notification("jamulusclient/clientListReceived", WAIT, |p| names(p).iter().any(|n| n == "Steadier"))
        .expect("the real client's new name came back in the client list during the flood");

    flooder.join().expect("the flooder");
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("the watcher");
    let after = Counters::read(metrics_port);
    let rss_after = rss_kib(server_pid);
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent >= 100_000 * FLOOD.as_secs(),
        "the flood itself fell short: {sent} datagrams in {} s",
        FLOOD.as_secs()
    );

    assert_eq!(load.wait_exit(Duration::from_secs(30)), Some(0), "loadgen failed:\n{}", load.log());
    let summary = load.log();
    let field = |key: &str| -> f64 {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in the loadgen summary:\n{summary}"))
    };
    let dropped = after.dropped - before.dropped;
    let ticks = after.ticks - before.ticks;
    let missing = after.missing - before.missing;
    // Frames the server missed per musician and tick, without and with the flood.
    let quiet_loss = (before.missing - quiet.missing) as f64 / ((before.ticks - quiet.ticks).max(1) * 21) as f64;
    let flood_loss = missing as f64 / (ticks.max(1) * 21) as f64;
    println!(
        "flood: {sent} datagrams ({} /s); server dropped {dropped}; RSS {rss_before} -> {rss_after} KiB; \
         ticks {ticks}, late ticks {}; frames the server missed: {:.3} % before the flood, {:.3} % during it; \
         most/fewest channels {}/{}; loadgen: {summary}",
        sent / FLOOD.as_secs(),
        after.late_ticks - before.late_ticks,
        100.0 * quiet_loss,
        100.0 * flood_loss,
        most_channels.load(Ordering::Relaxed),
        fewest_channels.load(Ordering::Relaxed)
    );

    assert!(server.wait_exit(Duration::ZERO).is_none(), "the server died:\n{}", server.log());
    assert!(rss_after <= rss_before + 32 * 1024, "memory grew from {rss_before} to {rss_after} KiB");
    assert_eq!(field("full_rate"), 20.0, "every emulated musician at full rate: {summary}");
    assert!(field("missing_pct") <= 0.5, "emulated musicians lost more than 0.5 % of frames: {summary}");
    assert!(
        flood_loss - quiet_loss <= 0.005,
        "the flood cost the musicians more than 0.5 % of their frames at the server: {:.3} % before, {:.3} % during",
        100.0 * quiet_loss,
        100.0 * flood_loss
    );
    assert!(
        most_channels.load(Ordering::Relaxed) <= CHANNELS as u64,
        "the channel table passed its maximum of {CHANNELS}"
    );
    assert!(dropped > 0, "the hostile datagrams were counted and dropped");
    assert_eq!(
        fewest_channels.load(Ordering::Relaxed),
        21,
        "somebody who was playing was evicted during the flood (fewest clients connected)"
    );
    drop(real);
    assert_eq!(server.stop(), Some(0), "clean exit:\n{}", server.log());
}

fn names(list: &Value) -> Vec<String> {
    list["clients"]
        .as_array()
        .map_or(vec![], |c| c.iter().filter_map(|e| e["name"].as_str().map(String::from)).collect())
}

/// The structured kinds of hostile datagram.
fn hostile_datagrams() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // Valid frames with a bad CRC.
    for m in [Message::ChatText("spam".into()), Message::ReqConnClientsList, Message::JitterBufferSize(4)] {
        let mut d = m.to_datagram(3);
        let last = d.len() - 1;
        d[last] ^= 0x5a;
        out.push(d);
    }
    // Split messages that never finish, and truncated frames.
    for index in [0u8, 1, 3] {
        let part = SplitPart { id: id::CHAT_TEXT, count: 5, index, data: vec![b'x'; 400] };
        let d = Message::Split(part).to_datagram(index);
        out.push(d[..d.len() / 2].to_vec());
        out.push(d);
    }
    // Forged connection-less requests.
    for m in [
        Message::ClmPingMs(1),
        Message::ClmPingMsWithNumClients { time: 2, clients: 0 },
        Message::ClmServerFull,
        Message::ClmDisconnection,
        Message::ReqConnClientsList,
    ] {
        out.push(m.to_datagram(0));
    }
    for clm in
        [id::CLM_REQ_SERVER_LIST, id::CLM_SEND_EMPTY_MESSAGE, id::CLM_REQ_VERSION_AND_OS, id::CLM_REQ_CONN_CLIENTS_LIST]
    {
        if let Ok(m) = Message::decode(clm, &[]) {
            out.push(m.to_datagram(0));
        }
    }
    // Audio of wrong sizes, and well-formed OPUS64 mono audio (23 bytes, as the real client sends) from new
    // addresses, which try to take channels.
    for len in [1usize, 7, 22, 23, 23, 23, 24, 50, 333, 1200] {
        out.push((0..len).map(|i| (i * 37 + 11) as u8).collect());
    }
    out
}

struct Counters {
    dropped: u64,
    ticks: u64,
    late_ticks: u64,
    missing: u64,
}

impl Counters {
    fn read(port: u16) -> Counters {
        let text = metrics(port);
        let sum = |name: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(name) && (l.as_bytes().get(name.len()) == Some(&b'{')))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum()
        };
        Counters {
            dropped: sum("tutti_datagrams_dropped_total"),
            ticks: sum("tutti_ticks_total"),
            late_ticks: sum("tutti_late_ticks_total"),
            missing: sum("tutti_audio_frames_missing_total"),
        }
    }
}

fn metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn metric(port: u16, name: &str) -> Option<u64> {
    metrics(port)
        .lines()
        .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b'{'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The directory keeps serving while flooded: two real Jamulus 3.9.1 servers register with `tutti directory`,
/// which then gets 110,000 hostile datagrams a second for 10 s (random bytes, bad CRCs, and every request of a
/// real directory session replayed from forged sources: registrations, unregistrations, list requests). Pass:
/// it lives, its memory grows by ≤ 32 MiB, both real servers stay listed, a list request from a fresh client
/// is answered throughout, and afterwards the list holds the real servers and nothing the flood sent.
#[test]
fn the_directory_keeps_its_real_servers_listed_through_a_flood() {
    require_jamulus();
    let _alone = ONE_FLOOD_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_udp_port();
    let directory_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut directory = Tutti::start(&[
        "directory",
        "--port",
        &port.to_string(),
        "--serverbindip",
        "127.0.0.1",
        "-o",
        "FloodDir;Town;de",
    ]);
    assert!(directory.wait_for_log("listening", WAIT), "tutti directory did not start:\n{}", directory.log());
    let servers: Vec<JamulusServer> = ["RealOne", "RealTwo"]
        .iter()
        .map(|name| {
            let mut options = ServerOptions::new(free_udp_port());
            options.serverinfo = Some(format!("{name};RealCity;82"));
            options.extra_args = vec!["--directoryserver".into(), directory_addr.to_string()];
            JamulusServer::start(options)
        })
        .collect();
    let listed = || {
        let names: Vec<String> = fetch_server_list(directory_addr, Duration::from_secs(2), true)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.name)
            .collect();
        names
    };
    assert!(
        support::wait_until(WAIT, || {
            let names = listed();
            names.iter().any(|n| n == "RealOne") && names.iter().any(|n| n == "RealTwo")
        }),
        "the real servers registered: {:?}",
        listed()
    );
    let rss_before = rss_kib(directory.pid());
    let cpu_before = cpu_seconds(directory.pid());

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || flood(directory_addr, &directory_session(), FLOOD_RATE, FLOOD, &stop, &sent))
    };
    let mut answered = 0;
    let mut asked = 0;
    while !flooder.is_finished() {
        // A new client each time, from its own address (the list policy answers one address once per 5 s).
        let names = list_from(directory_addr, Ipv4Addr::new(127, 0, 2, 1 + asked as u8));
        asked += 1;
        if names.iter().any(|n| n == "RealOne") && names.iter().any(|n| n == "RealTwo") {
            answered += 1;
        } else {
            println!("request {asked} during the flood got {names:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    flooder.join().expect("the flooder");
    let sent = sent.load(Ordering::Relaxed);
    let rss_after = rss_kib(directory.pid());
    let cpu = cpu_seconds(directory.pid()) - cpu_before;
    println!("directory CPU during the flood: {cpu:.2} s");
    let after = listed();
    println!(
        "directory flood: {sent} datagrams; list answered with both real servers {answered} of {asked} times; \
         RSS {rss_before} -> {rss_after} KiB; list after: {after:?}"
    );
    assert!(sent >= 100_000 * FLOOD.as_secs(), "the flood itself fell short: {sent} datagrams");
    assert!(directory.wait_exit(Duration::ZERO).is_none(), "the directory died:\n{}", directory.log());
    assert!(rss_after <= rss_before + 32 * 1024, "memory grew from {rss_before} to {rss_after} KiB");
    assert!(
        asked >= 10 && answered == asked,
        "list requests during the flood: {answered} of {asked} had both real servers"
    );
    let mut expected = vec!["FloodDir".to_string(), "RealOne".to_string(), "RealTwo".to_string()];
    let mut got = after;
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "the list after the flood holds the real servers and nothing the flood sent");
    drop(servers);
    assert_eq!(directory.stop(), Some(0), "clean exit:\n{}", directory.log());
}

/// The names a fresh client at `ip` gets for one CLM_REQ_SERVER_LIST (full or reduced list), within 1 s.
fn list_from(directory: SocketAddr, ip: Ipv4Addr) -> Vec<String> {
    let socket = std::net::UdpSocket::bind((ip, 0)).expect("a client socket");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("a timeout");
    let _ = socket.send_to(&Message::ClmReqServerList.to_datagram(0), directory);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 20_001];
    let mut names = Vec::new();
    while std::time::Instant::now() < deadline {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            if names.is_empty() {
                continue;
            }
            break;
        };
        let Some(frame) = tutti_proto::Frame::parse(&buf[..n]) else { continue };
        match Message::decode(frame.id, frame.data) {
            Ok(Message::ClmServerList(list)) => names.extend(list.into_iter().map(|e| e.name)),
            Ok(Message::ClmRedServerList(list)) => names.extend(list.into_iter().map(|e| e.name)),
            _ => {}
        }
    }
    names
}

/// Every datagram the real server sent to the real directory in the reference capture (registration,
/// list requests, unregistration), plus the same frames with a bad CRC.
fn directory_session() -> Vec<Vec<u8>> {
    const CAPTURE: &[u8] = include_bytes!("../../proto/tests/fixtures/jamulus-directory.pcap");
    let mut out: Vec<Vec<u8>> = tutti_proto::pcap::udp_records(CAPTURE)
        .expect("the capture")
        .filter_map(Result::ok)
        .filter(|r| r.destination.port() == 22224)
        .map(|r| r.payload.to_vec())
        .collect();
    assert!(!out.is_empty(), "no directory requests in the capture");
    let bad_crc: Vec<Vec<u8>> = out
        .iter()
        .map(|d| {
            let mut d = d.clone();
            let last = d.len() - 1;
            d[last] ^= 0xa5;
            d
        })
        .collect();
    out.extend(bad_crc);
    out
}

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}
