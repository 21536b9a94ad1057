//! The lobby's privacy promises on the real process under strace: it writes no file and connects to
//! nobody while people meet, talk and leave; its diagnostics (even at trace level) carry neither chat
//! text, interests nor addresses; and the page it serves loads nothing from anywhere else. Identities:
//! proofs, calls and name look-ups through `/registry/` leave no ID, name or address in its diagnostics.

mod lobby_support;

use lobby_support::{http_get, http_request, node, Client, Lobby, Registry};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_writes_nothing_connects_nowhere_and_logs_no_content() {
    assert!(
        Command::new("strace").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "strace is needed: run ./scripts/test.sh, which installs it"
    );
    let dir = std::env::temp_dir().join(format!("tutti-lobby-privacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let work = dir.join("cwd");
    std::fs::create_dir_all(&work).unwrap();
    let trace = dir.join("trace.txt");
    let stderr = dir.join("stderr.txt");
    let mut command = Command::new("strace");
    command
        .args([
            "-f",
            "-qq",
            "-s",
            "0",
            "-e",
            "trace=connect,open,openat,creat,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_tutti"))
        .args(["lobby", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug,tutti_lobby=trace,tutti=trace") // third-party trace logs (axum, tungstenite) print addresses and frames: off unless asked for
        .current_dir(&work)
        .stderr(std::fs::File::create(&stderr).unwrap());
    let mut lobby = Lobby::spawn(command);

    let secret = "my secret chat line";
    let mut a = Client::connect(lobby.addr).await;
    let mut b = Client::connect(lobby.addr).await;
    a.call("find", json!({ "interests": ["secretinterest"] })).await;
    b.call("find", json!({ "interests": ["secretinterest"] })).await;
    a.expect("matched", "a").await;
    b.expect("matched", "b").await;
    a.call("message", json!({ "text": secret })).await;
    assert_eq!(b.expect("message", "the secret").await["text"], secret);
    a.call("signal", json!({ "data": { "candidate": "candidate:1 1 udp 1 192.0.2.77 5000 typ host" } })).await;
    b.expect("signal", "the candidate").await;
    a.close();
    b.close();
    lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
    let (head, _) = http_get(lobby.addr, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let tutti = lobby.grandchild();
    assert!(lobby.terminate_pid(tutti).success(), "tutti lobby exits cleanly on SIGTERM");
    drop(lobby);

    let leftovers: Vec<_> = std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(leftovers.is_empty(), "the lobby wrote into its working directory: {leftovers:?}");
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(trace.lines().filter(|l| l.contains("openat(")).count() > 3, "strace saw the process:\n{trace}");
    for line in trace.lines() {
        let writes = (line.contains("open")
            && (line.contains("O_WRONLY") || line.contains("O_RDWR") || line.contains("O_CREAT")))
            || line.contains("creat(")
            || line.contains("rename")
            || line.contains("unlink")
            || line.contains("mkdir");
        let allowed = line.contains("/dev/null") || line.contains("/dev/urandom") || line.contains("= -1");
        assert!(!writes || allowed, "the lobby touched the file system: {line}");
        if line.contains("connect(") {
            assert!(line.contains("AF_UNIX") && line.contains("= -1"), "the lobby connected somewhere: {line}");
        }
    }
    let log = std::fs::read_to_string(&stderr).unwrap();
    for private in [secret, "secretinterest", "127.0.0.1", "192.0.2.77"] {
        assert!(!log.contains(private), "the diagnostics carry {private:?}:\n{log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn page_loads_only_from_its_own_origin() {
    let lobby = Lobby::start(&[]);
    let (head, html) = http_get(lobby.addr, "/");
    let head = head.to_lowercase();
    assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self'"), "{head}");
    assert!(head.contains("referrer-policy: no-referrer"));
    assert!(!head.contains("set-cookie"));
    for asset in ["/", "/app.js", "/identity.js", "/hideip.js", "/style.css"] {
        let (head, body) = http_get(lobby.addr, asset);
        assert!(!head.to_lowercase().contains("set-cookie"), "{asset} sets a cookie");
        for needle in ["http://", "https://", "//cdn", "cookie", "localStorage", "analytics"] {
            assert!(!body.contains(needle), "{asset} mentions {needle}");
        }
    }
    assert!(html.contains("src=\"app.js\""));
    // no ICE server unless the operator configures one: no third party by default
    // (and the page's no-partner notice after its default 15 s)
    assert_eq!(
        lobby.get("/config.json"),
        r#"{"iceServers":[],"noPartnerNoticeAfter":15.0,"registry":false,"relay":false,"relayOnly":false}"#
    );
    let configured = Lobby::start(&["--ice-server", "stun:stun.example.org:3478", "--no-partner-notice-after", "2.5"]);
    assert_eq!(
        configured.get("/config.json"),
        r#"{"iceServers":[{"urls":["stun:stun.example.org:3478"]}],"noPartnerNoticeAfter":2.5,"registry":false,"relay":false,"relayOnly":false}"#
    );
}

#[test]
fn identities_calls_and_names_leave_nothing_in_the_logs() {
    let registry = Registry::start();
    let dir = std::env::temp_dir().join(format!("tutti-lobby-privacy-id-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stderr = dir.join("stderr.txt");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
    command
        .args(["lobby", "--listen", "127.0.0.1:0", "--registry", &registry.url()])
        .env("RUST_LOG", "debug,tutti_lobby=trace,tutti=trace")
        .stderr(std::fs::File::create(&stderr).unwrap());
    let mut lobby = Lobby::spawn(command);
    let (ok, output) = node("calls.mjs", &[&lobby.url(), &lobby.url()], Duration::from_secs(30));
    assert!(ok && output.contains("calls ok"), "calls.mjs failed:\n{output}");
    let ids: Vec<String> = output
        .lines()
        .find_map(|l| l.strip_prefix("ids: "))
        .expect("calls.mjs prints its IDs")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let name = "privatename";
    let (status, _, _) = http_request(lobby.addr, "GET", &format!("/registry/name/{name}"), "", b"");
    assert_eq!(status, 404);
    http_request(lobby.addr, "GET", &format!("/registry/addr/0x{}", ids[0]), "", b"");
    lobby.wait_stats(json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
    assert!(lobby.terminate().success());
    let log = std::fs::read_to_string(&stderr).unwrap();
    for private in ids.iter().map(String::as_str).chain([name, "127.0.0.1", "tutti-lobby-reach"]) {
        assert!(!log.contains(private), "the diagnostics carry {private:?}:\n{log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
