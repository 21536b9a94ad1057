//! Crash safety of `tutti registry` on SQLite: 50 rounds of starting the real binary, registering from
//! several concurrent clients, and SIGKILLing it at a random moment. After every restart each
//! registration that got a 200 is in the database byte for byte (read with SQLite while the restarted
//! registry runs), the last round's also through the API, and no name or address has two partners;
//! at the end every one is read back through the API.

mod tutti_process;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tutti_process::Tutti;
use tutti_registry::test_http::{get, post_json};
use tutti_registry::test_keys::{ed25519, ed25519_registration};

const ROUNDS: u64 = 50;
const CLIENTS: u64 = 4;

/// Registrations acknowledged with 200: name → the body posted.
type Acked = Arc<Mutex<HashMap<String, Value>>>;

fn start(dir: &std::path::Path) -> (Tutti, SocketAddr) {
    let dir = dir.to_str().unwrap();
    let tutti =
        Tutti::start(&["registry", "--listen", "127.0.0.1:0", "--data-dir", dir, "--registrations-per-minute", "0"]);
    let addr = tutti
        .wait_for_http_addr("tutti registry: listening on http://", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("tutti registry did not start: {}", tutti.log()));
    (tutti, addr)
}

/// Every acknowledged registration is in the database file byte for byte, and no name or address
/// appears twice (read with SQLite itself while the restarted registry runs).
fn check_database(dir: &std::path::Path, acked: &Acked, round: u64) {
    let db =
        rusqlite::Connection::open_with_flags(dir.join("registry.sqlite3"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut rows = HashMap::new();
    let mut statement = db.prepare("SELECT name, addr, publickey, signature FROM names").unwrap();
    let mut query = statement.query([]).unwrap();
    while let Some(row) = query.next().unwrap() {
        let name: String = row.get(0).unwrap();
        let fields: (String, String, String) = (row.get(1).unwrap(), row.get(2).unwrap(), row.get(3).unwrap());
        assert!(rows.insert(name.clone(), fields).is_none(), "round {round}: {name} stored twice");
    }
    let addrs: std::collections::HashSet<_> = rows.values().map(|(addr, _, _)| addr.clone()).collect();
    assert_eq!(addrs.len(), rows.len(), "round {round}: an address holds two names");
    for (name, posted) in acked.lock().unwrap().iter() {
        let (addr, publickey, signature) =
            rows.get(name).unwrap_or_else(|| panic!("round {round}: acknowledged {name} is missing"));
        assert_eq!(
            (addr.as_str(), publickey.as_str(), signature.as_str()),
            (
                posted["addr"].as_str().unwrap(),
                posted["publickey"].as_str().unwrap(),
                posted["signature"].as_str().unwrap()
            ),
            "round {round}: {name} changed"
        );
    }
}

/// The acknowledged registrations in `names` read back through the API, both ways.
fn check_api(addr: SocketAddr, acked: &Acked, names: &[String], round: u64) {
    let acked = acked.lock().unwrap().clone();
    for name in names {
        let posted = &acked[name];
        let answer = get(addr, &format!("/name/{name}")).unwrap();
        assert_eq!(answer.status, 200, "round {round}: acknowledged {name} is missing: {answer:?}");
        let stored = answer.json();
        for field in ["addr", "publickey", "signature"] {
            assert_eq!(stored[field], posted[field], "round {round}: {name}'s {field} changed");
        }
        let back = get(addr, &format!("/addr/{}", posted["addr"].as_str().unwrap())).unwrap();
        assert_eq!(back.json(), json!({ "name": name }), "round {round}: the address of {name} has another name");
    }
}

/// One client: registers its own names and races the others for a shared one, until the server dies.
fn client(addr: SocketAddr, round: u64, id: u64, acked: Acked) {
    for i in 0.. {
        let (name, seed) = if i == 0 {
            // everyone wants this one, each with its own key: one may win
            (format!("contested-{round}"), round * 1000 + id * 100 + 99)
        } else {
            (format!("r{round}-c{id}-{i}"), round * 1000 + id * 100 + i)
        };
        let (key, _) = ed25519(seed);
        let body = serde_json::to_value(ed25519_registration(&key, &name)).unwrap();
        match post_json(addr, &format!("/name/{name}"), &body) {
            Ok(answer) if answer.status == 200 => {
                let mut acked = acked.lock().unwrap();
                if let Some(earlier) = acked.get(&name) {
                    panic!("{name} acknowledged for two addresses: {earlier} and {body}");
                }
                acked.insert(name, body);
            }
            Ok(answer) if answer.status == 403 && i == 0 => {}
            Ok(answer) => panic!("{name}: unexpected answer {answer:?}"),
            Err(_) => return, // killed
        }
        if i > 25 {
            return;
        }
    }
}

/// xorshift64*, seeded from the clock and printed, so a failing run can be repeated.
struct Random(u64);
impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn every_acknowledged_registration_survives_sigkill() {
    let dir = std::env::temp_dir().join(format!("tutti-registry-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seed = std::env::var("TUTTI_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("TUTTI_CRASH_SEED={seed}");
    let mut random = Random(seed);
    let acked: Acked = Arc::default();
    let started = Instant::now();
    let mut killed_mid_write = 0;
    let mut last_round = Vec::new();
    for round in 0..ROUNDS {
        let (mut tutti, addr) = start(&dir);
        check_database(&dir, &acked, round);
        // through the API too: what the last round's kill might have lost
        check_api(addr, &acked, &std::mem::take(&mut last_round), round);
        let before: Vec<String> = acked.lock().unwrap().keys().cloned().collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let acked = acked.clone();
                std::thread::spawn(move || client(addr, round, id, acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(random.below(120)));
        tutti_process::signal(tutti.pid(), libc::SIGKILL);
        for c in clients {
            c.join().expect("a client thread panicked");
        }
        assert_eq!(tutti.wait_exit(Duration::from_secs(5)), None, "killed by a signal, not exited");
        last_round = acked.lock().unwrap().keys().filter(|n| !before.contains(n)).cloned().collect();
        if !last_round.is_empty() {
            killed_mid_write += 1;
        }
    }
    let (_tutti, addr) = start(&dir);
    check_database(&dir, &acked, ROUNDS);
    let all: Vec<String> = acked.lock().unwrap().keys().cloned().collect();
    check_api(addr, &acked, &all, ROUNDS);
    let total = acked.lock().unwrap().len();
    println!(
        "{ROUNDS} rounds in {:.1} s: {total} acknowledged registrations, all present; {killed_mid_write} rounds killed after some writes",
        started.elapsed().as_secs_f64()
    );
    assert!(total >= ROUNDS as usize, "the rounds must register something to be a test: {total}");
    drop(_tutti);
    std::fs::remove_dir_all(&dir).unwrap();
}
