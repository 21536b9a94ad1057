//! A real headless Jamulus 3.9.1 client on its own `jackd -d dummy`, driven over JSON-RPC.

use super::gate;
use super::jsonrpc::{JsonRpc, CONNECT_TIMEOUT};
use super::process::{base64, tail_file, udp_ports_of, unique, write_secret, Proc, StateDir};
use super::{free_tcp_port, free_udp_port, wait_until, JACKD, JACK_CONNECT, JACK_METRO, JACK_WAIT, JAMULUS};
use std::fs;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for jackd to come up, for Jamulus to answer its first JSON-RPC call, and for the
/// metronome's ports to be connectable.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// How often starting Jamulus, or jack_metro, is tried when the process exits during startup.
const START_ATTEMPTS: u32 = 3;

/// How a [`JamulusClient`] is set up. `ClientOptions::new(server)` gives the defaults.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The server to connect to (`--connect`).
    pub server: SocketAddr,
    /// Musician profile (written to the ini file).
    pub name: String,
    pub city: String,
    /// Qt 5 country number (82 = Germany).
    pub country: u16,
    pub instrument: u32,
    /// 0 none, 1 beginner, 2 intermediate, 3 expert.
    pub skill: u8,
    pub stereo: bool,
    /// 0 low, 1 normal, 2 high.
    pub quality: u8,
    /// "Small network buffers" (OPUS64 frames when the JACK period is 64).
    pub small_buffers: bool,
    /// JACK dummy driver period in samples at 48 kHz (64, 128 or 256).
    pub jack_period: u32,
    /// Feed a `jack_metro` click (880 Hz) at this tempo into both client inputs.
    pub metro_bpm: Option<u32>,
}

impl ClientOptions {
    /// "RealClient" from "Loopback", country 82, intermediate, mono, normal quality, small buffers,
    /// JACK period 64, no metronome.
    pub fn new(server: SocketAddr) -> ClientOptions {
        ClientOptions {
            server,
            name: "RealClient".into(),
            city: "Loopback".into(),
            country: 82,
            instrument: 0,
            skill: 2,
            stereo: false,
            quality: 1,
            small_buffers: true,
            jack_period: 64,
            metro_bpm: None,
        }
    }
}

/// A running real Jamulus client (plus its jackd and optional jack_metro). Stopped on drop: the
/// client first (it sends CLM_DISCONNECTION on SIGTERM), then jack_metro, then jackd.
pub struct JamulusClient {
    options: ClientOptions,
    /// Jamulus' `--clientname`; its JACK ports are "Jamulus NAME:input left" etc.
    client_name: String,
    jack_name: String,
    base_port: u16,
    udp_port: OnceLock<u16>,
    rpc: Option<JsonRpc>,
    jamulus: Option<Proc>,
    metro: Option<Proc>,
    jackd: Option<Proc>,
    // Declared last: dropped after the processes that write into it.
    state: StateDir,
}

impl JamulusClient {
    /// Starts jackd, the client and (if asked) the metronome, and returns once the client's JSON-RPC
    /// is authenticated. Panics with the processes' log tails on failure.
    ///
    /// A 3.9.1 client connects from inside its constructor, before its event loop runs, and
    /// JSON-RPC notifications reach only connections that have authenticated by then. So Jamulus
    /// runs with a small LD_PRELOAD gate ([`gate`]) that holds its incoming UDP until we have
    /// authenticated: `jamulusclient/connected`, the first `clientListReceived` and the welcome
    /// `chatTextReceived` are always in [`JsonRpc::notifications`].
    pub fn start(options: ClientOptions) -> JamulusClient {
        let n = unique();
        let pid = std::process::id();
        let mut client = JamulusClient {
            client_name: format!("tj{pid}c{n}"),
            jack_name: format!("tutti{pid}j{n}"),
            base_port: free_udp_port(),
            udp_port: OnceLock::new(),
            rpc: None,
            jamulus: None,
            metro: None,
            jackd: None,
            state: StateDir::new("tutti-jamulus-client"),
            options,
        };
        if let Err(e) = client.launch() {
            let logs = client.log_tail();
            client.shutdown();
            panic!("starting a real Jamulus client failed: {e}\n{logs}");
        }
        client
    }

    fn launch(&mut self) -> Result<(), String> {
        if ![64, 128, 256].contains(&self.options.jack_period) {
            return Err(format!("jack_period {} (Jamulus supports 64, 128, 256)", self.options.jack_period));
        }
        let ini = self.state.file("client.ini");
        fs::write(&ini, client_ini(&self.options)).map_err(|e| format!("write {}: {e}", ini.display()))?;
        self.start_jackd()?;
        // On a heavily loaded machine jackd sometimes refuses a client ("Cannot open ... client"),
        // and Jamulus or jack_metro exit. For Jamulus that happens while it opens JACK, before it
        // sends anything, so retrying has no visible effect on the server.
        let mut attempt = 1;
        while !self.start_jamulus()? {
            if attempt == START_ATTEMPTS {
                return Err(format!("the Jamulus client exited during startup {START_ATTEMPTS} times"));
            }
            attempt += 1;
            eprintln!("harness: the Jamulus client exited during startup, starting it again");
            thread::sleep(Duration::from_millis(200));
        }
        if let Some(bpm) = self.options.metro_bpm {
            let mut attempt = 1;
            while !self.start_metro(bpm)? {
                if attempt == START_ATTEMPTS {
                    return Err(format!("jack_metro exited during startup {START_ATTEMPTS} times"));
                }
                attempt += 1;
                eprintln!("harness: jack_metro exited during startup, starting it again");
                thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    /// jackd with the dummy driver (its cycle time must match the period), until it is running.
    fn start_jackd(&mut self) -> Result<(), String> {
        let period = self.options.jack_period;
        let wait_us = u64::from(period) * 1_000_000 / 48_000;
        let jack_args = [
            "-n",
            &self.jack_name,
            "-r",
            "-d",
            "dummy",
            "-r",
            "48000",
            "-p",
            &period.to_string(),
            "-w",
            &wait_us.to_string(),
            "-C",
            "2",
            "-P",
            "2",
        ]
        .map(String::from);
        let jack_env = [("JACK_NO_AUDIO_RESERVATION", "1")];
        let log = self.state.file("jackd.log");
        let jackd = self.jackd.insert(Proc::spawn("jackd", JACKD, &jack_args, &jack_env, &log));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if !jackd.is_running() {
                return Err(format!("jackd exited ({:?})", jackd.exit_status()));
            }
            let out = jack_tool(&self.jack_name, JACK_WAIT, &["-c", "-s", &self.jack_name])?;
            if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "running") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("jackd {} not running after {STARTUP_TIMEOUT:?}", self.jack_name));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Jamulus, its incoming UDP held by the gate (see `start`) until we have authenticated.
    /// `Ok(false)`: it exited before answering (worth another try).
    fn start_jamulus(&mut self) -> Result<bool, String> {
        let gate_library = gate::library();
        let gate_file = self.state.file("gate");
        fs::write(&gate_file, b"").map_err(|e| format!("write {}: {e}", gate_file.display()))?;
        let secret_file = self.state.file("secret.txt");
        let _ = fs::remove_file(&secret_file);
        let secret = write_secret(&secret_file);
        let rpc_port = free_tcp_port();
        let args = [
            "--nogui",
            "--inifile",
            &self.state.file("client.ini").to_string_lossy(),
            "--port",
            &self.base_port.to_string(),
            "--connect",
            &self.options.server.to_string(),
            "--clientname",
            &self.client_name,
            "--jsonrpcport",
            &rpc_port.to_string(),
            "--jsonrpcsecretfile",
            &secret_file.to_string_lossy(),
        ]
        .map(String::from);
        let env = [
            ("JACK_DEFAULT_SERVER", self.jack_name.as_str()),
            ("JACK_NO_AUDIO_RESERVATION", "1"),
            ("JACK_NO_START_SERVER", "1"),
            ("LD_PRELOAD", &gate_library.to_string_lossy()),
            ("TUTTI_JAMULUS_GATE", &gate_file.to_string_lossy()),
        ];
        let log = self.state.file("client.log");
        let jamulus = self.jamulus.insert(Proc::spawn("Jamulus client", JAMULUS, &args, &env, &log));
        let opened = JsonRpc::open(rpc_port, Instant::now() + CONNECT_TIMEOUT, &mut || {
            if jamulus.is_running() {
                Ok(())
            } else {
                Err(format!("Jamulus client exited ({:?})", jamulus.exit_status()))
            }
        });
        let rpc = match opened {
            Ok(rpc) => self.rpc.insert(rpc),
            Err(_) if !jamulus.is_running() => return Ok(false),
            Err(e) => return Err(e),
        };
        // Answered once Jamulus' event loop runs, i.e. after its JACK setup.
        let id = rpc.send("jamulus/apiAuth", serde_json::json!({ "secret": secret }));
        let reply = rpc.wait_response_or_close(id, STARTUP_TIMEOUT);
        let Some(reply) = reply else {
            if self.jamulus.as_mut().is_some_and(Proc::is_running) {
                return Err(format!("no answer to jamulus/apiAuth within {STARTUP_TIMEOUT:?}"));
            }
            self.rpc = None;
            return Ok(false);
        };
        if reply["result"] != "ok" {
            return Err(format!("JSON-RPC authentication failed: {reply}"));
        }
        fs::remove_file(&gate_file).map_err(|e| format!("remove {}: {e}", gate_file.display()))?;
        Ok(true)
    }

    /// `jack_metro` on this client's jackd, its output connected to both Jamulus inputs.
    /// `Ok(false)`: jack_metro exited (worth another try).
    fn start_metro(&mut self, bpm: u32) -> Result<bool, String> {
        let metro_name = format!("metro{}", unique());
        let args = ["-n", &metro_name, "-b", &bpm.to_string(), "-f", "880", "-A", "0.5", "-D", "50"].map(String::from);
        let env = [("JACK_DEFAULT_SERVER", self.jack_name.as_str()), ("JACK_NO_START_SERVER", "1")];
        let log = self.state.file("metro.log");
        let metro = self.metro.insert(Proc::spawn_with_death_signal(
            "jack_metro",
            JACK_METRO,
            &args,
            &env,
            &log,
            libc::SIGKILL,
        ));
        let source = format!("{metro_name}:{bpm}_bpm");
        for side in ["left", "right"] {
            let target = format!("Jamulus {}:input {side}", self.client_name);
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                let out = jack_tool(&self.jack_name, JACK_CONNECT, &[&source, &target])?;
                if out.status.success() {
                    break;
                }
                if !metro.is_running() {
                    return Ok(false);
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "jack_connect {source:?} {target:?} kept failing: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(true)
    }

    /// The client's JSON-RPC connection (authenticated; notifications are being collected).
    pub fn rpc(&self) -> &JsonRpc {
        self.rpc.as_ref().expect("the client's JSON-RPC is connected")
    }

    /// PID of the Jamulus process.
    pub fn pid(&self) -> u32 {
        self.jamulus.as_ref().map_or(0, Proc::pid)
    }

    /// PIDs of everything this client started: Jamulus, jack_metro (if any), jackd.
    pub fn pids(&self) -> Vec<u32> {
        [&self.jamulus, &self.metro, &self.jackd].into_iter().flatten().map(Proc::pid).collect()
    }

    /// The options it was started with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Jamulus' `--clientname` (JACK client "Jamulus NAME").
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    /// The JACK server name (for `JACK_DEFAULT_SERVER`).
    pub fn jack_name(&self) -> &str {
        &self.jack_name
    }

    /// The UDP port the client actually bound. 3.9.1 binds `--port` + rand()%100 and probes upward
    /// when that is taken, so it is read from /proc (once, waiting up to 5 s).
    pub fn udp_port(&self) -> u16 {
        *self.udp_port.get_or_init(|| {
            let pid = self.pid();
            let in_range = |p: &u16| (self.base_port..self.base_port.saturating_add(200)).contains(p);
            let mut port = None;
            wait_until(Duration::from_secs(5), || {
                let ports = udp_ports_of(pid);
                port = ports.iter().copied().find(in_range).or(ports.first().copied());
                port.is_some()
            });
            port.unwrap_or_else(|| panic!("no UDP socket found for Jamulus PID {pid}\n{}", self.log_tail()))
        })
    }

    /// The client's local address as the server sees it (127.0.0.1:udp_port).
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.udp_port()))
    }

    /// The last lines of the client, jack_metro and jackd logs.
    pub fn log_tail(&self) -> String {
        let mut out = tail_file("Jamulus client", &self.state.file("client.log"), 40);
        if self.metro.is_some() {
            out += &tail_file("jack_metro", &self.state.file("metro.log"), 10);
        }
        out + &tail_file("jackd", &self.state.file("jackd.log"), 20)
    }

    /// Stops the client, then jack_metro, then jackd (each SIGTERM, up to 5 s, SIGKILL). Returns
    /// the Jamulus client's exit code (`None` if it was killed by a signal).
    pub fn stop(mut self) -> Option<i32> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Option<i32> {
        if std::thread::panicking() && self.jamulus.is_some() {
            eprintln!("harness: real Jamulus client logs at the time of the panic:\n{}", self.log_tail());
        }
        let code = self.jamulus.take().and_then(|mut jamulus| jamulus.stop()).and_then(|s| s.code());
        for proc in [&mut self.metro, &mut self.jackd] {
            if let Some(mut proc) = proc.take() {
                proc.stop();
            }
        }
        self.rpc = None;
        code
    }
}

impl Drop for JamulusClient {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The minimal client ini: profile and audio settings (Jamulus writes it back on exit).
fn client_ini(o: &ClientOptions) -> String {
    format!(
        "<client>\n <name_base64>{}</name_base64>\n <city_base64>{}</city_base64>\n <country>{}</country>\n \
         <instrument>{}</instrument>\n <skill>{}</skill>\n <audiochannels>{}</audiochannels>\n \
         <audioquality>{}</audioquality>\n <enableopussmall>{}</enableopussmall>\n <autojitbuf>1</autojitbuf>\n</client>\n",
        base64(o.name.as_bytes()),
        base64(o.city.as_bytes()),
        o.country,
        o.instrument,
        o.skill,
        if o.stereo { 2 } else { 0 },
        o.quality,
        u8::from(o.small_buffers),
    )
}

/// Runs a short-lived JACK tool against this client's jackd.
fn jack_tool(jack_name: &str, program: &str, args: &[&str]) -> Result<Output, String> {
    Command::new(program)
        .args(args)
        .env("JACK_DEFAULT_SERVER", jack_name)
        .env("JACK_NO_START_SERVER", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {program}: {e}"))
}
