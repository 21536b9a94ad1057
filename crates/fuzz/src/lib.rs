//! Fuzz targets: every parser and state machine of tutti that takes bytes from the network, as plain functions
//! of one input. scripts/fuzz.sh runs them under AFL++ (the `fuzz` binary, feature `afl`); the test suite replays
//! the committed corpora and every regression input through them (tests/replay.rs), so a fixed crash stays fixed.
//!
//! A target panics only when an invariant breaks; malformed input must be refused quietly. Targets that take a
//! sequence of datagrams read the input as [`records`]: which sender, how far the clock moves, the bytes.

mod jam;
mod jsonrpc;
mod proto;
mod turn;

pub use proto::audio_format;
pub use turn::{
    client as turn_client, config as turn_config, peer as turn_peer, TURN_REALM, TURN_SECRET, TURN_UNIX_NOW,
};

/// A fuzz target: one input, no result; a panic is a finding.
pub type Target = fn(&[u8]);

/// Every target by name (the name is also its corpus folder, crates/fuzz/corpus/NAME).
pub const TARGETS: &[(&str, Target)] = &[
    ("proto_datagram", proto::datagram),
    ("proto_split", proto::split),
    ("proto_audio", proto::audio),
    ("proto_link", proto::link),
    ("jam_server", jam::server),
    ("jam_directory", jam::directory),
    ("lobby_events", tutti_lobby::fuzz::events),
    ("json_rpc", jsonrpc::lines),
    ("registry_body", registry_body),
    ("stun_message", turn::message),
    ("turn_server", turn::server),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The names of all targets.
pub fn names() -> Vec<&'static str> {
    TARGETS.iter().map(|(n, _)| *n).collect()
}

/// One step of a sequence input: who sends (`from`, any byte), how many milliseconds pass first, and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub from: u8,
    pub advance_ms: u8,
    pub bytes: &'a [u8],
}

/// Reads `input` as records: `from`, `advance_ms`, a little-endian u16 length, then that many bytes (fewer if the
/// input ends first). [`encode_records`] writes them.
pub fn records(mut input: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let [from, advance_ms, lo, hi, rest @ ..] = input else { return None };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (bytes, tail) = rest.split_at(len);
        input = tail;
        Some(Record { from: *from, advance_ms: *advance_ms, bytes })
    })
}

/// The input that [`records`] reads back as `steps` (for seeds and regression tests).
pub fn encode_records(steps: &[Record<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for step in steps {
        let len = u16::try_from(step.bytes.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&[step.from, step.advance_ms]);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(step.bytes.get(..usize::from(len)).unwrap_or(step.bytes));
    }
    out
}

/// A registration as `POST /name/NAME` carries it: the first line is NAME, the rest the JSON body. Parsed and
/// checked as the registry does (body, name, key, signature), then decided against no holder and against a holder.
fn registry_body(input: &[u8]) {
    use tutti_registry::{decide, verify, Name, PublicKey, RegistrationBody};
    let (name, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => input.split_at(i),
        None => (input, &[][..]),
    };
    let _ = PublicKey::from_spki_der(input);
    let name = String::from_utf8_lossy(name);
    let _ = Name::lookup(&name);
    let Ok(name) = Name::parse(&name) else { return };
    let Ok(body) = serde_json::from_slice::<RegistrationBody>(body.get(1..).unwrap_or(&[])) else { return };
    if let Some(key) = &body.publickey {
        let _ = PublicKey::from_base64_pem(key);
    }
    if let Ok(record) = verify(&name, &body, 1_800_000_000) {
        let _ = decide(&record, None, None);
        let _ = decide(&record, Some(record.addr), Some(&name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let steps = [
            Record { from: 1, advance_ms: 20, bytes: b"abc" },
            Record { from: 200, advance_ms: 0, bytes: b"" },
            Record { from: 3, advance_ms: 255, bytes: &[0; 300] },
        ];
        let input = encode_records(&steps);
        let back: Vec<_> = records(&input).collect();
        assert_eq!(back, steps);
    }

    #[test]
    fn a_short_last_record_keeps_what_is_there() {
        let back: Vec<_> = records(&[7, 1, 10, 0, b'x', b'y']).collect();
        assert_eq!(back, [Record { from: 7, advance_ms: 1, bytes: b"xy" }]);
        assert_eq!(records(&[7, 1, 10]).count(), 0);
    }

    #[test]
    fn every_target_has_a_unique_name() {
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TARGETS.len());
    }
}
