//! The lobby page's optional identities in a real browser (Debian's Chromium driven by npm
//! `playwright-core`, see `lobby_support/js/identity.mjs`), with a real `tutti registry` behind
//! `tutti lobby --registry`: create → register → export (the archive decrypts to the key, and `tutti id
//! import` takes it) → two pages
//! matched show each other verified with their names; a signaling man-in-the-middle that alters the
//! DTLS fingerprint (a test-only hook around the page's transports) is shown as a warning, never "verified";
//! calls by name declined and accepted, and to an ID that is not reachable; a reload keeps the identity
//! (non-extractable), delete empties IndexedDB. Also the calls protocol with the official
//! socket.io-client (`calls.mjs`). Screenshots go to `<target>/tmp/lobby-identity/`.

mod lobby_support;

use lobby_support::{node, Lobby, Registry};
use std::path::PathBuf;
use std::time::Duration;

fn artifacts() -> PathBuf {
    lobby_support::browser_artifacts("lobby-identity")
}

/// Runs one scenario of identity.mjs against `lobby`.
fn scenario(name: &str, lobby: &Lobby) {
    let out = artifacts();
    let (ok, output) = node("identity.mjs", &[name, &lobby.url(), out.to_str().unwrap()], Duration::from_secs(60));
    assert!(
        ok && output.contains("identity ok"),
        "identity scenario {name} failed (screenshots in {}):\n{output}",
        out.display()
    );
    lobby.wait_stats(serde_json::json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(10));
}

#[test]
fn registered_partners_see_each_other_verified_with_names() {
    let registry = Registry::start();
    let lobby = Lobby::start(&["--registry", &registry.url()]);
    scenario("verified", &lobby);
    // the archive the page exported opens with the CLI: `tutti id import` brings the same ID
    let archive = artifacts().join("archive.json");
    let header: serde_json::Value = serde_json::from_slice(&std::fs::read(&archive).unwrap()).unwrap();
    let home = std::env::temp_dir().join(format!("tutti-lobby-identity-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let import = |password: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["id", "import", archive.to_str().unwrap()])
            .env("TUTTI_HOME", &home)
            .env("TUTTI_PASSWORD", password)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    assert!(!import("wrong password").status.success());
    let imported = import("correct horse battery");
    let stdout = String::from_utf8_lossy(&imported.stdout);
    assert!(imported.status.success(), "{stdout}{}", String::from_utf8_lossy(&imported.stderr));
    assert!(stdout.contains(header["id"].as_str().unwrap()), "{stdout}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn an_altered_fingerprint_shows_a_warning_not_verified() {
    let lobby = Lobby::start(&[]);
    scenario("tamper", &lobby);
}

#[test]
fn calls_by_name_declined_accepted_and_unreachable() {
    let registry = Registry::start();
    let lobby = Lobby::start(&["--registry", &registry.url()]);
    scenario("calls", &lobby);
}

#[test]
fn a_reload_keeps_the_identity_and_delete_empties_indexeddb() {
    let lobby = Lobby::start(&[]);
    scenario("storage", &lobby);
}

#[test]
fn calls_with_the_official_socket_io_client() {
    let lobby = Lobby::start(&[]);
    let (ok, output) = node("calls.mjs", &[&lobby.url(), &lobby.url()], Duration::from_secs(30));
    assert!(ok && output.contains("calls ok"), "calls.mjs failed:\n{output}");
    lobby.wait_stats(serde_json::json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
}
