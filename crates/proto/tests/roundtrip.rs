//! Property tests: every message type survives encode → frame → classify → decode unchanged, and the
//! re-encoding is byte-identical. Strings stay within the receiver's limits (longer ones are invalid
//! by definition), counted in UTF-16 units with non-ASCII characters included.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tutti_proto::message::*;
use tutti_proto::split::SplitPart;
use tutti_proto::{AudioCodec, Datagram, Message};

/// Strings of at most `max` UTF-16 units, mixing ASCII, accented letters and astral characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![4 => any::<char>(), 1 => Just('🎸'), 2 => Just('é')], 0..=max)
        .prop_map(move |chars| tutti_proto::truncate_utf16(&chars.into_iter().collect::<String>(), max).to_string())
}

fn skill() -> impl Strategy<Value = SkillLevel> {
    any::<u8>().prop_map(SkillLevel::from)
}

fn os() -> impl Strategy<Value = OsType> {
    any::<u8>().prop_map(OsType::from)
}

fn profile() -> impl Strategy<Value = Profile> {
    (any::<u16>(), any::<u32>(), skill(), text(MAX_NAME), text(MAX_CITY))
        .prop_map(|(country, instrument, skill, name, city)| Profile { country, instrument, skill, name, city })
}

fn client_list() -> impl Strategy<Value = Vec<ClientListEntry>> {
    prop::collection::vec(
        (any::<u8>(), profile()).prop_map(|(channel, profile)| ClientListEntry { channel, profile }),
        0..8,
    )
}

fn ip_literal() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string())]
}

fn server_info() -> impl Strategy<Value = ServerInfo> {
    (any::<u16>(), any::<u16>(), any::<u8>(), any::<bool>(), text(MAX_SERVER_NAME), ip_literal(), text(MAX_CITY))
        .prop_map(|(port, country, max_clients, permanent, name, internal_address, city)| ServerInfo {
            port,
            country,
            max_clients,
            permanent,
            name,
            internal_address,
            city,
        })
}

fn transport_props() -> impl Strategy<Value = TransportProps> {
    (
        10u32..=20_000,
        prop::sample::select(vec![1u16, 2, 4]),
        1u8..=2,
        any::<u32>(),
        prop::sample::select(vec![AudioCodec::Celt, AudioCodec::Opus, AudioCodec::Opus64]),
        any::<u16>(),
        any::<i32>(),
    )
        .prop_map(|(base_frame_size, block_factor, channels, sample_rate, codec, flags, codec_arg)| {
            TransportProps { base_frame_size, block_factor, channels, sample_rate, codec, flags, codec_arg }
        })
}

fn server_list() -> impl Strategy<Value = Vec<ServerListEntry>> {
    let entry = (
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        any::<bool>(),
        text(MAX_SERVER_NAME),
        text(MAX_CITY),
    )
        .prop_map(|(a, port, country, max_clients, permanent, name, city)| ServerListEntry {
            address: a.into(),
            port,
            country,
            max_clients,
            permanent,
            name,
            city,
        });
    prop::collection::vec(entry, 0..6)
}

fn red_server_list() -> impl Strategy<Value = Vec<RedServerListEntry>> {
    // str8 counts bytes: keep names short enough that 20 UTF-16 units always fit in 255 bytes.
    let entry = (any::<[u8; 4]>(), any::<u16>(), text(MAX_SERVER_NAME))
        .prop_map(|(a, port, name)| RedServerListEntry { address: a.into(), port, name });
    prop::collection::vec(entry, 0..6)
}

fn message() -> impl Strategy<Value = Message> {
    use Message as M;
    let u8s = any::<u8>;
    prop_oneof![
        any::<u16>().prop_map(|id| M::Ack { id }),
        (1u16..=21).prop_map(M::JitterBufferSize),
        Just(M::ReqJitterBufferSize),
        (u8s(), any::<u16>()).prop_map(|(channel, gain)| M::ChannelGain { channel, gain }),
        Just(M::ReqConnClientsList),
        text(MAX_CHAT).prop_map(M::ChatText),
        transport_props().prop_map(M::TransportProps),
        Just(M::ReqTransportProps),
        Just(M::ReqChannelInfos),
        client_list().prop_map(M::ConnClientsList),
        profile().prop_map(M::ChannelInfos),
        Just(M::OpusSupported),
        prop::sample::select(vec![Licence::None, Licence::CreativeCommons]).prop_map(M::LicenceRequired),
        u8s().prop_map(M::ReqChannelLevelList),
        (os(), text(MAX_VERSION)).prop_map(|(os, version)| M::VersionAndOs(VersionAndOs { os, version })),
        (u8s(), any::<u16>()).prop_map(|(channel, pan)| M::ChannelPan { channel, pan }),
        (u8s(), any::<bool>()).prop_map(|(channel, muted)| M::MuteStateChanged { channel, muted }),
        u8s().prop_map(M::ClientId),
        prop::sample::select(vec![RecorderState::NotInitialised, RecorderState::NotEnabled, RecorderState::Recording])
            .prop_map(M::RecorderState),
        Just(M::ReqSplitMessSupport),
        Just(M::SplitMessSupported),
        (prop::sample::select(id::OBSOLETE.to_vec()), prop::collection::vec(u8s(), 0..40))
            .prop_map(|(id, data)| M::Obsolete { id, data }),
        (any::<u16>(), u8s(), u8s(), prop::collection::vec(u8s(), 0..=550))
            .prop_map(|(id, count, index, data)| M::Split(SplitPart { id, count, index, data })),
        any::<u32>().prop_map(M::ClmPingMs),
        (any::<u32>(), u8s()).prop_map(|(time, clients)| M::ClmPingMsWithNumClients { time, clients }),
        Just(M::ClmServerFull),
        server_info().prop_map(M::ClmRegisterServer),
        Just(M::ClmUnregisterServer),
        server_list().prop_map(M::ClmServerList),
        Just(M::ClmReqServerList),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, port)| M::ClmSendEmptyMessage { address: a.into(), port }),
        Just(M::ClmEmptyMessage),
        Just(M::ClmDisconnection),
        (os(), text(MAX_VERSION)).prop_map(|(os, version)| M::ClmVersionAndOs(VersionAndOs { os, version })),
        Just(M::ClmReqVersionAndOs),
        client_list().prop_map(M::ClmConnClientsList),
        Just(M::ClmReqConnClientsList),
        prop::collection::vec(0u8..=9, 0..=MAX_LEVELS).prop_map(M::ClmChannelLevelList),
        prop::sample::select(vec![
            RegistrationResult::Registered,
            RegistrationResult::ListFull,
            RegistrationResult::VersionTooOld,
            RegistrationResult::RequirementsNotFulfilled
        ])
        .prop_map(M::ClmRegisterServerResp),
        (server_info(), os(), text(MAX_VERSION)).prop_map(|(info, os, version)| M::ClmRegisterServerEx {
            info,
            os,
            version
        }),
        red_server_list().prop_map(M::ClmRedServerList),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(message in message(), cnt in any::<u8>()) {
        let datagram = message.to_datagram(cnt);
        let Datagram::Protocol(frame) = Datagram::classify(&datagram) else {
            panic!("a frame we encoded was classified as audio");
        };
        prop_assert_eq!(frame.id, message.id());
        prop_assert_eq!(frame.cnt, cnt);
        let decoded = Message::decode(frame.id, frame.data);
        prop_assert_eq!(decoded.as_ref(), Ok(&message));
        prop_assert_eq!(decoded.unwrap().to_datagram(cnt), datagram);
    }

    #[test]
    fn arbitrary_datagrams_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Datagram::Protocol(frame) = Datagram::classify(&bytes) {
            let _ = Message::decode(frame.id, frame.data);
        }
    }

    #[test]
    fn arbitrary_message_data_never_panics(id in prop_oneof![0u16..40, 1000u16..1020, Just(2001u16), any::<u16>()],
                                           data in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(message) = Message::decode(id, &data) {
            // Whatever decodes must encode again, and that encoding must decode to the same message.
            prop_assert_eq!(Message::decode(id, &message.data()), Ok(message));
        }
    }
}

#[test]
fn every_id_of_the_catalogue_is_covered() {
    // 3.9.1 defines exactly these IDs (§3.1); each must decode from some data and report its own ID.
    let ids: Vec<u16> =
        [1u16, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35]
            .into_iter()
            .chain(1001..=1018)
            .chain([2001])
            .collect();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4_000 {
        let m = message().new_tree(&mut runner).unwrap().current();
        seen.insert(m.id());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ids);
    for unknown in [0u16, 2, 9, 36, 999, 1000, 1019, 2000, 2002, u16::MAX] {
        assert!(Message::decode(unknown, &[]).is_err(), "ID {unknown} is not in 3.9.1");
    }
}
