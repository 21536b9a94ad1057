//! Recording and its notice, driven through the simulated network (`sim`): no client's audio is recorded
//! before the recording notice went out to that client, and a client that never gets it is never recorded.

mod sim;

use sim::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tutti_jam::{Client, ClientConfig, RecordedFrame, RecordingTap, ServerConfig};
use tutti_proto::message::RecorderState;
use tutti_proto::Message;

/// What a recording tap saw: (value of `Net::seq` at the time, address, audio channels, RMS).
#[derive(Default)]
struct Taken {
    frames: Vec<(u64, SocketAddr, u8, f32)>,
    ticks: u64,
    idles: u32,
}

struct TestTap {
    seq: Arc<AtomicU64>,
    taken: Arc<Mutex<Taken>>,
}

impl RecordingTap for TestTap {
    fn frame(&mut self, _tick: u64, f: RecordedFrame<'_>) {
        let rms = (f.samples.iter().map(|s| s * s).sum::<f32>() / f.samples.len() as f32).sqrt();
        assert_eq!(f.samples.len(), 128 * usize::from(f.audio_channels), "one tick per frame");
        let seq = self.seq.load(Ordering::SeqCst);
        self.taken.lock().unwrap().frames.push((seq, f.address, f.audio_channels, rms));
    }
    fn end_tick(&mut self, _tick: u64) {
        self.taken.lock().unwrap().ticks += 1;
    }
    fn idle(&mut self) {
        self.taken.lock().unwrap().idles += 1;
    }
}

fn first_frame(taken: &Taken, address: SocketAddr, after: u64) -> Option<u64> {
    taken.frames.iter().filter(|f| f.1 == address && f.0 >= after).map(|f| f.0).next()
}

#[test]
fn no_sample_is_recorded_before_the_recording_notice_went_out_to_that_client() {
    let mut net = Net::new(ServerConfig { recorder_state: RecorderState::Recording, ..ServerConfig::default() });
    let taken = Arc::new(Mutex::new(Taken::default()));
    net.server.set_recording_tap(Some(Box::new(TestTap { seq: net.seq.clone(), taken: taken.clone() })));
    let a = net.add(22300, ClientConfig { profile: profile("Alice"), ..opus64() }, Some(440.0));
    net.run(Duration::from_millis(200));
    let b =
        net.add(22301, ClientConfig { profile: profile("Bob"), channels: 2, ..ClientConfig::default() }, Some(660.0));
    net.run(Duration::from_millis(300));
    {
        let t = taken.lock().unwrap();
        for p in [a, b] {
            let peer = &net.peers[p];
            let notice = *peer.recording_notices.first().expect("the client was told it is recorded");
            assert!(
                t.frames.iter().filter(|f| f.1 == peer.address).all(|f| f.0 > notice),
                "a frame of {} was recorded before its notice went out",
                peer.address
            );
            let frames: Vec<_> = t.frames.iter().filter(|f| f.1 == peer.address).collect();
            assert!(frames.len() > 50, "{} recorded ({} frames)", peer.address, frames.len());
            assert!(frames.last().unwrap().3 > 0.1, "the tone is in the recorded input");
        }
        assert!(t.frames.iter().any(|f| f.1 == net.peers[b].address && f.2 == 2), "stereo stays stereo");
    }
    // Stopped: nothing more is recorded. Started again: only after the new notice went out.
    net.server.set_recorder_state(net.now, RecorderState::NotEnabled);
    let stopped_at = net.seq.load(Ordering::SeqCst);
    net.run(Duration::from_millis(100));
    assert!(taken.lock().unwrap().frames.iter().all(|f| f.0 <= stopped_at), "nothing recorded while stopped");
    assert!(net.peers[a].messages.contains(&Message::RecorderState(RecorderState::NotEnabled)));
    let restarted_at = net.seq.load(Ordering::SeqCst);
    net.server.set_recorder_state(net.now, RecorderState::Recording);
    net.run(Duration::from_millis(100));
    {
        let t = taken.lock().unwrap();
        for peer in &net.peers {
            let notice = *peer.recording_notices.last().unwrap();
            assert!(notice >= restarted_at, "a second notice went out");
            let first = first_frame(&t, peer.address, restarted_at).expect("recorded again");
            assert!(first > notice, "recording resumed only after the second notice went out");
        }
    }
    // Everybody leaves: the session ends.
    for peer in &mut net.peers {
        peer.sending = false;
    }
    net.run(Duration::from_secs(31));
    assert_eq!(taken.lock().unwrap().idles, 1, "the recorder heard that the server went idle");
}

#[test]
fn a_client_that_never_gets_the_notice_is_never_recorded() {
    // A client whose link never acknowledges anything: the connect sequence stalls before
    // RECORDER_STATE, so its audio must never reach the recorder.
    let mut net = Net::new(ServerConfig { recorder_state: RecorderState::Recording, ..ServerConfig::default() });
    let taken = Arc::new(Mutex::new(Taken::default()));
    net.server.set_recording_tap(Some(Box::new(TestTap { seq: net.seq.clone(), taken: taken.clone() })));
    let mut client = Client::new(server_address(), opus64()).unwrap();
    let from = SocketAddr::from(([127, 0, 0, 1], 22302));
    let mut now = net.now;
    for _ in 0..400 {
        now += STEP * 2;
        client.send_audio(now, &vec![0.25; client.frame_len()]).unwrap();
        client.handle_timeout(now);
        while let Some(d) = client.poll_transmit() {
            net.server.handle_datagram(now, from, &d);
        }
        net.server.handle_timeout(now);
        while net.server.poll_transmit().is_some() {} // everything the server sends is lost
    }
    assert_eq!(net.server.connected_clients(), 1);
    assert!(taken.lock().unwrap().frames.is_empty(), "recorded a client that was never told");
}
