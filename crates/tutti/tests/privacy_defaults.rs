//! The privacy promises of `tutti server` on its defaults, checked on the real process under strace:
//! it writes no file, connects to nobody, sends datagrams only to the client that contacted it (no
//! third party, no public-IP lookup), and its diagnostics carry neither chat text nor client addresses.

mod tutti_process;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tutti_jam::ClientEvent;
use tutti_net::Command as ClientCommand;

use tutti_process::{traced_child, Traced};

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Threads, states and kernel wait channels of a process, for a failure message.
fn process_state(pid: u32) -> String {
    let mut out = String::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let path = task.path();
            let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
            let state = read("status").lines().find(|l| l.starts_with("State")).unwrap_or("").to_string();
            out += &format!("{:?} {} {} {}\n", task.file_name(), read("comm").trim(), read("wchan"), state);
        }
    }
    out
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
    assert!(
        Command::new("strace").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "strace is needed: run ./scripts/test.sh, which installs it"
    );
    let dir = std::env::temp_dir().join(format!("tutti-privacy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.txt");
    let stderr = dir.join("stderr.txt");
    let port = free_udp_port();
    let port_arg = port.to_string();
    let command = [env!("CARGO_BIN_EXE_tutti"), "server", "--port", &port_arg, "--serverbindip", "127.0.0.1"];
    let tracer = Command::new("strace")
        // -s 64: sendmmsg batches (up to 64 datagrams) are printed in full, not as "[...]".
        .args(["-f", "-qq", "-s", "64", "-e", "trace=connect,sendto,sendmsg,sendmmsg,open,openat,creat", "-o"])
        .arg(&trace)
        .args(command)
        .env("RUST_LOG", "trace") // even the most verbose diagnostics must not leak
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start strace");
    let tutti = traced_child(tracer.id(), &command);
    let mut traced = Traced { tracer, tutti };
    std::thread::sleep(Duration::from_millis(500));

    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let (client, _heard) = tutti_process::listening_client(server, "Private Pat", 1);
    let client_address = client.local_addr();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut chat_seen = false;
    client.command(ClientCommand::Chat("my secret chat line".into()));
    while Instant::now() < deadline && !chat_seen {
        chat_seen = matches!(client.next_event(Duration::from_millis(100)), Some(ClientEvent::Chat(t)) if t.contains("my secret chat line"));
    }
    assert!(chat_seen, "the chat went through the server");
    std::thread::sleep(Duration::from_millis(1000)); // a second of audio both ways
    within(Duration::from_secs(10), "stopping the client", move || client.stop()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    tutti_process::signal(tutti, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = traced.tracer.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            panic!("tutti did not stop within 10 s of SIGTERM:\n{}", process_state(tutti));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "tutti exits cleanly on SIGTERM");

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
    let wanted = format!("sin_port=htons({}), sin_addr=inet_addr(\"127.0.0.1\")", client_address.port());
    let mut sends = 0;
    for line in trace.lines().filter(|l| l.contains("send")) {
        assert!(!line.contains("[...]") && !line.contains(", ...]"), "strace left out datagrams: {line}");
        for destination in line.split("msg_name=").skip(1).chain(line.split(", {sa_family=").skip(1)) {
            sends += 1;
            assert!(destination.contains(&wanted), "tutti sent to someone else: {line}");
        }
    }
    assert!(sends > 100, "the server did send audio to the client ({sends} sends traced)");
    // Diagnostics: no chat text, no profile name, no client address.
    assert!(!diagnostics.contains("my secret chat line"), "chat text in the diagnostics:\n{diagnostics}");
    assert!(!diagnostics.contains("Private Pat"), "a name in the diagnostics");
    assert!(!diagnostics.contains(&format!(":{}", client_address.port())), "client address in the diagnostics");
    assert!(diagnostics.contains("client connected"), "diagnostics were on: {diagnostics}");
}
