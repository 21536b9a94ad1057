//! The reliable-delivery machine under loss, duplication, reordering and resends, driven by injected
//! time: two `Link`s talk through a hand-operated "network" (vectors of datagrams), no sockets, no sleeps.

use std::time::{Duration, Instant};
use tutti_proto::link::RESEND_INTERVAL;
use tutti_proto::message::id;
use tutti_proto::{Datagram, Delivered, Frame, Link, LinkError, Message};

fn drain(link: &mut Link) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| link.poll_transmit()).collect()
}

fn frame(datagram: &[u8]) -> Frame<'_> {
    match Datagram::classify(datagram) {
        Datagram::Protocol(f) => f,
        Datagram::Audio(_) => panic!("link emitted a non-frame: {datagram:?}"),
    }
}

/// Hands each datagram to `to`; returns what it delivered.
fn deliver(to: &mut Link, now: Instant, datagrams: &[Vec<u8>]) -> Vec<Message> {
    datagrams
        .iter()
        .filter_map(|d| to.handle_frame(now, &frame(d)))
        .map(|d: Delivered| d.decode().expect("valid message"))
        .collect()
}

fn chat(text: &str) -> Message {
    Message::ChatText(text.into())
}

#[test]
fn one_message_in_flight_and_the_queue_drains_in_order() {
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    for text in ["one", "two", "three"] {
        a.send(t0, &chat(text)).unwrap();
    }
    let mut received = Vec::new();
    let mut wire = drain(&mut a);
    assert_eq!(wire.len(), 1, "only the head is on the wire");
    for _ in 0..3 {
        received.extend(deliver(&mut b, t0, &wire));
        let acks = drain(&mut b);
        assert_eq!(acks.len(), 1);
        deliver(&mut a, t0, &acks);
        wire = drain(&mut a);
    }
    assert!(wire.is_empty());
    assert_eq!(received, [chat("one"), chat("two"), chat("three")]);
    assert_eq!(a.unacknowledged(), 0);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn lost_message_is_resent_after_400_ms_and_not_before() {
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    a.send(t0, &chat("hello")).unwrap();
    let lost = drain(&mut a);
    assert_eq!(lost.len(), 1);
    assert_eq!(a.poll_timeout(), Some(t0 + RESEND_INTERVAL));

    a.handle_timeout(t0 + RESEND_INTERVAL - Duration::from_millis(1));
    assert!(drain(&mut a).is_empty(), "no resend before the deadline");

    let t1 = t0 + RESEND_INTERVAL;
    a.handle_timeout(t1);
    let resent = drain(&mut a);
    assert_eq!(resent, lost, "same counter, same bytes");
    assert_eq!(a.poll_timeout(), Some(t1 + RESEND_INTERVAL));

    assert_eq!(deliver(&mut b, t1, &resent), [chat("hello")]);
    deliver(&mut a, t1, &drain(&mut b));
    assert_eq!(a.unacknowledged(), 0);
}

#[test]
fn lost_ack_causes_a_resend_that_is_acked_again_but_not_delivered_twice() {
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    a.send(t0, &chat("once")).unwrap();
    a.send(t0, &chat("twice?")).unwrap();
    let first = drain(&mut a);
    assert_eq!(deliver(&mut b, t0, &first), [chat("once")]);
    let _lost_ack = drain(&mut b);

    let t1 = t0 + RESEND_INTERVAL;
    a.handle_timeout(t1);
    let resent = drain(&mut a);
    assert!(deliver(&mut b, t1, &resent).is_empty(), "duplicate is not delivered again");
    let ack = drain(&mut b);
    assert_eq!(ack.len(), 1, "but it is acknowledged again");
    deliver(&mut a, t1, &ack);
    assert_eq!(deliver(&mut b, t1, &drain(&mut a)), [chat("twice?")]);
}

#[test]
fn duplicated_datagram_is_delivered_once() {
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    a.send(t0, &Message::ClientId(3)).unwrap();
    let d = drain(&mut a).remove(0);
    assert_eq!(deliver(&mut b, t0, &[d.clone(), d.clone(), d]), [Message::ClientId(3)]);
    assert_eq!(drain(&mut b).len(), 3, "every copy is acknowledged");
}

#[test]
fn duplicate_memory_is_only_the_last_message() {
    // Jamulus remembers only the last (ID, counter): an old frame replayed after a newer one is new again.
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    a.send(t0, &Message::ClientId(1)).unwrap();
    let first = drain(&mut a);
    deliver(&mut b, t0, &first);
    deliver(&mut a, t0, &drain(&mut b));
    a.send(t0, &Message::ReqChannelInfos).unwrap();
    deliver(&mut b, t0, &drain(&mut a));
    assert_eq!(deliver(&mut b, t0, &first), [Message::ClientId(1)]);
}

#[test]
fn stale_reordered_and_mismatched_acks_are_ignored() {
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    a.send(t0, &chat("first")).unwrap();
    a.send(t0, &chat("second")).unwrap();
    let first = drain(&mut a);
    deliver(&mut b, t0, &first);
    let ack_first = drain(&mut b);

    // An ACK with the right counter but the wrong ID, and one with the right ID but the wrong counter.
    let wrong_id = Message::Ack { id: id::CLIENT_ID }.to_datagram(0);
    let wrong_cnt = Message::Ack { id: id::CHAT_TEXT }.to_datagram(1);
    deliver(&mut a, t0, &[wrong_id, wrong_cnt]);
    assert_eq!(a.unacknowledged(), 2);
    assert!(drain(&mut a).is_empty());

    deliver(&mut a, t0, &ack_first);
    assert_eq!(a.unacknowledged(), 1);
    let second = drain(&mut a);
    // The first ACK arrives again late (reordered behind the second message): ignored.
    deliver(&mut a, t0, &ack_first);
    assert_eq!(a.unacknowledged(), 1);
    assert_eq!(deliver(&mut b, t0, &second), [chat("second")]);
    deliver(&mut a, t0, &drain(&mut b));
    assert_eq!(a.unacknowledged(), 0);
}

#[test]
fn reordered_messages_after_loss_arrive_in_order() {
    // Only one message is ever in flight, so a receiver can never see them out of order: a lost head
    // holds back everything behind it until its resend gets through (cap #1 → #315).
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    for n in 0..5 {
        a.send(t0, &Message::JitterBufferSize(n + 1)).unwrap();
    }
    let _lost = drain(&mut a);
    let mut now = t0;
    let mut got = Vec::new();
    while a.unacknowledged() > 0 {
        now += RESEND_INTERVAL;
        a.handle_timeout(now);
        got.extend(deliver(&mut b, now, &drain(&mut a)));
        deliver(&mut a, now, &drain(&mut b));
        got.extend(deliver(&mut b, now, &drain(&mut a)));
        deliver(&mut a, now, &drain(&mut b));
    }
    assert_eq!(got, (1..=5).map(Message::JitterBufferSize).collect::<Vec<_>>());
}

#[test]
fn counters_start_at_zero_wrap_at_256_and_reset() {
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    let mut counters = Vec::new();
    for n in 0..300u32 {
        a.send(t0, &Message::ClmPingMs(n)).unwrap(); // connection-less: not counted
        a.send(t0, &Message::ClientId(n as u8)).unwrap();
        for d in drain(&mut a) {
            let f = frame(&d);
            if f.id == id::CLIENT_ID {
                counters.push(f.cnt);
            } else {
                assert_eq!(f.cnt, 0);
            }
            b.handle_frame(t0, &f);
        }
        deliver(&mut a, t0, &drain(&mut b));
    }
    assert_eq!(counters.len(), 300);
    assert!(counters.iter().enumerate().all(|(i, &c)| c == i as u8));

    a.send(t0, &chat("pending")).unwrap();
    a.reset();
    assert_eq!(a.unacknowledged(), 0);
    assert!(a.poll_transmit().is_none());
    a.send(t0, &chat("fresh")).unwrap();
    assert_eq!(frame(&drain(&mut a)[0]).cnt, 0);
}

#[test]
fn long_messages_are_split_only_when_the_peer_supports_it() {
    let t0 = Instant::now();
    let text = "x".repeat(1500);
    let (mut a, mut b) = (Link::default(), Link::default());
    a.send(t0, &chat(&text)).unwrap();
    let whole = drain(&mut a);
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].len(), 9 + 2 + 1500);
    assert_eq!(deliver(&mut b, t0, &whole), [chat(&text)]);
    deliver(&mut a, t0, &drain(&mut b));

    a.set_peer_supports_split(true);
    a.send(t0, &chat(&text)).unwrap();
    assert_eq!(a.unacknowledged(), 3, "1502 data bytes = 3 parts of ≤ 550");
    let mut got = Vec::new();
    let mut parts = 0;
    while a.unacknowledged() > 0 {
        let wire = drain(&mut a);
        parts += wire.iter().filter(|d| frame(d).id == id::SPECIAL_SPLIT_MESSAGE).count();
        got.extend(deliver(&mut b, t0, &wire));
        deliver(&mut a, t0, &drain(&mut b));
    }
    assert_eq!(parts, 3);
    assert_eq!(got, [chat(&text)]);
}

#[test]
fn split_parts_survive_loss_and_duplication() {
    let t0 = Instant::now();
    let list = Message::ConnClientsList(
        (0..40)
            .map(|c| tutti_proto::message::ClientListEntry {
                channel: c,
                profile: tutti_proto::message::Profile { name: format!("musician {c}"), ..Default::default() },
            })
            .collect(),
    );
    let (mut a, mut b) = (Link::default(), Link::default());
    a.set_peer_supports_split(true);
    a.send(t0, &list).unwrap();
    let mut now = t0;
    let mut got = Vec::new();
    let mut round = 0;
    while a.unacknowledged() > 0 {
        let wire = drain(&mut a);
        round += 1;
        if round % 3 == 0 {
            now += RESEND_INTERVAL; // lose this transmission
            a.handle_timeout(now);
            continue;
        }
        got.extend(deliver(&mut b, now, &wire));
        got.extend(deliver(&mut b, now, &wire)); // and duplicate every delivered one
        let acks = drain(&mut b);
        deliver(&mut a, now, &acks[..1]);
    }
    assert_eq!(got, [list]);
}

#[test]
fn invalid_and_unknown_messages_are_still_acknowledged() {
    let t0 = Instant::now();
    let mut b = Link::default();
    let bad_jitter = tutti_proto::frame::Frame { id: id::JITT_BUF_SIZE, cnt: 0, data: &[99, 0] }.to_bytes();
    let unknown = tutti_proto::frame::Frame { id: 777, cnt: 1, data: &[1, 2, 3] }.to_bytes();
    let legacy = Message::ReqChannelLevelList(1).to_datagram(2);
    for d in [&bad_jitter, &unknown, &legacy] {
        let delivered = b.handle_frame(t0, &frame(d)).expect("new message is handed up");
        let ack = drain(&mut b);
        assert_eq!(ack.len(), 1);
        let f = frame(&ack[0]);
        assert_eq!((f.id, f.cnt), (id::ACKN, frame(d).cnt));
        assert_eq!(f.data, frame(d).id.to_le_bytes());
        let _ = delivered.decode(); // invalid or unknown: an error for the caller, never a panic
    }
    assert!(b.handle_frame(t0, &frame(&bad_jitter)).unwrap().decode().is_err());
}

#[test]
fn queue_is_bounded_and_acks_cannot_be_queued() {
    let t0 = Instant::now();
    let mut a = Link::new(4);
    for _ in 0..4 {
        a.send(t0, &Message::ReqChannelInfos).unwrap();
    }
    assert_eq!(a.send(t0, &Message::ReqChannelInfos), Err(LinkError::QueueFull(4)));
    assert_eq!(a.send(t0, &Message::Ack { id: 18 }), Err(LinkError::Ack));
}

#[test]
fn a_message_too_long_for_one_frame_is_refused_not_a_panic() {
    // Found by the proto_link fuzz target (crates/fuzz/regressions/proto_link/): a chat text of
    // 70,000 bytes for a peer that does not split used to panic while framing it.
    let t0 = Instant::now();
    let mut a = Link::new(4);
    let long = Message::ChatText("\u{fffd}".repeat(70_000 / 3));
    assert_eq!(a.send(t0, &long), Err(LinkError::TooLong(long.data().len())));
    assert!(a.poll_transmit().is_none(), "nothing was queued");
    a.send(t0, &Message::ChatText("short".into())).unwrap();
}

#[test]
fn send_latest_replaces_a_waiting_copy_but_not_the_one_in_flight() {
    use tutti_proto::message::{ClientListEntry, Profile};
    let list = |n: u8| {
        Message::ConnClientsList((0..n).map(|c| ClientListEntry { channel: c, profile: Profile::default() }).collect())
    };
    let now = Instant::now();
    let mut link = Link::default();
    link.send_latest(now, &list(1)).unwrap(); // in flight
    link.send(now, &Message::ChatText("keep".into())).unwrap();
    link.send_latest(now, &list(2)).unwrap();
    link.send_latest(now, &list(3)).unwrap();
    assert_eq!(link.unacknowledged(), 3, "list 1 (in flight), the chat, list 3");
}

#[test]
fn a_queued_message_is_known_acknowledged_only_after_its_ack() {
    let t0 = Instant::now();
    let (mut a, mut b) = (Link::default(), Link::default());
    a.send(t0, &chat("first")).unwrap();
    a.send(t0, &chat("notice")).unwrap();
    let notice = a.last_queued();
    a.send(t0, &chat("after")).unwrap();
    assert!(!a.acknowledged_through(notice));
    // The first message is delivered but its ACK is lost: still not acknowledged.
    deliver(&mut b, t0, &drain(&mut a));
    drain(&mut b);
    assert!(!a.acknowledged_through(notice));
    // Resent, acknowledged: the notice is next on the wire, not yet acknowledged.
    let t1 = t0 + RESEND_INTERVAL;
    a.handle_timeout(t1);
    deliver(&mut b, t1, &drain(&mut a));
    deliver(&mut a, t1, &drain(&mut b));
    assert!(!a.acknowledged_through(notice));
    assert_eq!(deliver(&mut b, t1, &drain(&mut a)), [chat("notice")]);
    deliver(&mut a, t1, &drain(&mut b));
    assert!(a.acknowledged_through(notice));
}
