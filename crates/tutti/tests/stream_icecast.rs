//! `tutti server --stream --stream-to icecast://…` against Debian's real Icecast 2 (`icecast2`), started
//! by the test on loopback with its own configuration: the stream arrives as a source, Icecast serves
//! it, and what Icecast serves decodes (Debian `opusdec`) to the musician's tone; when Icecast goes
//! away and comes back, tutti connects again by itself.

mod support;
mod tutti_process;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{free_tcp_port, free_udp_port, wait_until, StateDir};
use tutti_process::{tone_client, Tutti};

const SOURCE_PASSWORD: &str = "listen-in-source-secret";

/// Icecast 2 with a configuration of its own in `dir`, listening on 127.0.0.1:`port`; killed on drop.
struct Icecast {
    child: Child,
}

impl Icecast {
    fn start(dir: &Path, port: u16) -> Icecast {
        assert!(
            Path::new("/usr/bin/icecast2").exists(),
            "Icecast 2 is needed: run ./scripts/test.sh, which installs Debian's icecast2"
        );
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        // Icecast refuses to run as root unless it changes to its own user; that user writes the logs.
        let as_root = unsafe { libc::geteuid() } == 0;
        let owner = if as_root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o777)).unwrap();
            "<changeowner><user>icecast2</user><group>icecast</group></changeowner>"
        } else {
            ""
        };
        let config = format!(
            r#"<icecast>
  <location>loopback</location><admin>test@localhost</admin>
  <limits><clients>100</clients><sources>2</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-size>65535</burst-size></limits>
  <authentication><source-password>{SOURCE_PASSWORD}</source-password><admin-user>admin</admin-user>
    <admin-password>listen-in-admin-secret</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{logs}</logdir><webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"#,
            logs = logs.display()
        );
        let file = dir.join("icecast.xml");
        std::fs::write(&file, config).unwrap();
        let child = Command::new("/usr/bin/icecast2")
            .arg("-c")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start icecast2");
        let up = wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(up, "icecast2 did not listen on {port}");
        Icecast { child }
    }

    fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Icecast {
    fn drop(&mut self) {
        self.kill();
    }
}

fn fetch(url: &str, seconds: f32) -> Vec<u8> {
    Command::new("curl").args(["-s", "--max-time", &seconds.to_string(), url]).output().expect("curl").stdout
}

/// Decodes Ogg Opus with Debian's `opusdec`; RMS and seconds of what it decoded.
fn decode(dir: &Path, ogg: &[u8]) -> (f32, f32) {
    let (input, output) = (dir.join("mount.opus"), dir.join("mount.wav"));
    std::fs::write(&input, ogg).unwrap();
    let ok = Command::new("opusdec").args(["--quiet", "--rate", "48000"]).arg(&input).arg(&output).status();
    assert!(ok.is_ok_and(|s| s.success()), "opusdec could not decode what Icecast served ({} bytes)", ogg.len());
    let mut wav = hound::WavReader::open(&output).unwrap();
    let samples: Vec<f32> = wav.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect();
    let tail = &samples[samples.len() / 3..];
    let rms = (tail.iter().map(|s| s * s).sum::<f32>() / tail.len().max(1) as f32).sqrt();
    (rms, samples.len() as f32 / 2.0 / 48_000.0)
}

#[test]
fn the_stream_is_pushed_to_a_real_icecast_and_pushed_again_after_it_restarts() {
    let state = StateDir::new("tutti-stream-icecast");
    let ice_port = free_tcp_port();
    let icecast = Icecast::start(state.path(), ice_port);
    let (udp, http) = (free_udp_port(), free_tcp_port());
    let to = format!("icecast://source:{SOURCE_PASSWORD}@127.0.0.1:{ice_port}/jam.opus");
    let (udp_arg, http_arg) = (udp.to_string(), format!("127.0.0.1:{http}"));
    let mut server = Tutti::start(&[
        "server",
        "--port",
        &udp_arg,
        "--serverbindip",
        "127.0.0.1",
        "--stream",
        &http_arg,
        "--stream-to",
        &to,
        "--serverinfo",
        "Icecast Jam;;",
    ]);
    assert!(server.wait_for_log("listen-in stream at", Duration::from_secs(10)), "{}", server.log());
    let tone = tone_client(SocketAddr::from(([127, 0, 0, 1], udp)), "Tone", 440.0);
    std::thread::sleep(Duration::from_secs(4)); // connected, notice acknowledged, faded in

    let mount = format!("http://127.0.0.1:{ice_port}/jam.opus");
    let (rms, seconds) = decode(state.path(), &fetch(&mount, 3.0));
    assert!(seconds > 2.0 && rms > 0.1, "Icecast serves the jam: {seconds} s, rms {rms}\n{}", server.log());
    assert!(!server.log().contains(SOURCE_PASSWORD), "the source password is not logged");

    // Icecast goes away and comes back on the same port: tutti pushes again (back-off 1, 2, 4 … s).
    icecast.stop();
    std::thread::sleep(Duration::from_secs(2));
    let icecast = Icecast::start(state.path(), ice_port);
    let back = wait_until(Duration::from_secs(20), || fetch(&mount, 1.0).starts_with(b"OggS"));
    assert!(back, "tutti reconnected to the restarted Icecast:\n{}", server.log());
    let (rms, seconds) = decode(state.path(), &fetch(&mount, 3.0));
    assert!(seconds > 2.0 && rms > 0.1, "after the restart: {seconds} s, rms {rms}");

    tone.stop().unwrap();
    assert_eq!(server.stop(), Some(0));
    icecast.stop();
}
