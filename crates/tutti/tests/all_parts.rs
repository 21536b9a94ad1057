//! `tutti all` as a newcomer runs it: one process, every part answering on its own protocol (a jam
//! ping, the lobby's page over HTTP, a name look-up at the registry, directly and through the lobby,
//! a STUN binding at the TURN relay), traced by strace to show that nothing is written to disk.

mod tutti_process;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tutti_process::{traced_child, Traced};
use tutti_proto::frame::write_frame;
use tutti_proto::{Frame, Message};

/// Two distinct free UDP ports (both sockets are held while the second is picked: two calls that each
/// bind and drop can be handed the same port, and then the jam server and the relay collide).
fn two_free_udp_ports() -> (u16, u16) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

/// GET `path` over HTTP/1.1; the status line and the body.
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

/// A CLM_PING_MS to the jam server, answered with the same time stamp.
fn jam_ping(server: SocketAddr) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let ping = Message::ClmPingMs(123_456);
    let mut data = Vec::new();
    ping.encode_data(&mut data);
    let mut datagram = Vec::new();
    write_frame(&mut datagram, ping.id(), 0, &data);
    let mut buf = [0u8; 2048];
    for _ in 0..10 {
        socket.send_to(&datagram, server).unwrap();
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            let Some(frame) = Frame::parse(&buf[..n]) else { continue };
            if let Ok(Message::ClmPingMs(123_456) | Message::ClmPingMsWithNumClients { time: 123_456, .. }) =
                Message::decode(frame.id, frame.data)
            {
                return true;
            }
        }
    }
    false
}

/// A STUN Binding request (RFC 8489) to the relay: a success answer with this transaction's ID.
fn stun_binding(relay: SocketAddr) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    let transaction = *b"tutti-all-01";
    request.extend_from_slice(&transaction);
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        socket.send_to(&request, relay).unwrap();
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            return n >= 20 && buf[..2] == [0x01, 0x01] && buf[8..20] == transaction;
        }
    }
    false
}

fn line_after<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(prefix)).map(|rest| rest.trim().trim_end_matches('/'))
}

#[test]
fn every_part_answers_and_nothing_is_written() {
    assert!(
        Command::new("strace").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "strace is needed: run ./scripts/test.sh, which installs it"
    );
    let dir = std::env::temp_dir().join(format!("tutti-all-{}", std::process::id()));
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (jam_port, turn_port) = two_free_udp_ports();
    let config = dir.join("tutti.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nport = {jam_port}\nserverbindip = \"127.0.0.1\"\n\n[lobby]\nlisten = \"127.0.0.1:0\"\n\n\
             [registry]\nlisten = \"127.0.0.1:0\"\n\n[turn]\nlistening_ip = [\"127.0.0.1\"]\nlistening_port = {turn_port}\n"
        ),
    )
    .unwrap();
    let trace = dir.join("trace.txt");
    let output = dir.join("output.txt");
    let command = [env!("CARGO_BIN_EXE_tutti"), "all", "--config", config.to_str().unwrap()];
    let tracer = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,creat,mkdir,mkdirat,rename,renameat2,unlink,unlinkat", "-o"])
        .arg(&trace)
        .args(command)
        .env("RUST_LOG", "trace") // even the most verbose diagnostics must not leak
        .env("HOME", &home)
        .env_remove("TUTTI_HOME")
        .env_remove("XDG_DATA_HOME")
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
        .spawn()
        .expect("start strace");
    let tutti = traced_child(tracer.id(), &command);
    let mut traced = Traced { tracer, tutti };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = String::new();
    while Instant::now() < deadline && !out.contains("tutti all: running") {
        std::thread::sleep(Duration::from_millis(50));
        out = std::fs::read_to_string(&output).unwrap();
    }
    let errors = || std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
    assert!(out.contains("tutti all: running"), "tutti all did not start:\n{out}\n{}", errors());
    for part in ["jam server   UDP", "lobby page   http://", "registry     http://", "TURN relay   UDP/TCP"] {
        assert!(out.contains(part), "the summary names the {part}:\n{out}");
    }
    // SIGHUP (systemctl reload) reloads a lobby certificate; without one it changes nothing
    tutti_process::signal(tutti, libc::SIGHUP);
    let lobby: SocketAddr = line_after(&out, "tutti lobby: listening on http://").unwrap().parse().unwrap();
    let registry: SocketAddr = line_after(&out, "tutti registry: listening on http://").unwrap().parse().unwrap();

    assert!(jam_ping(SocketAddr::from(([127, 0, 0, 1], jam_port))), "the jam server answers a ping");
    let (status, page) = http_get(lobby, "/");
    assert!(status.contains("200") && page.contains("<html"), "the page: {status}");
    let (status, body) = http_get(registry, "/name/nobody-here");
    assert!(status.contains("404") && body.contains("not registred"), "the registry: {status} {body}");
    let (status, _) = http_get(lobby, "/registry/name/nobody-here");
    assert!(status.contains("404"), "the lobby forwards name look-ups to the registry beside it: {status}");
    // The privacy policy of exactly these parts, generated from the configuration, on the lobby and the registry.
    for (part, addr) in [("lobby", lobby), ("registry", registry)] {
        let (status, policy) = http_get(addr, "/privacy");
        assert!(status.contains("200") && policy.starts_with("<!doctype html>"), "{part} /privacy: {status}");
        for says in [
            "It covers: the jam server, the video-chat lobby, the name registry, the TURN relay.",
            "No logging: nothing about you is written to a log.",
            "No third party is contacted",
            "(run by this service)",
        ] {
            assert!(policy.contains(says), "{part} /privacy lacks {says:?}:\n{policy}");
        }
    }
    let (_, config_js) = http_get(lobby, "/config.json");
    assert!(config_js.contains(&format!("stun:127.0.0.1:{turn_port}")), "the page's STUN server: {config_js}");
    assert!(stun_binding(SocketAddr::from(([127, 0, 0, 1], turn_port))), "the relay answers STUN");

    tutti_process::signal(tutti, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = traced.tracer.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "tutti all did not stop within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "tutti all exits cleanly on SIGTERM");
    let trace = std::fs::read_to_string(&trace).unwrap();
    let left_in_home: Vec<_> = std::fs::read_dir(&home).unwrap().map(|e| e.unwrap().file_name()).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    for line in trace.lines() {
        let writes = line.contains("O_WRONLY") || line.contains("O_RDWR") || line.contains("O_CREAT");
        let changes = ["creat(", "mkdir", "rename", "unlink"].iter().any(|call| line.contains(call));
        assert!(!(writes || changes), "tutti all changed the file system: {line}");
    }
    assert!(left_in_home.is_empty(), "nothing appeared in HOME: {left_in_home:?}");
}
