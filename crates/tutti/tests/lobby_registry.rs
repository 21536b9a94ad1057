//! `tutti lobby --registry URL` forwards `/registry/name/…` and `/registry/addr/…` to a real
//! `tutti registry`: registration and look-ups pass through with the registry's status and JSON body;
//! other paths, methods and oversized bodies are refused; nothing about the user is passed on (checked
//! with a fake registry that records the raw request); a registry that is down gives 502 with JSON; and
//! `/config.json` says whether names are available.

mod lobby_support;

use lobby_support::{http_get, http_request, Lobby, Registry};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

fn body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
}

#[test]
fn names_are_forwarded_to_a_real_registry() {
    let mut registry = Registry::start();
    let lobby = Lobby::start(&["--registry", &registry.url()]);
    assert_eq!(body(&lobby.get("/config.json"))["registry"], json!(true));

    // a Jami (RSA) test key: the forwarding does not care which kind (the browser tests register Ed25519)
    let registration = tutti_registry::test_keys::rsa_registration(0, "alice");
    let post = serde_json::to_vec(&registration).unwrap();
    let headers =
        "Content-Type: application/json\r\nCookie: secret=1\r\nUser-Agent: probe\r\nX-Forwarded-For: 203.0.113.9\r\n";
    let (status, _, answer) = http_request(lobby.addr, "POST", "/registry/name/alice", headers, &post);
    assert_eq!((status, body(&answer)), (200, json!({ "success": true })), "registered through the lobby");

    let (status, head, answer) = http_request(lobby.addr, "GET", "/registry/name/alice", "", b"");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let answer = body(&answer);
    let direct = body(&http_get(registry.addr, "/name/alice").1);
    assert_eq!(answer, direct, "the registry's answer, unchanged");
    let addr = answer["addr"].as_str().unwrap().to_string();
    assert_eq!(
        body(&http_request(lobby.addr, "GET", &format!("/registry/addr/{addr}"), "", b"").2),
        json!({ "name": "alice" })
    );
    let (status, _, missing) = http_request(lobby.addr, "GET", "/registry/name/nobody", "", b"");
    assert_eq!((status, body(&missing)["error"].is_string()), (404, true), "the registry's 404 passes through");
    let (status, _, taken) = http_request(
        lobby.addr,
        "POST",
        "/registry/name/alice",
        "Content-Type: application/json\r\n",
        br#"{"addr":"0x00"}"#,
    );
    assert!((400..500).contains(&status) && body(&taken)["error"].is_string(), "a refusal passes through: {status}");

    // only those two paths, GET and POST, 16 KiB
    for path in ["/registry/", "/registry/stats", "/registry/../name/alice", "/registry/name/%2e%2e/x"] {
        let (status, _, _) = http_request(lobby.addr, "GET", path, "", b"");
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
    assert_eq!(http_request(lobby.addr, "DELETE", "/registry/name/alice", "", b"").0, 405);
    let big = vec![b'x'; 17 * 1024];
    let (status, _, answer) =
        http_request(lobby.addr, "POST", "/registry/name/bob", "Content-Type: application/json\r\n", &big);
    assert_eq!((status, body(&answer)["error"].is_string()), (413, true));

    registry.kill();
    let (status, _, answer) = http_request(lobby.addr, "GET", "/registry/name/alice", "", b"");
    assert_eq!((status, body(&answer)["error"].is_string()), (502, true), "a registry that is down: 502");
}

#[test]
fn nothing_about_the_user_reaches_the_registry() {
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let recorder = std::thread::spawn(move || {
        let (mut stream, _) = fake.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") || !request.ends_with(b"}") {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let answer = r#"{"success":true}"#;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        String::from_utf8_lossy(&request).to_string()
    });
    let lobby = Lobby::start(&["--registry", &format!("http://{fake_addr}")]);
    let headers = "Content-Type: application/json\r\nCookie: secret=1\r\nUser-Agent: probe-agent\r\nX-Forwarded-For: 203.0.113.9\r\nForwarded: for=203.0.113.9\r\nReferer: http://example.org/\r\nX-Real-IP: 203.0.113.9\r\n";
    let (status, _, answer) = http_request(lobby.addr, "POST", "/registry/name/carol?track=1", headers, br#"{"a":1}"#);
    assert_eq!((status, answer.as_str()), (200, r#"{"success":true}"#));
    let request = recorder.join().unwrap();
    let lower = request.to_ascii_lowercase();
    assert!(request.starts_with("POST /name/carol HTTP/1.1\r\n"), "{request}");
    for header in lower.lines().skip(1).take_while(|l| !l.is_empty()) {
        let name = header.split(':').next().unwrap_or("");
        assert!(["host", "content-type", "content-length"].contains(&name), "passed on: {header}");
    }
    for leak in ["secret", "probe-agent", "203.0.113.9", "example.org", "track"] {
        assert!(!lower.contains(leak), "{leak} reached the registry:\n{request}");
    }
    assert!(lower.contains(&format!("host: {fake_addr}")), "Host is the registry's own: {request}");
    assert!(request.ends_with(r#"{"a":1}"#), "the body passes unchanged");
}

#[test]
fn without_a_registry_the_page_is_told_and_nothing_is_forwarded() {
    let lobby = Lobby::start(&[]);
    assert_eq!(body(&lobby.get("/config.json"))["registry"], json!(false));
    assert_eq!(http_request(lobby.addr, "GET", "/registry/name/alice", "", b"").0, 404);
}

#[test]
fn a_registry_url_that_is_not_plain_http_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["lobby", "--listen", "127.0.0.1:0", "--registry", "https://names.example.org"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--registry") && stderr.contains("http://"), "{stderr}");
}
