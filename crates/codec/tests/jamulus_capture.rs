//! Decodes real OPUS64 frames captured from Jamulus 3.9.1 (see fixtures/README.md).

mod common;

use common::*;
use tutti_codec::{Channels, Decoder, Encoder, FrameSize, Quality};
use tutti_proto::{pcap, Datagram};

/// OPUS64 mono normal: 22 coded bytes, +1 trailing sequence counter.
const CODED: usize = 22;

/// The audio frames (counter stripped) sent from `src_port` to `dst_port`, in order.
fn audio_frames(pcap: &[u8], src_port: u16, dst_port: u16) -> Vec<Vec<u8>> {
    pcap::udp_records(pcap)
        .expect("classic pcap")
        .map(|d| d.expect("intact record"))
        .filter(|d| d.source.port() == src_port && d.destination.port() == dst_port)
        .filter_map(|d| match Datagram::classify(d.payload) {
            Datagram::Audio(a) if matches!(a.len(), 22 | 23) => Some(a[..CODED].to_vec()),
            _ => None,
        })
        .collect()
}

fn is_silence_frame(f: &[u8]) -> bool {
    f.starts_with(&[0x00, 0xff, 0xfe])
}

/// Decodes `frames` in order; returns each frame's decoded PCM.
fn decode_all(frames: &[Vec<u8>]) -> Vec<Vec<f64>> {
    let mut dec = Decoder::new(FrameSize::Samples64, Channels::Mono).unwrap();
    let mut pcm = [0i16; 64];
    frames
        .iter()
        .map(|f| {
            assert_eq!(dec.decode(Some(f), &mut pcm).unwrap(), 64);
            from_i16(&pcm)
        })
        .collect()
}

/// `jamulus-session.pcap`: the client (dummy JACK input, so digital silence)
/// sends only silence frames in the first second; they decode to silence, and
/// this encoder codes silence to the very same bytes.
#[test]
fn session_client_stream_is_silence() {
    let pcap = include_bytes!("../../proto/tests/fixtures/jamulus-session.pcap");
    let frames = audio_frames(pcap, 22383, 22124);
    assert_eq!(frames.len(), 749);
    assert!(frames.iter().all(|f| is_silence_frame(f)));

    let decoded = decode_all(&frames);
    let max = decoded.iter().map(|f| peak(f)).fold(0.0, f64::max);
    assert!(max < 1e-3, "peak {max}");

    let mut enc = Encoder::new(FrameSize::Samples64, Channels::Mono, Quality::Normal).unwrap();
    let mut packet = [0u8; CODED];
    enc.encode(&[0; 64], &mut packet).unwrap();
    assert!(frames.iter().all(|f| f[..] == packet[..]));
}

/// `jamulus-session.pcap`: the server's mix for the client (nobody plays yet).
/// Its 3rd to 7th frames are not CELT silence frames (`00 7f ...`) but carry only
/// a few LSB of signal; all of the stream decodes to near-silence.
#[test]
fn session_server_stream_decodes_to_near_silence() {
    let pcap = include_bytes!("../../proto/tests/fixtures/jamulus-session.pcap");
    let frames = audio_frames(pcap, 22124, 22383);
    assert_eq!(frames.len(), 456);
    let not_silence: Vec<usize> = (0..frames.len()).filter(|&i| !is_silence_frame(&frames[i])).collect();
    assert_eq!(not_silence, [2, 3, 4, 5, 6]);
    for (i, f) in decode_all(&frames).iter().enumerate() {
        assert!(peak(f) < 1e-3, "frame {i}: peak {}", peak(f));
    }
}

/// `jamulus-click.pcap`: the client's input is a jack_metro click (880 Hz,
/// 50 ms, amplitude 0.5, 120 bpm). Decoding the client stream in order gives
/// the clicks (loud, 880 Hz) and silence in between.
#[test]
fn click_stream_decodes_to_880_hz_clicks() {
    let pcap = include_bytes!("fixtures/jamulus-click.pcap");
    let frames = audio_frames(pcap, 22983, 22924);
    assert!(frames.len() > 450, "{} frames", frames.len());
    let decoded = decode_all(&frames);

    // Runs of consecutive non-silence frames = clicks.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if !is_silence_frame(f) {
            match runs.last_mut() {
                Some((_, end)) if *end == i => *end = i + 1,
                _ => runs.push((i, i + 1)),
            }
        }
    }
    assert_eq!(runs.len(), 2, "{runs:?}");
    for &(start, end) in &runs {
        // 50 ms = 37.5 frames of 64 samples.
        assert!((37..=40).contains(&(end - start)), "{runs:?}");
        let click: Vec<f64> = decoded[start..end].concat();
        let p = peak(&click);
        assert!(p > 0.3 && p < 0.7, "click peak {p}");
        let f = dominant_frequency(&click, 200.0, 4000.0, 5.0);
        assert!((f - 880.0).abs() <= 10.0, "click at {f} Hz");
        // The 0.5 s gap to the next click: silence frames decode to (near) silence
        // once the click has rung out.
        for (i, frame) in decoded.iter().enumerate().skip(end + 5).take(300) {
            if is_silence_frame(&frames[i]) {
                assert!(peak(frame) < 1e-3, "frame {i}: peak {}", peak(frame));
            }
        }
    }
    // Before the first click: silence.
    assert!(decoded[..runs[0].0].iter().all(|f| peak(f) < 1e-3));
}
