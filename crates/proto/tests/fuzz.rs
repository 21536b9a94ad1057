//! Structure-aware fuzzing of everything that sees network bytes: the frame classifier, every message
//! decoder, the reliable link and the audio framing. Inputs are mutations of the real frames in the
//! captures (with length and CRC repaired half of the time, so mutations reach the message decoders)
//! plus plain random bytes. Nothing may panic, and whatever decodes must re-encode to a message that
//! decodes identically.
//!
//! Quick run in the suite (1 000 000 inputs); the long run is
//! `TUTTI_FUZZ_INPUTS=10000000 cargo test --release -p tutti-proto --test fuzz -- --nocapture`.

use std::time::{Duration, Instant};
use tutti_proto::frame::write_frame;
use tutti_proto::{pcap, AudioCodec, AudioFormat, Datagram, Link, Message, Quality};

/// xorshift64*: deterministic, so a failure names a reproducible input number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Every distinct protocol frame of the captures, and a few of their audio packets.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let mut audio = 0;
    for capture in
        [&include_bytes!("fixtures/jamulus-session.pcap")[..], &include_bytes!("fixtures/jamulus-directory.pcap")[..]]
    {
        for record in pcap::udp_records(capture).unwrap() {
            let payload = record.unwrap().payload.to_vec();
            if matches!(Datagram::classify(&payload), Datagram::Audio(_)) {
                audio += 1;
                if audio % 100 != 0 {
                    continue;
                }
            }
            if !seeds.contains(&payload) {
                seeds.push(payload);
            }
        }
    }
    seeds
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(10) == 0 {
        let len = rng.below(700);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut bytes = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)];
            }
            2 => bytes.truncate(rng.below(bytes.len() + 1)),
            3 => {
                let extra = rng.below(40);
                bytes.extend((0..extra).map(|_| rng.next() as u8));
            }
            4 if bytes.len() > 9 => {
                // Splice a random field-sized run from another seed into the data part.
                let other = &seeds[rng.below(seeds.len())];
                let start = rng.below(other.len());
                let run = &other[start..(start + rng.below(8)).min(other.len())];
                let at = 7 + rng.below(bytes.len() - 9);
                bytes.splice(at..at, run.iter().copied());
            }
            _ => {}
        }
    }
    // Half of the mutated frames get a valid header length and CRC so the message decoders see them.
    if bytes.len() >= 9 && bytes[0] == 0 && bytes[1] == 0 && rng.below(4) != 0 {
        let id = u16::from_le_bytes([bytes[2], bytes[3]]);
        let cnt = bytes[4];
        let data = bytes[7..bytes.len() - 2].to_vec();
        let mut fixed = Vec::new();
        write_frame(&mut fixed, id, cnt, &data);
        return fixed;
    }
    bytes
}

#[test]
fn decoders_survive_mutated_real_traffic() {
    let inputs: u64 = std::env::var("TUTTI_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let seeds = seeds();
    let formats: Vec<AudioFormat> = [AudioCodec::Opus, AudioCodec::Opus64]
        .into_iter()
        .flat_map(|c| [1u8, 2].map(move |ch| AudioFormat::new(c, ch, Quality::Normal, 1, true).unwrap()))
        .collect();
    let mut rng = Rng(0x7777_1234_5678_9abc_u64 ^ inputs);
    let mut link = Link::default();
    let start = Instant::now();
    let mut now = start;
    let (mut frames, mut decoded, mut audio) = (0u64, 0u64, 0u64);
    for n in 0..inputs {
        let bytes = mutate(&mut rng, &seeds);
        match Datagram::classify(&bytes) {
            Datagram::Protocol(frame) => {
                frames += 1;
                if let Ok(message) = Message::decode(frame.id, frame.data) {
                    decoded += 1;
                    assert_eq!(Message::decode(frame.id, &message.data()), Ok(message), "input {n}: {bytes:?}");
                }
                if let Some(delivered) = link.handle_frame(now, &frame) {
                    let _ = delivered.decode();
                }
                while link.poll_transmit().is_some() {}
            }
            Datagram::Audio(bytes) => {
                audio += 1;
                let format = formats[n as usize % formats.len()];
                if let Ok(frames) = format.frames(bytes) {
                    assert_eq!(frames.count(), 1);
                }
            }
        }
        if n % 1000 == 0 {
            now += Duration::from_millis(500);
            link.handle_timeout(now);
            if n % 100_000 == 0 {
                link.reset();
            }
        }
    }
    println!(
        "{inputs} inputs in {:.1?}: {frames} protocol frames ({decoded} decoded as valid messages), {audio} audio",
        start.elapsed()
    );
    assert!(decoded > inputs / 10, "the mutator must reach the message decoders");
}
