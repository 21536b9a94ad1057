//! `tutti lobby`: the anonymous random video-chat lobby's command line and `[lobby]` TOML table, merged
//! into one [`LobbyConfig`] (flags win over the file, the file over the defaults), then served until
//! SIGINT/SIGTERM. Prints the address it listens on to stdout (port 0 picks a free one). With a TURN
//! relay (`--turn-url` + `--turn-secret-file`, or `--turn-embedded` in this process), every matched
//! user gets short-lived credentials for it; `--relay-only` hides every user's address from partners.
//! With a certificate (`--tls-cert`/`--tls-key`) it serves HTTPS and reloads the certificate on SIGHUP.

use crate::turn::{EmbeddedRelay, EmbeddedTurn};
use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tutti_lobby::{IceServer, Limits, LobbyConfig, LobbyServer, TlsFiles, TurnAccess};

/// Command-line flags of `tutti lobby`. Every value flag can also be set in the `[lobby]` table of the
/// `--config` file, under its long name with `_` for `-`.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// TOML configuration file with a [lobby] table; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address and port for the page and Socket.IO [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Share the waiting queue and relay with other lobby processes through this Redis (7 or newer).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// With --redis: seconds after which the other processes take this one for dead if it stops renewing
    /// its heartbeat (a crash), and drop its users from the shared queue [default: 5].
    #[arg(long, value_name = "SECONDS")]
    pub redis_ttl: Option<f64>,
    /// The name registry (`tutti registry`, http://HOST:PORT) that the page's name look-ups and
    /// registrations are forwarded to, under the lobby's own origin; without it the page hides names.
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
    /// STUN/TURN URL handed to the page (repeatable). None by default: no third party is contacted.
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_server: Vec<String>,
    /// Seconds a user with interests waits for a shared one before being matched at random [default: 5].
    #[arg(long, value_name = "SECONDS")]
    pub fallback_wait: Option<f64>,
    /// Seconds of searching after which the page says that nobody was found yet [default: 15].
    #[arg(long, value_name = "SECONDS")]
    pub no_partner_notice_after: Option<f64>,
    /// Longest chat message in characters [default: 2000].
    #[arg(long, value_name = "N")]
    pub max_text: Option<usize>,
    /// Largest signal (SDP/ICE) in bytes [default: 16384].
    #[arg(long, value_name = "BYTES")]
    pub max_signal: Option<usize>,
    /// Sustained events per second per socket [default: 20].
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Events per socket allowed in a burst [default: 60].
    #[arg(long, value_name = "N")]
    pub burst: Option<f64>,
    /// Refused events within 10 s after which a socket is disconnected [default: 30].
    #[arg(long, value_name = "N")]
    pub strikes: Option<u32>,
    /// New connections accepted per second at most; more wait in the kernel's queue (0: no limit)
    /// [default: 1000].
    #[arg(long, value_name = "N")]
    pub accept_rate: Option<f64>,
    /// New connections per second from one client address (an IPv6 /64) at most, after a burst of
    /// ten seconds' worth; more are held back, refused beyond 10 s (0: no limit) [default: 50].
    /// Behind a reverse proxy all come from the proxy: set 0 and pace there.
    #[arg(long, value_name = "N")]
    pub accept_rate_per_address: Option<f64>,
    /// TURN relay URL matched users get credentials for (repeatable: e.g. turn:HOST:3478 and
    /// turn:HOST:3478?transport=tcp). Needs --turn-secret-file, or names the --turn-embedded relay.
    #[arg(long, value_name = "URL")]
    pub turn_url: Vec<String>,
    /// File whose first line is the TURN relay's shared secret (its --static-auth-secret); never sent to a page.
    #[arg(long, value_name = "FILE")]
    pub turn_secret_file: Option<PathBuf>,
    /// Seconds the TURN credentials handed to a matched user stay valid [default: 600].
    #[arg(long, value_name = "SECONDS")]
    pub turn_ttl: Option<u64>,
    /// Start a TURN relay in this process, with a random secret kept in memory only, and hand out credentials
    /// for it.
    #[arg(long)]
    pub turn_embedded: bool,
    /// With --turn-embedded: the address it listens and relays on [default: the --listen address, or the
    /// address of the default route's interface when that is 0.0.0.0].
    #[arg(long, value_name = "IP")]
    pub turn_listening_ip: Option<IpAddr>,
    /// With --turn-embedded: its UDP and TCP port [default: 3478].
    #[arg(long, value_name = "PORT")]
    pub turn_listening_port: Option<u16>,
    /// With --turn-embedded: allow relaying to loopback peers (tests and single-machine setups only).
    #[arg(long)]
    pub turn_allow_loopback_peers: bool,
    /// Hide every user's IP address from partners: pages use relay candidates only and send no host or
    /// server-reflexive candidate. Needs a TURN relay.
    #[arg(long)]
    pub relay_only: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key. Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert. Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The `[lobby]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLobby {
    listen: Option<SocketAddr>,
    redis: Option<String>,
    redis_ttl: Option<f64>,
    registry: Option<String>,
    ice_servers: Option<Vec<IceServer>>,
    fallback_wait: Option<f64>,
    no_partner_notice_after: Option<f64>,
    max_text: Option<usize>,
    max_signal: Option<usize>,
    rate: Option<f64>,
    burst: Option<f64>,
    strikes: Option<u32>,
    accept_rate: Option<f64>,
    accept_rate_per_address: Option<f64>,
    turn_url: Option<Vec<String>>,
    turn_secret_file: Option<PathBuf>,
    turn_ttl: Option<u64>,
    turn_embedded: Option<bool>,
    turn_listening_ip: Option<IpAddr>,
    turn_listening_port: Option<u16>,
    turn_allow_loopback_peers: Option<bool>,
    relay_only: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    /// Whether `tutti all` runs the lobby (`tutti lobby` itself ignores it).
    #[serde(rename = "enabled")]
    _enabled: Option<bool>,
}

/// How the lobby reaches its TURN relay, before an embedded one is started.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnPlan {
    /// No relay: pages connect directly (or through the configured ICE servers).
    None,
    /// A relay run elsewhere (`tutti turn`, coturn) whose secret the lobby was given.
    External(TurnAccess),
    /// A relay to start in this process ([`start_embedded`] makes its secret and the [`TurnAccess`]);
    /// `urls` are where pages reach it (none given: its own address, over UDP and TCP).
    Embedded { turn: EmbeddedTurn, urls: Vec<String>, ttl: Duration },
}

/// Everything `tutti lobby` runs with: the lobby's configuration (its `turn` filled in once an embedded
/// relay is started) and the TURN relay plan.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lobby: LobbyConfig,
    pub turn: TurnPlan,
}

impl Args {
    /// Merges the flags over the configuration file over the defaults, and checks every value.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => crate::config_file::table(path, "lobby")?,
            None => FileLobby::default(),
        };
        let listen = self.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let turn = self.turn_plan(&file, listen)?;
        let mut config = LobbyConfig::new(listen);
        config.redis = self.redis.clone().or(file.redis);
        config.registry = self.registry.clone().or(file.registry);
        if let Some(url) = &config.registry {
            tutti_lobby::registry_proxy::RegistryTarget::parse(url)?;
        }
        config.ice_servers = if self.ice_server.is_empty() {
            file.ice_servers.unwrap_or_default()
        } else {
            vec![IceServer { urls: self.ice_server.clone(), username: None, credential: None }]
        };
        for server in &config.ice_servers {
            for url in &server.urls {
                if !(url.starts_with("stun:") || url.starts_with("turn:") || url.starts_with("turns:")) {
                    bail!("ICE server {url:?}: it must be a stun:, turn: or turns: URL");
                }
            }
        }
        let wait = self.fallback_wait.or(file.fallback_wait).unwrap_or(5.0);
        if !(0.0..=3600.0).contains(&wait) {
            bail!("--fallback-wait {wait}: give 0 to 3600 seconds");
        }
        config.fallback_wait = Duration::from_secs_f64(wait);
        if let Some(ttl) = self.redis_ttl.or(file.redis_ttl) {
            if !(1.0..=600.0).contains(&ttl) {
                bail!("--redis-ttl {ttl}: give 1 to 600 seconds (the heartbeat is renewed twice a second)");
            }
            config.redis_ttl = Duration::from_secs_f64(ttl);
        }
        if let Some(notice) = self.no_partner_notice_after.or(file.no_partner_notice_after) {
            if !(0.1..=3600.0).contains(&notice) {
                bail!("--no-partner-notice-after {notice}: give 0.1 to 3600 seconds");
            }
            config.no_partner_notice_after = Duration::from_secs_f64(notice);
        }
        let defaults = Limits::default();
        let limits = Limits {
            text_chars: self.max_text.or(file.max_text).unwrap_or(defaults.text_chars),
            signal_bytes: self.max_signal.or(file.max_signal).unwrap_or(defaults.signal_bytes),
            events_per_sec: self.rate.or(file.rate).unwrap_or(defaults.events_per_sec),
            burst: self.burst.or(file.burst).unwrap_or(defaults.burst),
            strikes: self.strikes.or(file.strikes).unwrap_or(defaults.strikes),
            ..defaults
        };
        if limits.events_per_sec <= 0.0 || limits.burst < 1.0 {
            bail!("--rate must be above 0 and --burst at least 1");
        }
        config.limits = limits;
        config.accept_rate = connection_rate(
            "--accept-rate",
            self.accept_rate.or(file.accept_rate).unwrap_or(tutti_lobby::DEFAULT_ACCEPT_RATE),
        )?;
        config.accept_rate_per_address = connection_rate(
            "--accept-rate-per-address",
            self.accept_rate_per_address
                .or(file.accept_rate_per_address)
                .unwrap_or(tutti_lobby::DEFAULT_ACCEPT_RATE_PER_ADDRESS),
        )?;
        config.tls = match (self.tls_cert.clone().or(file.tls_cert), self.tls_key.clone().or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("HTTPS needs both a certificate and its key: give tls_cert and tls_key together"),
        };
        if let TurnPlan::External(access) = &turn {
            config.turn = Some(access.clone());
        }
        config.relay_only = self.relay_only || file.relay_only.unwrap_or(false);
        if config.relay_only && turn == TurnPlan::None && !config.has_relay() {
            bail!(
                "--relay-only needs a TURN relay for the calls to go through: add --turn-embedded, or --turn-url with \
                 --turn-secret-file (or a turn: server in ice_servers)"
            );
        }
        Ok(Settings { lobby: config, turn })
    }

    /// The TURN relay: none, one run elsewhere (URLs and the secret's file), or one to start here.
    fn turn_plan(&self, file: &FileLobby, listen: SocketAddr) -> anyhow::Result<TurnPlan> {
        let urls =
            if self.turn_url.is_empty() { file.turn_url.clone().unwrap_or_default() } else { self.turn_url.clone() };
        let secret_file = self.turn_secret_file.clone().or(file.turn_secret_file.clone());
        let ttl =
            Duration::from_secs(self.turn_ttl.or(file.turn_ttl).unwrap_or(tutti_lobby::DEFAULT_TURN_TTL.as_secs()));
        let embedded = self.turn_embedded || file.turn_embedded.unwrap_or(false);
        let embedded_only = [
            (self.turn_listening_ip.or(file.turn_listening_ip).is_some(), "--turn-listening-ip"),
            (self.turn_listening_port.or(file.turn_listening_port).is_some(), "--turn-listening-port"),
            (
                self.turn_allow_loopback_peers || file.turn_allow_loopback_peers.unwrap_or(false),
                "--turn-allow-loopback-peers",
            ),
        ];
        if let Some((_, flag)) = embedded_only.iter().find(|(set, _)| *set && !embedded) {
            bail!("{flag} is for the relay of --turn-embedded: add --turn-embedded, or drop {flag}");
        }
        if embedded {
            if secret_file.is_some() {
                bail!("--turn-embedded makes its own secret: drop --turn-secret-file (or use --turn-url with a relay run elsewhere)");
            }
            let ip = match self.turn_listening_ip.or(file.turn_listening_ip) {
                Some(ip) => ip,
                None if !listen.ip().is_unspecified() => listen.ip(),
                None => crate::turn::default_route_ip()?,
            };
            let turn = EmbeddedTurn {
                ip,
                port: self.turn_listening_port.or(file.turn_listening_port).unwrap_or(3478),
                allow_loopback_peers: self.turn_allow_loopback_peers || file.turn_allow_loopback_peers.unwrap_or(false),
            };
            // the TTL and any URLs given are checked now, before anything is started
            TurnAccess::new(if urls.is_empty() { turn.urls(turn.port) } else { urls.clone() }, "check".into(), ttl)?;
            return Ok(TurnPlan::Embedded { turn, urls, ttl });
        }
        match (urls.is_empty(), secret_file) {
            (true, None) => {
                if self.turn_ttl.or(file.turn_ttl).is_some() {
                    bail!("--turn-ttl without a relay: add --turn-url and --turn-secret-file, or --turn-embedded");
                }
                Ok(TurnPlan::None)
            }
            (false, None) => {
                bail!("--turn-url needs --turn-secret-file FILE (the relay's shared secret), or --turn-embedded")
            }
            (true, Some(_)) => {
                bail!("--turn-secret-file needs --turn-url turn:HOST:PORT (where pages reach the relay)")
            }
            (false, Some(path)) => {
                let secret = crate::turn::read_secret(&path)?;
                if secret.is_empty() {
                    bail!("the TURN secret file {} is empty", path.display());
                }
                Ok(TurnPlan::External(TurnAccess::new(urls, secret, ttl)?))
            }
        }
    }
}

/// A rate of new connections given for `flag`: a number a second, 0 for no limit.
fn connection_rate(flag: &str, rate: f64) -> anyhow::Result<f64> {
    if !(rate >= 0.0 && rate.is_finite()) {
        bail!("{flag} {rate}: give a number of connections a second, or 0 for no limit");
    }
    Ok(rate)
}

/// Starts the relay of [`TurnPlan::Embedded`] (if that is the plan) and points the lobby at it: the
/// lobby's `turn` gets the relay's URLs and its freshly generated secret. `tutti all` does the same.
pub fn start_embedded(settings: &mut Settings) -> anyhow::Result<Option<EmbeddedRelay>> {
    let TurnPlan::Embedded { turn, urls, ttl } = &settings.turn else { return Ok(None) };
    let relay = turn.start()?;
    let urls = if urls.is_empty() { relay.urls() } else { urls.clone() };
    settings.lobby.turn = Some(TurnAccess::new(urls, relay.secret().to_string(), *ttl)?);
    Ok(Some(relay))
}

/// Binds the lobby and says on stdout where it listens and what differs from the defaults.
pub async fn bind(config: LobbyConfig) -> anyhow::Result<LobbyServer> {
    let server = LobbyServer::bind(config.clone()).await?;
    let scheme = if server.is_tls() { "https" } else { "http" };
    println!("tutti lobby: listening on {scheme}://{}/", server.local_addr());
    if let Some(tls) = &config.tls {
        println!("tutti lobby: certificate {} (kill -HUP {} reloads it)", tls.cert.display(), std::process::id());
    }
    if let Some(turn) = &config.turn {
        println!(
            "tutti lobby: matched users get TURN credentials for {} valid {} s",
            turn.urls().join(", "),
            turn.ttl().as_secs()
        );
    }
    if config.relay_only {
        println!("tutti lobby: relay only: pages use relay candidates only, partners never see a user's address");
    }
    if config.limits != Limits::default() {
        println!("tutti lobby: limits differ from the defaults: {:?}", config.limits);
    }
    if config.redis.is_some() {
        println!("tutti lobby: sharing the queue through Redis");
    }
    if let Some(registry) = &config.registry {
        println!("tutti lobby: forwarding /registry/ to {registry}");
    }
    Ok(server)
}

/// SIGHUP (`systemctl reload`) reloads the lobby's certificate; without one it must not end the process.
pub fn survive_hangups() -> anyhow::Result<()> {
    signal_hook::flag::register(signal_hook::consts::SIGHUP, std::sync::Arc::default())
        .context("cannot install the SIGHUP handler")?;
    Ok(())
}

/// Runs the lobby until SIGINT or SIGTERM.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut settings = args.settings()?;
    survive_hangups()?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let relay = start_embedded(&mut settings)?;
    let facts = crate::privacy::Facts {
        lobby: Some(crate::privacy::settings::lobby(&settings.lobby)),
        // the embedded relay runs on `tutti turn`'s defaults
        turn: relay.as_ref().map(|_| crate::privacy::TurnFacts { realm: "tutti".into(), metrics: None, max_bps: 0 }),
        ..Default::default()
    };
    settings.lobby.privacy = Some(crate::privacy::html(&facts));
    let config = settings.lobby.clone();
    let outcome = runtime.block_on(async {
        let server = bind(config).await?;
        if let Some(relay) = &relay {
            let addrs: Vec<String> = relay.local_addrs().iter().map(ToString::to_string).collect();
            println!("tutti lobby: TURN relay in this process on {} (UDP and TCP)", addrs.join(", "));
        }
        server.serve(shutdown_signal()).await?;
        anyhow::Ok(())
    });
    if let Some(relay) = relay {
        relay.stop()?;
    }
    outcome
}

pub(crate) async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn settings(argv: &[&str]) -> anyhow::Result<Settings> {
        crate::config_file::parse_args::<Args>("lobby", argv)?.settings()
    }

    #[test]
    fn turn_from_the_file_and_from_flags() {
        let dir = std::env::temp_dir().join(format!("tutti-lobby-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret\nignored\n").unwrap();
        let file = dir.join("tutti.toml");
        std::fs::write(
            &file,
            format!(
                "[lobby]\nturn_url = [\"turn:t.example:3478\", \"turn:t.example:3478?transport=tcp\"]\n\
                 turn_secret_file = {secret:?}\nturn_ttl = 90\nrelay_only = true\n"
            ),
        )
        .unwrap();
        let s = settings(&["--config", file.to_str().unwrap()]).unwrap();
        let TurnPlan::External(access) = &s.turn else { panic!("{:?}", s.turn) };
        assert_eq!(access.urls(), ["turn:t.example:3478", "turn:t.example:3478?transport=tcp"]);
        assert_eq!(access.ttl(), Duration::from_secs(90));
        assert_eq!(access.mint(0, "x").credential, Some(tutti_turn::credentials::rest_password("s3cret", "90:x")));
        assert!(s.lobby.relay_only && s.lobby.turn.is_some());
        // flags win; the default TTL is 600 s
        let s = settings(&["--config", file.to_str().unwrap(), "--turn-url", "turns:u.example:5349"]).unwrap();
        assert_eq!(s.lobby.turn.as_ref().unwrap().urls(), ["turns:u.example:5349"]);
        let secret = secret.to_str().unwrap();
        let s = settings(&["--turn-url", "turn:v:3478", "--turn-secret-file", secret]).unwrap();
        assert_eq!(s.lobby.turn.unwrap().ttl(), Duration::from_secs(600));
        assert!(!s.lobby.relay_only);
        std::fs::write(&file, "[lobby]\nturn_secret = \"inline\"\n").unwrap();
        assert!(settings(&["--config", file.to_str().unwrap()]).is_err(), "unknown keys are refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_embedded_relay_listens_where_the_lobby_does_unless_told() {
        let s = settings(&["--listen", "127.0.0.1:8080", "--turn-embedded", "--relay-only"]).unwrap();
        let TurnPlan::Embedded { turn, urls, ttl } = &s.turn else { panic!("{:?}", s.turn) };
        assert_eq!((turn.ip, turn.port, turn.allow_loopback_peers), ("127.0.0.1".parse().unwrap(), 3478, false));
        assert!(urls.is_empty() && *ttl == Duration::from_secs(600));
        assert_eq!(turn.urls(3478), ["turn:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=tcp"]);
        assert!(s.lobby.turn.is_none() && s.lobby.relay_only, "credentials come once it runs");
        let s = settings(&["--turn-embedded", "--turn-listening-ip", "::1", "--turn-listening-port", "3479"]).unwrap();
        let TurnPlan::Embedded { turn, .. } = &s.turn else { panic!() };
        assert_eq!(turn.urls(3479)[0], "turn:[::1]:3479");
    }

    #[test]
    fn an_embedded_relay_gives_the_lobby_credentials_for_it() {
        let mut s =
            settings(&["--listen", "127.0.0.1:0", "--turn-embedded", "--turn-listening-port", "0", "--turn-ttl", "60"])
                .unwrap();
        let relay = start_embedded(&mut s).unwrap().expect("a relay");
        let port = relay.local_addrs()[0].port();
        assert_ne!(port, 0);
        let access = s.lobby.turn.clone().expect("credentials for it");
        assert_eq!(access.urls(), [format!("turn:127.0.0.1:{port}"), format!("turn:127.0.0.1:{port}?transport=tcp")]);
        assert_eq!(relay.secret().len(), 64, "32 random bytes, hex");
        assert!(!format!("{relay:?}{access:?}").contains(relay.secret()));
        relay.stop().unwrap();
    }

    #[test]
    fn relay_only_needs_a_relay() {
        assert!(settings(&["--relay-only"]).unwrap_err().to_string().contains("needs a TURN relay"));
        let s = settings(&["--relay-only", "--ice-server", "turn:static.example:3478"]).unwrap();
        assert!(s.lobby.relay_only && s.lobby.has_relay());
        assert!(!settings(&[]).unwrap().lobby.has_relay());
    }
}
