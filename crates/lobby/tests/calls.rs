//! Calls by ID in the pure core: challenges (fresh, once, 60 s), reachability only when turned on and
//! only while connected, ring → accept (paired like a match, the caller initiating), decline, cancel,
//! timeout, busy, unreachable, and a disconnect in the middle of a ring.

use serde_json::json;
use std::time::{Duration, Instant};
use tutti_lobby::{CallEnd, Counts, Error, Interests, Limits, Lobby, Notice};

const ALICE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BOB: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// 1 is Alice (identified), 2 is Bob (identified, reachable), 3 has no identity.
fn lobby(t: Instant) -> Lobby<u32> {
    let mut l = Lobby::new(Limits::default(), Duration::from_secs(5)).with_ring_timeout(Duration::from_secs(30));
    for id in 1..=3 {
        l.connect(id, t);
    }
    l.identify(1, ALICE.into(), json!({ "k": 1 })).unwrap();
    l.identify(2, BOB.into(), json!({ "k": 2 })).unwrap();
    l.set_reachable(2, true).unwrap();
    l
}

#[test]
fn a_challenge_is_answered_once_and_within_a_minute() {
    let t = Instant::now();
    let mut l = lobby(t);
    l.set_challenge(3, "c1".into(), t).unwrap();
    assert_eq!(l.take_challenge(3, t + Duration::from_secs(59)), Some("c1".into()));
    assert_eq!(l.take_challenge(3, t + Duration::from_secs(59)), None, "single use");
    l.set_challenge(3, "c2".into(), t).unwrap();
    assert_eq!(l.take_challenge(3, t + Duration::from_secs(60)), None, "expired");
}

#[test]
fn only_identified_sockets_call_or_become_reachable() {
    let t = Instant::now();
    let mut l = lobby(t);
    assert!(matches!(l.set_reachable(3, true), Err(Error::NotIdentified)));
    assert!(matches!(l.call(3, BOB, t), Err(Error::NotIdentified)));
    assert!(matches!(l.call(2, ALICE, t), Err(Error::Unreachable)), "Alice did not turn reachability on");
    assert!(matches!(l.call(2, BOB, t), Err(Error::Unreachable)), "nobody calls themselves");
}

#[test]
fn an_accepted_call_pairs_like_a_match_with_the_caller_initiating() {
    let t = Instant::now();
    let mut l = lobby(t);
    l.find(2, Interests::default(), t).unwrap(); // Bob waits in the queue meanwhile
    assert_eq!(l.call(1, BOB, t).unwrap(), [Notice::Ring { to: 2, from: 1 }]);
    assert_eq!(l.proof(1), Some(&json!({ "k": 1 })));
    assert!(matches!(l.call(1, BOB, t), Err(Error::CallPending)));
    assert!(matches!(l.answer(1, true), Err(Error::NoCall)), "the caller cannot answer its own call");
    let n = l.answer(2, true).unwrap();
    assert_eq!(
        n,
        [
            Notice::Matched { to: 2, partner: 1, initiator: false, common: vec![] },
            Notice::Matched { to: 1, partner: 2, initiator: true, common: vec![] },
        ]
    );
    assert_eq!(l.counts(), Counts { sockets: 3, waiting: 0, pairs: 1 });
    assert_eq!(l.partner(1), Some(2));
    l.connect(4, t);
    l.identify(4, "cccccccccccccccccccccccccccccccccccccccc".into(), json!({})).unwrap();
    assert!(matches!(l.call(4, BOB, t), Err(Error::Busy)), "Bob is in a conversation");
    assert_eq!(l.stop(1).unwrap(), [Notice::PartnerLeft { to: 2 }]);
}

#[test]
fn decline_cancel_and_timeout_tell_the_right_side() {
    let t = Instant::now();
    let mut l = lobby(t);
    l.call(1, BOB, t).unwrap();
    assert_eq!(l.answer(2, false).unwrap(), [Notice::CallEnded { to: 1, reason: CallEnd::Declined }]);
    l.call(1, BOB, t).unwrap();
    assert_eq!(l.cancel_call(1).unwrap(), [Notice::CallEnded { to: 2, reason: CallEnd::Canceled }]);
    assert!(matches!(l.cancel_call(1), Err(Error::NoCall)));
    l.call(1, BOB, t).unwrap();
    assert!(l.tick(t + Duration::from_secs(29)).is_empty());
    let mut n = l.tick(t + Duration::from_secs(30));
    n.sort_by_key(|n| if let Notice::CallEnded { to, .. } = n { *to } else { 0 });
    assert_eq!(
        n,
        [Notice::CallEnded { to: 1, reason: CallEnd::Timeout }, Notice::CallEnded { to: 2, reason: CallEnd::Timeout }]
    );
    assert_eq!(l.counts().pairs, 0);
}

#[test]
fn reachability_ends_with_the_socket() {
    let t = Instant::now();
    let mut l = lobby(t);
    l.call(1, BOB, t).unwrap();
    assert_eq!(l.disconnect(2), [Notice::CallEnded { to: 1, reason: CallEnd::Gone }]);
    assert!(matches!(l.call(1, BOB, t), Err(Error::Unreachable)), "gone with its socket");
    // a second socket of the same identity takes over; turning it off on the old one changes nothing
    l.connect(5, t);
    l.connect(6, t);
    l.identify(5, BOB.into(), json!({})).unwrap();
    l.identify(6, BOB.into(), json!({})).unwrap();
    l.set_reachable(5, true).unwrap();
    l.set_reachable(6, true).unwrap();
    l.set_reachable(5, false).unwrap();
    assert_eq!(l.call(1, BOB, t).unwrap(), [Notice::Ring { to: 6, from: 1 }]);
    l.set_reachable(6, false).unwrap();
    l.cancel_call(1).unwrap();
    assert!(matches!(l.call(1, BOB, t), Err(Error::Unreachable)), "turned off");
    for id in [1, 3, 5, 6] {
        l.disconnect(id);
    }
    assert_eq!(l.counts(), Counts::default());
}
