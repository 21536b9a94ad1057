//! `tutti lobby`: the anonymous random video-chat lobby's command line and `[lobby]` TOML table, merged
//! into one [`LobbyConfig`] (flags win over the file, the file over the defaults), then served until
//! SIGINT/SIGTERM. Prints the address it listens on to stdout (port 0 picks a free one). With a certificate
//! (`--tls-cert`/`--tls-key`) it serves HTTPS and reloads the certificate on SIGHUP.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tutti_lobby::{IceServer, Limits, LobbyConfig, LobbyServer, TlsFiles};

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
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    /// Whether `tutti all` runs the lobby (`tutti lobby` itself ignores it).
    #[serde(rename = "enabled")]
    _enabled: Option<bool>,
}

impl Args {
    /// Merges the flags over the configuration file over the defaults, and checks every value.
    pub fn settings(&self) -> anyhow::Result<LobbyConfig> {
        let file = match &self.config {
            Some(path) => crate::config_file::table(path, "lobby")?,
            None => FileLobby::default(),
        };
        let listen = self.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
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
        config.tls = match (self.tls_cert.clone().or(file.tls_cert), self.tls_key.clone().or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("HTTPS needs both a certificate and its key: give tls_cert and tls_key together"),
        };
        Ok(config)
    }
}

/// Binds the lobby and says on stdout where it listens and what differs from the defaults.
pub async fn bind(config: LobbyConfig) -> anyhow::Result<LobbyServer> {
    let server = LobbyServer::bind(config.clone()).await?;
    let scheme = if server.is_tls() { "https" } else { "http" };
    println!("tutti lobby: listening on {scheme}://{}/", server.local_addr());
    if let Some(tls) = &config.tls {
        println!("tutti lobby: certificate {} (kill -HUP {} reloads it)", tls.cert.display(), std::process::id());
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
    let config = args.settings()?;
    survive_hangups()?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = bind(config).await?;
        server.serve(shutdown_signal()).await?;
        anyhow::Ok(())
    })
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
