//! The UDP shells on loopback: a real server thread and real client threads exchanging real datagrams
//! in real time. A tone sent by one client is in the other's mix, and stays there, without a gap,
//! while 200 other source ports throw random and mutated datagrams at the server.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tutti_jam::{ClientConfig, ClientEvent, ServerConfig};
use tutti_net::{RunningClient, RunningServer, ServerOptions};
use tutti_proto::message::Profile;
use tutti_proto::{AudioCodec, Message};

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn tone(freq: f32, amplitude: f32) -> tutti_net::AudioSource {
    let mut n = 0u64;
    Box::new(move |pcm: &mut [f32]| {
        for s in pcm.iter_mut() {
            *s = amplitude * (std::f32::consts::TAU * freq * n as f32 / 48_000.0).sin();
            n += 1;
        }
    })
}

fn recorder() -> (tutti_net::AudioSink, Arc<Mutex<Vec<f32>>>) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    (Box::new(move |pcm: &[f32]| h.lock().unwrap().extend_from_slice(pcm)), heard)
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

fn wait_for(client: &RunningClient, what: &str, mut f: impl FnMut(&ClientEvent) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(e) = client.next_event(Duration::from_millis(100)) {
            if f(&e) {
                return;
            }
        }
    }
    panic!("no {what} within 5 s");
}

#[test]
fn tone_crosses_the_server_and_survives_a_garbage_burst() {
    let server = RunningServer::start(ServerOptions::new(loopback(0), ServerConfig::default())).unwrap();
    let address = server.local_addr();
    let profile = |name: &str| Profile { name: name.into(), ..Profile::default() };
    let a = RunningClient::start(
        loopback(0),
        address,
        ClientConfig { profile: profile("Tone"), codec: AudioCodec::Opus64, ..ClientConfig::default() },
        tone(1000.0, 0.5),
        Box::new(|_: &[f32]| {}),
    )
    .unwrap();
    let (sink, heard) = recorder();
    let b = RunningClient::start(
        loopback(0),
        address,
        ClientConfig { profile: profile("Ear"), ..ClientConfig::default() },
        Box::new(|pcm: &mut [f32]| pcm.fill(0.0)),
        sink,
    )
    .unwrap();
    wait_for(&b, "client list with both", |e| matches!(e, ClientEvent::ClientList(l) if l.len() == 2));

    std::thread::sleep(Duration::from_millis(3600)); // fade-in is 3 s
    let full = 0.5 / 2f32.sqrt();
    let before = {
        let h = heard.lock().unwrap();
        rms(&h[h.len() - 24_000..])
    };
    assert!((before / full - 1.0).abs() < 0.25, "tone in B's mix before the burst: {before}");

    // The burst: 200 source ports, 10 000 datagrams of garbage, truncated/mutated frames, plausible
    // audio sizes and connection messages from strangers, over about one second.
    let start_len = heard.lock().unwrap().len();
    let garbage: Vec<UdpSocket> = (0..200).map(|_| UdpSocket::bind(loopback(0)).unwrap()).collect();
    let chat = Message::ChatText("x".repeat(100)).to_datagram(3);
    let mut x: u32 = 0x1234_5678;
    for round in 0..50 {
        for (i, socket) in garbage.iter().enumerate() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let bytes: Vec<u8> = match (i + round) % 4 {
                0 => chat.clone(),
                1 => {
                    let mut c = chat.clone();
                    let at = (x as usize) % c.len();
                    c[at] ^= 0x40;
                    c
                }
                2 => (0..23).map(|k| (x >> (k % 24)) as u8).collect(),
                _ => (0..(x % 600) as usize).map(|k| (x.wrapping_mul(k as u32 + 1) >> 7) as u8).collect(),
            };
            let _ = socket.send_to(&bytes, address);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));

    let h = heard.lock().unwrap().clone();
    let during = &h[start_len..];
    assert!(during.len() > 48_000, "B kept receiving for the whole burst");
    for (k, window) in during.chunks(960).enumerate() {
        if window.len() == 960 {
            assert!(rms(window) > 0.5 * full, "gap in B's mix at {} ms: {}", k * 20, rms(window));
        }
    }
    a.stop().unwrap();
    b.stop().unwrap();
    let stats = server.stop().unwrap();
    assert!(stats.dropped_total() >= 2_500, "garbage counted and dropped: {stats:?}");
}
