//! Privacy promises of the jam server, each a test named after it (docs/privacy.md lists them):
//! no client's IP address is ever sent to another client; chat text never reaches disk, even with the
//! connection log and recording on, and profiles reach it only as the track names of a recording the
//! musicians were told about; a musician's profile is forgotten when they leave.

mod support;
mod tutti_process;

use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::impair::ImpairedLink;
use support::{free_tcp_port, free_udp_port, wait_until, JsonRpc, StateDir};
use tutti_jam::{ClientConfig, ClientEvent};
use tutti_net::{Command as ClientCommand, RunningClient};
use tutti_process::{traced_child, Traced, Tutti};
use tutti_proto::message::Profile;

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "privacy-jam-secret-0123456789";

/// A silent tutti client with this profile name, bound to `ip`.
fn client(ip: Ipv4Addr, server: SocketAddr, name: &str) -> RunningClient {
    let profile = Profile { name: name.into(), city: format!("{name}ville"), ..Default::default() };
    RunningClient::start(
        SocketAddr::new(IpAddr::V4(ip), 0),
        server,
        ClientConfig { profile, ..Default::default() },
        Box::new(|pcm: &mut [f32]| pcm.fill(0.1)),
        Box::new(|_: &[f32]| {}),
    )
    .expect("a tutti client")
}

fn connected(client: &RunningClient) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(ClientEvent::Connected { .. }) = client.next_event(Duration::from_millis(100)) {
            return true;
        }
    }
    false
}

fn start_server(extra: &[&str]) -> (Tutti, SocketAddr) {
    let port = free_udp_port();
    let mut args =
        vec!["server".to_string(), "--port".into(), port.to_string(), "--serverbindip".into(), "127.0.0.1".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Tutti::start(&refs);
    assert!(server.wait_for_log("listening", WAIT), "tutti did not start:\n{}", server.log());
    (server, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn no_client_ip_address_is_ever_sent_to_another_client() {
    let (mut server, address) = start_server(&[]);
    // Bob listens through a relay that records every datagram the server sends him.
    let link = ImpairedLink::start(address, 0, Duration::ZERO, Duration::ZERO, 1);
    link.impairment.capture.store(true, std::sync::atomic::Ordering::Relaxed);
    let bob = client(Ipv4Addr::LOCALHOST, link.address(), "Bob");
    assert!(connected(&bob), "Bob connected");
    // Alice plays, chats and changes her profile from her own address.
    let alice_ip = Ipv4Addr::new(127, 0, 0, 42);
    let alice = client(alice_ip, address, "Alice");
    assert!(connected(&alice), "Alice connected");
    let alice_port = alice.local_addr().port();
    alice.command(ClientCommand::Chat("hello from Alice".into()));
    alice.command(ClientCommand::Profile(Profile { name: "Alice2".into(), ..Default::default() }));
    std::thread::sleep(Duration::from_secs(2));
    alice.stop().expect("Alice leaves");
    std::thread::sleep(Duration::from_millis(500));

    let seen = link.impairment.to_client.lock().unwrap().clone();
    let bytes: Vec<u8> = seen.concat();
    assert!(seen.len() > 200, "Bob received the server's traffic ({} datagrams)", seen.len());
    assert!(
        String::from_utf8_lossy(&bytes).contains("hello from Alice"),
        "Alice's chat reached Bob (the capture works)"
    );
    let ip = alice_ip.octets();
    let reversed = [ip[3], ip[2], ip[1], ip[0]];
    for (what, needle) in [
        ("her IP address", ip.to_vec()),
        ("her IP address, little-endian", reversed.to_vec()),
        ("her IP address as text", alice_ip.to_string().into_bytes()),
        ("her address and port as text", format!("{alice_ip}:{alice_port}").into_bytes()),
    ] {
        let found = bytes.windows(needle.len()).any(|w| w == needle.as_slice());
        assert!(!found, "{what} ({needle:?}) reached Bob in the {} datagrams he got", seen.len());
    }
    bob.stop().expect("Bob leaves");
    assert_eq!(server.stop(), Some(0), "clean exit:\n{}", server.log());
}

#[test]
fn chat_text_never_reaches_disk() {
    assert!(
        Command::new("strace").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "strace is needed: run ./scripts/test.sh, which installs it"
    );
    let state = StateDir::new("tutti-privacy-disk");
    let dir = state.path().to_path_buf();
    let trace = state.file("trace.txt");
    let port = free_udp_port();
    let port_arg = port.to_string();
    let log = state.file("connections.log");
    let recordings = state.file("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    // Everything that writes is on: the connection log and recording.
    let command = [
        env!("CARGO_BIN_EXE_tutti"),
        "server",
        "--port",
        &port_arg,
        "--serverbindip",
        "127.0.0.1",
        "--log",
        log.to_str().unwrap(),
        "--recording",
        recordings.to_str().unwrap(),
    ];
    let tracer = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,creat,rename,renameat,renameat2", "-o"])
        .arg(&trace)
        .args(command)
        .env("RUST_LOG", "trace")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(state.file("stderr.txt")).unwrap())
        .spawn()
        .expect("start strace");
    let tutti = traced_child(tracer.id(), &command);
    let mut traced = Traced { tracer, tutti };
    std::thread::sleep(Duration::from_millis(500));

    let chat = format!("secret-chat-{}", std::process::id());
    let name = format!("Secretname{}", std::process::id() % 100_000);
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let pat = client(Ipv4Addr::LOCALHOST, server, &name);
    assert!(connected(&pat), "the client connected");
    pat.command(ClientCommand::Chat(chat.clone()));
    std::thread::sleep(Duration::from_secs(3));
    pat.stop().expect("the client leaves");
    std::thread::sleep(Duration::from_millis(500));
    tutti_process::signal(traced.tutti, 15); // SIGTERM: a clean exit closes the recording
    let _ = traced.tracer.wait();

    // Every file the server opened for writing, created or renamed into place.
    let trace = std::fs::read_to_string(&trace).unwrap();
    let mut written: Vec<String> = trace
        .lines()
        .filter(|l| l.contains("O_WRONLY") || l.contains("O_RDWR") || l.contains("O_CREAT") || l.contains("rename"))
        .filter(|l| !l.contains("= -1"))
        .flat_map(|l| l.split('"').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>())
        .filter(|p| !p.starts_with("/dev/") && !p.starts_with("/proc/"))
        .collect();
    written.sort();
    written.dedup();
    assert!(written.iter().any(|p| p.ends_with("connections.log")), "the log was written: {written:?}\n{trace}");
    assert!(written.iter().any(|p| p.ends_with(".wav")), "a recording was written: {written:?}");
    let utf16 = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    for path in &written {
        let full = if path.starts_with('/') { PathBuf::from(path) } else { dir.join(path) };
        let Ok(bytes) = std::fs::read(&full) else { continue };
        // A recording names each musician's track (as Jamulus' does) after the notice; nothing else may.
        let in_recording = full.starts_with(&recordings);
        let markers: Vec<&String> = if in_recording { vec![&chat] } else { vec![&chat, &name] };
        for marker in markers {
            for needle in [marker.as_bytes().to_vec(), utf16(marker)] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "{marker:?} reached the disk in {}",
                    full.display()
                );
            }
        }
    }
    let stderr = std::fs::read_to_string(state.file("stderr.txt")).unwrap_or_default();
    assert!(!stderr.contains(&chat) && !stderr.contains(&name), "chat or profile in the diagnostics");
}

#[test]
fn a_musicians_profile_is_forgotten_when_they_leave() {
    let state = StateDir::new("tutti-privacy-profile");
    let secret = state.file("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let rpc_port = free_tcp_port();
    let (mut server, address) =
        start_server(&["--jsonrpcport", &rpc_port.to_string(), "--jsonrpcsecretfile", secret.to_str().unwrap()]);
    let rpc = JsonRpc::connect(rpc_port, SECRET);
    let clients = || rpc.call("jamulusserver/getClients", json!({}))["result"]["clients"].clone();
    let kim = client(Ipv4Addr::LOCALHOST, address, "Kim");
    assert!(connected(&kim), "Kim connected");
    assert!(
        wait_until(WAIT, || clients().to_string().contains("\"Kim\"")),
        "the server knows Kim while she plays: {}",
        clients()
    );
    kim.stop().expect("Kim leaves");
    assert!(wait_until(WAIT, || clients() == json!([])), "Kim is forgotten when she leaves: {}", clients());
    drop(rpc);
    assert_eq!(server.stop(), Some(0), "clean exit:\n{}", server.log());
}
