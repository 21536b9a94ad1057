//! `tutti lobby` behind Debian's real nginx, configured with the server block of docs/deploy.md (only the
//! ports and certificate paths substituted): the official socket.io-client holds its conversation through
//! the proxy over HTTPS with the WebSocket upgrade, with long-polling then the upgrade, and with
//! long-polling only; the page loads through it; and tutti's output never carries a client address.

mod lobby_support;

use lobby_support::{node_with_env, self_signed_certificate, Lobby};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";

/// nginx, started on a configuration in a temp dir and stopped by PID.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The ```nginx block of docs/deploy.md.
fn documented_config() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy.md")).unwrap();
    let start = doc.find("```nginx\n").expect("docs/deploy.md has an nginx block") + "```nginx\n".len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "docs/deploy.md's nginx block no longer contains {from:?}: update this test");
    text.replace(from, to)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_nginx(dir: &Path, lobby: SocketAddr, cert: &Path, key: &Path) -> (Nginx, u16) {
    assert!(Path::new(NGINX).exists(), "nginx is needed: run ./scripts/test.sh, which installs it");
    let port = free_port();
    let mut server = documented_config();
    server = replace(&server, "listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"));
    server = replace(&server, "proxy_pass http://127.0.0.1:8080;", &format!("proxy_pass http://{lobby};"));
    server = replace(&server, "/etc/letsencrypt/live/lobby.example.org/fullchain.pem", cert.to_str().unwrap());
    server = replace(&server, "/etc/letsencrypt/live/lobby.example.org/privkey.pem", key.to_str().unwrap());
    let d = dir.display();
    let config = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n{server}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut nginx = Nginx { child, dir: dir.to_path_buf() };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = nginx.child.try_wait() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("nginx exited ({status}):\n{log}");
        }
        assert!(Instant::now() < deadline, "nginx did not listen within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    (nginx, port)
}

#[test]
fn socket_io_through_nginx_with_the_documented_config() {
    let dir = std::env::temp_dir().join(format!("tutti-nginx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed_certificate(&dir, "proxy");

    let output = dir.join("tutti-stderr.txt");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
    command
        .args(["lobby", "--listen", "127.0.0.1:0", "--accept-rate-per-address", "0"])
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&output).unwrap());
    let lobby = Lobby::spawn(command);
    let nginx_dir = dir.join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let (nginx, port) = start_nginx(&nginx_dir, lobby.addr, &cert, &key);
    let url = format!("https://127.0.0.1:{port}");

    let env = [("NODE_EXTRA_CA_CERTS", cert.as_path())];
    let (ok, page) = node_with_env("fetch.mjs", &[&format!("{url}/")], &env, Duration::from_secs(20));
    assert!(ok && page.contains("<html"), "the page through nginx:\n{page}");
    for transport in ["websocket", "polling", "polling-only"] {
        let (ok, out) = node_with_env("conversation.mjs", &[&url, transport], &env, Duration::from_secs(40));
        assert!(ok && out.contains("conversation ok"), "socket.io through nginx ({transport}) failed:\n{out}");
    }
    lobby.wait_stats(serde_json::json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
    drop(nginx);
    drop(lobby);

    let diagnostics = std::fs::read_to_string(&output).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(diagnostics.contains("DEBUG"), "debug diagnostics were on:\n{diagnostics}");
    // nginx connects from 127.0.0.1 on an ephemeral port: no line may name such an address
    for line in diagnostics.lines() {
        assert!(!line.contains("127.0.0.1"), "tutti logged an address: {line}");
    }
}
