//! `tutti lobby --tls-cert --tls-key`: the page over HTTPS and the official socket.io-client over TLS
//! (WebSocket and long-polling), the certificate reloaded on SIGHUP while a socket stays connected, a
//! broken reload keeping the old certificate, and clear errors for bad files. Self-signed certificates
//! are made by the `openssl` command line; curl and Node check them as trust anchors.

mod lobby_support;

use lobby_support::{js_dir, node_with_env, self_signed_certificate, Lobby};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tutti-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate, its key and its SHA-256 fingerprint.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let (cert, key) = self_signed_certificate(dir, name);
    let print = fingerprint_of(&cert);
    (cert, key, print)
}

fn fingerprint_of(cert: &Path) -> String {
    let out = Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(cert).output();
    let out = String::from_utf8(out.unwrap().stdout).unwrap();
    out.trim().rsplit('=').next().unwrap().to_string()
}

/// GET `url` with curl trusting `ca`: (success, body).
fn curl(url: &str, ca: &Path) -> (bool, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "5", "--cacert"]).arg(ca).arg(url).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// The fingerprint a fresh TLS connection to the lobby is shown.
fn served_fingerprint(lobby: &Lobby) -> String {
    let script = format!(
        "openssl s_client -connect {} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
        lobby.addr
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().rsplit('=').next().unwrap_or("").to_string()
}

#[test]
fn page_and_socket_io_over_https() {
    let dir = TempDir::new("page");
    let (cert, key, _) = certificate(&dir.0, "a");
    let lobby = Lobby::start(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert_eq!(lobby.scheme, "https");
    let (ok, page) = curl(&format!("{}/", lobby.url()), &cert);
    assert!(ok && page.contains("<html"), "the page over HTTPS: {page}");
    let (ok, _) = curl(&format!("http://{}/", lobby.addr), &cert);
    assert!(!ok, "no plain HTTP on the HTTPS port");
    for transport in ["websocket", "polling"] {
        let env = [("NODE_EXTRA_CA_CERTS", cert.as_path())];
        let (ok, output) = node_with_env("conversation.mjs", &[&lobby.url(), transport], &env, Duration::from_secs(30));
        assert!(ok && output.contains("conversation ok"), "socket.io over TLS ({transport}) failed:\n{output}");
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_connections() {
    let dir = TempDir::new("reload");
    let (a_cert, a_key, a_print) = certificate(&dir.0, "a");
    let (b_cert, b_key, b_print) = certificate(&dir.0, "b");
    let both = dir.0.join("both.pem");
    std::fs::write(&both, std::fs::read_to_string(&a_cert).unwrap() + &std::fs::read_to_string(&b_cert).unwrap())
        .unwrap();
    let (cert, key) = (dir.0.join("live.pem"), dir.0.join("live.key"));
    std::fs::copy(&a_cert, &cert).unwrap();
    std::fs::copy(&a_key, &key).unwrap();
    let lobby = Lobby::start(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert_eq!(served_fingerprint(&lobby), a_print);

    let mut node = Command::new("node")
        .arg("tls_reload.mjs")
        .arg(lobby.url())
        .env("NODE_EXTRA_CA_CERTS", &both)
        .current_dir(js_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let mut stdin = node.stdin.take().unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut output = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        output.push(line.clone());
        if line == "connected" {
            break;
        }
    }
    assert!(output.contains(&format!("fingerprint before {a_print}")), "{output:?}");

    std::fs::copy(&b_key, &key).unwrap();
    std::fs::copy(&b_cert, &cert).unwrap();
    lobby.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while served_fingerprint(&lobby) != b_print {
        assert!(std::time::Instant::now() < deadline, "the new certificate is served after SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
    writeln!(stdin, "reloaded").unwrap();
    output.extend(lines.map(Result::unwrap));
    let status = node.wait().unwrap();
    assert!(status.success() && output.iter().any(|l| l == "reload ok"), "{output:?}");
    assert!(output.contains(&format!("fingerprint after {b_print}")), "{output:?}");

    // a broken file: the reload fails, the lobby keeps serving the certificate it has
    std::fs::write(&cert, "not a certificate\n").unwrap();
    lobby.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(served_fingerprint(&lobby), b_print, "the old certificate stays");
    let (ok, page) = curl(&format!("{}/", lobby.url()), &both);
    assert!(ok && page.contains("<html"), "still serving: {page}");
}

#[test]
fn bad_certificate_files_are_clear_errors() {
    let dir = TempDir::new("bad");
    let (a_cert, _, _) = certificate(&dir.0, "a");
    let (_, b_key, _) = certificate(&dir.0, "b");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["lobby", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = run(&["--tls-cert", "/nonexistent/cert.pem", "--tls-key", b_key.to_str().unwrap()]);
    assert!(!ok && err.contains("--tls-cert /nonexistent/cert.pem"), "{err}");
    let (ok, err) = run(&["--tls-cert", a_cert.to_str().unwrap(), "--tls-key", b_key.to_str().unwrap()]);
    assert!(!ok && err.contains("TLS") && err.contains("--tls-key"), "a key that is not the certificate's: {err}");
    let (ok, err) = run(&["--tls-cert", a_cert.to_str().unwrap()]);
    assert!(!ok && err.contains("--tls-key"), "{err}");
    let file = dir.0.join("tutti.toml");
    std::fs::write(&file, format!("[lobby]\ntls_cert = {:?}\n", a_cert.to_str().unwrap())).unwrap();
    let (ok, err) = run(&["--config", file.to_str().unwrap()]);
    assert!(!ok && err.contains("tls_cert and tls_key together"), "{err}");
}
