//! What `tutti registry` keeps about the people who use it: nothing. No request log unless
//! `--log-requests`, and then only method, route template and status (no address, name or ID); the
//! database holds only the record's own fields.

mod tutti_process;

use std::time::Duration;
use tutti_process::Tutti;
use tutti_registry::test_http::{get, post_json};
use tutti_registry::test_keys::{self, rsa_registration};

fn traffic(addr: std::net::SocketAddr) {
    let body = serde_json::to_value(rsa_registration(0, "privacy-probe")).unwrap();
    assert_eq!(post_json(addr, "/name/privacy-probe", &body).unwrap().status, 200);
    assert_eq!(get(addr, "/name/privacy-probe").unwrap().status, 200);
    assert_eq!(get(addr, "/name/unknown-probe").unwrap().status, 404);
    assert_eq!(get(addr, &format!("/addr/{}", test_keys::RSA_ADDRS[0])).unwrap().status, 200);
    assert_eq!(get(addr, "/nowhere").unwrap().status, 404);
}

/// Runs the registry with `extra` flags in a data folder of the test's own (`test` names it: the tests
/// run in parallel, and one removing another's folder mid-run made CI fail).
fn run(test: &str, extra: &[&str]) -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("tutti-registry-privacy-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut args = vec!["registry", "--listen", "127.0.0.1:0", "--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut tutti = Tutti::start(&args);
    let addr = tutti.wait_for_http_addr("tutti registry: listening on http://", Duration::from_secs(10)).unwrap();
    traffic(addr);
    tutti.stop();
    // everything but the two start-up lines (where the registry says where it listens and keeps data)
    let log = tutti.log().lines().filter(|l| !l.starts_with("tutti registry: ")).collect::<Vec<_>>().join("\n");
    (log, dir)
}

fn assert_no_trace(text: &str, what: &str) {
    for secret in ["127.0.0", "privacy-probe", "unknown-probe", &test_keys::RSA_ADDRS[0][2..]] {
        assert!(!text.contains(secret), "{what} contains {secret:?}:\n{text}");
    }
}

#[test]
fn request_log_is_off_by_default() {
    let (log, dir) = run("log-off", &[]);
    assert_eq!(log.trim(), "", "nothing is logged per request by default");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn request_log_holds_method_route_and_status_only() {
    let (log, dir) = run("log-on", &["--log-requests"]);
    for line in [
        "POST /name/{name} 200",
        "GET /name/{name} 200",
        "GET /name/{name} 404",
        "GET /addr/{addr} 200",
        "GET (no route) 404",
    ] {
        assert!(log.contains(line), "{line:?} missing from:\n{log}");
    }
    assert_no_trace(&log, "the request log");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_database_holds_the_record_and_nothing_about_who_asked() {
    let (_, dir) = run("database", &[]);
    let db = rusqlite::Connection::open(dir.join("registry.sqlite3")).unwrap();
    let columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('names')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(columns, ["name", "addr", "owner", "publickey", "signature", "registered_at"]);
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tables, ["names"]);
    let rows: i64 = db.query_row("SELECT count(*) FROM names", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1, "only the registration; lookups left nothing");
    drop(db);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"127.0.0.1"), "a client address on disk");
        assert!(!bytes.windows(13).any(|w| w == b"unknown-probe"), "a looked-up name on disk");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
