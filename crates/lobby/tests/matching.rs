//! The pure matching core: FIFO order, interest overlap first, random fallback after the wait, never
//! self nor the partner just left, relay only to the partner, and nothing left after everyone leaves.

use std::time::{Duration, Instant};
use tutti_lobby::{Counts, Error, Interests, Limits, Lobby, Notice, Refusals};

const WAIT: Duration = Duration::from_secs(5);

fn lobby() -> Lobby<u32> {
    Lobby::new(Limits::default(), WAIT)
}

fn tags(v: &[&str]) -> Interests {
    Interests::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &Limits::default()).unwrap()
}

fn matched(n: &[Notice<u32>]) -> Vec<(u32, u32)> {
    n.iter()
        .filter_map(|n| match n {
            Notice::Matched { to, partner, .. } => Some((*to, *partner)),
            _ => None,
        })
        .collect()
}

#[test]
fn two_strangers_are_matched_and_one_is_initiator() {
    let mut l = lobby();
    let t = Instant::now();
    l.connect(1, t);
    l.connect(2, t);
    assert!(l.find(1, tags(&[]), t).unwrap().is_empty());
    let n = l.find(2, tags(&[]), t).unwrap();
    assert_eq!(
        n,
        vec![
            Notice::Matched { to: 1, partner: 2, initiator: false, common: vec![] },
            Notice::Matched { to: 2, partner: 1, initiator: true, common: vec![] },
        ]
    );
    assert_eq!(l.partner(1), Some(2));
    assert_eq!(l.partner(2), Some(1));
    assert_eq!(l.counts(), Counts { sockets: 2, waiting: 0, pairs: 1 });
}

#[test]
fn never_matched_with_itself() {
    let mut l = lobby();
    let t = Instant::now();
    l.connect(1, t);
    assert!(l.find(1, tags(&[]), t).unwrap().is_empty());
    assert!(l.find(1, tags(&[]), t).unwrap().is_empty(), "a second find only updates the wait");
    assert!(l.tick(t + WAIT * 2).is_empty());
    assert_eq!(l.counts().waiting, 1);
}

#[test]
fn fifo_order_among_random_waiters() {
    let mut l = lobby();
    let t = Instant::now();
    for id in 1..=4 {
        l.connect(id, t);
    }
    l.find(1, tags(&[]), t).unwrap();
    l.find(2, tags(&[]), t).unwrap_err_or_pair();
    // 1 and 2 paired; 3 waits, 4 gets 3 (the oldest waiter), not anyone else
    l.find(3, tags(&[]), t).unwrap();
    assert_eq!(matched(&l.find(4, tags(&[]), t).unwrap()), vec![(3, 4), (4, 3)]);
}

trait PairExt {
    fn unwrap_err_or_pair(self);
}
impl PairExt for Result<Vec<Notice<u32>>, Error> {
    fn unwrap_err_or_pair(self) {
        assert_eq!(matched(&self.unwrap()).len(), 2);
    }
}

#[test]
fn shared_interest_beats_an_older_waiter() {
    let mut l = lobby();
    let t = Instant::now();
    for id in 1..=3 {
        l.connect(id, t);
    }
    l.find(1, tags(&["chess"]), t).unwrap();
    l.find(2, tags(&["jazz", "music"]), t).unwrap();
    let n = l.find(3, tags(&["Music"]), t).unwrap();
    assert_eq!(matched(&n), vec![(2, 3), (3, 2)]);
    assert!(matches!(&n[0], Notice::Matched { common, .. } if common == &vec!["music".to_string()]));
    assert!(l.is_waiting(1));
}

#[test]
fn no_overlap_waits_until_the_fallback() {
    let mut l = lobby();
    let t = Instant::now();
    l.connect(1, t);
    l.connect(2, t);
    l.find(1, tags(&["chess"]), t).unwrap();
    assert!(l.find(2, tags(&["jazz"]), t + Duration::from_secs(1)).unwrap().is_empty());
    assert!(l.tick(t + Duration::from_secs(4)).is_empty(), "nobody waited long enough");
    // 1's wait ran out, 2's not yet: both must accept random
    assert!(l.tick(t + Duration::from_millis(5500)).is_empty());
    let n = l.tick(t + Duration::from_millis(6100));
    assert_eq!(matched(&n).len(), 2);
    assert!(matches!(&n[0], Notice::Matched { common, .. } if common.is_empty()));
}

#[test]
fn someone_without_interests_takes_an_expired_waiter() {
    let mut l = lobby();
    let t = Instant::now();
    l.connect(1, t);
    l.connect(2, t);
    l.find(1, tags(&["chess"]), t).unwrap();
    assert!(l.find(2, tags(&[]), t).unwrap().is_empty(), "1 still hopes for chess");
    assert_eq!(matched(&l.tick(t + WAIT)).len(), 2);
}

#[test]
fn next_never_rematches_the_partner_just_left() {
    let mut l = lobby();
    let t = Instant::now();
    for id in 1..=3 {
        l.connect(id, t);
    }
    l.find(1, tags(&[]), t).unwrap();
    l.find(2, tags(&[]), t).unwrap();
    let n = l.next(1, t).unwrap();
    assert_eq!(n, vec![Notice::PartnerLeft { to: 2 }]);
    assert!(l.find(2, tags(&[]), t).unwrap().is_empty(), "2 must not get 1 back");
    assert!(l.tick(t + WAIT * 3).is_empty());
    let n = l.find(3, tags(&[]), t).unwrap();
    // 3 gets the oldest waiter (1, queued by next)
    assert_eq!(matched(&n), vec![(1, 3), (3, 1)]);
    assert_eq!(l.counts(), Counts { sockets: 3, waiting: 1, pairs: 1 });
}

#[test]
fn stop_leaves_partner_and_queue() {
    let mut l = lobby();
    let t = Instant::now();
    l.connect(1, t);
    l.connect(2, t);
    l.connect(3, t);
    l.find(1, tags(&[]), t).unwrap();
    l.find(2, tags(&[]), t).unwrap();
    assert_eq!(l.stop(2).unwrap(), vec![Notice::PartnerLeft { to: 1 }]);
    assert_eq!(l.partner(1), None);
    l.find(3, tags(&[]), t).unwrap();
    assert_eq!(l.stop(3).unwrap(), vec![]);
    assert_eq!(l.counts(), Counts { sockets: 3, waiting: 0, pairs: 0 });
    assert!(matches!(l.find(1, tags(&[]), t), Ok(n) if n.is_empty()));
    assert!(matches!(l.find(9, tags(&[]), t), Err(Error::UnknownSocket)));
}

#[test]
fn find_while_matched_is_refused() {
    let mut l = lobby();
    let t = Instant::now();
    l.connect(1, t);
    l.connect(2, t);
    l.find(1, tags(&[]), t).unwrap();
    l.find(2, tags(&[]), t).unwrap();
    assert!(matches!(l.find(1, tags(&[]), t), Err(Error::AlreadyMatched)));
}

#[test]
fn disconnect_tells_the_partner_and_forgets_everything() {
    let mut l = lobby();
    let t = Instant::now();
    l.connect(1, t);
    l.connect(2, t);
    l.find(1, tags(&["a"]), t).unwrap();
    l.find(2, tags(&["a"]), t).unwrap();
    assert_eq!(l.disconnect(1), vec![Notice::PartnerLeft { to: 2 }]);
    assert_eq!(l.partner(2), None);
    assert!(l.disconnect(1).is_empty(), "twice is harmless");
    l.disconnect(2);
    assert_eq!(l.counts(), Counts::default());
}

#[test]
fn rate_limit_and_abuse() {
    let limits = Limits { events_per_sec: 1.0, burst: 2.0, strikes: 3, ..Limits::default() };
    let mut l: Lobby<u32> = Lobby::new(limits, WAIT);
    let t = Instant::now();
    l.connect(1, t);
    l.admit(1, t).unwrap();
    l.admit(1, t).unwrap();
    for _ in 0..3 {
        assert!(matches!(l.admit(1, t), Err(Error::RateLimited)));
    }
    assert!(matches!(l.admit(1, t), Err(Error::Abusive)));
    // its last events may still arrive: refused, but the socket is cut once
    assert!(matches!(l.admit(1, t), Err(Error::Abusive)));
    assert!(matches!(l.strike(1, t), Err(Error::Abusive)));
    assert_eq!(l.refusals(), Refusals { strikes: 6, cut: 1 });
    l.connect(2, t);
    assert!(l.strike(2, t).is_ok());
    assert_eq!(l.refusals(), Refusals { strikes: 7, cut: 1 });
}

/// A deterministic pseudo-random walk through thousands of operations: the invariants hold at every
/// step (partners are mutual, nobody waits while matched, counts agree) and everything is gone at the end.
#[test]
fn thousands_of_random_cycles_leave_nothing_behind() {
    let mut l: Lobby<u32> = Lobby::new(Limits::default(), Duration::from_millis(50));
    let mut t = Instant::now();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rnd = move |n: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as u32
    };
    let mut connected: Vec<u32> = Vec::new();
    let mut next_id = 0;
    let pool = ["a", "b", "c"];
    for step in 0..20_000 {
        t += Duration::from_millis(rnd(20) as u64);
        match rnd(8) {
            0 | 1 => {
                next_id += 1;
                l.connect(next_id, t);
                connected.push(next_id);
            }
            2 | 7 if !connected.is_empty() => {
                let id = connected.swap_remove(rnd(connected.len() as u32) as usize);
                l.disconnect(id);
            }
            3 | 4 if !connected.is_empty() => {
                let id = connected[rnd(connected.len() as u32) as usize];
                let interests = if rnd(2) == 0 { tags(&[]) } else { tags(&[pool[rnd(3) as usize]]) };
                let _ = l.find(id, interests, t);
            }
            5 if !connected.is_empty() => {
                let id = connected[rnd(connected.len() as u32) as usize];
                l.next(id, t).unwrap();
            }
            6 if !connected.is_empty() => {
                let id = connected[rnd(connected.len() as u32) as usize];
                if rnd(2) == 0 {
                    l.stop(id).unwrap();
                } else {
                    l.tick(t);
                }
            }
            _ => {}
        }
        let mut pairs = 0;
        let mut waiting = 0;
        for &id in &connected {
            if let Some(p) = l.partner(id) {
                assert_eq!(l.partner(p), Some(id), "step {step}: partners are mutual");
                assert_ne!(p, id);
                assert!(!l.is_waiting(id), "step {step}: matched and waiting");
                pairs += 1;
            }
            waiting += l.is_waiting(id) as usize;
        }
        assert_eq!(l.counts(), Counts { sockets: connected.len(), waiting, pairs: pairs / 2 }, "step {step}");
    }
    assert!(next_id > 3000, "thousands of sockets went through");
    for id in connected.drain(..) {
        l.disconnect(id);
    }
    assert_eq!(l.counts(), Counts::default());
}
