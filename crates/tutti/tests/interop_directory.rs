//! The directory against real Jamulus 3.9.1 servers, all on loopback: a real server registers with
//! `tutti directory` and is listed (tutti's list client and a raw CLM_REQ_SERVER_LIST), survives a
//! kill -9 of the directory through the persistence file, and unregisters when it stops; `tutti
//! server -e` registers with a real Jamulus directory and unregisters on quit; a real server
//! registers with `tutti server -e localhost`; full list, filter and version are refused with the
//! codes a real server reports; storms of bogus input leave the directory working, and the
//! amplification ratio towards a forged source is measured.

mod support;
mod tutti_process;

use serde_json::{json, Value};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use support::{free_udp_port, require_jamulus, wait_until, JamulusServer, ServerOptions, StateDir};
use tutti_net::{fetch_server_list, ListedServer};
use tutti_process::Tutti;
use tutti_proto::{Frame, Message};

const WAIT: Duration = Duration::from_secs(15);

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `tutti directory` on a free port of 127.0.0.1, with the extra flags.
fn start_directory(port: u16, extra: &[&str]) -> Tutti {
    let port_text = port.to_string();
    let mut args = vec!["directory", "--port", &port_text, "--serverbindip", "127.0.0.1", "-o", "TuttiDir;DirTown;de"];
    args.extend_from_slice(extra);
    let directory = Tutti::start(&args);
    assert!(directory.wait_for_log("listening", WAIT), "tutti directory did not start:\n{}", directory.log());
    directory
}

/// A real Jamulus server registering with `directory`.
fn real_server(name: &str, directory: &str) -> JamulusServer {
    let mut options = ServerOptions::new(free_udp_port());
    options.serverinfo = Some(format!("{name};RealCity;82"));
    options.numchannels = 7;
    options.extra_args = vec!["--directoryserver".into(), directory.into()];
    JamulusServer::start(options)
}

fn list(directory: SocketAddr) -> Vec<ListedServer> {
    fetch_server_list(directory, Duration::from_secs(3), true).unwrap_or_default()
}

fn names(servers: &[ListedServer]) -> Vec<String> {
    servers.iter().map(|s| s.name.clone()).collect()
}

fn registration_status(server: &JamulusServer) -> String {
    let response: Value = server.rpc().call("jamulusserver/getServerProfile", json!({}));
    response["result"]["registrationStatus"].as_str().unwrap_or("").to_string()
}

/// Sends one CLM_REQ_SERVER_LIST from a fresh socket and returns the message IDs of the answers
/// (in arrival order) and the decoded full list.
fn raw_list_request(directory: SocketAddr) -> (Vec<u16>, Vec<String>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    // The request bytes of [dir #3] in jamulus-directory.pcap.
    socket.send_to(&[0x00, 0x00, 0xef, 0x03, 0x00, 0x00, 0x00, 0x18, 0xcb], directory).unwrap();
    let (mut ids, mut full) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 20_001];
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        let frame = Frame::parse(&buf[..n]).expect("a valid frame");
        ids.push(frame.id);
        if let Ok(Message::ClmServerList(l)) = Message::decode(frame.id, frame.data) {
            full.extend(l.into_iter().map(|e| e.name));
        }
    }
    (ids, full)
}

#[test]
fn real_server_registers_with_tutti_directory_survives_kill_9_and_unregisters() {
    require_jamulus();
    let state = StateDir::new("tutti-directory-test");
    let file = state.file("servers.txt");
    let file_arg = file.to_str().unwrap().to_string();
    let port = free_udp_port();
    let mut directory = start_directory(port, &["--directoryfile", &file_arg]);
    let real = real_server("RealSrv", &format!("127.0.0.1:{port}"));

    let mut seen = Vec::new();
    assert!(
        wait_until(WAIT, || {
            seen = list(local(port));
            names(&seen).contains(&"RealSrv".to_string())
        }),
        "the real server was not listed: {seen:?}\n{}\n{}",
        directory.log(),
        real.log_tail()
    );
    assert_eq!(registration_status(&real), "registered");
    let entry = seen.iter().find(|s| s.name == "RealSrv").unwrap();
    assert_eq!((entry.city.as_str(), entry.country, entry.max_clients), ("RealCity", 82, 7));
    assert_eq!(entry.address, real.address(), "listed at the source address of its registration");
    assert_eq!(entry.clients, Some(0), "pinged: {entry:?}");
    assert!(entry.ping_ms.is_some_and(|ms| ms < 1000), "{entry:?}");
    assert_eq!((seen[0].name.as_str(), seen[0].address), ("TuttiDir", local(port)), "entry 0 is the directory");

    // A capture-verified raw request: reduced list first, then the full list (our IP is proven now).
    let (ids, full) = raw_list_request(local(port));
    let lists: Vec<u16> = ids.into_iter().filter(|&id| id == 1018 || id == 1006).collect();
    assert_eq!(lists, [1018, 1006], "CLM_RED_SERVER_LIST, then CLM_SERVER_LIST");
    assert_eq!(full, ["TuttiDir", "RealSrv"]);

    // kill -9, then restart on the same port: the entry comes back from the file although the real
    // server will not re-register for 15 minutes.
    assert!(wait_until(WAIT, || std::fs::read_to_string(&file).unwrap_or_default().contains(";UmVhbFNydg==;")));
    let pid = directory.pid() as libc::pid_t;
    // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    directory.stop();
    let directory = start_directory(port, &["--directoryfile", &file_arg]);
    assert!(names(&list(local(port))).contains(&"RealSrv".to_string()), "lost across kill -9:\n{}", directory.log());

    // The real server unregisters when it stops.
    real.stop();
    assert!(
        wait_until(WAIT, || !names(&list(local(port))).contains(&"RealSrv".to_string())),
        "still listed after the real server stopped"
    );
}

#[test]
fn tutti_server_registers_with_a_real_jamulus_directory_and_unregisters_on_quit() {
    require_jamulus();
    let mut options = ServerOptions::new(free_udp_port());
    options.serverinfo = Some("RealDir;DirCity;82".into());
    options.extra_args = vec!["--directoryserver".into(), "localhost".into()];
    let real_directory = JamulusServer::start(options);

    let port = free_udp_port();
    let (port_text, dir_text) = (port.to_string(), real_directory.address().to_string());
    let mut server = Tutti::start(&[
        "server",
        "--port",
        &port_text,
        "--serverbindip",
        "127.0.0.1",
        "-e",
        &dir_text,
        "-o",
        "TuttiSrv;Town;de",
        "-u",
        "5",
    ]);
    assert!(
        server.wait_for_log("\"registered\"", WAIT),
        "no registration:\n{}\n{}",
        server.log(),
        real_directory.log_tail()
    );
    let mut seen = Vec::new();
    assert!(
        wait_until(WAIT, || {
            seen = list(real_directory.address());
            seen.iter().any(|s| s.name == "TuttiSrv")
        }),
        "the real directory does not list tutti: {seen:?}"
    );
    let entry = seen.iter().find(|s| s.name == "TuttiSrv").unwrap();
    assert_eq!((entry.city.as_str(), entry.country, entry.max_clients, entry.address), ("Town", 82, 5, local(port)));
    assert_eq!(entry.clients, Some(0), "tutti answers the list's ping");

    assert_eq!(server.stop(), Some(0));
    assert!(
        wait_until(WAIT, || !names(&list(real_directory.address())).contains(&"TuttiSrv".to_string())),
        "tutti did not unregister on quit"
    );
}

#[test]
fn real_server_registers_with_tutti_server_as_its_own_directory() {
    require_jamulus();
    let port = free_udp_port();
    let port_text = port.to_string();
    let _directory = Tutti::start(&[
        "server",
        "--port",
        &port_text,
        "--serverbindip",
        "127.0.0.1",
        "-e",
        "localhost",
        "-o",
        "Both;X;de",
    ]);
    assert!(_directory.wait_for_log("listening", WAIT));
    let real = real_server("RealSrv2", &format!("127.0.0.1:{port}"));
    assert!(wait_until(WAIT, || names(&list(local(port))) == ["Both", "RealSrv2"]), "{:?}", names(&list(local(port))));
    assert_eq!(registration_status(&real), "registered");
}

#[test]
fn full_directory_filter_and_minimum_version_are_refused_with_jamulus_codes() {
    require_jamulus();
    let cases: [(&[&str], &str); 3] = [
        (&["--maxservers", "1"][..], "directory_server_full"),
        (&["--listfilter", "127.0.0.9"], "requirements_not_fulfilled"),
        (&["--listfilter", "[3.10.0]"], "server_version_too_old"),
    ];
    for (flags, status) in cases {
        let port = free_udp_port();
        let _directory = start_directory(port, flags);
        let real = real_server("Refused", &format!("127.0.0.1:{port}"));
        assert!(wait_until(WAIT, || registration_status(&real) == status), "{flags:?}: {}", registration_status(&real));
        assert_eq!(names(&list(local(port))), ["TuttiDir"]);
    }
}

/// Datagrams from many ports of one forged IP (127.0.0.2/127.0.0.3: loopback aliases, so that the
/// legitimate traffic from 127.0.0.1 keeps its own budget). Returns (bytes sent, bytes received back).
fn flood(
    directory: SocketAddr,
    from_ip: [u8; 4],
    sockets: usize,
    rounds: usize,
    datagram: &dyn Fn(usize) -> Vec<u8>,
) -> (u64, u64) {
    let sockets: Vec<UdpSocket> =
        (0..sockets).map(|_| UdpSocket::bind(SocketAddr::from((from_ip, 0))).expect("bind a loopback alias")).collect();
    let (mut sent, mut received) = (0u64, 0u64);
    let mut buf = [0u8; 20_001];
    for round in 0..rounds {
        for (i, s) in sockets.iter().enumerate() {
            let d = datagram(round * sockets.len() + i);
            sent += s.send_to(&d, directory).unwrap() as u64;
        }
        for s in &sockets {
            s.set_nonblocking(true).unwrap();
            while let Ok((n, _)) = s.recv_from(&mut buf) {
                received += n as u64;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for s in &sockets {
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            received += n as u64;
        }
    }
    (sent, received)
}

#[test]
fn storms_and_amplification() {
    require_jamulus();
    let port = free_udp_port();
    let directory = start_directory(port, &[]);
    let target = local(port);
    let real = real_server("StormProof", &format!("127.0.0.1:{port}"));
    assert!(wait_until(WAIT, || names(&list(target)).contains(&"StormProof".to_string())));

    // Bogus registrations, garbage and list floods from 200 ports while a second real server registers.
    let started = Instant::now();
    let bogus = |i: usize| -> Vec<u8> {
        let seed = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(1_013_904_223);
        match i % 4 {
            0 => (0..(seed % 80)).map(|k| (seed >> (k % 24)) as u8).collect(),
            1 => {
                let mut d = Message::ClmReqServerList.to_datagram(0);
                d[7] ^= 1; // bad CRC
                d
            }
            2 => Message::ClmRegisterServerEx {
                info: tutti_proto::message::ServerInfo { name: format!("Spam{i}"), ..Default::default() },
                os: tutti_proto::message::OsType::Linux,
                version: "3.9.1".into(),
            }
            .to_datagram(0),
            _ => Message::ClmReqServerList.to_datagram(0),
        }
    };
    let second = real_server("AfterStorm", &format!("127.0.0.1:{port}"));
    let (sent, _) = flood(target, [127, 0, 0, 3], 200, 25, &bogus);
    // (the second server started as the flood did; on a busy machine its registration may complete
    // just after the flood's last datagram)
    let registered = wait_until(WAIT, || {
        names(&list(target)).contains(&"AfterStorm".to_string()) && registration_status(&second) == "registered"
    });
    let listed = names(&list(target));
    assert!(registered, "{listed:?}: {}\n{}", registration_status(&second), directory.log());
    assert!(!listed.iter().any(|n| n.starts_with("Spam")), "forged registrations must not be listed: {listed:?}");
    eprintln!("storm: {sent} bytes in {:?}", started.elapsed());

    // Amplification towards a forged source: list requests from 100 ports of 127.0.0.2, 10 each.
    let request = |_: usize| Message::ClmReqServerList.to_datagram(0);
    let (sent, received) = flood(target, [127, 0, 0, 2], 100, 10, &request);
    let ratio = received as f64 / sent as f64;
    eprintln!("amplification (jamulus policy, {} servers): {sent} bytes in, {received} out, {ratio:.2}x", 2);
    let one_answer = 9 * 3 + 13 + 400; // one courtesy answer of this small list, generously
    assert!(received <= 3 * sent + one_answer as u64, "{received} bytes back for {sent}");

    let strict_port = free_udp_port();
    let _strict = start_directory(strict_port, &["--listpolicy", "strict"]);
    let (sent, received) = flood(local(strict_port), [127, 0, 0, 2], 100, 10, &request);
    let ratio = received as f64 / sent as f64;
    eprintln!("amplification (strict policy): {sent} bytes in, {received} out, {ratio:.2}x");
    assert!(ratio <= 3.0, "{ratio}");
    assert!(!names(&list(local(strict_port))).is_empty(), "a proven client still gets the list in strict mode");
    drop(real);
}
