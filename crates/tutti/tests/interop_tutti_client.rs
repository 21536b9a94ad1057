//! `tutti client` on a real Jamulus 3.9.1 server (Debian package): one tutti client plays a tone,
//! a second one records its mix to a WAV file; chat goes both ways through the real server; the
//! real server's JSON-RPC and its connection-less client list show our clients with their profiles.

mod support;
mod tutti_process;

use std::net::UdpSocket;
use std::time::Duration;
use support::{free_udp_port, require_jamulus, wait_until, JamulusServer, ServerOptions};
use tutti_process::Tutti;
use tutti_proto::{Datagram, Message};

#[test]
fn tutti_clients_play_record_and_chat_on_a_real_jamulus_server() {
    require_jamulus();
    let server = JamulusServer::start(ServerOptions::new(free_udp_port()));
    let address = server.address().to_string();
    let wav = std::env::temp_dir().join(format!("tutti-client-mix-{}.wav", std::process::id()));
    let mut tone = Tutti::start(&[
        "client",
        "-c",
        &address,
        "--name",
        "Tony",
        "--instrument",
        "Bass Guitar",
        "--country",
        "DE",
        "--city",
        "Berlin",
        "--skill",
        "expert",
        "--input",
        "tone:880",
        "--chat",
        "hi from the tone",
        "--duration",
        "12",
    ]);
    let mut recorder = Tutti::start(&[
        "client",
        "-c",
        &address,
        "--name",
        "Rec",
        "--output",
        wav.to_str().unwrap(),
        "--chat",
        "hello back",
        "--duration",
        "12",
    ]);

    // Chat both ways, formatted by the real server with the sender's name.
    assert!(
        tone.wait_for_log("<b>Rec</b></font> hello back", Duration::from_secs(9)),
        "the tone client saw the recorder's chat:\n{}",
        tone.log()
    );
    assert!(
        recorder.wait_for_log("<b>Tony</b></font> hi from the tone", Duration::from_secs(3)),
        "the recorder saw the tone's chat:\n{}",
        recorder.log()
    );

    // The real server's JSON-RPC lists both by name.
    let clients = server.rpc().call("jamulusserver/getClients", serde_json::json!({}));
    let names: Vec<&str> =
        clients["result"]["clients"].as_array().expect("clients").iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"Tony") && names.contains(&"Rec"), "getClients: {clients}");

    // And its client list carries the whole profile we gave on the command line.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut profile = None;
    assert!(wait_until(Duration::from_secs(3), || {
        let _ = socket.send_to(&Message::ClmReqConnClientsList.to_datagram(0), server.address());
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            if let Datagram::Protocol(frame) = Datagram::classify(&buf[..n]) {
                if let Ok(Message::ClmConnClientsList(list)) = Message::decode(frame.id, frame.data) {
                    profile = list.into_iter().map(|e| e.profile).find(|p| p.name == "Tony");
                }
            }
        }
        profile.is_some()
    }));
    let profile = profile.unwrap();
    assert_eq!((profile.instrument, profile.city.as_str()), (5, "Berlin"), "{profile:?}");
    assert_eq!(tutti_jam::country::iso(profile.country), Some("DE"));
    assert_eq!(profile.skill, tutti_proto::message::SkillLevel::Expert);

    // Both leave by themselves after --duration, cleanly; the recording holds the 880 Hz tone.
    assert_eq!(tone.wait_exit(Duration::from_secs(13)), Some(0), "{}", tone.log());
    assert_eq!(recorder.wait_exit(Duration::from_secs(5)), Some(0), "{}", recorder.log());
    let (rms, hz) = tail_of(&wav, 1.0);
    let _ = std::fs::remove_file(&wav);
    assert!(rms > 0.1, "the tone is in the recorded mix (rms {rms})");
    assert!((860.0..=900.0).contains(&hz), "at 880 Hz ({hz} Hz)");
    assert!(
        wait_until(Duration::from_secs(3), || server.rpc().call("jamulusserver/getClients", serde_json::json!({}))
            ["result"]["clients"]
            .as_array()
            .is_some_and(|c| c.is_empty())),
        "both clients said goodbye (CLM_DISCONNECTION), so the real server freed their channels at once"
    );
}

/// RMS and frequency of the last `seconds` of a mono 16-bit WAV file. The frequency is taken from the
/// median interval between rising zero crossings, so that a dropout (a busy machine can starve the
/// client now and then) does not change it.
fn tail_of(path: &std::path::Path, seconds: f32) -> (f32, f32) {
    let mut reader = hound::WavReader::open(path).expect("the recorder wrote a WAV file");
    let samples: Vec<f32> = reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect();
    let tail = &samples[samples.len().saturating_sub((seconds * 48_000.0) as usize)..];
    let rms = (tail.iter().map(|s| s * s).sum::<f32>() / tail.len().max(1) as f32).sqrt();
    let rising: Vec<usize> = (1..tail.len()).filter(|&i| tail[i - 1] < 0.0 && tail[i] >= 0.0).collect();
    let mut intervals: Vec<usize> = rising.windows(2).map(|w| w[1] - w[0]).collect();
    intervals.sort_unstable();
    let hz = intervals.get(intervals.len() / 2).map_or(0.0, |&median| 48_000.0 / median as f32);
    (rms, hz)
}
