//! Privacy promises around the directory, each a test named after it (docs/privacy.md lists them), on
//! the real processes under strace: a jam server that registers with a directory talks to nobody but
//! its clients and that directory (and no public-IP lookup); the directory writes only what it lists,
//! and nothing about the clients that read the list reaches its file or its diagnostics.

mod support;
mod tutti_process;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;
use support::{free_udp_port, wait_until, StateDir};
use tutti_net::fetch_server_list;
use tutti_process::Tutti;

const WAIT: Duration = Duration::from_secs(15);
/// Every file-writing and sending call, and connect (a public-IP lookup connects a UDP socket).
const SYSCALLS: &str = "connect,sendto,sendmsg,sendmmsg,open,openat,creat,rename,renameat,renameat2";

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Whether the directory at `directory` lists a server named `name` (without pinging the servers listed:
/// only the jam client and the directory may talk to the server under test).
fn listed(directory: SocketAddr, name: &str) -> bool {
    fetch_server_list(directory, Duration::from_secs(2), false).is_ok_and(|l| l.iter().any(|s| s.name == name))
}

/// Asks `directory` for its list three times from `reader`, as a Jamulus client does (never echoing the
/// cookie), and returns how many datagrams came back.
fn read_list_from(reader: Ipv4Addr, directory: SocketAddr) -> usize {
    let socket = UdpSocket::bind((reader, 0)).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let request = tutti_proto::Message::ClmReqServerList.to_datagram(0);
    let mut answers = 0;
    let mut buf = [0u8; 20_001];
    for _ in 0..3 {
        socket.send_to(&request, directory).unwrap();
        while socket.recv_from(&mut buf).is_ok() {
            answers += 1;
        }
    }
    answers
}

#[test]
fn with_a_directory_configured_the_servers_only_other_peer_is_that_directory() {
    let state = StateDir::new("tutti-privacy-peers");
    let directory_port = free_udp_port();
    let mut directory =
        Tutti::start(&["directory", "--port", &directory_port.to_string(), "--serverbindip", "127.0.0.1"]);
    assert!(directory.wait_for_log("listening", WAIT), "tutti directory did not start:\n{}", directory.log());

    let (trace, stderr) = (state.file("trace.txt"), state.file("stderr.txt"));
    let port = free_udp_port().to_string();
    let target = local(directory_port).to_string();
    let info = "PeerCheck;Town;de";
    let command = [
        env!("CARGO_BIN_EXE_tutti"),
        "server",
        "--port",
        &port,
        "--serverbindip",
        "127.0.0.1",
        "-e",
        &target,
        "-o",
        info,
    ];
    let mut traced = tutti_process::strace(SYSCALLS, &trace, state.path(), &stderr, &command);
    assert!(wait_until(WAIT, || listed(local(directory_port), "PeerCheck")), "the server registered");
    let (client, _heard) = tutti_process::listening_client(local(port.parse().unwrap()), "Pat", 1);
    std::thread::sleep(Duration::from_secs(1)); // audio both ways, pings, and the directory's keep-alives
    let client_address = client.local_addr();
    client.stop().expect("the client leaves");
    traced.terminate(WAIT); // and unregisters on the way out
    assert!(wait_until(WAIT, || !listed(local(directory_port), "PeerCheck")), "the server unregistered");
    assert_eq!(directory.stop(), Some(0), "clean exit:\n{}", directory.log());

    let trace = std::fs::read_to_string(&trace).unwrap();
    // No public-IP lookup: no connect() at all (Jamulus connects a UDP socket to 1.1.1.1 for it).
    assert!(!trace.lines().any(|l| l.contains(" connect(")), "tutti connected somewhere:\n{trace}");
    let sends = tutti_process::datagram_destinations(&trace);
    let to = |who: SocketAddr| sends.iter().filter(|d| **d == who).count();
    let (to_directory, to_client) = (to(local(directory_port)), to(client_address));
    // The directory on loopback asks for no NAT hole punching (it only does for public servers); on the
    // Internet the server also sends one empty datagram to each list reader the directory names.
    let mut others: Vec<&SocketAddr> =
        sends.iter().filter(|d| **d != local(directory_port) && **d != client_address).collect();
    others.dedup();
    assert_eq!(
        to_directory + to_client,
        sends.len(),
        "datagrams to a third party {others:?} (directory {directory_port}, client {client_address}):\n{trace}"
    );
    assert!(to_directory >= 2 && to_client > 50, "registered, unregistered and served audio: {sends:?}");
    assert!(tutti_process::written_files(&trace).is_empty(), "no file written:\n{trace}");
}

#[test]
fn the_directory_writes_only_what_it_lists_and_nothing_about_the_clients_that_read_it() {
    let state = StateDir::new("tutti-privacy-directory");
    let (trace, stderr, file) = (state.file("trace.txt"), state.file("stderr.txt"), state.file("servers.txt"));
    let port = free_udp_port();
    let port_arg = port.to_string();
    let command = [
        env!("CARGO_BIN_EXE_tutti"),
        "directory",
        "--port",
        &port_arg,
        "--serverbindip",
        "127.0.0.1",
        "--directoryfile",
        file.to_str().unwrap(),
    ];
    let mut traced = tutti_process::strace(SYSCALLS, &trace, state.path(), &stderr, &command);
    let server_port = free_udp_port().to_string();
    let target = local(port).to_string();
    let args = ["server", "--port", &server_port, "--serverbindip", "127.0.0.1", "-e", &target, "-o", "Listed;Town;de"];
    let mut server = Tutti::start(&args);
    assert!(wait_until(WAIT, || listed(local(port), "Listed")), "the server registered:\n{}", server.log());

    // Readers from their own loopback addresses, as Jamulus clients on other machines.
    let readers = [Ipv4Addr::new(127, 0, 0, 61), Ipv4Addr::new(127, 0, 0, 62)];
    for reader in readers {
        assert!(read_list_from(reader, local(port)) > 0, "the directory answered {reader}");
    }
    std::thread::sleep(Duration::from_millis(500));
    traced.terminate(WAIT);
    assert_eq!(server.stop(), Some(0), "clean exit:\n{}", server.log());

    let trace = std::fs::read_to_string(&trace).unwrap();
    let written = tutti_process::written_files(&trace);
    assert!(written.iter().any(|p| p.ends_with("servers.txt")), "the list was written: {written:?}\n{trace}");
    let list = std::fs::read_to_string(&file).expect("the directory file");
    assert!(list.starts_with(&format!("127.0.0.1:{server_port};")), "it holds what it lists: {list}");
    let diagnostics = std::fs::read_to_string(&stderr).unwrap();
    assert!(diagnostics.contains("listening"), "diagnostics were on: {diagnostics}");
    for path in &written {
        let full = if path.starts_with('/') { path.into() } else { state.path().join(path) };
        let text = std::fs::read(&full).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        for reader in readers {
            assert!(!text.contains(&reader.to_string()), "{reader} in {}: {text}", full.display());
        }
    }
    for reader in readers {
        assert!(!diagnostics.contains(&reader.to_string()), "{reader} in the diagnostics:\n{diagnostics}");
        assert!(!list.contains(&IpAddr::V4(reader).to_string()), "a reader in the list file");
    }
    // What is written is one line per listed server (the directory's own entry is not written).
    assert_eq!(list.lines().filter(|l| !l.trim().is_empty()).count(), 1, "one server, nothing else: {list}");
}
