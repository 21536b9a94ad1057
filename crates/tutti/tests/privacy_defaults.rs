//! The privacy promises of `tutti server` on its defaults, checked on the real process under strace:
//! it writes no file, connects to nobody, sends datagrams only to the client that contacted it (no
//! third party, no public-IP lookup), and its diagnostics carry neither chat text nor client addresses.

mod tutti_process;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tutti_jam::ClientEvent;
use tutti_net::Command as ClientCommand;

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `f` on a thread of its own and waits at most `limit` for it: a stuck step fails the test
/// with `what` instead of hanging it.
fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("{what} took more than {limit:?}"))
}

#[test]
fn default_server_writes_nothing_and_talks_only_to_its_client() {
    let dir = std::env::temp_dir().join(format!("tutti-privacy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.txt");
    let stderr = dir.join("stderr.txt");
    let port = free_udp_port();
    let port_arg = port.to_string();
    let command = [env!("CARGO_BIN_EXE_tutti"), "server", "--port", &port_arg, "--serverbindip", "127.0.0.1"];
    let syscalls = "connect,sendto,sendmsg,sendmmsg,open,openat,creat";
    let mut traced = tutti_process::strace(syscalls, &trace, &dir, &stderr, &command);
    std::thread::sleep(Duration::from_millis(500));

    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let (client, _heard) = tutti_process::listening_client(server, "Private Pat", 1);
    let client_address = client.local_addr();
    // (the server runs under strace: on a busy machine it may take a while to answer)
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = |wanted: &dyn Fn(&ClientEvent) -> bool| {
        while Instant::now() < deadline {
            if client.next_event(Duration::from_millis(100)).is_some_and(|e| wanted(&e)) {
                return true;
            }
        }
        false
    };
    assert!(seen(&|e| matches!(e, ClientEvent::Connected { .. })), "the client connected");
    client.command(ClientCommand::Chat("my secret chat line".into()));
    let chat = |e: &ClientEvent| matches!(e, ClientEvent::Chat(t) if t.contains("my secret chat line"));
    assert!(seen(&chat), "the chat went through the server");
    std::thread::sleep(Duration::from_millis(1000)); // a second of audio both ways
    within(Duration::from_secs(10), "stopping the client", move || client.stop()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    traced.terminate(Duration::from_secs(10));

    let trace = std::fs::read_to_string(&trace).unwrap();
    let diagnostics = std::fs::read_to_string(&stderr).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    std::fs::remove_dir_all(&dir).unwrap();

    // No file opened for writing (a log, a recording, a cache): only reads, e.g. of shared libraries.
    for line in trace.lines().filter(|l| l.contains("open") || l.contains("creat(")) {
        assert!(
            !(line.contains("O_WRONLY")
                || line.contains("O_RDWR")
                || line.contains("O_CREAT")
                || line.contains("creat(")),
            "tutti opened a file for writing: {line}"
        );
    }
    assert_eq!(leftovers.len(), 2, "no file appeared in the working directory: {leftovers:?}");
    // No connect() anywhere (Jamulus connects a socket to 1.1.1.1 to find its public address).
    assert!(!trace.lines().any(|l| l.contains(" connect(")), "tutti connected somewhere:\n{trace}");
    // Every datagram went to the client.
    let sends = tutti_process::datagram_destinations(&trace);
    for destination in &sends {
        assert_eq!(*destination, client_address, "tutti sent to someone else:\n{trace}");
    }
    let sends = sends.len();
    assert!(sends > 100, "the server did send audio to the client ({sends} sends traced)");
    // Diagnostics: no chat text, no profile name, no client address.
    assert!(!diagnostics.contains("my secret chat line"), "chat text in the diagnostics:\n{diagnostics}");
    assert!(!diagnostics.contains("Private Pat"), "a name in the diagnostics");
    assert!(!diagnostics.contains(&format!(":{}", client_address.port())), "client address in the diagnostics");
    assert!(diagnostics.contains("client connected"), "diagnostics were on: {diagnostics}");
}
