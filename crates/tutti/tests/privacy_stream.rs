//! Privacy promise of the listen-in stream, a test named after it (docs/privacy.md lists it): listeners
//! are anonymous; no listener address is logged or kept. A listener on its own loopback address
//! (127.0.0.77) fetches the page, the stream and the status while a musician plays; the address then
//! appears nowhere: not in trace-level diagnostics, not in the connection log, not in what the page,
//! the status or the musicians' chat say.

mod support;
mod tutti_process;

use std::process::Command;
use std::time::Duration;
use support::{free_tcp_port, free_udp_port, StateDir};
use tutti_jam::ClientEvent;
use tutti_process::{tone_client, Tutti};

const LISTENER: &str = "127.0.0.77";

fn fetch_from_listener(url: &str, seconds: f32) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-s", "--interface", LISTENER, "--max-time", &seconds.to_string(), url])
        .output()
        .expect("curl (run ./scripts/test.sh to install it)");
    out.stdout
}

#[test]
fn listeners_are_anonymous_no_listener_address_logged_or_kept() {
    let state = StateDir::new("tutti-privacy-stream");
    let log = state.file("connections.log");
    let (udp, http) = (free_udp_port(), free_tcp_port());
    let (udp_arg, http_arg) = (udp.to_string(), format!("127.0.0.1:{http}"));
    let args = ["server", "--port", &udp_arg, "--serverbindip", "127.0.0.1", "--stream", &http_arg];
    let mut server =
        Tutti::start_with_env(&[("RUST_LOG", "trace")], &[&args[..], &["--log", log.to_str().unwrap()]].concat());
    assert!(server.wait_for_log("listen-in stream at", Duration::from_secs(10)), "{}", server.log());
    let musician = tone_client(std::net::SocketAddr::from(([127, 0, 0, 1], udp)), "Player", 440.0);
    std::thread::sleep(Duration::from_secs(1));

    let base = format!("http://{http_arg}");
    let page = fetch_from_listener(&format!("{base}/"), 5.0);
    let stream = fetch_from_listener(&format!("{base}/stream.opus"), 2.0);
    assert!(stream.starts_with(b"OggS"), "the listener got the stream");
    let during = fetch_from_listener(&format!("{base}/status.json"), 5.0);
    let after = fetch_from_listener(&format!("{base}/status.json"), 5.0);
    let mut chat = Vec::new();
    while let Some(event) = musician.next_event(Duration::from_millis(200)) {
        if let ClientEvent::Chat(text) = event {
            chat.push(text);
        }
    }
    musician.stop().unwrap();
    assert_eq!(server.stop(), Some(0));

    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("127.0.0.1"), "the connection log is on and has the musician: {logged:?}");
    let surfaces = [
        ("diagnostics (RUST_LOG=trace)", server.log()),
        ("connection log", logged),
        ("page", String::from_utf8_lossy(&page).into_owned()),
        ("status.json", String::from_utf8_lossy(&during).into_owned() + &String::from_utf8_lossy(&after)),
        ("chat", chat.join("\n")),
    ];
    for (what, text) in surfaces {
        assert!(!text.contains(LISTENER) && !text.contains("127.0.0.77"), "the listener's address is in the {what}");
    }
}
