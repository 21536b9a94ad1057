//! `tutti turn`: the TURN relay's command line (coturn's flag names) and `[turn]` TOML table, merged into
//! one [`Settings`] (flags win over the file, the file over the defaults), then served until SIGINT/SIGTERM.
//! Prints the addresses it listens on to stdout; never a client's or peer's address anywhere.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tutti_turn::{Config, IpRange, PeerPolicy, Refusal, Server, ShellConfig, Stats, TurnRelay};

/// Command-line flags of `tutti turn`, named as coturn's. Every value flag can also be set in the `[turn]`
/// table of the `--config` file, under its long name with `_` for `-`.
#[derive(Debug, Default, clap::Args)]
#[command(after_help = "Credentials are coturn's TURN REST scheme (use-auth-secret): username EXPIRY[:ID] in Unix \
seconds, password base64(HMAC-SHA1(secret, username)). Peers on loopback, private, link-local, multicast and the \
server's own addresses are refused unless allowed. See docs/turn.md.")]
pub struct Args {
    /// TOML configuration file with a [turn] table; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP and TCP port to listen on [default: 3478].
    #[arg(long, value_name = "PORT")]
    pub listening_port: Option<u16>,
    /// Address to listen on (repeatable) [default: all IPv4 addresses].
    #[arg(long, value_name = "IP")]
    pub listening_ip: Vec<IpAddr>,
    /// Address relays are opened on, one per family [default: the listening address, or the address of the
    /// default route's interface].
    #[arg(long, value_name = "IP")]
    pub relay_ip: Vec<IpAddr>,
    /// Lowest relay port [default: 49152].
    #[arg(long, value_name = "PORT")]
    pub min_port: Option<u16>,
    /// Highest relay port [default: 65535].
    #[arg(long, value_name = "PORT")]
    pub max_port: Option<u16>,
    /// Realm of the long-term credentials [default: tutti].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// Shared secret of the REST credentials (visible in the process list: prefer --static-auth-secret-file).
    #[arg(long, value_name = "SECRET")]
    pub static_auth_secret: Option<String>,
    /// File whose first line is the shared secret.
    #[arg(long, value_name = "FILE")]
    pub static_auth_secret_file: Option<PathBuf>,
    /// Allocations per user at once; 0 for no limit [default: 0].
    #[arg(long, value_name = "N")]
    pub user_quota: Option<u32>,
    /// Allocations at once; 0 for no limit [default: 0].
    #[arg(long, value_name = "N")]
    pub total_quota: Option<u32>,
    /// Bytes per second per allocation and direction; 0 for no limit [default: 0].
    #[arg(long, value_name = "BYTES")]
    pub max_bps: Option<u64>,
    /// Peer addresses always allowed, IP or IP1-IP2 (repeatable); wins over every refusal.
    #[arg(long, value_name = "RANGE")]
    pub allowed_peer_ip: Vec<IpRange>,
    /// Peer addresses refused besides the default ones, IP or IP1-IP2 (repeatable).
    #[arg(long, value_name = "RANGE")]
    pub denied_peer_ip: Vec<IpRange>,
    /// Allow relaying to loopback peers (tests and local setups only).
    #[arg(long)]
    pub allow_loopback_peers: bool,
    /// Serve counts (no addresses) in the Prometheus format on this address: GET /metrics [default: off].
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Do not listen on TCP.
    #[arg(long)]
    pub no_tcp: bool,
    /// Accepted for coturn compatibility (REST credentials are always on).
    #[arg(long, hide = true)]
    pub use_auth_secret: bool,
}

/// The `[turn]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTurn {
    listening_port: Option<u16>,
    listening_ip: Option<Vec<IpAddr>>,
    relay_ip: Option<Vec<IpAddr>>,
    min_port: Option<u16>,
    max_port: Option<u16>,
    realm: Option<String>,
    static_auth_secret: Option<String>,
    static_auth_secret_file: Option<PathBuf>,
    user_quota: Option<u32>,
    total_quota: Option<u32>,
    max_bps: Option<u64>,
    allowed_peer_ip: Option<Vec<String>>,
    denied_peer_ip: Option<Vec<String>>,
    allow_loopback_peers: Option<bool>,
    metrics: Option<SocketAddr>,
    no_tcp: Option<bool>,
    /// Whether `tutti all` runs the relay (`tutti turn` itself ignores it).
    #[serde(rename = "enabled")]
    _enabled: Option<bool>,
}

/// Everything `tutti turn` runs with.
#[derive(Debug)]
pub struct Settings {
    pub shell: ShellConfig,
    pub server: Config,
    pub metrics: Option<SocketAddr>,
}

impl Args {
    /// Merges the flags over the configuration file over the defaults, and checks every value.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        self.settings_with_secret(None)
    }

    /// The same, with `secret` as the shared secret when neither flags nor file give one (`tutti all`
    /// generates one in memory).
    pub fn settings_with_secret(&self, secret: Option<String>) -> anyhow::Result<Settings> {
        let fallback = secret;
        let file = match &self.config {
            Some(path) => crate::config_file::table(path, "turn")?,
            None => FileTurn::default(),
        };
        let port = self.listening_port.or(file.listening_port).unwrap_or(3478);
        let ips = if self.listening_ip.is_empty() {
            file.listening_ip.unwrap_or_default()
        } else {
            self.listening_ip.clone()
        };
        let ips = if ips.is_empty() { vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)] } else { ips };
        let mut relay_ips =
            if self.relay_ip.is_empty() { file.relay_ip.unwrap_or_default() } else { self.relay_ip.clone() };
        if relay_ips.is_empty() {
            relay_ips = match ips.iter().find(|ip| !ip.is_unspecified()) {
                Some(ip) => vec![*ip],
                None => vec![default_route_ip()?],
            };
        }
        if relay_ips.iter().any(IpAddr::is_unspecified) {
            bail!("--relay-ip: give the address peers reach (not 0.0.0.0 or ::)");
        }
        if relay_ips.iter().filter(|ip| ip.is_ipv4()).count() > 1
            || relay_ips.iter().filter(|ip| ip.is_ipv6()).count() > 1
        {
            bail!("--relay-ip: give at most one address per family");
        }
        let secret = match (&self.static_auth_secret, &self.static_auth_secret_file) {
            (Some(secret), _) => Some(secret.clone()),
            (None, Some(path)) => Some(read_secret(path)?),
            (None, None) => match (file.static_auth_secret, file.static_auth_secret_file) {
                (Some(secret), _) => Some(secret),
                (None, Some(path)) => Some(read_secret(&path)?),
                (None, None) => fallback,
            },
        };
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            bail!("no shared secret: pass --static-auth-secret-file FILE (or --static-auth-secret)");
        };
        let realm = self.realm.clone().or(file.realm).unwrap_or_else(|| "tutti".into());
        let mut server = Config::new(&realm, &secret, relay_ips[0]);
        server.relay_ips = relay_ips.clone();
        server.min_port = self.min_port.or(file.min_port).unwrap_or(49152);
        server.max_port = self.max_port.or(file.max_port).unwrap_or(65535);
        if server.min_port == 0 || server.min_port > server.max_port {
            bail!("--min-port {} --max-port {}: give 1 <= min <= max", server.min_port, server.max_port);
        }
        server.user_quota = self.user_quota.or(file.user_quota).unwrap_or(0);
        server.total_quota = self.total_quota.or(file.total_quota).unwrap_or(0);
        server.max_bps = self.max_bps.or(file.max_bps).unwrap_or(0);
        let ranges = |flag: &[IpRange], file: Option<Vec<String>>| -> anyhow::Result<Vec<IpRange>> {
            if !flag.is_empty() {
                return Ok(flag.to_vec());
            }
            file.unwrap_or_default().iter().map(|r| r.parse().map_err(anyhow::Error::msg)).collect()
        };
        let mut own: Vec<IpAddr> = ips.iter().copied().filter(|ip| !ip.is_unspecified()).collect();
        own.extend(relay_ips);
        server.policy = PeerPolicy {
            allow_loopback: self.allow_loopback_peers || file.allow_loopback_peers.unwrap_or(false),
            allowed: ranges(&self.allowed_peer_ip, file.allowed_peer_ip)?,
            denied: ranges(&self.denied_peer_ip, file.denied_peer_ip)?,
            own,
        };
        server.nonce_key = tutti_turn::random_nonce_key()?;
        let shell = ShellConfig {
            listen: ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
            tcp: !(self.no_tcp || file.no_tcp.unwrap_or(false)),
        };
        Ok(Settings { shell, server, metrics: self.metrics.or(file.metrics) })
    }
}

/// The address of the interface the default route leaves from (a UDP connect sends nothing).
pub(crate) fn default_route_ip() -> anyhow::Result<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").context("cannot open a UDP socket")?;
    socket
        .connect("192.0.2.1:9")
        .and_then(|()| socket.local_addr())
        .map(|a| a.ip())
        .context("no default route to find the relay address from: pass --relay-ip or --listening-ip")
}

pub(crate) fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the secret file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

/// Binds the relay (and its metrics endpoint) and says on stdout where it listens and relays.
pub fn start(settings: &Settings) -> anyhow::Result<TurnRelay> {
    let server = Server::new(settings.server.clone(), std::time::Instant::now(), tutti_turn::unix_now());
    let relay = TurnRelay::bind(&settings.shell, server)?;
    let transports = if settings.shell.tcp { "UDP and TCP" } else { "UDP" };
    for addr in relay.local_addrs() {
        println!("tutti turn: listening on {addr} ({transports})");
    }
    let ips: Vec<String> = settings.server.relay_ips.iter().map(IpAddr::to_string).collect();
    println!(
        "tutti turn: relays on {} ports {}-{}",
        ips.join(", "),
        settings.server.min_port,
        settings.server.max_port
    );
    if let Some(bind) = settings.metrics {
        let local = serve_metrics(bind, relay.stats()).with_context(|| format!("cannot serve metrics on {bind}"))?;
        println!("tutti turn: metrics on http://{local}/metrics");
    }
    Ok(relay)
}

/// A fresh random shared secret (32 bytes, hex), kept in memory only.
pub fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the TURN secret: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs the relay until SIGINT or SIGTERM.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let relay = start(&args.settings()?)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle signals")?;
    }
    relay.run(&stop)?;
    Ok(())
}

/// A TURN relay to run inside another subcommand's process (`tutti lobby --turn-embedded`, `tutti all`):
/// listening and relaying on one address, every other setting `tutti turn`'s default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedTurn {
    pub ip: IpAddr,
    /// UDP and TCP port (0 picks a free one).
    pub port: u16,
    pub allow_loopback_peers: bool,
}

impl EmbeddedTurn {
    /// `turn:IP:PORT` and `turn:IP:PORT?transport=tcp`.
    pub fn urls(&self, port: u16) -> Vec<String> {
        let host = match self.ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        vec![format!("turn:{host}:{port}"), format!("turn:{host}:{port}?transport=tcp")]
    }

    /// Starts the relay on its own thread with a random secret that exists only in this process.
    pub fn start(&self) -> anyhow::Result<EmbeddedRelay> {
        let secret = random_secret()?;
        let args = Args {
            listening_ip: vec![self.ip],
            listening_port: Some(self.port),
            static_auth_secret: Some(secret.clone()),
            allow_loopback_peers: self.allow_loopback_peers,
            ..Args::default()
        };
        let settings = args.settings()?;
        let server = Server::new(settings.server, std::time::Instant::now(), tutti_turn::unix_now());
        let relay = TurnRelay::bind(&settings.shell, server)?;
        let addrs = relay.local_addrs();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("turn".into())
            .spawn(move || relay.run(&flag))
            .context("cannot start the TURN relay's thread")?;
        Ok(EmbeddedRelay { turn: *self, addrs, secret, stop, thread })
    }
}

/// A TURN relay running on a thread of this process; [`EmbeddedRelay::stop`] ends it.
pub struct EmbeddedRelay {
    turn: EmbeddedTurn,
    addrs: Vec<SocketAddr>,
    secret: String,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<(), tutti_turn::TurnError>>,
}

impl EmbeddedRelay {
    /// The addresses it listens on (UDP and TCP).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Where pages reach it: `turn:IP:PORT` over UDP and TCP, with the port actually bound.
    pub fn urls(&self) -> Vec<String> {
        self.turn.urls(self.addrs.first().map_or(self.turn.port, SocketAddr::port))
    }

    /// The generated shared secret (give it to the lobby's [`tutti_lobby::TurnAccess`], nowhere else).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Stops the relay and waits for its thread (at most 250 ms).
    pub fn stop(self) -> anyhow::Result<()> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        match self.thread.join() {
            Ok(result) => Ok(result?),
            Err(_) => bail!("the TURN relay's thread panicked"),
        }
    }
}

impl std::fmt::Debug for EmbeddedRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRelay").field("addrs", &self.addrs).field("secret", &"<hidden>").finish()
    }
}

fn serve_metrics(bind: SocketAddr, stats: Arc<Mutex<Stats>>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(bind)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("turn-metrics".into()).spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
            let mut head = [0u8; 1024];
            let n = stream.read(&mut head).unwrap_or(0);
            let request = String::from_utf8_lossy(head.get(..n).unwrap_or(&[]));
            let body = match stats.lock() {
                Ok(s) if request.starts_with("GET /metrics") => render(&s),
                _ => String::new(),
            };
            let status = if body.is_empty() { "404 Not Found" } else { "200 OK" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    })?;
    Ok(local)
}

/// The Prometheus text of the counters: counts only.
fn render(s: &Stats) -> String {
    let mut out = String::new();
    let mut one = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    one("tutti_turn_allocations", "gauge", "Allocations now.", s.allocations);
    one("tutti_turn_allocations_total", "counter", "Allocations made.", s.allocations_total);
    one("tutti_turn_requests_total", "counter", "STUN requests received.", s.requests);
    one("tutti_turn_packets_to_peers_total", "counter", "Packets relayed to peers.", s.packets_to_peers);
    one("tutti_turn_packets_to_clients_total", "counter", "Packets relayed to clients.", s.packets_to_clients);
    one("tutti_turn_bytes_to_peers_total", "counter", "Payload bytes relayed to peers.", s.bytes_to_peers);
    one("tutti_turn_bytes_to_clients_total", "counter", "Payload bytes relayed to clients.", s.bytes_to_clients);
    let _ = writeln!(out, "# HELP tutti_turn_refused_total Requests refused and packets dropped, by reason.");
    let _ = writeln!(out, "# TYPE tutti_turn_refused_total counter");
    for reason in Refusal::ALL {
        let _ = writeln!(out, "tutti_turn_refused_total{{reason=\"{}\"}} {}", reason.as_str(), s.refused(reason));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    fn settings(argv: &[&str]) -> anyhow::Result<Settings> {
        crate::config_file::parse_args::<Args>("turn", argv)?.settings()
    }

    #[test]
    fn defaults_are_coturns_and_refuse_internal_peers() {
        let s = settings(&["--static-auth-secret", "s", "--listening-ip", "127.0.0.1"]).unwrap();
        assert_eq!(s.shell.listen, vec![SocketAddr::from(([127, 0, 0, 1], 3478))]);
        assert!(s.shell.tcp);
        assert_eq!(s.server.relay_ips, vec![IpAddr::from([127, 0, 0, 1])]);
        assert_eq!((s.server.min_port, s.server.max_port), (49152, 65535));
        assert_eq!(s.server.realm, "tutti");
        assert!(!s.server.policy.permits("127.0.0.1".parse().unwrap()));
        assert!(!s.server.policy.permits("10.0.0.1".parse().unwrap()));
        assert!(s.metrics.is_none());
        assert!(settings(&["--listening-ip", "127.0.0.1"]).unwrap_err().to_string().contains("no shared secret"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("tutti-turn-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tutti.toml");
        std::fs::write(dir.join("secret"), "from-file\n").unwrap();
        let secret_file = dir.join("secret");
        std::fs::write(
            &file,
            format!(
                "[turn]\nlistening_port = 3479\nlistening_ip = [\"127.0.0.1\"]\nrealm = \"r\"\nstatic_auth_secret_file = \
                 {secret_file:?}\nuser_quota = 2\nmax_bps = 1000\nallowed_peer_ip = [\"10.0.0.1-10.0.0.9\"]\n"
            ),
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let s = settings(&["--config", path]).unwrap();
        assert_eq!(s.shell.listen[0].port(), 3479);
        assert_eq!(s.server.secrets, vec!["from-file".to_string()]);
        assert_eq!((s.server.realm.as_str(), s.server.user_quota, s.server.max_bps), ("r", 2, 1000));
        assert!(s.server.policy.permits("10.0.0.5".parse().unwrap()));
        let s = settings(&["--config", path, "--realm", "x", "--user-quota", "0", "--allow-loopback-peers"]).unwrap();
        assert_eq!((s.server.realm.as_str(), s.server.user_quota), ("x", 0));
        assert!(s.server.policy.permits("127.0.0.1".parse().unwrap()));
        std::fs::write(&file, "[turn]\nport = 1\n").unwrap();
        assert!(settings(&["--config", path]).is_err(), "unknown keys are refused");
        assert!(settings(&["--static-auth-secret", "s", "--min-port", "9", "--max-port", "8"]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
