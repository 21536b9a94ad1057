//! Privacy promises of the jam server, each a test named after it (docs/privacy.md lists them):
//! no client's IP address is ever sent to another client; chat text never reaches disk, even with the
//! connection log and recording on, and profiles reach it only as the track names of a recording the
//! musicians were told about; a musician's profile is forgotten when they leave.

mod support;
mod tutti_process;

use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::impair::ImpairedLink;
use support::{free_tcp_port, free_udp_port, wait_until, JsonRpc, StateDir};
use tutti_jam::{ClientConfig, ClientEvent};
use tutti_net::{Command as ClientCommand, RunningClient};
use tutti_process::Tutti;
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
    // Until Bob has had her chat and a good deal of audio (seconds on a quiet machine, more under load).
    let heard_enough = || {
        let seen = link.impairment.to_client.lock().unwrap();
        seen.len() > 200 && String::from_utf8_lossy(&seen.concat()).contains("hello from Alice")
    };
    assert!(wait_until(WAIT, heard_enough), "Bob heard Alice's chat and audio");
    std::thread::sleep(Duration::from_secs(1)); // her profile change and more audio
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
    let syscalls = "open,openat,creat,rename,renameat,renameat2";
    let mut traced = tutti_process::strace(syscalls, &trace, &dir, &state.file("stderr.txt"), &command);
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
    traced.terminate(WAIT); // a clean exit closes the recording

    // Every file the server opened for writing, created or renamed into place.
    let trace = std::fs::read_to_string(&trace).unwrap();
    let written = tutti_process::written_files(&trace);
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
fn recordings_and_their_folders_are_readable_by_the_operator_only() {
    use std::os::unix::fs::PermissionsExt;
    let state = StateDir::new("tutti-privacy-modes");
    let recordings = state.file("recordings"); // made by tutti
    let port = free_udp_port();
    let args =
        ["server", "--port", &port.to_string(), "--serverbindip", "127.0.0.1", "-R", recordings.to_str().unwrap()];
    let mut server = Tutti::start_with_umask(0, &args);
    assert!(server.wait_for_log("listening", WAIT), "tutti did not start:\n{}", server.log());
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let pat = client(Ipv4Addr::LOCALHOST, address, "Pat");
    assert!(connected(&pat), "Pat connected");
    std::thread::sleep(Duration::from_secs(2));
    pat.stop().expect("Pat leaves");
    assert_eq!(server.stop(), Some(0), "clean exit:\n{}", server.log());

    // With a umask of 0 every mode is tutti's own choice: folders 0700, files 0600.
    let mut stack = vec![recordings.clone()];
    let (mut folders, mut files) = (0, Vec::new());
    while let Some(path) = stack.pop() {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.is_dir() {
            assert_eq!(mode, 0o700, "{} is a folder others can read or enter", path.display());
            folders += 1;
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode, 0o600, "{} is a file others can read", path.display());
            files.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(folders >= 2, "DIR and a session folder under it");
    assert!(files.iter().any(|f| f.ends_with(".wav")), "a track was recorded: {files:?}");
    assert!(files.len() >= 2, "and a project file: {files:?}");
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
