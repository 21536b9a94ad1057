//! Writes the seed corpora of the fuzz targets (crates/fuzz/corpus/TARGET/*): real Jamulus 3.9.1 traffic from
//! the captures in the repository, a real Jami daemon's registration body, and protocol exchanges made with the
//! crates' own writers (a registration signed as `tutti id register` signs it; TURN requests with valid REST
//! credentials and nonces for the fuzzed server's fixed configuration).
//!
//!   cargo run -p tutti-fuzz --bin fuzz-seed [OUT_DIR]      (default: crates/fuzz/corpus)

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tutti_fuzz::{encode_records, Record, TURN_REALM, TURN_SECRET, TURN_UNIX_NOW};
use tutti_proto::message::id;
use tutti_proto::{pcap, Datagram, Frame};
use tutti_turn::credentials::{long_term_key, rest_credentials};
use tutti_turn::server::{Event, Server};
use tutti_turn::stun::{self, Class, Message, Writer};

const SESSION: &[u8] = include_bytes!("../../../proto/tests/fixtures/jamulus-session.pcap");
const DIRECTORY: &[u8] = include_bytes!("../../../proto/tests/fixtures/jamulus-directory.pcap");
const CLICK: &[u8] = include_bytes!("../../../codec/tests/fixtures/jamulus-click.pcap");
const JAMI_POST: &[u8] = include_bytes!("../../../registry/testdata/jami-daemon-post.json");

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "crates/fuzz/corpus".into()));
    let mut corpora: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    corpora.insert("proto_datagram", datagrams());
    corpora.insert("proto_split", vec![split_parts()]);
    corpora.insert("proto_audio", audio());
    corpora.insert("proto_link", vec![sequence(SESSION, 22124, 64)]);
    corpora.insert("jam_server", vec![sequence(SESSION, 22124, 400), sequence(CLICK, 22124, 400)]);
    corpora.insert("jam_directory", vec![sequence(DIRECTORY, 22224, 400), trusting(sequence(DIRECTORY, 22224, 400))]);
    corpora.insert("lobby_events", lobby());
    corpora.insert("json_rpc", json_rpc());
    corpora.insert("registry_body", registrations());
    let (messages, exchange) = turn();
    corpora.insert("stun_message", messages);
    corpora.insert("turn_server", vec![exchange]);
    for (target, seeds) in corpora {
        write(&out.join(target), &seeds);
    }
}

fn write(dir: &Path, seeds: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for (i, seed) in seeds.iter().enumerate() {
        let path = dir.join(format!("seed-{i:03}"));
        std::fs::write(&path, seed).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
}

fn udp(capture: &[u8]) -> Vec<pcap::UdpRecord<'_>> {
    pcap::udp_records(capture).expect("a classic pcap in the repository").filter_map(Result::ok).collect()
}

/// Every distinct protocol frame of the captures (by message ID and size), and a few audio datagrams.
fn datagrams() -> Vec<Vec<u8>> {
    let mut seen = BTreeMap::new();
    let mut audio = 0;
    for record in udp(SESSION).into_iter().chain(udp(DIRECTORY)) {
        match Datagram::classify(record.payload) {
            Datagram::Protocol(frame) => {
                seen.entry((frame.id, frame.data.len())).or_insert_with(|| record.payload.to_vec());
            }
            Datagram::Audio(bytes) if audio < 4 => {
                audio += 1;
                seen.insert((u16::MAX, audio), bytes.to_vec());
            }
            Datagram::Audio(_) => {}
        }
    }
    seen.into_values().collect()
}

/// A long chat message cut into parts, as the reassembly target reads them.
fn split_parts() -> Vec<u8> {
    let text = "a chat message long enough to be split into several parts ".repeat(30);
    let parts = tutti_proto::split::split(id::CHAT_TEXT, text.as_bytes()).expect("long enough to split");
    let bodies: Vec<Vec<u8>> = parts
        .iter()
        .map(|p| {
            let mut body = p.id.to_le_bytes().to_vec();
            body.extend_from_slice(&p.data);
            body
        })
        .collect();
    let steps: Vec<Record<'_>> =
        parts.iter().zip(&bodies).map(|(p, body)| Record { from: p.index, advance_ms: p.count, bytes: body }).collect();
    encode_records(&steps)
}

/// Audio datagrams of the click capture, behind the first format bytes that read them.
fn audio() -> Vec<Vec<u8>> {
    let datagrams: Vec<&[u8]> =
        udp(CLICK).into_iter().map(|r| r.payload).filter(|p| Frame::parse(p).is_none()).collect();
    let mut seeds = Vec::new();
    for choice in 0..=255u8 {
        let Some(format) = tutti_fuzz::audio_format(choice) else { continue };
        if let Some(datagram) = datagrams.iter().find(|d| format.frames(d).is_ok()) {
            seeds.push([&[choice][..], datagram].concat());
        }
        if seeds.len() >= 6 {
            break;
        }
    }
    seeds
}

/// What the capture's clients sent to `port`, as records (each client a sender, the capture's pacing).
fn sequence(capture: &[u8], port: u16, most: usize) -> Vec<u8> {
    let mut senders: Vec<SocketAddrV4> = Vec::new();
    let mut last = None;
    let mut steps = Vec::new();
    for record in udp(capture).into_iter().filter(|r| r.destination.port() == port).take(most) {
        let from = senders.iter().position(|s| *s == record.source).unwrap_or_else(|| {
            senders.push(record.source);
            senders.len() - 1
        });
        let ms = last.map_or(0, |t| record.micros.saturating_sub(t) / 1000);
        last = Some(record.micros);
        steps.push(Record { from: from as u8 * 4, advance_ms: ms.min(255) as u8, bytes: record.payload });
    }
    encode_records(&steps)
}

/// The same input, but with the directory's cookie check off (the first byte's low bit).
fn trusting(mut input: Vec<u8>) -> Vec<u8> {
    if let Some(first) = input.first_mut() {
        *first |= 1;
    }
    input
}

fn lobby() -> Vec<Vec<u8>> {
    let scripts = [
        "0 0 find {\"interests\":[\"jazz\",\"piano\"]}\n1 10 find {\"interests\":[\"jazz\"]}\n0 5 message {\"text\":\"hi\"}\n1 5 signal {\"data\":{\"sdp\":\"v=0\"}}\n1 0 typing {\"on\":true}\n0 100 next\n1 6000 tick\n2 0 find\n1 0 stop\n2 0 disconnect",
        "3 0 challenge\n3 0 identify {\"publickey\":\"a\",\"challenge\":\"challenge-3\",\"signature\":\"s\"}\n3 0 reachable {\"on\":true}\n4 0 call {\"to\":\"0000000000000000000000000000000000000003\"}\n3 10 call_answer {\"accept\":true}\n4 0 message {\"text\":\"x\"}\n4 0 call_cancel\n3 40000 tick",
        "5 0 find {\"interests\":null}\n5 0 find {\"interests\":[1]}\n6 0 signal {}\n6 0 message {\"text\":5}\n7 0 call {\"to\":\"0xZZ\"}\n8 0 nonsense {\n9 0 find []",
    ];
    scripts.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// JSON-RPC sessions as Jamulus' documentation shows them: authentication, then calls of each side.
fn json_rpc() -> Vec<Vec<u8>> {
    let auth = r#"{"id":1,"jsonrpc":"2.0","method":"jamulus/apiAuth","params":{"secret":"fuzz-secret-0123456789"}}"#;
    let server = [
        auth,
        r#"{"id":2,"jsonrpc":"2.0","method":"jamulusserver/getClients","params":{}}"#,
        r#"{"id":3,"jsonrpc":"2.0","method":"jamulusserver/setServerName","params":{"serverName":"x"}}"#,
        r#"[{"id":4,"jsonrpc":"2.0","method":"jamulus/getVersion","params":{}},{"id":5,"method":"jamulus/getMode","params":{}}]"#,
        r#"{"id":6,"jsonrpc":"2.0","method":"jamulusserver/setRecordingDirectory","params":{"recordingDirectory":"/tmp"}}"#,
        "",
        "[]",
    ];
    let client = [
        r#"{"id":1,"jsonrpc":"2.0","method":"jamulusclient/getChannelInfo","params":{}}"#,
        auth,
        r#"{"id":2,"jsonrpc":"2.0","method":"jamulusclient/setName","params":{"name":"Fuzz"}}"#,
        r#"{"id":3,"jsonrpc":"2.0","method":"jamulusclient/setSkillLevel","params":{"skillLevel":null}}"#,
        r#"{"id":4,"jsonrpc":"2.0","method":"jamulusclient/sendChatText","params":{"chatText":"hi"}}"#,
        r#"{"id":5,"jsonrpc":"2.0","method":"jamulusclient/getClientList","params":{}}"#,
        "not json",
    ];
    vec![
        [b"0".as_slice(), server.join("\n").as_bytes()].concat(),
        [b"1".as_slice(), client.join("\n").as_bytes()].concat(),
    ]
}

fn registrations() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let key = ed25519_signing_key();
    let body = tutti_registry::sign_ed25519(&key, "fuzz-name");
    seeds.push([b"fuzz-name\n".as_slice(), &serde_json::to_vec(&body).expect("json")].concat());
    seeds.push([b"jam-cafe01\n".as_slice(), JAMI_POST].concat());
    seeds.push(b"UPPER-case\n{\"addr\":\"0x00\",\"signature\":\"\",\"publickey\":\"\"}".to_vec());
    seeds
}

fn ed25519_signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42; 32])
}

/// STUN messages of a whole relay exchange, and the exchange as a sequence for the server target: allocate
/// (401, then with REST credentials), a permission, a channel, ChannelData and a Send indication out, a peer's
/// datagram back, a refresh and a delete.
fn succeeded(answer: Option<Vec<u8>>, what: &str) {
    let answer = answer.unwrap_or_else(|| panic!("no answer to {what}"));
    let m = Message::parse(&answer).unwrap_or_else(|e| panic!("a bad answer to {what}: {e}"));
    assert!(m.get(stun::ERROR_CODE).is_none(), "{what} was refused: {:?}", m.get(stun::ERROR_CODE));
}

fn turn() -> (Vec<Vec<u8>>, Vec<u8>) {
    let start = Instant::now();
    let mut server = Server::new(tutti_fuzz::turn_config(), start, TURN_UNIX_NOW);
    let client = tutti_fuzz::turn_client(0);
    let peer = tutti_fuzz::turn_peer(12);
    let mut steps: Vec<(u8, Vec<u8>)> = Vec::new();
    let ask = |steps: &mut Vec<(u8, Vec<u8>)>, server: &mut Server, from: u8, bytes: Vec<u8>| -> Option<Vec<u8>> {
        steps.push((from, bytes.clone()));
        server.handle_client(start, client, &bytes);
        let mut answer = None;
        while let Some(t) = server.poll_transmit() {
            answer = Some(t.bytes);
        }
        while let Some(event) = server.poll_event() {
            if let Event::OpenRelay { relay, .. } = event {
                server.relay_opened(start, relay, true);
            }
        }
        while let Some(t) = server.poll_transmit() {
            answer = Some(t.bytes);
        }
        answer
    };
    let txid = |k: u8| [k; 12];
    let first = Writer::new(stun::ALLOCATE, Class::Request, txid(1)).attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    let answer = ask(&mut steps, &mut server, 0, first.finish()).expect("a 401");
    let nonce = Message::parse(&answer).ok().and_then(|m| m.text(stun::NONCE).ok().flatten().map(str::to_string));
    let nonce = nonce.expect("a nonce in the 401");
    let (username, password) = rest_credentials(TURN_SECRET, Duration::from_secs(3600), "fuzz", TURN_UNIX_NOW);
    let key = long_term_key(&username, TURN_REALM, &password);
    let sign = |w: Writer| {
        w.attr(stun::USERNAME, username.as_bytes())
            .attr(stun::REALM, TURN_REALM.as_bytes())
            .attr(stun::NONCE, nonce.as_bytes())
            .integrity(&key)
            .finish_with_fingerprint()
    };
    let allocate =
        sign(Writer::new(stun::ALLOCATE, Class::Request, txid(2)).attr(stun::REQUESTED_TRANSPORT, &[17, 0, 0, 0]));
    succeeded(ask(&mut steps, &mut server, 0, allocate), "allocate");
    let permission =
        sign(Writer::new(stun::CREATE_PERMISSION, Class::Request, txid(3)).xor_address(stun::XOR_PEER_ADDRESS, peer));
    succeeded(ask(&mut steps, &mut server, 0, permission), "permission");
    let bind = sign(
        Writer::new(stun::CHANNEL_BIND, Class::Request, txid(4))
            .attr(stun::CHANNEL_NUMBER, &[0x40, 0, 0, 0])
            .xor_address(stun::XOR_PEER_ADDRESS, peer),
    );
    succeeded(ask(&mut steps, &mut server, 0, bind), "bind");
    let mut data = Vec::new();
    stun::write_channel_data(&mut data, 0x4000, &[1; 40], false);
    ask(&mut steps, &mut server, 0, data);
    let send = Writer::new(stun::SEND, Class::Indication, txid(5))
        .xor_address(stun::XOR_PEER_ADDRESS, peer)
        .attr(stun::DATA_ATTR, &[2; 20])
        .finish();
    ask(&mut steps, &mut server, 0, send);
    steps.push((12, vec![3; 30]));
    let refresh = sign(Writer::new(stun::REFRESH, Class::Request, txid(6)).u32(stun::LIFETIME, 600));
    succeeded(ask(&mut steps, &mut server, 0, refresh), "refresh");
    let delete = sign(Writer::new(stun::REFRESH, Class::Request, txid(7)).u32(stun::LIFETIME, 0));
    succeeded(ask(&mut steps, &mut server, 0, delete), "delete");
    let binding = Writer::new(stun::BINDING, Class::Request, txid(8)).finish_with_fingerprint();
    steps.push((1, binding));
    let messages = steps.iter().filter(|(from, _)| *from < 12).map(|(_, b)| b.clone()).collect();
    let records: Vec<Record<'_>> =
        steps.iter().map(|(from, b)| Record { from: *from, advance_ms: 1, bytes: b }).collect();
    (messages, encode_records(&records))
}
