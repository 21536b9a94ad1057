//! The server state machine driven without sockets or sleeps (`sim`): connection sequence, audio rates,
//! personal mixes, chat, client lists without addresses, full servers, time-outs, connection-less
//! requests, garbage, formats and shared encodes.

mod sim;

use sim::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tutti_jam::{ClientConfig, ClientEvent, DropReason, Event, Server, ServerConfig};
use tutti_proto::message::{id, RecorderState};
use tutti_proto::{AudioCodec, Datagram, Message};

#[test]
fn connect_sequence_is_the_one_a_real_server_sends() {
    let mut net = Net::new(ServerConfig { welcome_message: Some("Hi <b>all</b>".into()), ..ServerConfig::default() });
    let a = net.add(22300, ClientConfig { profile: profile("Alice"), ..opus64() }, None);
    net.run(Duration::from_millis(50));
    let got = &net.peer(a).messages;
    let expected = [
        Message::ClientId(0),
        Message::ConnClientsList(vec![]),
        Message::ReqSplitMessSupport,
        Message::ReqTransportProps,
        Message::ReqJitterBufferSize,
        Message::ReqChannelInfos,
        Message::ChatText("<b>Server Welcome Message:</b> Hi <b>all</b>".into()),
        Message::VersionAndOs(tutti_proto::message::VersionAndOs {
            os: tutti_proto::message::OsType::Linux,
            version: "3.9.1".into(),
        }),
        Message::RecorderState(RecorderState::NotInitialised),
    ];
    assert_eq!(&got[..expected.len()], &expected, "{got:#?}");
    assert!(got.contains(&Message::JitterBufferSize(6)), "auto jitter buffer report");
    assert!(got
        .iter()
        .any(|m| matches!(m, Message::ConnClientsList(l) if l.len() == 1 && l[0].profile.name == "Alice")));
    assert!(net.peer(a).events.contains(&ClientEvent::Connected { channel: 0 }));
    assert!(net.peer(a).audio_datagrams > 0, "audio flows once the profile is known");
    assert_eq!(net.server_events[0], Event::ClientConnected { channel: 0, address: net.peers[a].address });
}

#[test]
fn audio_rate_matches_the_clients_format() {
    let mut net = Net::new(ServerConfig::default());
    let a = net.add(22300, ClientConfig { profile: profile("A"), ..opus64() }, None);
    let b = net.add(22400, ClientConfig { profile: profile("B"), ..ClientConfig::default() }, None);
    net.run(Duration::from_secs(1));
    let (a0, b0) = (net.peer(a).audio_datagrams, net.peer(b).audio_datagrams);
    net.run(Duration::from_secs(2));
    let per_second = |n: u64, m: u64| (m - n) as f64 / 2.0;
    assert!((per_second(a0, net.peer(a).audio_datagrams) - 750.0).abs() < 5.0, "OPUS64: 750 datagrams/s");
    assert!((per_second(b0, net.peer(b).audio_datagrams) - 375.0).abs() < 5.0, "OPUS: 375 datagrams/s");
    assert_eq!(net.server.stats().dropped(DropReason::AudioWrongSize), 0);
}

#[test]
fn personal_mix_follows_this_listeners_gain_pan_and_mute_only() {
    let mut net = Net::new(ServerConfig::default());
    let a = net.add(22300, ClientConfig { profile: profile("Tone"), ..opus64() }, Some(1000.0));
    let b = net.add(22400, ClientConfig { profile: profile("Stereo"), channels: 2, ..ClientConfig::default() }, None);
    let c = net.add(22500, ClientConfig { profile: profile("Mono"), ..ClientConfig::default() }, None);
    net.run(Duration::from_millis(4500)); // fade-in is 3 s
    let (bl, br, cl) = (rms_tail(net.peer(b), 0.5, 0), rms_tail(net.peer(b), 0.5, 1), rms_tail(net.peer(c), 0.5, 0));
    let a_self = rms_tail(net.peer(a), 0.5, 0);
    let full = 0.5 / 2f32.sqrt();
    for level in [bl, br, cl, a_self] {
        assert!((level / full - 1.0).abs() < 0.2, "tone at full level everywhere: {bl} {br} {cl} {a_self}");
    }

    // B mutes A: only B's mix changes, and A is told who muted it.
    let a_channel = net.peer(a).client.channel().unwrap();
    let b_channel = net.peer(b).client.channel().unwrap();
    let now = net.now;
    net.peer(b).client.set_gain(now, a_channel, 0.0);
    net.run(Duration::from_millis(500));
    assert!(rms_tail(net.peer(b), 0.3, 0) < 0.01 && rms_tail(net.peer(b), 0.3, 1) < 0.01, "muted in B's mix");
    assert!((rms_tail(net.peer(c), 0.3, 0) / full - 1.0).abs() < 0.2, "C still hears A");
    assert!((rms_tail(net.peer(a), 0.3, 0) / full - 1.0).abs() < 0.2, "A still hears itself");
    assert!(net.peer(a).events.contains(&ClientEvent::MutedBy { channel: b_channel, muted: true }));

    // B unmutes at half gain and pans A hard left.
    let now = net.now;
    net.peer(b).client.set_gain(now, a_channel, 0.5);
    net.peer(b).client.set_pan(now, a_channel, 0.0);
    net.run(Duration::from_millis(500));
    let (bl, br) = (rms_tail(net.peer(b), 0.3, 0), rms_tail(net.peer(b), 0.3, 1));
    assert!((bl / (full * 0.5) - 1.0).abs() < 0.2, "half gain on the left: {bl}");
    assert!(br < 0.01, "nothing on the right: {br}");
    assert!(net.peer(a).events.contains(&ClientEvent::MutedBy { channel: b_channel, muted: false }));
    assert!((rms_tail(net.peer(c), 0.3, 0) / full - 1.0).abs() < 0.2, "C unaffected");
}

#[test]
fn own_signal_can_be_removed_and_loud_mixes_clip() {
    let mut net = Net::new(ServerConfig::default());
    let a = net.add(22300, ClientConfig { profile: profile("A"), ..opus64() }, Some(440.0));
    let b = net.add(22400, ClientConfig { profile: profile("B"), ..opus64() }, Some(440.0));
    net.peer(a).amplitude = 0.9;
    net.peer(b).amplitude = 0.9;
    net.run(Duration::from_millis(4000));
    let heard = &net.peers[b].heard;
    let peak = heard[heard.len() - 24_000..].iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(peak > 0.95 && peak < 1.1, "two in-phase 0.9 tones clip at full scale: {peak}");
    let own = net.peer(a).client.channel().unwrap();
    let now = net.now;
    net.peer(a).client.set_gain(now, own, 0.0);
    net.run(Duration::from_millis(500));
    let level = rms_tail(net.peer(a), 0.3, 0);
    assert!((level / (0.9 / 2f32.sqrt()) - 1.0).abs() < 0.2, "only B left: {level}");
}

#[test]
fn chat_is_escaped_stamped_and_sent_to_everybody() {
    let mut net = Net::new(ServerConfig { time_of_day: eleven_pm, ..ServerConfig::default() });
    let a = net.add(22300, ClientConfig { profile: profile("Eve"), ..opus64() }, None);
    let b = net.add(22400, ClientConfig { profile: profile("Bob"), ..opus64() }, None);
    net.run(Duration::from_millis(100));
    let now = net.now;
    net.peer(a).client.send_chat(now, "<script>alert(1)</script><a href=\"http://x\">x</a>");
    net.run(Duration::from_millis(50));
    let line = "<font color=\"mediumblue\">(11:31:11 PM) <b>Eve</b></font> \
                &lt;script&gt;alert(1)&lt;/script&gt;&lt;a href=&quot;http://x&quot;&gt;x&lt;/a&gt;";
    for p in [a, b] {
        assert!(net.peer(p).events.contains(&ClientEvent::Chat(line.into())), "{:?}", net.peer(p).events);
    }
}

#[test]
fn client_list_carries_profiles_but_never_addresses() {
    let mut net = Net::new(ServerConfig::default());
    let a = net.add(22300, ClientConfig { profile: profile("Alice"), ..opus64() }, None);
    let b = net.add(22400, ClientConfig { profile: profile("Bob"), ..opus64() }, None);
    net.run(Duration::from_millis(100));
    let lists: Vec<_> =
        net.peer(a).raw_protocol.iter().filter(|d| d[2] == id::CONN_CLIENTS_LIST as u8).cloned().collect();
    assert!(!lists.is_empty());
    for datagram in lists {
        // Walk the entries: channel u8, country u16, instrument u32, skill u8, former IP u32, two str16.
        let data = &datagram[7..datagram.len() - 2];
        let mut at = 0;
        while at < data.len() {
            assert_eq!(&data[at + 8..at + 12], &[0, 0, 0, 0], "IP field must be zero");
            let name = usize::from(u16::from_le_bytes([data[at + 12], data[at + 13]]));
            let city_at = at + 14 + name;
            let city = usize::from(u16::from_le_bytes([data[city_at], data[city_at + 1]]));
            at = city_at + 2 + city;
        }
    }
    let last = net.peer(b).events.iter().rev().find_map(|e| match e {
        ClientEvent::ClientList(l) => Some(l.clone()),
        _ => None,
    });
    let names: Vec<_> = last.unwrap().iter().map(|e| e.profile.name.clone()).collect();
    assert_eq!(names, ["Alice", "Bob"]);

    // Sending the same profile again triggers nothing; a changed one is broadcast.
    let before = net.peer(b).events.len();
    let now = net.now;
    net.peer(a).client.set_profile(now, profile("Alice"));
    net.run(Duration::from_millis(20));
    assert_eq!(net.peer(b).events.len(), before);
    let now = net.now;
    net.peer(a).client.set_profile(now, profile("Alicia"));
    net.run(Duration::from_millis(20));
    assert!(matches!(net.peer(b).events.last(), Some(ClientEvent::ClientList(l)) if l[0].profile.name == "Alicia"));
}

#[test]
fn server_full_answers_clm_server_full_and_creates_no_channel() {
    let mut net = Net::new(ServerConfig { max_channels: 1, ..ServerConfig::default() });
    let a = net.add(22300, ClientConfig { profile: profile("A"), ..opus64() }, None);
    let b = net.add(22400, ClientConfig { profile: profile("B"), ..opus64() }, None);
    net.run(Duration::from_millis(100));
    assert!(net.peer(b).messages.contains(&Message::ClmServerFull));
    assert!(net.peer(b).client.channel().is_none());
    assert_eq!(net.peer(a).client.channel(), Some(0));
    assert_eq!(net.server.connected_clients(), 1);
    assert!(net.server.stats().dropped(DropReason::ServerFull) > 0);
}

#[test]
fn silent_clients_time_out_and_goodbyes_free_the_channel_at_once() {
    let mut net = Net::new(ServerConfig::default());
    let a = net.add(22300, ClientConfig { profile: profile("A"), ..opus64() }, None);
    let b = net.add(22400, ClientConfig { profile: profile("B"), ..opus64() }, None);
    let c = net.add(22500, ClientConfig { profile: profile("C"), ..opus64() }, None);
    net.run(Duration::from_millis(200));
    assert_eq!(net.server.connected_clients(), 3);

    net.peer(a).client.disconnect();
    net.run(Duration::from_millis(10));
    assert_eq!(net.server.connected_clients(), 2, "CLM_DISCONNECTION frees the channel on the next tick");

    net.peer(b).sending = false;
    net.run(Duration::from_secs(29));
    assert_eq!(net.server.connected_clients(), 2, "protocol traffic alone does not time out yet");
    net.run(Duration::from_millis(1200));
    assert_eq!(net.server.connected_clients(), 1, "30 s without audio");
    assert!(net
        .server_events
        .iter()
        .any(|e| matches!(e, Event::ClientDisconnected { channel: 1, timed_out: true, .. })));
    let last = net.peer(c).events.iter().rev().find_map(|e| match e {
        ClientEvent::ClientList(l) => Some(l.clone()),
        _ => None,
    });
    assert_eq!(last.unwrap().iter().map(|e| e.profile.name.as_str()).collect::<Vec<_>>(), ["C"]);

    net.peer(c).client.disconnect();
    net.run(Duration::from_millis(10));
    assert_eq!(net.server.connected_clients(), 0);
    assert!(net.server_events.contains(&Event::Idle));
    assert_eq!(net.server.poll_timeout(), None, "the tick stops when idle");
}

#[test]
fn connection_less_requests_are_answered_without_a_channel_within_a_budget() {
    let mut server = Server::new(ServerConfig::default());
    let now = Instant::now();
    let prober: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let ask = |server: &mut Server, m: Message| {
        server.handle_datagram(now, prober, &m.to_datagram(0));
        let replies: Vec<Message> = std::iter::from_fn(|| server.poll_transmit().map(|(_, b)| b.to_vec()))
            .map(|b| match Datagram::classify(&b) {
                Datagram::Protocol(f) => Message::decode(f.id, f.data).unwrap(),
                Datagram::Audio(_) => panic!("audio to a prober"),
            })
            .collect();
        replies
    };
    assert_eq!(ask(&mut server, Message::ClmPingMs(1234)), [Message::ClmPingMs(1234)]);
    assert_eq!(
        ask(&mut server, Message::ClmPingMsWithNumClients { time: 7, clients: 0 }),
        [Message::ClmPingMsWithNumClients { time: 7, clients: 0 }]
    );
    assert!(
        matches!(&ask(&mut server, Message::ClmReqVersionAndOs)[..], [Message::ClmVersionAndOs(v)] if v.version == "3.9.1")
    );
    assert_eq!(ask(&mut server, Message::ClmReqConnClientsList), [Message::ClmConnClientsList(vec![])]);
    assert_eq!(server.connected_clients(), 0);
    // A connection message from an unknown address is dropped silently.
    assert!(ask(&mut server, Message::ChatText("hi".into())).is_empty());
    assert_eq!(server.stats().dropped(DropReason::UnknownSource), 1);
    // Past the budget (20 replies a second per source IP) requests go unanswered.
    let answered: usize = (0..100).map(|_| ask(&mut server, Message::ClmPingMs(1)).len()).sum();
    assert_eq!(answered, 16);
    assert!(server.stats().dropped(DropReason::RateLimited) > 0);
}

#[test]
fn garbage_from_many_ports_does_not_disturb_connected_clients() {
    let mut net = Net::new(ServerConfig::default());
    let a = net.add(22300, ClientConfig { profile: profile("A"), ..opus64() }, Some(1000.0));
    let b = net.add(22400, ClientConfig { profile: profile("B"), ..opus64() }, None);
    net.run(Duration::from_secs(4));
    let before = (net.peer(a).audio_datagrams, net.peer(b).audio_datagrams);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let real = Message::ChatText("spoof".into()).to_datagram(0);
    for round in 0..750 {
        for k in 0..40 {
            let port = 30_000 + (rnd() % 500) as u16;
            let from = SocketAddr::from(([127, 0, 0, 2], port));
            let len = (rnd() % 400) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            match k % 5 {
                0 => bytes = real.clone(),                              // connection message, unknown source
                1 if !bytes.is_empty() => bytes[0..2.min(len)].fill(0), // frame-like prefix
                2 => bytes.truncate(23),                                // plausible audio size
                3 => {
                    // a known client's address sending garbage of the wrong size
                    net.server.handle_datagram(net.now, net.peers[a].address, &bytes[..len.min(7)]);
                    continue;
                }
                _ => {}
            }
            net.server.handle_datagram(net.now, from, &bytes);
        }
        if round % 2 == 0 {
            net.run(STEP);
        }
    }
    net.run(Duration::from_secs(1));
    let stats = net.server.stats();
    assert!(stats.dropped_total() > 10_000, "{stats:?}");
    for reason in [DropReason::UnknownSource, DropReason::NotAudio, DropReason::AudioWrongSize] {
        assert!(stats.dropped(reason) > 0, "{reason:?} counted");
    }
    // The two musicians kept their full rate (750 datagrams/s) and B still hears A's tone.
    let seconds = 375.0 * STEP.as_secs_f64() + 1.0;
    for (p, start) in [(a, before.0), (b, before.1)] {
        let rate = (net.peer(p).audio_datagrams - start) as f64 / seconds;
        assert!(rate > 740.0, "peer {p} rate {rate}");
    }
    assert!(rms_tail(net.peer(b), 0.5, 0) > 0.3);
}

#[test]
fn every_client_format_gets_its_mix_in_its_own_format() {
    use tutti_proto::{AudioFormat, Quality};
    let mut net = Net::new(ServerConfig::default());
    let formats = [
        (AudioCodec::Opus64, 1, Quality::Low, 1),
        (AudioCodec::Opus64, 2, Quality::High, 1),
        (AudioCodec::Opus64, 1, Quality::Normal, 2),
        (AudioCodec::Opus, 1, Quality::Low, 2),
        (AudioCodec::Opus, 2, Quality::Normal, 1),
        (AudioCodec::Opus, 2, Quality::High, 4),
    ];
    let mut peers = Vec::new();
    for (k, &(codec, channels, quality, frames_per_packet)) in formats.iter().enumerate() {
        let config = ClientConfig {
            profile: profile(&format!("P{k}")),
            codec,
            channels,
            quality,
            frames_per_packet,
            ..ClientConfig::default()
        };
        peers.push(net.add(23000 + k as u16 * 10, config, Some(300.0 + 100.0 * k as f32)));
    }
    net.run(Duration::from_millis(4500));
    for (k, &p) in peers.iter().enumerate() {
        let (codec, channels, quality, frames) = formats[k];
        let expected = AudioFormat::new(codec, channels, quality, frames, true).unwrap().packet_len();
        let rate = 48_000.0 / (codec.frame_samples().unwrap() * frames) as f64;
        let got = net.peer(p).audio_datagrams as f64 / 4.5;
        assert!((got / rate - 1.0).abs() < 0.1, "format {k}: {got} datagrams/s, expected {rate}");
        assert!(net.peer(p).client.format().with_counter, "counters negotiated for format {k}");
        assert_eq!(net.peer(p).client.format().packet_len(), expected);
        // Everybody hears the sum of six tones at full level.
        assert!(rms_tail(net.peer(p), 0.5, 0) > 0.5, "format {k} hears the others");
    }
    assert_eq!(net.server.stats().dropped(DropReason::UnsupportedFormat), 0);
    assert!(net.server.stats().dropped(DropReason::AudioWrongSize) < 50, "only the switch to counters");
}

#[test]
fn listeners_with_equal_settings_share_one_encode_also_on_several_threads() {
    for threads in [1, 3] {
        let mut net = Net::new(ServerConfig { threads, max_channels: 16, ..ServerConfig::default() });
        let tone = net.add(22300, ClientConfig { profile: profile("Tone"), ..ClientConfig::default() }, Some(1000.0));
        // 16 clients: with several threads their decodes go to the workers (PARALLEL_DECODES_FROM).
        let others: Vec<usize> = (1..15)
            .map(|i| net.add(22300 + i, ClientConfig { profile: profile("L"), ..ClientConfig::default() }, None))
            .collect();
        let stereo =
            net.add(22400, ClientConfig { profile: profile("S"), channels: 2, ..ClientConfig::default() }, None);
        net.run(Duration::from_millis(4500)); // everybody faded in
        let per_tick = |net: &mut Net| {
            let (m0, t0) = (net.server.stats().mixes_rendered, net.server.stats().ticks);
            net.run(Duration::from_millis(500));
            (net.server.stats().mixes_rendered - m0) as f64 / (net.server.stats().ticks - t0) as f64
        };
        assert_eq!(per_tick(&mut net), 2.0, "one mono and one stereo encode for 16 listeners ({threads} threads)");
        let full = 0.5 / 2f32.sqrt();
        for &p in others.iter().chain([&tone, &stereo]) {
            assert!((rms_tail(net.peer(p), 0.3, 0) / full - 1.0).abs() < 0.2, "everybody hears the tone");
        }

        // One listener halves the tone: it alone gets its own mix, the others keep theirs.
        let channel = net.peer(tone).client.channel().unwrap();
        let now = net.now;
        net.peer(others[0]).client.set_gain(now, channel, 0.5);
        net.run(Duration::from_millis(200));
        assert_eq!(per_tick(&mut net), 3.0);
        assert!((rms_tail(net.peer(others[0]), 0.3, 0) / (0.5 * full) - 1.0).abs() < 0.2, "half level for it");
        assert!((rms_tail(net.peer(others[1]), 0.3, 0) / full - 1.0).abs() < 0.2, "full level for the rest");
    }
}
