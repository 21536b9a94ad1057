//! Privacy promise of identities, a test named after it (docs/privacy.md lists it): the private key
//! never leaves the device. `tutti id` registers and looks up a name at a real `tutti registry`
//! through a relay in this test that records every byte on the wire, both ways; the key, in every
//! encoding it could travel in, is searched for in what was recorded.

mod tutti_process;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tutti_process::Tutti;

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tutti-privacy-id-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tutti id ARGS` with TUTTI_HOME=home; must succeed.
fn id(home: &Path, args: &[&str]) -> String {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .arg("id")
        .args(args)
        .env("TUTTI_HOME", home)
        .env_remove("TUTTI_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tutti id");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "tutti id {args:?} failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    text
}

/// Copies `from` to `to` until either side closes, appending every byte to `wire`.
fn pump(mut from: TcpStream, mut to: TcpStream, wire: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        wire.lock().unwrap().extend_from_slice(&buf[..n]);
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A TCP relay to `upstream` on a free loopback port; every byte in either direction lands in the buffer.
fn recording_relay(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let wire = Arc::new(Mutex::new(Vec::new()));
    let recorded = wire.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(upstream) else { continue };
            let (c2, s2, w2) = (client.try_clone().unwrap(), server.try_clone().unwrap(), wire.clone());
            std::thread::spawn(move || pump(c2, s2, w2));
            let w = wire.clone();
            std::thread::spawn(move || pump(server, client, w));
        }
    });
    (address, recorded)
}

/// The identity file `tutti id new` wrote under `home` (the only file there).
fn identity_file(home: &Path) -> PathBuf {
    let mut stack = vec![home.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                return path;
            }
        }
    }
    panic!("no identity file under {}", home.display());
}

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if pad {
            out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
        }
    }
    out
}

/// Every run of at least 16 base64 characters (either alphabet) in `bytes`, decoded: what travels inside
/// JSON as base64 (the public key goes as base64 of its PEM, itself base64) is searched in its decoded form too.
fn decoded_runs(bytes: &[u8]) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    for run in bytes.split(|c| value(*c).is_none()).filter(|r| r.len() >= 16) {
        let (mut acc, mut bits) = (0u32, 0);
        for c in run {
            acc = acc << 6 | u32::from(value(*c).unwrap());
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out.push(b'\n');
    }
    out
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[test]
fn private_keys_never_leave_the_device() {
    let (home, data) = (temp("home"), temp("registry"));
    let registry = Tutti::start(&["registry", "--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()]);
    let upstream =
        registry.wait_for_http_addr("tutti registry: listening on http://", Duration::from_secs(10)).unwrap();
    let (relay, wire) = recording_relay(upstream);
    let url = format!("http://{relay}");

    id(&home, &["new"]);
    let file = identity_file(&home);
    let (identity, _) = tutti_identity::Home::at(file.parent().unwrap()).load().unwrap().expect("an identity");
    let registered = id(&home, &["register", "keeper_01", "--registry", &url]);
    assert!(registered.contains("registered keeper_01"), "{registered}");
    let found = id(&home, &["lookup", "keeper_01", "--registry", &url]);
    assert!(found.contains("(verified)"), "{found}");
    id(&home, &["show"]);
    drop(registry);
    std::thread::sleep(Duration::from_millis(200));
    let raw = wire.lock().unwrap().clone();
    // What was sent, and what its base64 runs decode to, twice (base64 of a PEM of base64).
    let once = decoded_runs(&raw);
    let wire = [raw.clone(), once.clone(), decoded_runs(&once)].concat();

    // The capture works: the registration carried the public half and the ID.
    let public = identity.spki_der();
    let public_b64 = base64(&public, STANDARD, false);
    let id_hex = identity.id().to_string();
    let text = String::from_utf8_lossy(&wire);
    assert!(text.contains("keeper_01") && text.contains(id_hex.trim_start_matches("0x")), "the capture: {text}");
    assert!(
        wire.windows(public.len()).any(|w| w == public.as_slice()),
        "the public key was found on the wire (so the same search would find the private one): {text}"
    );

    // The private key: PKCS#8 DER and its 32-byte seed (RFC 8410: the OCTET STRING at offset 14, in
    // both versions; version 2 appends the public key), raw, hex, base64 of either alphabet, and every
    // line of the identity file.
    let pkcs8 = identity.pkcs8().to_vec();
    assert_eq!(pkcs8[14..16], [0x04, 0x20], "an Ed25519 PKCS#8 document: {pkcs8:02x?}");
    let seed = pkcs8[16..48].to_vec();
    let mut needles: Vec<(String, Vec<u8>)> = vec![("PKCS#8 DER".into(), pkcs8.clone()), ("seed".into(), seed.clone())];
    for (what, bytes) in [("PKCS#8", &pkcs8), ("seed", &seed)] {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        needles.push((format!("{what} as hex"), hex.clone().into_bytes()));
        needles.push((format!("{what} as HEX"), hex.to_uppercase().into_bytes()));
        for (alphabet, name) in [(STANDARD, "base64"), (URL_SAFE, "base64url")] {
            // The first 40 characters (the seed is in them); base64 at any other alignment is caught by
            // the raw needles in the decoded runs.
            let encoded = base64(bytes, alphabet, false);
            needles.push((format!("{what} as {name}"), encoded.as_bytes()[..40].to_vec()));
        }
    }
    let stored = std::fs::read_to_string(&file).unwrap();
    for line in stored.lines().map(str::trim).filter(|l| l.len() >= 24 && !l.contains(&public_b64[..24])) {
        needles.push(("a line of the identity file".into(), line.as_bytes().to_vec()));
    }
    for (what, needle) in &needles {
        assert!(
            !wire.windows(needle.len()).any(|w| w == needle.as_slice()),
            "the private key ({what}) was on the wire"
        );
    }
    // Nor did it reach the registry's storage.
    for entry in std::fs::read_dir(&data).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        for (what, needle) in &needles {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()), "{what} in {:?}", entry.path());
        }
    }
    for dir in [home, data] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
