//! The behaviour every store must show, run against SQLite in unit tests and against a real PostgreSQL
//! server in crates/registry/tests/postgres.rs.

use super::Store;
use crate::{test_keys, verify, Addr, Decision, Name, Record};

fn name(s: &str) -> Name {
    Name::parse(s).expect("a valid test name")
}

/// A record of `n` by the Ed25519 test key from `seed`, stamped `at`.
pub fn record(seed: u64, n: &str, at: u64) -> Record {
    let (key, _) = test_keys::ed25519(seed);
    verify(&name(n), &test_keys::ed25519_registration(&key, n), at).expect("a valid test registration")
}

/// Registration rules, lookups and batches on an empty store.
pub async fn run(store: &Store) {
    assert_eq!(store.count().await.unwrap(), 0);
    assert_eq!(store.record(&name("alice")).await.unwrap(), None);

    let alice = record(1, "alice", 1_700_000_000);
    assert_eq!(store.register(alice.clone()).await.unwrap(), Decision::Insert);
    assert_eq!(store.record(&name("alice")).await.unwrap(), Some(alice.clone()));
    assert_eq!(store.name_of(&alice.addr).await.unwrap(), Some(name("alice")));
    // identical again: success, nothing changes (not even the time)
    let again = Record { registered_at: 1_800_000_000, ..alice.clone() };
    assert_eq!(store.register(again).await.unwrap(), Decision::AlreadyRegistered);
    assert_eq!(store.record(&name("alice")).await.unwrap(), Some(alice.clone()));
    // the name for someone else, another name for the same address
    assert_eq!(store.register(record(2, "alice", 0)).await.unwrap(), Decision::NameTaken);
    assert_eq!(store.register(record(1, "alice2", 0)).await.unwrap(), Decision::AddrHasName(name("alice")));
    assert_eq!(store.count().await.unwrap(), 1);

    // an RSA (Jami) record keeps its fields byte for byte
    let jami = verify(&name("jami-user"), &test_keys::rsa_registration(0, "jami-user"), 5).unwrap();
    assert_eq!(store.register(jami.clone()).await.unwrap(), Decision::Insert);
    assert_eq!(store.record(&name("jami-user")).await.unwrap(), Some(jami));

    // a batch: a later record sees an earlier one of the same batch
    let batch = vec![record(3, "carol", 7), record(4, "carol", 7), record(3, "carol-two", 7), record(5, "dave", 7)];
    let decisions = store.register_many(batch).await.unwrap();
    assert_eq!(
        decisions,
        vec![Decision::Insert, Decision::NameTaken, Decision::AddrHasName(name("carol")), Decision::Insert]
    );
    assert_eq!(store.count().await.unwrap(), 4);
    let unknown = Addr::parse("0x0000000000000000000000000000000000000000").unwrap();
    assert_eq!(store.name_of(&unknown).await.unwrap(), None);

    // many concurrent registrations of one name by different keys: exactly one wins
    let contenders: Vec<_> = (100..116).map(|seed| store.register(record(seed, "contested", 9))).collect();
    let results = futures_join_all(contenders).await;
    let wins = results.iter().filter(|r| matches!(r, Ok(Decision::Insert))).count();
    let taken = results.iter().filter(|r| matches!(r, Ok(Decision::NameTaken))).count();
    assert_eq!((wins, taken), (1, 15), "{results:?}");
}

/// After [`run`] and a reopen: every record is still there.
pub async fn check_after_reopen(store: &Store) {
    assert_eq!(store.count().await.unwrap(), 5);
    assert_eq!(store.record(&name("alice")).await.unwrap(), Some(record(1, "alice", 1_700_000_000)));
    assert_eq!(store.record(&name("dave")).await.unwrap(), Some(record(5, "dave", 7)));
}

/// Polls the futures together on the current task (no extra dependency for a join).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}
