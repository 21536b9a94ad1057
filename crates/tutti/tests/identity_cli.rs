//! `tutti id` end to end: the files it writes and removes, the password archive (wrong password,
//! damaged file, the page's PBKDF2 form), and registering and looking up names at a real `tutti
//! registry` — and refusing a registry that lies.

mod tutti_process;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use tutti_process::Tutti;

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tutti-id-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tutti id ARGS` with TUTTI_HOME=home, no terminal, no inherited password.
fn id(home: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
    command
        .arg("id")
        .args(args)
        .env("TUTTI_HOME", home)
        .env_remove("TUTTI_PASSWORD")
        .stdin(std::process::Stdio::null());
    if let Some(password) = password {
        command.env("TUTTI_PASSWORD", password);
    }
    command.output().expect("run tutti id")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn refused(output: &Output, reason: &str) {
    assert!(!output.status.success(), "should have failed: {}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(reason), "{reason:?} not in {stderr:?}");
}

/// Every path under `dir`, with its mode.
fn listing(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            out.push(format!("{} {mode:o}", path.strip_prefix(dir).unwrap().display()));
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The 40-hex ID in `tutti id new|show|import` output.
fn printed_id(stdout: &str) -> String {
    stdout.lines().find_map(|l| l.strip_prefix("ID       ")).expect("an ID line").trim().to_owned()
}

#[test]
fn the_identity_lifecycle_leaves_nothing_behind() {
    let home = temp("home");
    let work = temp("work");
    let before = listing(&home);

    let created = ok(&id(&home, &["new", "--name", "laptop"], None));
    let the_id = printed_id(&created);
    assert_eq!(the_id.len(), 40);
    assert_eq!(listing(&home), ["identity 700", "identity/identity.json 600"]);
    let shown = ok(&id(&home, &["show"], None));
    assert!(shown.contains(&the_id) && shown.contains("laptop") && shown.contains("BEGIN PUBLIC KEY"), "{shown}");
    // grouped for people: 10 groups of 4
    let grouped: Vec<&str> = shown.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(grouped.concat(), the_id);
    assert_eq!(grouped.len(), 10);
    refused(&id(&home, &["new"], None), "already exists");

    let password_file = work.join("pw");
    std::fs::write(&password_file, "correct horse battery\nignored second line\n").unwrap();
    let archive = work.join("me.tutti-id");
    ok(&id(&home, &["export", archive.to_str().unwrap(), "--password-file", password_file.to_str().unwrap()], None));
    assert_eq!(listing(&work).iter().find(|l| l.starts_with("me.tutti-id")).unwrap(), "me.tutti-id 600");
    refused(&id(&home, &["export", archive.to_str().unwrap()], Some("correct horse battery")), "exists");
    refused(&id(&home, &["export", work.join("short").to_str().unwrap()], Some("short")), "shorter than 8");
    refused(&id(&home, &["export", work.join("x").to_str().unwrap()], None), "no terminal");

    refused(&id(&home, &["delete"], None), "pass --yes");
    ok(&id(&home, &["delete", "--yes"], None));
    assert_eq!(listing(&home), before, "delete removes every file it wrote");
    refused(&id(&home, &["show"], None), "no identity");

    // a wrong password or a damaged archive imports nothing
    refused(&id(&home, &["import", archive.to_str().unwrap()], Some("wrong horse battery")), "wrong password");
    assert_eq!(listing(&home), before);
    let text = std::fs::read(&archive).unwrap();
    let truncated = work.join("truncated");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    refused(
        &id(&home, &["import", truncated.to_str().unwrap()], Some("correct horse battery")),
        "not a tutti identity archive",
    );
    refused(&id(&home, &["import", work.join("missing").to_str().unwrap()], Some("x")), "cannot read");
    assert_eq!(listing(&home), before);

    // the right password (from the environment this time) brings the same identity back
    let imported = ok(&id(&home, &["import", archive.to_str().unwrap()], Some("correct horse battery")));
    assert_eq!(printed_id(&imported), the_id);
    refused(&id(&home, &["import", archive.to_str().unwrap()], Some("correct horse battery")), "already exists");
    ok(&id(&home, &["delete", "--yes"], None));

    // an archive as the lobby page writes it (PBKDF2-SHA256) imports too
    let page_identity = tutti_identity::Identity::generate("browser").unwrap();
    let page_archive = work.join("page.json");
    std::fs::write(
        &page_archive,
        tutti_identity::seal(&page_identity, b"page password", tutti_identity::Kdf::PAGE).unwrap(),
    )
    .unwrap();
    let imported = ok(&id(&home, &["import", page_archive.to_str().unwrap()], Some("page password")));
    assert_eq!(printed_id(&imported), page_identity.id().hex());
    ok(&id(&home, &["delete", "--yes"], None));
    assert_eq!(listing(&home), before);
    std::fs::remove_dir_all(&home).unwrap();
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn names_register_and_resolve_at_a_real_registry() {
    let data = temp("registry");
    let registry = Tutti::start(&["registry", "--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()]);
    let addr = registry.wait_for_http_addr("tutti registry: listening on http://", Duration::from_secs(10)).unwrap();
    let url = format!("http://{addr}");
    let (alice, bob) = (temp("alice"), temp("bob"));
    let alice_id = printed_id(&ok(&id(&alice, &["new"], None)));
    let bob_id = printed_id(&ok(&id(&bob, &["new"], None)));

    let registered = ok(&id(&alice, &["register", "alice_01", "--registry", &url], None));
    assert!(registered.contains(&format!("registered alice_01 for {alice_id}")), "{registered}");
    refused(&id(&bob, &["register", "alice_01", "--registry", &url], None), "name already taken");
    refused(&id(&alice, &["register", "alice_02", "--registry", &url], None), "already has a name");
    refused(&id(&bob, &["register", "Bob!", "--registry", &url], None), "invalid name");

    let by_name = ok(&id(&bob, &["lookup", "ALICE_01", "--registry", &url], None));
    assert!(by_name.contains("alice_01  (verified)") && by_name.contains(&alice_id), "{by_name}");
    let by_id = ok(&id(&bob, &["lookup", &format!("0x{alice_id}"), "--registry", &url], None));
    assert!(by_id.contains("alice_01  (verified)"), "{by_id}");
    refused(&id(&alice, &["lookup", &bob_id, "--registry", &url], None), "no name is registered");
    refused(&id(&alice, &["lookup", "nobody", "--registry", &url], None), "not registered");
    refused(&id(&alice, &["lookup", "alice", "--registry", "http://127.0.0.1:9"], None), "cannot reach the registry");
    drop(registry);
    for dir in [data, alice, bob] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A registry that answers every request with `answer(path)` (status, JSON body).
fn lying_registry(answer: impl Fn(&str) -> (u16, String) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
            let (status, body) = answer(&path);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn a_lying_registry_is_refused() {
    let home = temp("liar");
    let victim = tutti_identity::Identity::generate("").unwrap();
    let honest = serde_json::to_value(victim.registration("alice")).unwrap();
    let mallory = tutti_identity::Identity::generate("").unwrap();
    let forged = serde_json::to_value(mallory.registration("alice")).unwrap();
    // the name pointed at another address, with the victim's key and signature
    let redirected = serde_json::json!({"name": "alice", "addr": forged["addr"], "publickey": honest["publickey"], "signature": honest["signature"]});
    let liar = lying_registry(move |_| (200, redirected.to_string()));
    refused(&id(&home, &["lookup", "alice", "--registry", &format!("http://{liar}")], None), "does not verify");
    // a record with no proof at all (what the Jami reference server keeps for legacy names)
    let bare = serde_json::json!({"name": "alice", "addr": honest["addr"]});
    let liar = lying_registry(move |_| (200, bare.to_string()));
    refused(&id(&home, &["lookup", "alice", "--registry", &format!("http://{liar}")], None), "does not verify");
    // an address said to be "alice", whose signed record is someone else's
    let mallory_record = serde_json::json!({"name": "alice", "addr": forged["addr"], "publickey": forged["publickey"], "signature": forged["signature"]});
    let liar = lying_registry(move |path| {
        if path.starts_with("/addr/") {
            (200, r#"{"name": "alice"}"#.to_owned())
        } else {
            (200, mallory_record.to_string())
        }
    });
    let victim_id = victim.id().hex();
    refused(&id(&home, &["lookup", &victim_id, "--registry", &format!("http://{liar}")], None), "refusing it");
    std::fs::remove_dir_all(&home).unwrap();
}
