//! The load generator's latency mode: a few clients put a marker (a short loud burst) into
//! otherwise quiet audio at known times; every client keeps the server's audio datagrams of the
//! measurement window with their kernel receive times; after the window, each client's mix is
//! decoded around every marker and the marker's onset timed. A round trip is the time from the
//! marker datagram's send to the arrival of the datagram carrying its onset, plus the onset's
//! position in that datagram's audio (when a client playing each datagram on arrival would play
//! it). Decoding happens after the window, so it never disturbs the traffic it measures.
//!
//! Times are `CLOCK_REALTIME` nanoseconds ([`crate::rx_stamp`]).

use crate::tone::Tone;
use std::io;
use std::time::{Duration, Instant};
use tutti_codec::{Channels, Decoder, Encoder, FrameSize};
use tutti_proto::audio::SAMPLE_RATE;
use tutti_proto::AudioFormat;

/// What the latency mode does.
#[derive(Debug, Clone)]
pub struct LatencyOptions {
    /// Clients that send markers, spread evenly over the client list (first, …, near the last).
    pub senders: usize,
    /// Time between markers (each from the next sender in turn).
    pub interval: Duration,
}

/// The sending side during a run: the quiet audio, the senders' own encoders (their audio differs
/// from everybody else's when they carry a marker) and the markers' schedule and send times.
pub struct Probe {
    options: LatencyOptions,
    senders: Vec<usize>,
    encoders: Vec<Encoder>,
    coded: Vec<Vec<u8>>,
    tone: Tone,
    pcm: Vec<f32>,
    marked: Vec<f32>,
    channels: usize,
    next_marker: Option<Instant>,
    turn: usize,
    /// The sender whose current frame carries a marker not yet sent.
    pending: Option<usize>,
    pub markers: Vec<Marker>,
}

impl Probe {
    pub fn new(options: LatencyOptions, clients: usize, format: AudioFormat) -> io::Result<Self> {
        let frame = FrameSize::from_samples(format.frame_samples()).map_err(io::Error::other)?;
        let channels = Channels::from_count(usize::from(format.channels)).map_err(io::Error::other)?;
        let k = options.senders.clamp(1, clients.max(1));
        let senders: Vec<usize> = (0..k).map(|i| i * clients / k).collect();
        let encoders = senders
            .iter()
            .map(|_| Encoder::with_coded_bytes(frame, channels, format.coded_bytes).map_err(io::Error::other))
            .collect::<io::Result<Vec<_>>>()?;
        let n = format.frame_samples() * usize::from(format.channels);
        Ok(Probe {
            options,
            coded: vec![vec![0; format.coded_bytes]; senders.len()],
            senders,
            encoders,
            tone: Tone::new(440.0, usize::from(format.channels)),
            pcm: vec![0.0; n],
            marked: vec![0.0; n],
            channels: usize::from(format.channels),
            next_marker: None,
            turn: 0,
            pending: None,
            markers: Vec::new(),
        })
    }

    /// The next frame of quiet audio (every client's), to be encoded by the caller's shared encoder.
    pub fn background(&mut self) -> &[f32] {
        self.tone.fill(&mut self.pcm);
        self.pcm.iter_mut().for_each(|s| *s *= BACKGROUND / 0.25);
        &self.pcm
    }

    /// Encodes this period's frame for every sender; one of them carries a marker when one is due
    /// (`measuring`) and `ready(sender)` says its frame completes a datagram.
    pub fn encode(&mut self, now: Instant, measuring: bool, ready: impl Fn(usize) -> bool) -> io::Result<()> {
        if measuring && self.pending.is_none() {
            let due = *self.next_marker.get_or_insert(now + self.options.interval);
            let sender = self.turn % self.senders.len();
            if now >= due && ready(self.senders[sender]) {
                self.pending = Some(sender);
                self.turn += 1;
                self.next_marker = Some(due + self.options.interval);
            }
        }
        for (i, encoder) in self.encoders.iter_mut().enumerate() {
            self.marked.copy_from_slice(&self.pcm);
            if self.pending == Some(i) {
                add_marker(&mut self.marked, self.channels);
            }
            encoder.encode_float(&self.marked, &mut self.coded[i]).map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// The frame client `index` sends this period, if it is a sender.
    pub fn frame_of(&self, index: usize) -> Option<&[u8]> {
        self.senders.iter().position(|&s| s == index).map(|i| self.coded[i].as_slice())
    }

    /// Client `index` has just sent this period's datagram.
    pub fn sent(&mut self, index: usize, at_ns: i64) {
        if self.pending.is_some_and(|i| self.senders[i] == index) {
            self.markers.push(Marker { sender: index, sent_ns: at_ns });
            self.pending = None;
        }
    }
}

/// Amplitude of the quiet tone every client sends (−66 dBFS): 150 of them in phase stay far below
/// the detection threshold.
pub const BACKGROUND: f32 = 0.0005;
/// Peak of the marker burst.
const MARKER_PEAK: f32 = 0.7;
/// A marker is there when a decoded sample's magnitude passes this (marker × the lowest gain the
/// load generator sets, 0.5, is 0.35; the background of 150 clients at most 0.075).
const THRESHOLD: f32 = 0.15;
/// The burst: 1 ms, Hann-windowed 3 kHz.
const MARKER_SAMPLES: usize = 48;
/// How long after its send a marker is looked for.
const SEARCH_NS: i64 = 60_000_000;
/// Datagrams decoded before the marker's send to settle a fresh decoder.
const PRIMING: usize = 4;

/// Adds the marker burst to the start of `pcm` (interleaved, `channels` per frame).
pub fn add_marker(pcm: &mut [f32], channels: usize) {
    for (i, frame) in pcm.chunks_exact_mut(channels.max(1)).take(MARKER_SAMPLES).enumerate() {
        let window = 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / MARKER_SAMPLES as f32).cos();
        let carrier = (std::f32::consts::TAU * 3000.0 * i as f32 / SAMPLE_RATE as f32).cos();
        frame.iter_mut().for_each(|s| *s += MARKER_PEAK * window * carrier);
    }
}

/// One marker sent: by which client, when its datagram left.
#[derive(Debug, Clone, Copy)]
pub struct Marker {
    pub sender: usize,
    pub sent_ns: i64,
}

/// The server's audio datagrams one client received in the window, back to back.
#[derive(Debug, Default)]
pub struct Capture {
    stamps: Vec<i64>,
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl Capture {
    pub fn push(&mut self, stamp_ns: i64, datagram: &[u8]) {
        self.bytes.extend_from_slice(datagram);
        self.stamps.push(stamp_ns);
        self.ends.push(self.bytes.len());
    }

    fn datagram(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Standard deviation of the time between a datagram and the one `step` datagrams later (the
    /// datagrams of one server tick arrive together), in milliseconds.
    pub fn jitter_ms(&self, step: usize) -> Option<f64> {
        let gaps: Vec<f64> = self.stamps.windows(step + 1).map(|w| (w[step] - w[0]) as f64 / 1e6).collect();
        let (mean, n) = (gaps.iter().sum::<f64>() / gaps.len().max(1) as f64, gaps.len());
        (n > 1).then(|| (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt())
    }
}

/// Round trips one client measured.
#[derive(Debug, Clone, Default)]
pub struct ClientLatency {
    /// Milliseconds, one per marker found in this client's mix.
    pub round_trips_ms: Vec<f64>,
    /// Markers sent in the window that never showed in this client's mix.
    pub missed: usize,
    /// Arrival jitter of this client's mix ([`Capture::jitter_ms`]).
    pub jitter_ms: Option<f64>,
}

impl ClientLatency {
    pub fn mean_ms(&self) -> Option<f64> {
        (!self.round_trips_ms.is_empty())
            .then(|| self.round_trips_ms.iter().sum::<f64>() / self.round_trips_ms.len() as f64)
    }
}

/// Finds every marker in one client's capture. `format` is the client's own (the server answers in
/// it, with or without sequence counters).
pub fn analyse(capture: &Capture, markers: &[Marker], format: AudioFormat, step: usize) -> ClientLatency {
    let mut result = ClientLatency { jitter_ms: capture.jitter_ms(step), ..ClientLatency::default() };
    let (Ok(frame), Ok(channels)) =
        (FrameSize::from_samples(format.frame_samples()), Channels::from_count(usize::from(format.channels)))
    else {
        result.missed = markers.len();
        return result;
    };
    let Ok(mut decoder) = Decoder::new(frame, channels) else {
        result.missed = markers.len();
        return result;
    };
    let width = usize::from(format.channels);
    let mut pcm = vec![0.0f32; format.frame_samples() * width];
    for marker in markers {
        let first_after = capture.stamps.partition_point(|&t| t < marker.sent_ns);
        let _ = decoder.reset();
        let mut found = None;
        'datagrams: for i in first_after.saturating_sub(PRIMING)..capture.stamps.len() {
            let stamp = capture.stamps[i];
            if stamp - marker.sent_ns > SEARCH_NS {
                break;
            }
            let mut layout = format;
            let datagram = capture.datagram(i);
            if datagram.len() != layout.packet_len() {
                layout.with_counter = !layout.with_counter;
            }
            let Ok(frames) = layout.frames(datagram) else { continue };
            let mut offset = 0;
            for f in frames {
                if decoder.decode_float(Some(f.coded), &mut pcm).is_err() {
                    pcm.fill(0.0);
                }
                if stamp >= marker.sent_ns {
                    if let Some(at) = pcm.chunks_exact(width).position(|s| s.iter().any(|x| x.abs() > THRESHOLD)) {
                        found = Some(stamp - marker.sent_ns + samples_ns(offset + at));
                        break 'datagrams;
                    }
                }
                offset += format.frame_samples();
            }
        }
        match found {
            Some(ns) => result.round_trips_ms.push(ns as f64 / 1e6),
            None => result.missed += 1,
        }
    }
    result
}

fn samples_ns(samples: usize) -> i64 {
    samples as i64 * 1_000_000_000 / i64::from(SAMPLE_RATE)
}

/// The `q`-quantile (0…1) of `sorted` values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::Tone;
    use tutti_codec::Encoder;
    use tutti_proto::{AudioCodec, Quality};

    /// A stream of quiet tone with a marker in datagram `at`, "received" one per 1.333 ms with a
    /// delay of `delay_ns` after each send; returns the capture and the marker.
    fn stream(format: AudioFormat, at: usize, delay_ns: i64) -> (Capture, Marker) {
        let frame = FrameSize::from_samples(format.frame_samples()).unwrap();
        let mut encoder = Encoder::with_coded_bytes(frame, Channels::Mono, format.coded_bytes).unwrap();
        let mut tone = Tone::new(440.0, 1);
        let mut pcm = vec![0.0f32; format.frame_samples()];
        let mut coded = vec![0u8; format.coded_bytes];
        let mut capture = Capture::default();
        let period = samples_ns(format.frame_samples());
        let mut counter = 0u8;
        let mut datagram = Vec::new();
        for i in 0..40 {
            tone.fill(&mut pcm);
            pcm.iter_mut().for_each(|s| *s *= BACKGROUND / 0.25);
            if i == at {
                add_marker(&mut pcm, 1);
            }
            encoder.encode_float(&pcm, &mut coded).unwrap();
            format.assemble(&coded, &mut counter, &mut datagram).unwrap();
            capture.push(1_000_000_000 + i as i64 * period + delay_ns, &datagram);
        }
        (capture, Marker { sender: 0, sent_ns: 1_000_000_000 + at as i64 * period })
    }

    #[test]
    fn finds_the_marker_and_times_it() {
        let format = AudioFormat::new(AudioCodec::Opus64, 1, Quality::Normal, 1, true).unwrap();
        let mut codec_delay = None;
        for delay_ms in [1, 3, 7] {
            let (capture, marker) = stream(format, 20, delay_ms * 1_000_000);
            let got = analyse(&capture, &[marker], format, 2);
            assert_eq!(got.missed, 0);
            // The network's delay plus the codec's own (the same for every delay).
            let rest = got.round_trips_ms[0] - delay_ms as f64;
            assert!((0.0..3.0).contains(&rest), "{rest}");
            assert!((rest - *codec_delay.get_or_insert(rest)).abs() < 1e-3, "{rest} {codec_delay:?}");
        }
        // Jitter of a perfectly regular stream is zero.
        let (capture, _) = stream(format, 20, 0);
        assert!(capture.jitter_ms(1).unwrap() < 1e-6);
    }

    #[test]
    fn quiet_audio_has_no_marker() {
        let format = AudioFormat::new(AudioCodec::Opus, 1, Quality::Normal, 1, false).unwrap();
        let (capture, _) = stream(format, 1000, 0);
        let got = analyse(&capture, &[Marker { sender: 0, sent_ns: 1_010_000_000 }], format, 1);
        assert_eq!((got.missed, got.round_trips_ms.len()), (1, 0));
    }

    #[test]
    fn quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
