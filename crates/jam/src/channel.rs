//! One client slot of a server (§5.1): its address, reliable link, profile, this listener's faders for
//! every other channel, and — once it announced a usable format — its audio stream: jitter buffer,
//! decoder, the buffer between the network's frame size and the server's tick, and the datagram its
//! personal mix's coded frames are packed into (the mix and its encoder live in `personal_mix.rs`).
//! Everything is sized when the stream starts; the tick itself does not allocate.

use crate::jitter::{JitterBuffer, Pull, DEFAULT_SIZE};
use crate::level::LevelMeter;
use crate::mix::{CENTRE_PAN, UNITY_GAIN};
use std::net::SocketAddr;
use std::time::Instant;
use tutti_codec::{Channels, CodecError, Decoder, FrameSize, MAX_PACKET_BYTES};
use tutti_proto::message::{Profile, RecorderState};
use tutti_proto::{AudioFormat, Link};

/// The protocol's channel maximum.
pub const MAX_CHANNELS: usize = 150;
/// A decoded frame whose samples all stay below this (−40 dBFS) is quiet: the jitter buffer may cut
/// its surplus after it unheard.
const QUIET_PEAK: f32 = 0.01;

/// One connected client.
pub(crate) struct Channel {
    pub id: u8,
    pub address: SocketAddr,
    pub link: Link,
    /// Set by the first CHANNEL_INFOS ("identified").
    pub profile: Option<Profile>,
    pub last_audio: Instant,
    /// CLM_DISCONNECTION received: freed on the next tick.
    pub leaving: bool,
    /// This listener's gain and pan for each source channel.
    pub gains: Box<[f32; MAX_CHANNELS]>,
    pub pans: Box<[f32; MAX_CHANNELS]>,
    pub stream: Option<Stream>,
    pub jitter: JitterBuffer,
    /// Jitter buffer size last reported to the client.
    pub jitter_reported: u16,
    /// Correctly sized audio packets since identification, up to the fade-in length.
    pub fade_packets: u32,
    pub meter: LevelMeter,
    /// Sequence counter of the datagrams we send (survives format changes).
    pub out_counter: u8,
    /// The shared mix this listener heard last tick.
    pub mix: Option<usize>,
    /// The last RECORDER_STATE that left the link for the outbox, and the last one the IO shell
    /// took from the outbox (sent): only a channel told "recording" is recorded.
    pub notice_queued: Option<RecorderState>,
    pub notice_sent: Option<RecorderState>,
    /// Link position of the listen-in stream notice sent to this client, and whether the client
    /// acknowledged it (only then is its audio streamed).
    pub stream_notice: Option<u64>,
    pub streamed: bool,
    /// The client list changed since this client was last sent it (sent a few clients per tick).
    pub list_due: bool,
}

impl Channel {
    pub fn new(id: u8, address: SocketAddr, now: Instant) -> Self {
        Channel {
            id,
            address,
            link: Link::default(),
            profile: None,
            last_audio: now,
            leaving: false,
            gains: Box::new([UNITY_GAIN; MAX_CHANNELS]),
            pans: Box::new([CENTRE_PAN; MAX_CHANNELS]),
            stream: None,
            jitter: JitterBuffer::new(1),
            jitter_reported: DEFAULT_SIZE,
            list_due: false,
            fade_packets: 0,
            meter: LevelMeter::default(),
            out_counter: 0,
            mix: None,
            notice_queued: None,
            notice_sent: None,
            stream_notice: None,
            streamed: false,
        }
    }

    pub fn name(&self) -> &str {
        self.profile.as_ref().map_or("", |p| p.name.as_str())
    }

    /// Fade-in factor 0…1: three seconds of audio packets after identification.
    pub fn fade(&self) -> f32 {
        match &self.stream {
            Some(s) if self.profile.is_some() => (self.fade_packets as f32 / s.fade_length as f32).min(1.0),
            _ => 0.0,
        }
    }

    /// Decodes this channel's input for one tick into `out` (`tick` frames, interleaved); `meter` asks
    /// for its level too.
    pub fn decode_tick(&mut self, tick: usize, out: &mut [f32], meter: bool) -> Source {
        let fade = self.fade();
        let Some(stream) = self.stream.as_mut() else {
            return Source { level: meter.then_some(0), ..Source::default() };
        };
        let n = stream.channels;
        let input = stream.input_for_tick(&mut self.jitter, tick);
        out[..tick * n].copy_from_slice(input);
        let level = meter.then(|| self.meter.update(input));
        stream.consume_input(tick);
        Source { channels: n as u8, fade, level }
    }

    /// Starts (or restarts) the stream for a newly announced format.
    pub fn start_stream(&mut self, format: AudioFormat, tick: usize) -> Result<(), CodecError> {
        let stream = Stream::new(format, tick)?;
        self.jitter.restart(format.coded_bytes);
        self.stream = Some(stream);
        Ok(())
    }
}

/// What one channel contributes to a tick.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Source {
    /// Audio channels of its input (0: none this tick).
    pub channels: u8,
    /// Its fade-in factor.
    pub fade: f32,
    /// Its level, on ticks that report levels.
    pub level: Option<u8>,
}

/// A channel's audio in both directions, in its own announced format.
pub(crate) struct Stream {
    pub format: AudioFormat,
    pub channels: usize,
    frame: usize,
    decoder: Decoder,
    /// Decoded input not yet mixed (interleaved), `input_frames` samples per channel.
    input: Vec<f32>,
    input_frames: usize,
    /// Coded frames of the datagram being built.
    packet: Vec<u8>,
    packet_frames: usize,
    /// Packets needed for a complete fade-in.
    pub fade_length: u32,
}

impl Stream {
    fn new(format: AudioFormat, tick: usize) -> Result<Self, CodecError> {
        let frame = FrameSize::from_samples(format.frame_samples())?;
        let channels = Channels::from_count(usize::from(format.channels))?;
        if format.coded_bytes > MAX_PACKET_BYTES {
            return Err(CodecError::PacketTooLong(format.coded_bytes));
        }
        let decoder = Decoder::new(frame, channels)?;
        let n = channels.count();
        let span = frame.samples() + tick;
        let fade_length = (if frame == FrameSize::Samples64 { 2250 } else { 1125 }) / format.frames_per_packet as u32;
        Ok(Stream {
            format,
            channels: n,
            frame: frame.samples(),
            decoder,
            input: vec![0.0; span * n],
            input_frames: 0,
            packet: vec![0; format.coded_bytes * format.frames_per_packet],
            packet_frames: 0,
            fade_length,
        })
    }

    /// Decodes frames from `jitter` until a tick's worth of input is ready, and returns it.
    pub fn input_for_tick(&mut self, jitter: &mut JitterBuffer, tick: usize) -> &[f32] {
        while self.input_frames < tick {
            let at = self.input_frames * self.channels;
            let out = &mut self.input[at..at + self.frame * self.channels];
            let decoded = match jitter.pull() {
                Pull::Frame(coded) => self.decoder.decode_float(Some(coded), out),
                Pull::Lost => self.decoder.decode_float(None, out),
                Pull::Filling => {
                    out.fill(0.0);
                    Ok(self.frame)
                }
            };
            if decoded.is_err() {
                out.fill(0.0);
            }
            jitter.set_quiet(out.iter().all(|x| x.abs() < QUIET_PEAK));
            self.input_frames += self.frame;
        }
        &self.input[..tick * self.channels]
    }

    /// Drops the tick's input once every mix has used it.
    pub fn consume_input(&mut self, tick: usize) {
        let n = self.channels;
        self.input.copy_within(tick * n..self.input_frames * n, 0);
        self.input_frames -= tick;
    }

    /// Packs one coded frame of this listener's mix into the datagram being built and hands the
    /// datagram to `emit` once it holds all its frames.
    pub fn push_coded(&mut self, coded: &[u8], counter: &mut u8, datagram: &mut Vec<u8>, emit: impl FnOnce(&[u8])) {
        let len = self.format.coded_bytes;
        self.packet[self.packet_frames * len..(self.packet_frames + 1) * len].copy_from_slice(coded);
        self.packet_frames += 1;
        if self.packet_frames == self.format.frames_per_packet {
            self.packet_frames = 0;
            if self.format.assemble(&self.packet, counter, datagram).is_ok() {
                emit(datagram);
            }
        }
    }
}
