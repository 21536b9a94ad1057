//! Replays the real Jamulus 3.9.1 captures in `tests/fixtures/`: every protocol frame decodes to a typed
//! message whose re-encoding is byte-identical, and every other datagram is classified as audio of
//! the size the client's announced format gives.

use tutti_proto::message::{ClientListEntry, Profile, RedServerListEntry, ServerInfo, SkillLevel};
use tutti_proto::{pcap, AudioCodec, AudioFormat, Datagram, Message, Quality};

const SESSION: &[u8] = include_bytes!("fixtures/jamulus-session.pcap");
const DIRECTORY: &[u8] = include_bytes!("fixtures/jamulus-directory.pcap");

/// (protocol frames, audio datagrams, decoded messages in capture order)
fn replay(capture: &[u8]) -> (usize, Vec<Vec<u8>>, Vec<Message>) {
    let mut frames = 0;
    let mut audio = Vec::new();
    let mut messages = Vec::new();
    for record in pcap::udp_records(capture).expect("pcap header") {
        let record = record.expect("pcap record");
        match Datagram::classify(record.payload) {
            Datagram::Protocol(frame) => {
                frames += 1;
                let message = Message::decode(frame.id, frame.data)
                    .unwrap_or_else(|e| panic!("frame {frames} ({}): {e}", Message::name(frame.id)));
                assert_eq!(message.id(), frame.id);
                assert_eq!(message.to_datagram(frame.cnt), record.payload, "re-encoding of {message:?}");
                messages.push(message);
            }
            Datagram::Audio(bytes) => audio.push(bytes.to_vec()),
        }
    }
    (frames, audio, messages)
}

#[test]
fn session_frames_round_trip_byte_for_byte() {
    let (frames, audio, messages) = replay(SESSION);
    assert_eq!(frames, 117);
    assert_eq!(audio.len(), 1205);
    // The one 22-byte packet is the first audio before counters were on [cap #2]; all others carry a counter.
    let without = AudioFormat::new(AudioCodec::Opus64, 1, Quality::Normal, 1, false).unwrap();
    let with = AudioFormat::new(AudioCodec::Opus64, 1, Quality::Normal, 1, true).unwrap();
    assert_eq!(audio.iter().filter(|a| without.frames(a).is_ok()).count(), 1);
    assert_eq!(audio.iter().filter(|a| with.frames(a).is_ok()).count(), 1204);
    assert!(audio.iter().any(|a| a[0] == 0), "audio that starts with 0x00 must still be audio");

    assert!(messages.contains(&Message::ClientId(0)));
    assert!(messages
        .contains(&Message::ChatText("<b>Server Welcome Message:</b> Welcome to the real Jamulus 3.9.1 peer".into())));
    assert!(messages.contains(&Message::ChannelInfos(Profile {
        country: 82,
        instrument: 0,
        skill: SkillLevel::Intermediate,
        name: "Bob".into(),
        city: "Loopback".into(),
    })));
    let named_bob = messages.iter().any(|m| {
        matches!(m, Message::ConnClientsList(list)
            if matches!(&list[..], [ClientListEntry { channel: 0, profile }] if profile.name == "Bob"))
    });
    assert!(named_bob, "the server lists the renamed client");
    let chat =
        messages.iter().any(|m| matches!(m, Message::ChatText(t) if t.ends_with("</b></font> hello via JSON-RPC")));
    assert!(chat, "the server echoes chat wrapped in HTML");
    let props = messages.iter().rev().find_map(|m| match m {
        Message::TransportProps(p) => Some(*p),
        _ => None,
    });
    assert_eq!(props.and_then(|p| AudioFormat::from_props(&p)), Some(with));
    assert_eq!(messages.iter().filter(|m| matches!(m, Message::ClmDisconnection)).count(), 3);
    assert_eq!(messages.iter().filter(|m| matches!(m, Message::ClmChannelLevelList(_))).count(), 35);
}

#[test]
fn directory_frames_round_trip_byte_for_byte() {
    let (frames, audio, messages) = replay(DIRECTORY);
    assert_eq!((frames, audio.len()), (15, 0));
    let Message::ClmRegisterServerEx { info, version, .. } = &messages[0] else { panic!("{:?}", messages[0]) };
    assert_eq!(
        info,
        &ServerInfo {
            port: 22125,
            country: 82,
            max_clients: 8,
            permanent: false,
            name: "RegisteredSrv".into(),
            internal_address: "192.0.2.2".into(),
            city: "SrvCity".into(),
        }
    );
    assert_eq!(version, "3.9.1");
    let Message::ClmRedServerList(list) = &messages[6] else { panic!("{:?}", messages[6]) };
    assert_eq!(
        list[1],
        RedServerListEntry { address: [127, 0, 0, 1].into(), port: 22125, name: "RegisteredSrv".into() }
    );
    let Message::ClmServerList(list) = &messages[7] else { panic!("{:?}", messages[7]) };
    assert_eq!((list.len(), list[0].port, list[0].permanent, list[1].city.as_str()), (2, 0, true, "SrvCity"));
}
