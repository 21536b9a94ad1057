//! A simulated loopback network of one jam server and `jam::Client`s, stepping time in 64-sample frame
//! periods (1.333 ms), moving every datagram as soon as it is sent: the server state machine driven
//! without sockets or sleeps (shared by `server.rs` and `recording.rs`).
#![allow(dead_code)]

use std::f32::consts::TAU;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tutti_jam::{Client, ClientConfig, ClientEvent, Event, Server, ServerConfig, TimeOfDay};
use tutti_proto::message::{id, Profile, RecorderState, SkillLevel};
use tutti_proto::{AudioCodec, Datagram, Message};

pub const STEP: Duration = Duration::from_nanos(1_333_333);
pub const SERVER: &str = "127.0.0.1:22124";

pub struct Peer {
    pub client: Client,
    pub address: SocketAddr,
    /// Signal generator: sample index → value; None = silence.
    pub tone: Option<f32>,
    pub amplitude: f32,
    pub sent_frames: u64,
    /// Everything decoded from the server, interleaved in the client's channel count.
    pub heard: Vec<f32>,
    /// Every protocol message the server sent to this peer, in order.
    pub messages: Vec<Message>,
    pub raw_protocol: Vec<Vec<u8>>,
    pub events: Vec<ClientEvent>,
    pub audio_datagrams: u64,
    pub sending: bool,
    /// Values of `Net::seq` when each RECORDER_STATE "recording" reached this peer.
    pub recording_notices: Vec<u64>,
}

pub struct Net {
    pub server: Server,
    pub peers: Vec<Peer>,
    pub now: Instant,
    pub step: u64,
    pub server_events: Vec<Event>,
    /// Counts datagrams delivered from the server (a clock for ordering, shared with taps).
    pub seq: Arc<AtomicU64>,
}

pub fn server_address() -> SocketAddr {
    SERVER.parse().unwrap()
}

pub fn profile(name: &str) -> Profile {
    Profile { country: 82, instrument: 4, skill: SkillLevel::Expert, name: name.into(), city: "Berlin".into() }
}

pub fn eleven_pm() -> TimeOfDay {
    TimeOfDay { hour: 23, minute: 31, second: 11 }
}

impl Net {
    pub fn new(config: ServerConfig) -> Self {
        Net {
            server: Server::new(config),
            peers: Vec::new(),
            now: Instant::now(),
            step: 0,
            server_events: Vec::new(),
            seq: Arc::default(),
        }
    }

    pub fn add(&mut self, port: u16, config: ClientConfig, tone: Option<f32>) -> usize {
        let client = Client::new(server_address(), config).unwrap();
        self.peers.push(Peer {
            client,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            tone,
            amplitude: 0.5,
            sent_frames: 0,
            heard: Vec::new(),
            messages: Vec::new(),
            raw_protocol: Vec::new(),
            events: Vec::new(),
            audio_datagrams: 0,
            sending: true,
            recording_notices: Vec::new(),
        });
        self.peers.len() - 1
    }

    /// Advances by `d`, moving every datagram as soon as it is sent.
    pub fn run(&mut self, d: Duration) {
        let steps = (d.as_nanos() / STEP.as_nanos()) as u64;
        for _ in 0..steps {
            self.now += STEP;
            self.step += 1;
            for peer in &mut self.peers {
                let frame = peer.client.format().frame_samples() as u64;
                if !self.step.is_multiple_of(frame / 64) {
                    continue;
                }
                if peer.sending {
                    let n = peer.client.frame_len();
                    let ch = usize::from(peer.client.format().channels);
                    let pcm: Vec<f32> = (0..n)
                        .map(|i| {
                            let t = (peer.sent_frames * frame + (i / ch) as u64) as f32 / 48_000.0;
                            peer.tone.map_or(0.0, |f| peer.amplitude * (TAU * f * t).sin())
                        })
                        .collect();
                    peer.client.send_audio(self.now, &pcm).unwrap();
                    peer.sent_frames += 1;
                }
                let mut out = vec![0.0; peer.client.frame_len()];
                peer.client.receive_audio(&mut out).unwrap();
                peer.heard.extend_from_slice(&out);
                peer.client.handle_timeout(self.now);
            }
            self.exchange();
            self.server.handle_timeout(self.now);
            self.exchange();
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            for peer in &mut self.peers {
                while let Some(e) = peer.client.poll_event() {
                    peer.events.push(e);
                }
            }
        }
    }

    pub fn exchange(&mut self) {
        for _ in 0..8 {
            let mut moved = false;
            for peer in &mut self.peers {
                while let Some(d) = peer.client.poll_transmit() {
                    if peer.sending || Datagram::classify(&d) != Datagram::Audio(&d) {
                        self.server.handle_datagram(self.now, peer.address, &d);
                    }
                    moved = true;
                }
            }
            while let Some((to, bytes)) = self.server.poll_transmit() {
                moved = true;
                let bytes = bytes.to_vec();
                let Some(peer) = self.peers.iter_mut().find(|p| p.address == to) else { continue };
                let seq = self.seq.fetch_add(1, Ordering::SeqCst);
                match Datagram::classify(&bytes) {
                    Datagram::Protocol(f) => {
                        if f.id != id::ACKN {
                            if let Ok(m) = Message::decode(f.id, f.data) {
                                if m == Message::RecorderState(RecorderState::Recording) {
                                    peer.recording_notices.push(seq);
                                }
                                peer.messages.push(m);
                            }
                            peer.raw_protocol.push(bytes.clone());
                        }
                    }
                    Datagram::Audio(_) => peer.audio_datagrams += 1,
                }
                peer.client.handle_datagram(self.now, server_address(), &bytes);
            }
            if !moved {
                break;
            }
        }
    }

    pub fn peer(&mut self, i: usize) -> &mut Peer {
        &mut self.peers[i]
    }
}

pub fn opus64() -> ClientConfig {
    ClientConfig { codec: AudioCodec::Opus64, ..ClientConfig::default() }
}

/// RMS of one channel of the last `seconds` of what a peer heard.
pub fn rms_tail(peer: &Peer, seconds: f32, channel: usize) -> f32 {
    let ch = usize::from(peer.client.format().channels);
    let n = (seconds * 48_000.0) as usize * ch;
    let tail = &peer.heard[peer.heard.len().saturating_sub(n)..];
    let samples: Vec<f32> = tail.iter().skip(channel).step_by(ch).copied().collect();
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}
