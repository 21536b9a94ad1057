//! Fills a registry data directory for the benchmark (bench/registry.sh) with N real, verifiable
//! registrations through the crate's own path: an Ed25519 key made from the index, `sign_ed25519`,
//! `verify`, then `Store::register_many` in batches of 10,000 (one transaction each). Keys and signatures
//! are made on both cores while the previous batch commits.
//!
//!   registry_fill DIR [N]      N defaults to 1,000,000
//!
//! Name i is `user-` and i in 7 digits (`user-0000123`), key i is [`key`]`(i)`. Also writes
//! DIR/bench-addrs.txt: line i is the address of name i, for the load generator. Refuses a directory
//! that already holds a database. Prints the rate and the database's size.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tutti_registry::{sign_ed25519, verify, Decision, Name, Record, Store, StoreConfig};

const BATCH: u64 = 10_000;

/// The name of index `i`.
fn name(i: u64) -> String {
    format!("user-{i:07}")
}

/// Ed25519 key `i` (fill keys; the load generator's registrations use another tag).
fn key(i: u64) -> ed25519_dalek::SigningKey {
    let mut secret = [0x5au8; 32];
    secret[..8].copy_from_slice(&i.to_le_bytes());
    ed25519_dalek::SigningKey::from_bytes(&secret)
}

/// Signed and verified records for indexes `range`, made on `threads` threads.
fn records(range: std::ops::Range<u64>, threads: u64, now: u64) -> Vec<Record> {
    let per = (range.end - range.start).div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                let from = range.start + t * per;
                let to = (from + per).min(range.end);
                scope.spawn(move || {
                    (from..to)
                        .map(|i| {
                            let text = name(i);
                            let name = Name::parse(&text).expect("a valid name");
                            let body = sign_ed25519(&key(i), &text);
                            verify(&name, &body, now).expect("our own registration verifies")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().expect("a signing thread")).collect()
    })
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: registry_fill DIR [N]"));
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N is a number"));
    let db = dir.join(tutti_registry::store::SQLITE_FILE);
    if db.exists() {
        eprintln!("registry_fill: {} exists: give an empty directory", db.display());
        std::process::exit(1);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let store = Arc::new(runtime.block_on(Store::open(&StoreConfig::Sqlite(dir.clone()))).expect("store opens"));
    let mut addrs = std::io::BufWriter::new(std::fs::File::create(dir.join("bench-addrs.txt")).expect("addrs file"));

    let started = Instant::now();
    let mut pending: Option<tokio::task::JoinHandle<Result<Vec<Decision>, tutti_registry::StoreError>>> = None;
    let mut done = 0u64;
    let mut from = 0;
    while from < n || pending.is_some() {
        // make the next batch while the previous one commits
        let next = (from < n).then(|| {
            let to = (from + BATCH).min(n);
            let batch = records(from..to, threads, now);
            from = to;
            batch
        });
        if let Some(commit) = pending.take() {
            let decisions: Vec<Decision> = runtime.block_on(commit).expect("commit task").expect("batch commits");
            assert!(decisions.iter().all(|d| *d == Decision::Insert), "every name is new");
            done += decisions.len() as u64;
            if done.is_multiple_of(100_000) {
                eprintln!("registry_fill: {done} names, {:.0} names/s", done as f64 / started.elapsed().as_secs_f64());
            }
        }
        if let Some(batch) = next {
            for record in &batch {
                writeln!(addrs, "{}", record.addr).expect("addrs file");
            }
            let store = store.clone();
            pending = Some(runtime.spawn(async move { store.register_many(batch).await }));
        }
    }
    addrs.flush().expect("addrs file");
    let count = runtime.block_on(store.count()).expect("count");
    let secs = started.elapsed().as_secs_f64();
    drop(store); // closes the database: the last connection checkpoints the WAL into the main file
    std::thread::sleep(std::time::Duration::from_millis(200));
    let wal = dir.join(format!("{}-wal", tutti_registry::store::SQLITE_FILE));
    println!(
        "fill: {count} names in {secs:.1} s ({:.0} registrations/s signed, verified and committed in batches of {BATCH}); database {} bytes (WAL {} bytes)",
        count as f64 / secs,
        file_size(&db),
        file_size(&wal)
    );
}
