//! The listen-in stream's tap into the server state machine, without sockets or sleeps: who is heard
//! (only musicians that acknowledged the stream notice), what mix (default or a musician's personal
//! mix), and when the listener count is announced.

use std::f32::consts::TAU;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tutti_jam::{Client, ClientConfig, Server, ServerConfig, StreamConfig, StreamTap};
use tutti_proto::message::{id, Profile, SkillLevel};
use tutti_proto::{AudioCodec, Datagram, Frame, Message};

const STEP: Duration = Duration::from_nanos(2_666_667);

/// What the stream tap saw: the RMS of each tick (left, right) and the musicians it was told of.
#[derive(Default)]
struct Heard {
    ticks: Vec<(f32, f32)>,
    musicians: Vec<Vec<String>>,
}

struct Tap {
    heard: Arc<Mutex<Heard>>,
    listeners: Arc<AtomicU32>,
}

impl StreamTap for Tap {
    fn tick(&mut self, samples: &[f32]) {
        let rms = |c: usize| {
            let s: Vec<f32> = samples.iter().skip(c).step_by(2).copied().collect();
            (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt()
        };
        self.heard.lock().unwrap().ticks.push((rms(0), rms(1)));
    }
    fn listeners(&self) -> u32 {
        self.listeners.load(Ordering::Relaxed)
    }
    fn musicians(&mut self, names: &[String]) {
        self.heard.lock().unwrap().musicians.push(names.to_vec());
    }
}

struct Musician {
    client: Client,
    address: SocketAddr,
    tone: f32,
    /// Its ACKs of chat messages are lost on the way to the server (the notice is a chat message).
    stall_acks: bool,
    chat: Vec<String>,
    frames: u64,
}

struct Jam {
    server: Server,
    musicians: Vec<Musician>,
    now: Instant,
    heard: Arc<Mutex<Heard>>,
    listeners: Arc<AtomicU32>,
}

fn server_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 22124))
}

impl Jam {
    fn new(config: StreamConfig) -> Self {
        let mut server = Server::new(ServerConfig::default());
        let (heard, listeners) = (Arc::new(Mutex::new(Heard::default())), Arc::new(AtomicU32::new(0)));
        let now = Instant::now();
        let tap = Tap { heard: heard.clone(), listeners: listeners.clone() };
        server.set_stream(now, Some((Box::new(tap), config)));
        Jam { server, musicians: Vec::new(), now, heard, listeners }
    }

    fn join(&mut self, name: &str, port: u16, tone: f32, stall_acks: bool) -> usize {
        let profile =
            Profile { country: 82, instrument: 4, skill: SkillLevel::Expert, name: name.into(), city: "".into() };
        let config = ClientConfig { codec: AudioCodec::Opus, profile, ..ClientConfig::default() };
        let client = Client::new(server_address(), config).unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        self.musicians.push(Musician { client, address, tone, stall_acks, chat: Vec::new(), frames: 0 });
        self.musicians.len() - 1
    }

    fn run(&mut self, d: Duration) {
        for _ in 0..(d.as_nanos() / STEP.as_nanos()) {
            self.now += STEP;
            for m in &mut self.musicians {
                let n = m.client.frame_len();
                let t0 = m.frames * 128;
                let pcm: Vec<f32> =
                    (0..n).map(|i| 0.4 * (TAU * m.tone * (t0 + i as u64) as f32 / 48_000.0).sin()).collect();
                m.client.send_audio(self.now, &pcm).unwrap();
                m.frames += 1;
                m.client.handle_timeout(self.now);
                let mut out = vec![0.0; n];
                m.client.receive_audio(&mut out).unwrap();
                while let Some(d) = m.client.poll_transmit() {
                    let acks_chat =
                        Frame::parse(&d).is_some_and(|f| f.id == id::ACKN && f.data == id::CHAT_TEXT.to_le_bytes());
                    if !(m.stall_acks && acks_chat) {
                        self.server.handle_datagram(self.now, m.address, &d);
                    }
                }
            }
            self.server.handle_timeout(self.now);
            while let Some((to, bytes)) = self.server.poll_transmit() {
                let bytes = bytes.to_vec();
                let Some(m) = self.musicians.iter_mut().find(|m| m.address == to) else { continue };
                if let Datagram::Protocol(f) = Datagram::classify(&bytes) {
                    if let Ok(Message::ChatText(text)) = Message::decode(f.id, f.data) {
                        m.chat.push(text);
                    }
                }
                m.client.handle_datagram(self.now, server_address(), &bytes);
            }
        }
    }

    /// RMS (left, right) of the stream over its last `ticks` ticks.
    fn stream_rms(&self, ticks: usize) -> (f32, f32) {
        let heard = self.heard.lock().unwrap();
        let tail = &heard.ticks[heard.ticks.len().saturating_sub(ticks)..];
        let mean =
            |f: fn(&(f32, f32)) -> f32| (tail.iter().map(|t| f(t) * f(t)).sum::<f32>() / tail.len() as f32).sqrt();
        (mean(|t| t.0), mean(|t| t.1))
    }
}

fn notices(m: &Musician) -> usize {
    m.chat.iter().filter(|c| c.contains("streamed to an audience")).count()
}

#[test]
fn a_musician_is_streamed_only_after_acknowledging_the_notice() {
    let mut jam = Jam::new(StreamConfig::default());
    let stalled = jam.join("Stalled", 23001, 440.0, true);
    jam.run(Duration::from_secs(5));
    assert_eq!(jam.server.connected_clients(), 1);
    assert!(
        notices(&jam.musicians[stalled]) > 1,
        "the notice reached the client and is resent (its ACKs do not come back)"
    );
    assert!(!jam.server.is_streamed(0));
    let (l, r) = jam.stream_rms(1000);
    assert!(l == 0.0 && r == 0.0, "a musician who never acknowledged is not in the stream: {l} {r}");
    assert!(jam.heard.lock().unwrap().ticks.len() > 1500, "the stream ran all along");

    // Its ACKs start to arrive: from then on it is heard.
    jam.musicians[stalled].stall_acks = false;
    jam.run(Duration::from_secs(4));
    assert!(jam.server.is_streamed(0));
    let (l, r) = jam.stream_rms(300);
    assert!(l > 0.1 && (l - r).abs() < 0.01, "unity gain, centre pan: {l} {r}");
    let musicians = jam.heard.lock().unwrap().musicians.clone();
    assert_eq!(musicians.last().unwrap(), &["Stalled".to_string()]);
}

#[test]
fn the_count_is_announced_once_then_at_most_once_a_minute() {
    let mut jam = Jam::new(StreamConfig::default());
    let a = jam.join("A", 23011, 440.0, false);
    jam.run(Duration::from_millis(500));
    assert_eq!(notices(&jam.musicians[a]), 1);
    jam.listeners.store(3, Ordering::Relaxed);
    jam.run(Duration::from_millis(500));
    jam.listeners.store(4, Ordering::Relaxed);
    jam.run(Duration::from_millis(500));
    let counts: Vec<_> = jam.musicians[a].chat.iter().filter(|c| c.contains("now has")).cloned().collect();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert!(counts[0].contains("3 listeners"));
    // A musician joining later is told the current count in the notice.
    let b = jam.join("B", 23012, 660.0, false);
    jam.run(Duration::from_millis(500));
    assert!(jam.musicians[b].chat.iter().any(|c| c.contains("(4 listeners)")), "{:?}", jam.musicians[b].chat);
}

#[test]
fn the_audience_can_hear_one_musicians_personal_mix() {
    let mut jam = Jam::new(StreamConfig { mix_of: Some("Engineer".into()) });
    let band = jam.join("Band", 23021, 440.0, false);
    let engineer = jam.join("Engineer", 23022, 660.0, false);
    jam.run(Duration::from_secs(4));
    let both = jam.stream_rms(300);
    assert!(both.0 > 0.2, "{both:?}");
    // The engineer pans the band hard left and mutes themself.
    let now = jam.now;
    let (band_ch, own) =
        (jam.musicians[band].client.channel().unwrap(), jam.musicians[engineer].client.channel().unwrap());
    let e = &mut jam.musicians[engineer].client;
    e.set_pan(now, band_ch, 0.0);
    e.set_gain(now, own, 0.0);
    jam.run(Duration::from_secs(1));
    let (l, r) = jam.stream_rms(200);
    assert!(l > 0.2 && r < 0.001, "the engineer's mix: band left only, engineer muted: {l} {r}");
}
