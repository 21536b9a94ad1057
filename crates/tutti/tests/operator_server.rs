//! The operator's side of `tutti server` on the real binary: recording end to end with two clients
//! playing known tones (files, format, length, tones, permissions, project files), start/stop over
//! JSON-RPC and SIGUSR2, JSON-RPC answers compared with the real Jamulus 3.9.1 server's (shapes and
//! error texts), authentication failures, the connection limit, and a metrics scrape.

mod support;
mod tutti_process;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{free_tcp_port, free_udp_port, shape, wait_until, JamulusServer, JsonRpc, ServerOptions, StateDir};
use tutti_process::{tone_client, Tutti};

const SECRET: &str = "tutti-test-secret-0123456789";

fn secret_file(dir: &Path) -> String {
    let path = dir.join("secret.txt");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    path.to_str().unwrap().to_string()
}

/// `tutti server` on 127.0.0.1 with JSON-RPC and `extra` flags; returns it with its UDP and TCP ports.
fn start_tutti(dir: &Path, extra: &[&str]) -> (Tutti, u16, u16) {
    let (udp, tcp) = (free_udp_port(), free_tcp_port());
    let (udp_s, tcp_s, secret) = (udp.to_string(), tcp.to_string(), secret_file(dir));
    let mut args = vec!["server", "--port", &udp_s, "--serverbindip", "127.0.0.1"];
    args.extend(["--jsonrpcport", &tcp_s, "--jsonrpcsecretfile", &secret]);
    args.extend_from_slice(extra);
    let tutti = Tutti::start(&args);
    assert!(tutti.wait_for_log("jam server listening on UDP", Duration::from_secs(10)), "{}", tutti.log());
    (tutti, udp, tcp)
}

/// Lines a raw connection gets for `lines` (sent one by one), until it closes or goes quiet.
fn raw_session(port: u16, lines: &[&str]) -> (Vec<Value>, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut replies = Vec::new();
    let mut closed = false;
    for line in lines {
        if stream.write_all(format!("{line}\n").as_bytes()).is_err() {
            closed = true;
            break;
        }
        loop {
            let mut text = String::new();
            match reader.read_line(&mut text) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => replies.push(serde_json::from_str(text.trim()).unwrap()),
                Err(_) => break,
            }
        }
        if closed {
            break;
        }
    }
    (replies, closed)
}

/// A connection the JSON-RPC server serves (it answers a request on it), left open; `None` if it was closed.
fn served_connection(port: u16) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"jamulusserver/getClients\",\"params\":{}}\n").ok()?;
    let mut reply = String::new();
    let read = BufReader::new(stream.try_clone().ok()?).read_line(&mut reply).ok()?;
    (read > 0).then_some(stream)
}

/// The value of the first sample in a Prometheus exposition whose line starts with `name`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name))?.rsplit(' ').next()?.parse().ok()
}

/// Zero crossings per second of a mono 16-bit signal ≈ 2 × frequency.
fn frequency(samples: &[i16]) -> f32 {
    let crossings = samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f32 / 2.0 / (samples.len() as f32 / 48_000.0)
}

#[test]
fn recording_two_tones_end_to_end() {
    let dir = StateDir::new("tutti-rec");
    let rec = dir.file("recordings");
    let (tutti, udp, tcp) = start_tutti(dir.path(), &["-R", rec.to_str().unwrap()]);
    let server = SocketAddr::from(([127, 0, 0, 1], udp));
    let rpc = JsonRpc::connect(tcp, SECRET);
    let status = rpc.call("jamulusserver/getRecorderStatus", json!({}))["result"].clone();
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["initialised"], true);

    let started = Instant::now();
    let a = tone_client(server, "Alice Ä", 440.0);
    let b = tone_client(server, "Bob", 660.0);
    std::thread::sleep(Duration::from_millis(2000));
    a.stop().unwrap();
    b.stop().unwrap();
    // (what really passed: a busy machine may oversleep)
    let ran = started.elapsed().as_secs_f32();
    // The session ends when the server goes idle: project files appear.
    let session = || std::fs::read_dir(&rec).ok()?.flatten().map(|e| e.path()).find(|p| p.is_dir());
    assert!(
        wait_until(Duration::from_secs(5), || session()
            .is_some_and(|s| s.join(format!("{}.rpp", s.file_name().unwrap().to_str().unwrap())).exists())),
        "a session with project files: {}",
        tutti.log()
    );
    let session = session().unwrap();
    let name = session.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("Jam-") && name.len() == "Jam-20261122-233111123".len(), "{name}");
    assert_eq!(std::fs::metadata(&rec).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(&session).unwrap().permissions().mode() & 0o777, 0o700);

    let mut wavs: Vec<PathBuf> = std::fs::read_dir(&session)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    wavs.sort();
    assert_eq!(wavs.len(), 2, "{wavs:?}");
    for (wav, (prefix, hz)) in wavs.iter().zip([("Alice_A-127_0_0_1_", 440.0), ("Bob_-127_0_0_1_", 660.0)]) {
        let file = wav.file_name().unwrap().to_str().unwrap();
        assert!(file.starts_with(prefix) && file.ends_with("-1.wav"), "{file}");
        assert_eq!(std::fs::metadata(wav).unwrap().permissions().mode() & 0o777, 0o600, "{file}");
        let mut bytes = Vec::new();
        std::fs::File::open(wav).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize, bytes.len() - 44, "44-byte header");
        let reader = hound::WavReader::open(wav).unwrap();
        let spec = reader.spec();
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 48_000, 16));
        let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
        let seconds = samples.len() as f32 / 48_000.0;
        assert!((1.0..ran + 0.3).contains(&seconds), "{file}: {seconds} s of {ran} s");
        assert_eq!(samples.len() % 128, 0, "whole ticks");
        let tail = &samples[samples.len() / 2..];
        let f = frequency(tail);
        assert!((f - hz).abs() < hz * 0.05, "{file}: heard {f} Hz, played {hz} Hz");
        let peak = tail.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((6_000..10_000).contains(&peak), "{file}: a quarter of full scale, got peak {peak}");
    }
    let lof = std::fs::read_to_string(session.join(format!("{name}.lof"))).unwrap();
    let lof_files: Vec<&str> = lof.lines().map(|l| l.split('"').nth(1).unwrap()).collect();
    assert_eq!(lof_files.len(), 2, "{lof}");
    for line in lof.lines() {
        let offset: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((0.0..1.0).contains(&offset), "{line}");
    }
    let rpp = std::fs::read_to_string(session.join(format!("{name}.rpp"))).unwrap();
    assert!(rpp.starts_with("<REAPER_PROJECT 0.1 \"5.0\" 1551567848\n") && rpp.ends_with(">\n"));
    assert_eq!(rpp.matches('<').count(), rpp.matches("\n>").count() + rpp.matches(" >").count(), "balanced");
    assert_eq!(rpp.matches("<TRACK {").count(), 2);
    for wav in &wavs {
        assert!(rpp.contains(&format!("FILE \"{}\"", wav.display())), "{rpp}");
    }

    // Stop over JSON-RPC, toggle back on with SIGUSR2.
    assert_eq!(rpp_result(&rpc, "jamulusserver/stopRecording"), "acknowledged");
    let enabled = || rpc.call("jamulusserver/getRecorderStatus", json!({}))["result"]["enabled"].clone();
    assert!(wait_until(Duration::from_secs(2), || enabled() == false));
    tutti_process::signal(tutti.pid(), libc::SIGUSR2);
    assert!(wait_until(Duration::from_secs(2), || enabled() == true), "SIGUSR2 switched recording on");
}

fn rpp_result(rpc: &JsonRpc, method: &str) -> Value {
    rpc.call(method, json!({}))["result"].clone()
}

#[test]
fn json_rpc_answers_like_the_real_jamulus_server() {
    support::require_jamulus();
    let dir = StateDir::new("tutti-rpc");
    let rec = dir.file("rec");
    let rec_arg = rec.to_str().unwrap();
    let mut options = ServerOptions::new(free_udp_port());
    options.extra_args = vec!["-R".into(), rec_arg.into(), "--norecord".into()];
    let jamulus = JamulusServer::start(options);
    let (_tutti, udp, tcp) = start_tutti(dir.path(), &["-R", rec_arg, "--norecord"]);
    let ours = JsonRpc::connect(tcp, SECRET);
    // A connected client in both, so that getClients lists one.
    let c1 = tone_client(jamulus.address(), "Shape", 440.0);
    let c2 = tone_client(SocketAddr::from(([127, 0, 0, 1], udp)), "Shape", 440.0);
    let listed = |rpc: &JsonRpc| {
        wait_until(Duration::from_secs(5), || {
            rpc.call("jamulusserver/getClients", json!({}))["result"]["clients"][0]["name"] == "Shape"
        })
    };
    assert!(listed(jamulus.rpc()) && listed(&ours), "both list the client");
    let calls = [
        ("jamulus/getMode", json!({})),
        ("jamulus/getVersion", json!({})),
        ("jamulusserver/getClients", json!({})),
        ("jamulusserver/getRecorderStatus", json!({})),
        ("jamulusserver/getServerProfile", json!({})),
        ("jamulusserver/setServerName", json!({ "serverName": "Shape test" })),
        ("jamulusserver/setWelcomeMessage", json!({ "welcomeMessage": "hi" })),
        ("jamulusserver/startRecording", json!({})),
        ("jamulusserver/restartRecording", json!({})),
        ("jamulusserver/stopRecording", json!({})),
        ("jamulusserver/setRecordingDirectory", json!({ "recordingDirectory": rec_arg })),
        ("jamulusserver/setServerName", json!({})),
        ("jamulusserver/getClients", json!([])),
        ("no/suchMethod", json!({})),
    ];
    for (method, params) in calls {
        let theirs = jamulus.rpc().call(method, params.clone());
        let mine = ours.call(method, params.clone());
        assert_eq!(shape(&mine), shape(&theirs), "{method} {params}: tutti {mine} vs Jamulus {theirs}");
        if theirs.get("error").is_some() || theirs["result"].is_string() {
            assert_eq!(mine["error"], theirs["error"], "{method}");
            assert_eq!(mine["result"], theirs["result"], "{method}");
        }
    }
    for method in ["jamulusserver/getServerProfile", "jamulusserver/getRecorderStatus"] {
        let (theirs, mine) = (jamulus.rpc().call(method, json!({})), ours.call(method, json!({})));
        assert_eq!(mine["result"]["name"], theirs["result"]["name"], "{method}: the new name");
        assert_eq!(mine["result"]["welcomeMessage"], theirs["result"]["welcomeMessage"]);
        assert_eq!(mine["result"]["enabled"], theirs["result"]["enabled"]);
    }
    // Line-level errors and the unauthenticated state, raw.
    let auth = "AUTH".to_string(); // replaced by each server's own apiAuth line
    let auth_line = |secret: &str| {
        format!(r#"{{"id":1,"jsonrpc":"2.0","method":"jamulus/apiAuth","params":{{"secret":"{secret}"}}}}"#)
    };
    let jamulus_port = jamulus.rpc().port();
    let sessions: Vec<Vec<String>> = vec![
        vec![
            r#"{"id":1,"jsonrpc":"2.0","method":"jamulus/getMode","params":{}}"#.into(),
            r#"{"id":2,"jsonrpc":"2.0","method":"jamulus/apiAuth","params":{"secret":"wrong"}}"#.into(),
            r#"{"id":3,"jsonrpc":"2.0","method":"jamulus/apiAuth","params":{"secret":5}}"#.into(),
            r#"{"id":4,"jsonrpc":"2.0","method":"jamulus/apiAuth"}"#.into(),
            r#"{"jsonrpc":"2.0","method":"no/such","params":{}}"#.into(),
        ],
        vec![auth.clone(), r#"{"id":5,"jsonrpc":"2.0","method":7,"params":{}}"#.into(), "".into(), "{bad".into()],
        vec![auth.clone(), "[]".into()],
        vec![auth.clone(), "[1]".into()],
        vec![auth.clone(), "5".into()],
        vec![
            auth.clone(),
            r#"[{"id":6,"jsonrpc":"2.0","method":"jamulus/getMode","params":{}},{"id":7,"jsonrpc":"2.0","method":"jamulus/getVersion","params":{}}]"#.into(),
        ],
    ];
    for lines in &sessions {
        let with = |secret: &str| -> Vec<String> {
            lines.iter().map(|l| if l == "AUTH" { auth_line(secret) } else { l.clone() }).collect()
        };
        let (their_lines, my_lines) = (with(jamulus.secret()), with(SECRET));
        let theirs = raw_session(jamulus_port, &their_lines.iter().map(String::as_str).collect::<Vec<_>>());
        let mine = raw_session(tcp, &my_lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(mine, theirs, "for {lines:?}");
    }
    drop((c1, c2));
}

#[test]
fn json_rpc_refuses_strangers_and_limits_connections() {
    let dir = StateDir::new("tutti-auth");
    let (tutti, _udp, tcp) = start_tutti(dir.path(), &[]);
    let (replies, closed) = raw_session(
        tcp,
        &[
            r#"{"id":1,"jsonrpc":"2.0","method":"jamulusserver/getClients","params":{}}"#,
            r#"{"id":2,"jsonrpc":"2.0","method":"jamulus/apiAuth","params":{"secret":"tutti-test-secret-0123456788"}}"#,
            r#"{"id":3,"jsonrpc":"2.0","method":"jamulusserver/stopRecording","params":{}}"#,
        ],
    );
    assert!(!closed);
    assert_eq!(replies[0]["error"]["code"], 401);
    assert_eq!(replies[1]["error"], json!({"code": 400, "message": "Authentication failed."}));
    assert_eq!(replies[2]["error"]["code"], 401, "still unauthenticated after a wrong secret");
    // 16 idle connections are served; the 17th is closed at once; the audio keeps its pace. (The session
    // above counts until its connection's thread has seen it close: a busy machine may take a moment, so each
    // of the 16 is known to be served before the next one is opened.)
    let idle: Vec<TcpStream> = (0..16)
        .map(|i| {
            let mut served = None;
            let ok = wait_until(Duration::from_secs(3), || {
                served = served_connection(tcp);
                served.is_some()
            });
            assert!(ok, "idle connection {} is served", i + 1);
            served.unwrap()
        })
        .collect();
    let mut extra = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = extra.write_all(b"{}\n");
    let mut buf = [0u8; 64];
    assert!(matches!(extra.read(&mut buf), Ok(0) | Err(_)), "the 17th connection is refused");
    drop(idle);
    // Once they are gone, a new authenticated connection works again.
    assert!(wait_until(Duration::from_secs(3), || {
        let (r, _) = raw_session(
            tcp,
            &[&format!(r#"{{"id":1,"jsonrpc":"2.0","method":"jamulus/apiAuth","params":{{"secret":"{SECRET}"}}}}"#)],
        );
        r.first().is_some_and(|r| r["result"] == "ok")
    }));
    drop(tutti);
}

#[test]
fn metrics_scrape() {
    let dir = StateDir::new("tutti-metrics");
    let port = free_tcp_port();
    let address = format!("127.0.0.1:{port}");
    let (tutti, udp, _tcp) = start_tutti(dir.path(), &["--metrics", &address]);
    assert!(tutti.wait_for_log("metrics at http://", Duration::from_secs(5)), "{}", tutti.log());
    let client = tone_client(SocketAddr::from(([127, 0, 0, 1], udp)), "Metric", 440.0);
    let scrape = || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let label = format!("{{port=\"{udp}\"}}");
    let ticks = format!("tutti_tick_duration_seconds_count{label}");
    // a few hundred ticks with the client in (taken until the counters show them: 100 ms steps)
    let mut text = scrape();
    let deadline = Instant::now() + Duration::from_secs(15);
    while sample(&text, &ticks).unwrap_or(0.0) < 300.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        text = scrape();
    }
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let value = |name: &str| -> f64 { sample(&text, name).unwrap_or_else(|| panic!("{name} missing:\n{text}")) };
    assert_eq!(value(&format!("tutti_clients_connected{label}")), 1.0);
    assert!(value(&format!("tutti_datagrams_received_total{label}")) > 100.0);
    assert!(value(&format!("tutti_audio_packets_sent_total{label}")) > 100.0);
    assert_eq!(value(&format!("tutti_recorder_state{label}")), 1.0, "no recording directory");
    assert!(value(&format!("tutti_tick_duration_seconds_count{label}")) > 100.0);
    assert!(text.contains("tutti_datagrams_dropped_total{port=") && text.contains("reason=\"bad_crc\"}"));
    assert!(text.contains("tutti_audio_frames_missing_total") && text.contains("tutti_late_ticks_total"));
    assert!(text.contains("# TYPE tutti_tick_duration_seconds histogram"));
    // Audio datagrams sent after their tick, by delay (live; the counters above lag by up to 100 ms).
    let sends = value(&format!("tutti_audio_send_delay_seconds_count{label}"));
    assert!(sends > 100.0, "{sends}");
    let within_5ms = value(&format!("tutti_audio_send_delay_seconds_bucket{{port=\"{udp}\",le=\"0.005\"}}"));
    assert!(within_5ms <= sends);
    assert!(!text.contains(&client.local_addr().port().to_string()), "no client address in the metrics");
    client.stop().unwrap();
}

#[test]
fn metrics_and_json_rpc_are_off_by_default() {
    let port = free_udp_port();
    let tutti = Tutti::start(&["server", "--port", &port.to_string(), "--serverbindip", "127.0.0.1"]);
    assert!(tutti.wait_for_log("jam server listening on UDP", Duration::from_secs(10)));
    let listening = std::fs::read_to_string(format!("/proc/{}/net/tcp", tutti.pid())).unwrap();
    let listening6 = std::fs::read_to_string(format!("/proc/{}/net/tcp6", tutti.pid())).unwrap_or_default();
    // Sockets of this process in LISTEN state (0A) would be ours or a sibling test's; check the fds.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", tutti.pid())).unwrap();
    let inodes: Vec<String> = fds
        .flatten()
        .filter_map(|f| std::fs::read_link(f.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(String::from))
        .collect();
    for line in listening.lines().chain(listening6.lines()).skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(!(fields[3] == "0A" && inodes.iter().any(|i| i == fields[9])), "tutti listens on TCP: {line}");
    }
    assert!(!inodes.is_empty(), "the UDP socket is seen");
}
