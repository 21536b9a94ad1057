//! Two `tutti registry` processes on one real PostgreSQL database (Debian's `postgresql`, started in a
//! temporary directory): concurrent registrations of the same names through both can never give one
//! name two addresses or one address two names, and each process reads what the other wrote. Skipped,
//! with the reason printed, only where PostgreSQL cannot start.

mod tutti_process;

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use tutti_process::Tutti;
use tutti_registry::test_http::{get, post_json};
use tutti_registry::test_keys::{ed25519, ed25519_registration};
use tutti_registry::test_postgres::TempPostgres;

const NAMES: u64 = 25;
const CONTENDERS: u64 = 6;

fn start(url: &str) -> (Tutti, SocketAddr) {
    let tutti = Tutti::start(&[
        "registry",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        url,
        "--registrations-per-minute",
        "0",
    ]);
    let addr = tutti
        .wait_for_http_addr("tutti registry: listening on http://", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("tutti registry did not start: {}", tutti.log()));
    (tutti, addr)
}

fn registration(seed: u64, name: &str) -> Value {
    let (key, _) = ed25519(seed);
    serde_json::to_value(ed25519_registration(&key, name)).unwrap()
}

#[test]
fn two_processes_on_one_database_never_give_a_name_twice() {
    let postgres = match TempPostgres::start() {
        Ok(server) => server,
        Err(reason) => {
            println!("SKIPPED: PostgreSQL cannot start here: {reason}");
            return;
        }
    };
    // both start together: the schema is created once, under an advisory lock
    let url = postgres.url();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| start(&url));
        let b = s.spawn(|| start(&url));
        (a.join().unwrap(), b.join().unwrap())
    });
    let servers = [a.1, b.1];

    // every contender posts every name at the same moment, alternating between the two processes
    let barrier = Arc::new(Barrier::new(CONTENDERS as usize));
    let results: Vec<Vec<(u64, u16)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CONTENDERS)
            .map(|contender| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    (0..NAMES)
                        .map(|n| {
                            let name = format!("shared-{n}");
                            let server = servers[((contender + n) % 2) as usize];
                            let body = registration(n * 100 + contender, &name);
                            (n, post_json(server, &format!("/name/{name}"), &body).unwrap().status)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for n in 0..NAMES {
        let statuses: Vec<u16> =
            results.iter().flat_map(|r| r.iter().filter(|(m, _)| *m == n).map(|(_, s)| *s)).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "shared-{n}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 403).count(), CONTENDERS as usize - 1, "shared-{n}");
        // both processes give the same answer, and it is the winner's
        let one = get(servers[0], &format!("/name/shared-{n}")).unwrap();
        let other = get(servers[1], &format!("/name/shared-{n}")).unwrap();
        assert_eq!((one.status, &one.body), (200, &other.body));
        let winner = (0..CONTENDERS).find(|c| results[*c as usize].iter().any(|(m, s)| *m == n && *s == 200)).unwrap();
        assert_eq!(one.json()["addr"], registration(n * 100 + winner, "x")["addr"]);
    }

    // one address, two names at once through the two processes: exactly one wins
    for round in 0..10u64 {
        let seed = 10_000 + round;
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let barrier = Arc::new(Barrier::new(2));
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let barrier = barrier.clone();
                    s.spawn(move || {
                        let name = format!("solo-{round}-{i}");
                        barrier.wait();
                        post_json(servers[i], &format!("/name/{name}"), &registration(seed, &name)).unwrap().status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(sorted, vec![200, 403], "round {round}: {statuses:?}");
    }
    // re-posting the winner's identical registration to the other process is a success
    let body = registration(10_000, "x");
    let name_of = get(servers[1], &format!("/addr/{}", body["addr"].as_str().unwrap())).unwrap().json();
    let name = name_of["name"].as_str().unwrap().to_owned();
    assert_eq!(post_json(servers[0], &format!("/name/{name}"), &registration(10_000, &name)).unwrap().status, 200);
    assert_eq!(post_json(servers[1], &format!("/name/{name}"), &registration(10_000, &name)).unwrap().status, 200);
    drop((a, b));
    drop(postgres);
}
