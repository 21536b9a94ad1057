//! The recorder when writing fails, on the real binary: `tutti server -R DIR` runs with a file size
//! limit (RLIMIT_FSIZE via `prlimit`), so that its WAV writes fail with EFBIG after about a second
//! of audio, as on a full disk. The recorder must report and stop, the clients must be told
//! (RECORDER_STATE "not enabled"), the jam must go on (a listener keeps hearing the tone), and the
//! files written so far must be valid WAVs holding what was recorded.

mod support;
mod tutti_process;

use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{free_tcp_port, free_udp_port, JsonRpc, StateDir};
use tutti_jam::ClientEvent;
use tutti_process::{listening_client, tone_client, Tutti};
use tutti_proto::message::RecorderState;

const SECRET: &str = "tutti-recorder-failure-secret-0123";
/// Per-file limit: a mono 16-bit 48 kHz track reaches it after about 1.25 s.
const FILE_LIMIT: u64 = 120_000;

/// Checks that `path` is a complete 16-bit mono 48 kHz WAV whose header matches its length; returns
/// its samples.
fn valid_wav(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap();
    let name = path.display();
    assert!(bytes.len() >= 44, "{name}: {} bytes, not even a header", bytes.len());
    assert!(bytes.len() as u64 <= FILE_LIMIT, "{name}: {} bytes, over the limit", bytes.len());
    assert_eq!((&bytes[..4], &bytes[8..16], &bytes[36..40]), (&b"RIFF"[..], &b"WAVEfmt "[..], &b"data"[..]), "{name}");
    let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let data = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    assert_eq!((riff, data), (bytes.len() - 8, bytes.len() - 44), "{name}: header sizes vs {} bytes", bytes.len());
    let reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 48_000, 16), "{name}");
    reader.into_samples::<i16>().map(|s| s.unwrap_or_else(|e| panic!("{name}: {e}"))).collect()
}

#[test]
fn a_failing_disk_stops_the_recorder_but_not_the_jam() {
    let root = StateDir::new("tutti-recfail");
    let rec = root.file("rec");
    let secret = root.file("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let (udp, tcp) = (free_udp_port().to_string(), free_tcp_port().to_string());
    let mut tutti = Tutti::start_with_file_size_limit(
        FILE_LIMIT,
        &[
            "server",
            "--port",
            &udp,
            "--serverbindip",
            "127.0.0.1",
            "-R",
            rec.to_str().unwrap(),
            "--jsonrpcport",
            &tcp,
            "--jsonrpcsecretfile",
            secret.to_str().unwrap(),
        ],
    );
    assert!(tutti.wait_for_log("jam server listening on UDP", Duration::from_secs(10)), "{}", tutti.log());
    let server = SocketAddr::from(([127, 0, 0, 1], udp.parse().unwrap()));
    let (listener, heard) = listening_client(server, "Ear", 1);
    let tone = tone_client(server, "Tone", 440.0);

    // The listener is told "recording", then "not enabled" once the writes fail.
    let mut states = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && states.last() != Some(&RecorderState::NotEnabled) {
        if let Some(ClientEvent::RecorderState(state)) = listener.next_event(Duration::from_millis(50)) {
            states.push(state);
        }
    }
    assert_eq!(states, [RecorderState::Recording, RecorderState::NotEnabled], "{}", tutti.log());
    assert!(tutti.log().contains("recording stopped: cannot write the recording"), "{}", tutti.log());
    assert!(tutti.log().contains("File too large"), "the write error, not a signal, stopped it:\n{}", tutti.log());

    // The jam goes on: a second later the listener still hears the tone, at the real-time pace.
    let (before, since) = (heard.lock().unwrap().len(), Instant::now());
    std::thread::sleep(Duration::from_millis(1000));
    let after: Vec<f32> = heard.lock().unwrap()[before..].to_vec();
    // (against the time that really passed: a busy machine may oversleep)
    let expected = since.elapsed().as_secs_f64() * 48_000.0;
    let pace = after.len() as f64 / expected;
    assert!((0.8..1.2).contains(&pace), "{} samples in {:?} after the failure", after.len(), since.elapsed());
    let tail = &after[after.len() / 2..];
    let rms = (tail.iter().map(|s| s * s).sum::<f32>() / tail.len() as f32).sqrt();
    let crossings = tail.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    let hz = crossings as f32 / 2.0 / (tail.len() as f32 / 48_000.0);
    assert!(rms > 0.05 && (hz - 440.0).abs() < 22.0, "the tone still reaches the listener (rms {rms}, {hz} Hz)");
    assert_eq!(tutti.wait_exit(Duration::from_millis(10)), None, "tutti is still running:\n{}", tutti.log());

    // Operators see why over JSON-RPC.
    let rpc = JsonRpc::connect(tcp.parse().unwrap(), SECRET);
    let status = rpc.call("jamulusserver/getRecorderStatus", json!({}))["result"].clone();
    assert_eq!((&status["enabled"], &status["initialised"]), (&json!(false), &json!(true)), "{status}");
    assert!(status["errorMessage"].as_str().unwrap().contains("File too large"), "{status}");

    // The files written so far are valid WAVs with the recorded audio in them.
    let wavs: Vec<PathBuf> = std::fs::read_dir(&rec)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|session| std::fs::read_dir(session.path()).unwrap().flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    assert_eq!(wavs.len(), 2, "one file per client: {wavs:?}");
    let mut tone_heard = false;
    for wav in &wavs {
        let samples = valid_wav(wav);
        let seconds = samples.len() as f32 / 48_000.0;
        assert!(seconds > 0.5, "{}: {seconds} s recorded before the failure", wav.display());
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        tone_heard |= wav.file_name().unwrap().to_str().unwrap().starts_with("Tone") && (6_000..10_000).contains(&peak);
    }
    assert!(tone_heard, "the tone's file holds the tone: {wavs:?}");

    tone.stop().unwrap();
    listener.stop().unwrap();
    assert_eq!(tutti.stop(), Some(0), "clean exit:\n{}", tutti.log());
}
