//! Listen-in against real peers on loopback: a real Jamulus 3.9.1 client's metronome click played into
//! `tutti server --stream` is in the stream that `curl` fetches and Debian's `opusdec` decodes; a
//! musician whose client does not acknowledge the stream notice is not in the stream until it does;
//! a listener that stops reading is dropped while another keeps receiving and the jam's ticks stay on
//! time; Chromium opens the page and the stream plays.

mod lobby_support;
mod support;
mod tutti_process;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{free_tcp_port, free_udp_port, require_jamulus, ClientOptions, JamulusClient};
use tutti_jam::{Client, ClientConfig};
use tutti_process::{tone_client, Tutti};
use tutti_proto::message::{id, Profile};
use tutti_proto::Frame;

const WAIT: Duration = Duration::from_secs(15);

/// The test that times the server's ticks does not run beside the one that starts Chromium (whose
/// start-up takes both cores of a small machine for seconds).
static NOT_BESIDE_CHROMIUM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `tutti server --stream` on loopback: the process, its UDP address and its stream's HTTP address.
fn start_server(extra: &[&str]) -> (Tutti, SocketAddr, SocketAddr) {
    let (udp, http) = (free_udp_port(), free_tcp_port());
    let (udp_text, http_text) = (udp.to_string(), format!("127.0.0.1:{http}"));
    let mut args = vec!["server", "--port", &udp_text, "--serverbindip", "127.0.0.1", "--stream", &http_text];
    args.extend_from_slice(extra);
    let server = Tutti::start(&args);
    let address = server.wait_for_http_addr("tutti: listen-in stream at http://", Duration::from_secs(10));
    assert_eq!(address, Some(SocketAddr::from(([127, 0, 0, 1], http))), "no stream:\n{}", server.log());
    (server, SocketAddr::from(([127, 0, 0, 1], udp)), SocketAddr::from(([127, 0, 0, 1], http)))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tutti-listen-in-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What `curl` gets from `url` in `seconds` (a live stream is cut off then).
fn fetch(url: &str, seconds: f32) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", &seconds.to_string(), url])
        .output()
        .expect("curl (run ./scripts/test.sh to install it)");
    out.stdout
}

fn get_json(http: SocketAddr, path: &str) -> Value {
    let body = fetch(&format!("http://{http}{path}"), 5.0);
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&body)))
}

/// Decodes an Ogg Opus stream with Debian's `opusdec`; returns stereo samples, interleaved.
fn opusdec(ogg: &[u8], name: &str) -> Vec<f32> {
    let dir = scratch(name);
    let (input, output) = (dir.join("stream.opus"), dir.join("stream.wav"));
    std::fs::write(&input, ogg).unwrap();
    let status = Command::new("opusdec")
        .args(["--quiet", "--rate", "48000"])
        .arg(&input)
        .arg(&output)
        .status()
        .expect("opusdec (Debian opus-tools; run ./scripts/test.sh to install it)");
    assert!(status.success(), "opusdec failed on the stream ({} bytes)", ogg.len());
    let mut wav = hound::WavReader::open(&output).unwrap();
    assert_eq!((wav.spec().channels, wav.spec().sample_rate), (2, 48_000));
    let samples = wav.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect();
    let _ = std::fs::remove_dir_all(&dir);
    samples
}

fn rms(stereo: &[f32]) -> f32 {
    (stereo.iter().map(|s| s * s).sum::<f32>() / stereo.len().max(1) as f32).sqrt()
}

/// The clicks in a stereo signal: (start in seconds, length in seconds, frequency in Hz) of each stretch
/// louder than `threshold` (gaps under 10 ms bridged), the frequency from the left channel's zero crossings.
fn clicks(stereo: &[f32], threshold: f32) -> Vec<(f32, f32, f32)> {
    let left: Vec<f32> = stereo.iter().step_by(2).copied().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < left.len() {
        if left[i].abs() <= threshold {
            i += 1;
            continue;
        }
        let (start, mut end) = (i, i);
        while i < left.len() && i - end < 480 {
            if left[i].abs() > threshold {
                end = i;
            }
            i += 1;
        }
        let crossings = left[start..=end].windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        let seconds = (end + 1 - start) as f32 / 48_000.0;
        out.push((start as f32 / 48_000.0, seconds, crossings as f32 / 2.0 / seconds));
    }
    out
}

#[test]
fn a_real_jamulus_click_is_in_the_stream_that_opusdec_decodes() {
    require_jamulus();
    let (mut server, udp, http) = start_server(&["--serverinfo", "Listen Club;Berlin;DE"]);
    let mut options = ClientOptions::new(udp);
    options.name = "Metro".into();
    options.metro_bpm = Some(120);
    let metro = JamulusClient::start(options);
    metro.rpc().wait_notification("jamulusclient/connected", WAIT, |_| true).expect("real client connected");
    let notice = metro
        .rpc()
        .wait_notification("jamulusclient/chatTextReceived", WAIT, |p| {
            p["chatText"].as_str().is_some_and(|t| t.contains("streamed to an audience"))
        })
        .expect("the real client is told that the session is streamed");
    assert!(notice["chatText"].as_str().unwrap().contains("(0 listeners)"), "{notice}");
    std::thread::sleep(Duration::from_millis(4000)); // the 3 s fade-in, then clicks every 0.5 s

    let ogg = fetch(&format!("http://{http}/stream.opus"), 3.5);
    assert!(ogg.starts_with(b"OggS") && ogg.windows(8).any(|w| w == b"OpusHead"), "an Ogg Opus stream");
    let pcm = opusdec(&ogg, "click");
    assert!(pcm.len() / 2 > 48_000 * 3, "3.5 s fetched, {} samples decoded", pcm.len() / 2);
    // jack_metro's clicks: short bursts of 880 Hz. (Their spacing is jackd's timing on the test machine's
    // dummy driver, which a busy machine disturbs, cutting some short; it is not checked.)
    let found = clicks(&pcm, 0.1);
    assert!(found.iter().all(|c| c.1 < 0.2), "clicks, not a tone: {found:?}");
    let whole: Vec<_> = found.iter().filter(|c| c.1 > 0.04 && (820.0..940.0).contains(&c.2)).collect();
    assert!(whole.len() >= 2, "the metronome's 880 Hz clicks are in the stream: {found:?}");
    let page = String::from_utf8(fetch(&format!("http://{http}/"), 5.0)).unwrap();
    assert!(page.contains("Listen Club") && page.contains("Playing: Metro"), "{page}");
    assert!(page.contains("src=\"/stream.opus\"") && page.contains("href=\"/privacy\""));
    // the listener that left is uncounted when the server's next writes to it fail: one or two groups of
    // pages (60 ms each) after it closed, later on a loaded machine
    support::wait_until(Duration::from_secs(3), || get_json(http, "/status.json")["listeners"] == 0);
    let status = get_json(http, "/status.json");
    assert_eq!((status["channels"].as_u64(), status["listeners"].as_u64()), (Some(1), Some(0)), "{status}");
    let privacy = String::from_utf8(fetch(&format!("http://{http}/privacy"), 5.0)).unwrap();
    assert!(privacy.contains("listen-in stream"), "the policy served with the stream mentions it");

    metro.stop();
    assert_eq!(server.stop(), Some(0), "clean exit:\n{}", server.log());
}

/// A jam client (tutti's own state machine on a UDP socket) playing a 440 Hz tone whose
/// acknowledgements of chat messages are lost while `stall` is set.
fn stalling_client(server: SocketAddr, stall: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let profile = Profile { name: "Stalling".into(), ..Profile::default() };
        let mut client = Client::new(server, ClientConfig { profile, channels: 1, ..ClientConfig::default() }).unwrap();
        let period = Duration::from_nanos(client.format().frame_samples() as u64 * 1_000_000_000 / 48_000);
        let (start, mut frames, mut buf) = (Instant::now(), 0u64, [0u8; 2048]);
        let mut out = vec![0.0f32; client.frame_len()];
        while !stop.load(Ordering::Relaxed) {
            let due = start + period * frames as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let now = Instant::now();
            let n = client.frame_len();
            let t0 = frames as usize * n;
            let pcm: Vec<f32> =
                (0..n).map(|i| 0.4 * (std::f32::consts::TAU * 440.0 * (t0 + i) as f32 / 48_000.0).sin()).collect();
            client.send_audio(now, &pcm).unwrap();
            frames += 1;
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                client.handle_datagram(now, from, &buf[..len]);
            }
            client.handle_timeout(now);
            let _ = client.receive_audio(&mut out);
            while let Some(d) = client.poll_transmit() {
                let acks_chat =
                    Frame::parse(&d).is_some_and(|f| f.id == id::ACKN && f.data == id::CHAT_TEXT.to_le_bytes());
                if !(acks_chat && stall.load(Ordering::Relaxed)) {
                    let _ = socket.send_to(&d, server);
                }
            }
        }
    })
}

#[test]
fn a_musician_whose_client_does_not_acknowledge_the_notice_is_not_streamed() {
    let (mut server, udp, http) = start_server(&[]);
    let (stall, stop) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let client = stalling_client(udp, stall.clone(), stop.clone());
    std::thread::sleep(Duration::from_secs(5)); // connected, identified, faded in: everything but the notice
    let silent = opusdec(&fetch(&format!("http://{http}/stream.opus"), 2.5), "stalled");
    assert!(pcm_seconds(&silent) > 2.0);
    assert!(rms(&silent) < 0.001, "nothing of the musician before the notice was acknowledged: {}", rms(&silent));
    assert_eq!(get_json(http, "/status.json")["channels"], 0);

    stall.store(false, Ordering::Relaxed); // the next resend of the notice is acknowledged
    std::thread::sleep(Duration::from_secs(2));
    let heard = opusdec(&fetch(&format!("http://{http}/stream.opus"), 2.5), "acknowledged");
    assert!(rms(&heard[heard.len() / 4..]) > 0.1, "streamed once acknowledged: {}", rms(&heard));
    assert_eq!(get_json(http, "/status.json")["channels"], 1);
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    assert_eq!(server.stop(), Some(0));
}

fn pcm_seconds(stereo: &[f32]) -> f32 {
    stereo.len() as f32 / 2.0 / 48_000.0
}

/// One value of the Prometheus text at `/metrics`: the first line of `name` whose labels contain `label`.
fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| panic!("no {name} {label} in\n{text}"))
}

#[test]
fn a_listener_that_stops_reading_is_dropped_while_others_keep_listening() {
    let _alone = NOT_BESIDE_CHROMIUM.lock().unwrap_or_else(|e| e.into_inner());
    let metrics_port = free_tcp_port().to_string();
    let (mut server, udp, http) = start_server(&["--metrics", &metrics_port]);
    let tone = tone_client(udp, "Tone", 440.0);
    std::thread::sleep(Duration::from_secs(1));

    // A listener with a tiny receive buffer that asks for the stream and then never reads.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&http.into()).unwrap();
    let mut stalled: TcpStream = socket.into();
    write!(stalled, "GET /stream.opus HTTP/1.1\r\nHost: {http}\r\n\r\n").unwrap();
    // Another listener reads for 14 s.
    let url = format!("http://{http}/stream.opus");
    let reader = std::thread::spawn(move || fetch(&url, 14.0));
    assert!(support::wait_until(Duration::from_secs(5), || get_json(http, "/status.json")["listeners"] == 2));

    let dropped = support::wait_until(Duration::from_secs(12), || get_json(http, "/status.json")["listeners"] == 1);
    assert!(dropped, "the stalled listener was dropped: {}", get_json(http, "/status.json"));
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut drained = Vec::new();
    let closed = stalled.read_to_end(&mut drained);
    assert!(closed.is_ok(), "the server closed the stalled connection ({} bytes were waiting)", drained.len());

    let heard = opusdec(&reader.join().unwrap(), "reader");
    assert!(pcm_seconds(&heard) > 13.0, "the reading listener got all of it: {} s", pcm_seconds(&heard));
    assert!(rms(&heard[heard.len() / 2..]) > 0.1, "with the tone");

    let text = String::from_utf8(fetch(&format!("http://127.0.0.1:{metrics_port}/metrics"), 5.0)).unwrap();
    // The time each tick took (its own work, the stream's tap included; wall time, so a busy machine adds
    // some) stays within the period. Late ticks (the whole process stalled for 133 ms) are left to
    // bench/stream.sh, run at real-time priority: a busy test machine causes them by itself.
    let within = metric(&text, "tutti_tick_duration_seconds_bucket", "le=\"0.002667\"");
    let all = metric(&text, "tutti_tick_duration_seconds_count", "");
    assert!(within / all > 0.99, "ticks stayed within their period: {within} of {all}");
    tone.stop().unwrap();
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn chromium_opens_the_page_and_the_stream_plays() {
    let _alone = NOT_BESIDE_CHROMIUM.lock().unwrap_or_else(|e| e.into_inner());
    let (mut server, udp, http) = start_server(&[]);
    let tone = tone_client(udp, "Browser Tone", 440.0);
    let (ok, output) = lobby_support::node("listen_in.mjs", &[&format!("http://{http}/")], Duration::from_secs(90));
    assert!(ok && output.contains("listen-in ok"), "the browser test failed:\n{output}");
    tone.stop().unwrap();
    assert_eq!(server.stop(), Some(0));
}
