//! Targets of the Jamulus wire format (tutti-proto): frames and every message decoder, split messages, audio
//! datagram framing and the reliable link.

use crate::records;
use std::time::{Duration, Instant};
use tutti_proto::audio::{AudioCodec, AudioFormat, Quality};
use tutti_proto::message::id;
use tutti_proto::split::{self, Reassembler, SplitPart};
use tutti_proto::{Datagram, Frame, Link, Message};

/// One datagram as a peer receives it: classified, its frame decoded; also the body decoded as the message
/// its first two bytes name (to reach every decoder without a valid CRC). A decoded message must encode to
/// bytes that decode to the same message.
pub fn datagram(input: &[u8]) {
    if let Datagram::Protocol(frame) = Datagram::classify(input) {
        decode_round_trip(frame.id, frame.data);
    }
    if let [lo, hi, body @ ..] = input {
        decode_round_trip(u16::from_le_bytes([*lo, *hi]), body);
    }
}

fn decode_round_trip(id: u16, data: &[u8]) {
    let Ok(message) = Message::decode(id, data) else { return };
    let again = Message::decode(message.id(), &message.data());
    assert_eq!(again.as_ref(), Ok(&message), "a decoded message does not survive encoding");
    let wire = message.to_datagram(7);
    let Some(Datagram::Protocol(frame)) = Some(Datagram::classify(&wire)) else {
        panic!("an encoded message is not a frame");
    };
    assert_eq!(frame.id, message.id());
}

/// Parts into the receiver's reassembly buffer: each record is a part (`from` = its index, `advance_ms` = the
/// part count, the first two bytes the split message's ID). Also: splitting the whole input and pushing the
/// parts back gives it again.
pub fn split(input: &[u8]) {
    let mut reassembler = Reassembler::default();
    for r in records(input) {
        let (id, data) = match r.bytes {
            [lo, hi, rest @ ..] => (u16::from_le_bytes([*lo, *hi]), rest),
            _ => (0, r.bytes),
        };
        let part = SplitPart { id, count: r.advance_ms, index: r.from, data: data.to_vec() };
        if let Some((_, whole)) = reassembler.push(&part) {
            assert!(whole.len() <= usize::from(u16::MAX) * 256, "reassembled more than the parts can carry");
        }
        let _ = Message::decode(id::SPECIAL_SPLIT_MESSAGE, data);
    }
    if let Some(parts) = split::split(id::CHAT_TEXT, input) {
        let mut fresh = Reassembler::default();
        let mut out = None;
        for part in &parts {
            out = fresh.push(part);
        }
        assert_eq!(out, Some((id::CHAT_TEXT, input.to_vec())), "split and reassembly lose bytes");
    }
}

/// An audio datagram in a format chosen by the first byte: its frames, and reassembling them.
pub fn audio(input: &[u8]) {
    let [choice, datagram @ ..] = input else { return };
    let Some(format) = audio_format(*choice) else { return };
    let Ok(parsed) = format.frames(datagram) else { return };
    let mut counter = 0;
    let mut out = Vec::new();
    for frame in parsed {
        assert_eq!(frame.coded.len(), format.coded_bytes, "a frame of the wrong size");
        let _ = format.assemble(frame.coded, &mut counter, &mut out);
    }
    let _ = AudioFormat::from_props(&format.to_props());
}

/// The audio format the first byte of an [`audio`] input chooses: codec, quality, channels, frames per
/// datagram and the counter flag (`None` where no such stream exists, as for CELT).
pub fn audio_format(choice: u8) -> Option<AudioFormat> {
    let codec = [AudioCodec::Opus, AudioCodec::Opus64, AudioCodec::Celt][usize::from(choice % 3)];
    let quality = [Quality::Low, Quality::Normal, Quality::High][usize::from(choice / 3 % 3)];
    let channels = 1 + (choice / 9) % 2;
    let frames = [1, 2, 4][usize::from(choice / 18 % 3)];
    AudioFormat::new(codec, channels, quality, frames, choice & 0x80 != 0)
}

/// The reliable link of one connection: received frames (acknowledged, deduplicated, delivered), timeouts and
/// resends, and messages sent (`from` odd: send a chat message first).
pub fn link(input: &[u8]) {
    let mut link = Link::new(16);
    let mut now = Instant::now();
    for r in records(input) {
        now += Duration::from_millis(u64::from(r.advance_ms) * 8);
        if r.from % 2 == 1 {
            let _ = link.send(now, &Message::ChatText(String::from_utf8_lossy(r.bytes).into_owned()));
        }
        if let Some(frame) = Frame::parse(r.bytes) {
            if let Some(delivered) = link.handle_frame(now, &frame) {
                let _ = delivered.decode();
            }
        }
        if link.poll_timeout().is_some_and(|t| t <= now) {
            link.handle_timeout(now);
        }
        while link.poll_transmit().is_some() {}
        assert!(link.unacknowledged() <= 16, "the link queued past its limit");
    }
}
