//! `tutti all`: the whole product in one process — the jam server, the lobby with its page, the name
//! registry and the TURN relay (and, when asked, a directory), each on its own command's defaults and
//! `--config` table, each part started by the same function its own command uses. On the defaults
//! nothing is logged, recorded, written to disk or contacted: the registry keeps names in memory and
//! the relay's shared secret is generated for the run and never leaves the process.
//! The first SIGINT/SIGTERM (or a part that stops by itself) stops every part; a second one exits at once.

use crate::{directory, lobby, registry, server, turn};
use anyhow::Context;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use tutti_lobby::{IceServer, LobbyConfig, TurnAccess};
use tutti_net::DirectoryOptions;
use tutti_registry::{RegistryConfig, StoreConfig};

/// Command-line flags of `tutti all`. Everything else comes from the `--config` file's tables.
#[derive(Debug, Default, clap::Args)]
#[command(after_help = "The --config file holds the commands' own tables: [server] (or several [[server]]), \
[lobby], [registry], [turn] and [directory], with the keys each command documents (tutti server --help, …). \
In each (each [[server]] table too), `enabled = false` leaves that part out; the directory runs only with `enabled = true` in [directory]. \
Without [registry] data_dir or database_url, names are kept in memory only; without a [turn] secret, one is \
generated for this run and kept in memory. See docs/deploy.md.")]
pub struct Args {
    /// TOML configuration file with the [server], [lobby], [registry], [turn] and [directory] tables.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Leave the jam server out.
    #[arg(long)]
    pub no_server: bool,
    /// Leave the lobby (and its page) out.
    #[arg(long)]
    pub no_lobby: bool,
    /// Leave the name registry out.
    #[arg(long)]
    pub no_registry: bool,
    /// Leave the TURN relay out.
    #[arg(long)]
    pub no_turn: bool,
    /// Run a directory (server list) too, as `[directory] enabled = true` does.
    #[arg(long)]
    pub directory: bool,
}

/// Every part's settings, all checked before anything is started.
struct Plan {
    jam: Option<Vec<server::Settings>>,
    directory: Option<DirectoryOptions>,
    lobby: Option<LobbyConfig>,
    registry: Option<RegistryConfig>,
    turn: Option<turn::Settings>,
}

impl Args {
    fn enabled(&self, part: &str, off_by_flag: bool, default: bool) -> anyhow::Result<bool> {
        if off_by_flag {
            return Ok(false);
        }
        match &self.config {
            Some(path) => crate::config_file::enabled(path, part, default),
            None => Ok(default),
        }
    }

    /// What the privacy policy says of the parts this configuration runs (`tutti privacy-policy`, `/privacy`).
    pub fn privacy_facts(&self) -> anyhow::Result<crate::privacy::Facts> {
        use crate::privacy::settings;
        let mut plan = self.plan()?;
        // The relay beside the lobby is the operator's own: not a third party, though the page uses it for STUN.
        let configured_ice = plan.lobby.as_ref().map(|l| settings::lobby(l).ice_servers).unwrap_or_default();
        if let (Some(lobby), Some(relay)) = (plan.lobby.as_mut(), plan.turn.as_ref()) {
            share_relay(lobby, relay)?;
        }
        if let (Some(lobby), Some(registry)) = (plan.lobby.as_mut(), plan.registry.as_ref()) {
            lobby.registry.get_or_insert_with(|| format!("http://{}", reachable(registry.listen)));
        }
        let mut jam = plan.jam.as_ref().and_then(|servers| servers.first()).map(settings::jam);
        if let Some(directory) = &plan.directory {
            jam = Some(settings::directory(jam, directory));
        }
        Ok(crate::privacy::Facts {
            operator: None,
            jam,
            lobby: plan
                .lobby
                .as_ref()
                .map(|l| crate::privacy::LobbyFacts { ice_servers: configured_ice, ..settings::lobby(l) }),
            registry: plan.registry.as_ref().map(settings::registry),
            turn: plan.turn.as_ref().map(settings::turn),
        })
    }

    fn plan(&self) -> anyhow::Result<Plan> {
        let config = self.config.clone();
        let jam = if self.enabled("server", self.no_server, true)? {
            let args = server::Args { config: config.clone(), ..Default::default() };
            Some(args.enabled_settings()?).filter(|servers| !servers.is_empty())
        } else {
            None
        };
        let directory = if self.directory || self.enabled("directory", false, false)? {
            Some(directory::Args { config: config.clone(), ..Default::default() }.options()?)
        } else {
            None
        };
        let lobby = if self.enabled("lobby", self.no_lobby, true)? {
            let settings = lobby::Args { config: config.clone(), ..Default::default() }.settings()?;
            if matches!(settings.turn, lobby::TurnPlan::Embedded { .. }) {
                anyhow::bail!(
                    "[lobby] turn_embedded: under tutti all the [turn] part is the relay the lobby uses; drop \
                     turn_embedded (or run the lobby with `tutti lobby`)"
                );
            }
            Some(settings.lobby)
        } else {
            None
        };
        let registry = if self.enabled("registry", self.no_registry, true)? {
            let args = registry::Args { config: config.clone(), ..Default::default() };
            Some(args.settings_with_default_store(|| Ok(StoreConfig::Memory))?)
        } else {
            None
        };
        let turn = if self.enabled("turn", self.no_turn, true)? {
            let args = turn::Args { config, ..Default::default() };
            let settings = args
                .settings_with_secret(Some(turn::random_secret()?))
                .context("the TURN relay (the [turn] table; --no-turn leaves it out)")?;
            Some(settings)
        } else {
            None
        };
        Ok(Plan { jam, directory, lobby, registry, turn })
    }
}

/// What the lobby learns about the relay that runs beside it: the relay as the page's STUN server (it is this
/// operator's own, not a third party) unless the `[lobby]` table names ICE servers, and, unless the `[lobby]`
/// table names another relay, the relay's in-memory secret, so that every matched user gets short-lived TURN
/// credentials for it (the secret itself never reaches a page).
pub fn share_relay(lobby: &mut LobbyConfig, relay: &turn::Settings) -> anyhow::Result<()> {
    let Some(port) = relay.shell.listen.first().map(SocketAddr::port) else { return Ok(()) };
    let hosts: Vec<String> = relay
        .server
        .relay_ips
        .iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        })
        .collect();
    if lobby.ice_servers.is_empty() {
        let urls = hosts.iter().map(|host| format!("stun:{host}:{port}")).collect();
        lobby.ice_servers.push(IceServer { urls, username: None, credential: None });
    }
    if lobby.turn.is_none() {
        if let Some(secret) = relay.server.secrets.first() {
            let urls = hosts
                .iter()
                .flat_map(|h| [format!("turn:{h}:{port}"), format!("turn:{h}:{port}?transport=tcp")])
                .collect();
            lobby.turn = Some(TurnAccess::new(urls, secret.clone(), tutti_lobby::DEFAULT_TURN_TTL)?);
        }
    }
    Ok(())
}

/// An address to reach `addr` from this machine: loopback instead of "all addresses".
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// A part that ended: its name and how.
type Ended = (&'static str, anyhow::Result<()>);

/// Runs every enabled part until SIGINT/SIGTERM or until one of them stops.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut plan = args.plan()?;
    let policy = crate::privacy::html(&args.privacy_facts()?);
    if let Some(lobby) = plan.lobby.as_mut() {
        lobby.privacy = Some(policy.clone());
    }
    if let Some(registry) = plan.registry.as_mut() {
        registry.privacy = Some(policy);
    }
    let any = plan.jam.is_some()
        || plan.directory.is_some()
        || plan.lobby.is_some()
        || plan.registry.is_some()
        || plan.turn.is_some();
    if !any {
        anyhow::bail!("every part is switched off: nothing to run");
    }
    lobby::survive_hangups()?;
    let (ended, parts_ended) = mpsc::channel::<Ended>();
    let stopping = Arc::new(AtomicBool::new(false));
    server::stop_on_signals(&stopping)?;
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .context("cannot install the signal handler")?;
    let on_signal = ended.clone();
    std::thread::Builder::new().name("all-signals".into()).spawn(move || {
        if signals.forever().next().is_some() {
            let _ = on_signal.send(("signal", Ok(())));
        }
    })?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let (shutdown, shutdown_seen) = tokio::sync::watch::channel(false);
    let mut flags: Vec<Arc<AtomicBool>> = Vec::new();
    let mut running = 0usize;
    let mut lines = Vec::new();
    // Started in this order so that a later part can point at an earlier one (the lobby at the registry).
    let started = (|| -> anyhow::Result<()> {
        if let Some(settings) = plan.jam.take() {
            let jam = server::start(settings)?;
            flags.extend(jam.stop_flags());
            for addr in jam.local_addrs() {
                lines.push(format!(
                    "jam server   UDP {addr}: in a Jamulus 3.9.1 client, connect to this machine's address, port {} \
                     ({} from this machine)",
                    addr.port(),
                    reachable(addr)
                ));
            }
            let ended = ended.clone();
            std::thread::Builder::new().name("all-jam".into()).spawn(move || {
                let _ = ended.send(("jam server", jam.wait()));
            })?;
            running += 1;
        }
        if let Some(options) = plan.directory.take() {
            let running_directory = directory::start(options)?;
            flags.push(running_directory.stop_flag());
            let addr = running_directory.local_addr();
            lines.push(format!(
                "directory    UDP {addr}: servers register with it (-e HOST:{0}), clients list it",
                addr.port()
            ));
            let ended = ended.clone();
            std::thread::Builder::new().name("all-directory".into()).spawn(move || {
                let _ = ended.send(("directory", directory::wait(running_directory)));
            })?;
            running += 1;
        }
        if let Some(settings) = plan.turn.take() {
            if let Some(lobby) = plan.lobby.as_mut() {
                share_relay(lobby, &settings)?;
            }
            let relay = turn::start(&settings)?;
            let transports = if settings.shell.tcp { "UDP/TCP" } else { "UDP" };
            for addr in relay.local_addrs() {
                lines.push(format!(
                    "TURN relay   {transports} {addr}: STUN for anyone; relaying needs the shared secret"
                ));
            }
            let stop = Arc::new(AtomicBool::new(false));
            flags.push(stop.clone());
            let ended = ended.clone();
            std::thread::Builder::new().name("all-turn".into()).spawn(move || {
                let _ = ended.send(("TURN relay", relay.run(&stop).map_err(anyhow::Error::from)));
            })?;
            running += 1;
        }
        if let Some(config) = plan.registry.take() {
            let registry = runtime.block_on(registry::bind(&config))?;
            let addr = registry.local_addr().context("cannot read the registry's address")?;
            if let Some(lobby) = plan.lobby.as_mut().filter(|l| l.registry.is_none()) {
                lobby.registry = Some(format!("http://{}", reachable(addr)));
            }
            let kept = match config.store {
                StoreConfig::Memory => "names kept in memory only",
                _ => "names kept on disk",
            };
            lines.push(format!("registry     http://{addr}/: Jami-compatible name server, {kept}"));
            let ended = ended.clone();
            let mut seen = shutdown_seen.clone();
            runtime.spawn(async move {
                let result = registry.serve(async move { drop(seen.wait_for(|stop| *stop).await) }).await;
                let _ = ended.send(("registry", result.map_err(anyhow::Error::from)));
            });
            running += 1;
        }
        if let Some(config) = plan.lobby.take() {
            let lobby = runtime.block_on(lobby::bind(config))?;
            let page = if lobby.is_tls() { "https" } else { "http" };
            lines.push(format!(
                "lobby page   {page}://{}/: open it in a browser (the camera needs HTTPS, or this machine)",
                reachable(lobby.local_addr())
            ));
            let ended = ended.clone();
            let mut seen = shutdown_seen.clone();
            runtime.spawn(async move {
                let result = lobby.serve(async move { drop(seen.wait_for(|stop| *stop).await) }).await;
                let _ = ended.send(("lobby", result.map_err(anyhow::Error::from)));
            });
            running += 1;
        }
        Ok(())
    })();
    let mut failure = started.err();
    if failure.is_none() {
        println!("tutti all: running (Ctrl-C stops everything)");
        for line in &lines {
            println!("  {line}");
        }
        println!("  nothing is logged, recorded or sent anywhere unless the configuration turns it on");
        let (part, result) = parts_ended.recv().context("every part vanished")?;
        if part != "signal" {
            running -= 1;
            failure = Some(match result {
                Err(error) => error.context(format!("the {part} failed")),
                Ok(()) => anyhow::anyhow!("the {part} stopped by itself"),
            });
        }
    }
    stopping.store(true, Ordering::Relaxed);
    for flag in &flags {
        flag.store(true, Ordering::Relaxed);
    }
    let _ = shutdown.send(true);
    while running > 0 {
        match parts_ended.recv() {
            Ok(("signal", _)) => continue,
            Ok((part, Err(error))) if failure.is_none() => failure = Some(error.context(format!("the {part} failed"))),
            Ok(_) => {}
            Err(_) => break,
        }
        running -= 1;
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn plan(argv: &[&str]) -> anyhow::Result<Plan> {
        crate::config_file::parse_args::<Args>("all", argv)?.plan()
    }

    fn file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("tutti-all-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_are_the_commands_own_and_private() {
        let p = plan(&["--no-turn"]).unwrap();
        let jam = p.jam.unwrap();
        assert_eq!(jam.len(), 1);
        assert_eq!(jam[0].options.bind, "0.0.0.0:22124".parse().unwrap());
        assert!(jam[0].options.log_file.is_none() && jam[0].options.recording.is_none());
        assert_eq!(p.lobby.unwrap().listen, "127.0.0.1:8080".parse().unwrap());
        let registry = p.registry.unwrap();
        assert_eq!(registry.listen, "127.0.0.1:8090".parse().unwrap());
        assert_eq!(registry.store, StoreConfig::Memory, "names stay in memory unless a store is configured");
        assert!(p.directory.is_none() && p.turn.is_none());
    }

    #[test]
    fn the_relay_gets_a_generated_secret_and_is_the_pages_stun_server() {
        let path = file("turn", "[turn]\nlistening_ip = [\"127.0.0.1\"]\n");
        let p = plan(&["--config", path.to_str().unwrap()]).unwrap();
        let relay = p.turn.unwrap();
        assert_eq!(relay.shell.listen, vec!["127.0.0.1:3478".parse().unwrap()]);
        assert_eq!(relay.server.secrets.len(), 1);
        assert_eq!(relay.server.secrets[0].len(), 64, "32 random bytes in hex");
        let again = plan(&["--config", path.to_str().unwrap()]).unwrap().turn.unwrap();
        assert_ne!(relay.server.secrets, again.server.secrets, "a new secret for every run");
        let mut lobby = p.lobby.unwrap();
        share_relay(&mut lobby, &relay).unwrap();
        assert_eq!(lobby.ice_servers[0].urls, vec!["stun:127.0.0.1:3478".to_string()]);
        assert!(lobby.ice_servers[0].credential.is_none());
        let access = lobby.turn.clone().expect("credentials for the relay beside it");
        assert_eq!(access.urls(), ["turn:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=tcp"]);
        assert_eq!(
            access.mint(0, "x").credential,
            Some(tutti_turn::credentials::rest_password(&relay.server.secrets[0], "600:x")),
            "signed with the relay's own secret"
        );
        let before = (lobby.ice_servers.clone(), lobby.turn.clone());
        share_relay(&mut lobby, &relay).unwrap();
        assert_eq!((lobby.ice_servers, lobby.turn), before, "configured ICE servers and relays are left alone");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn parts_switch_off_in_the_file_or_by_flag() {
        let path = file(
            "off",
            "[server]\nenabled = false\n[lobby]\nenabled = false\nlisten = \"127.0.0.1:1\"\n[registry]\nenabled = \
             false\n[turn]\nenabled = false\n[directory]\nenabled = true\nport = 22300\n",
        );
        let p = plan(&["--config", path.to_str().unwrap()]).unwrap();
        assert!(p.jam.is_none() && p.lobby.is_none() && p.registry.is_none() && p.turn.is_none());
        assert_eq!(p.directory.unwrap().bind.port(), 22300);
        std::fs::write(&path, "[[server]]\nport = 22301\n[[server]]\nport = 22302\nenabled = false\n").unwrap();
        let p = plan(&["--config", path.to_str().unwrap(), "--no-turn"]).unwrap();
        let ports: Vec<u16> = p.jam.unwrap().iter().map(|s| s.options.bind.port()).collect();
        assert_eq!(ports, [22301], "a [[server]] table with enabled = false is left out");
        let p = plan(&["--no-server", "--no-lobby", "--no-registry", "--no-turn", "--directory"]).unwrap();
        assert!(p.jam.is_none() && p.lobby.is_none() && p.registry.is_none() && p.turn.is_none());
        assert!(p.directory.is_some());
        std::fs::write(&path, "[lobby]\nenabled = \"no\"\n").unwrap();
        let e = format!("{:#}", plan(&["--config", path.to_str().unwrap()]).err().unwrap());
        assert!(e.contains("[lobby]") && e.contains("enabled"), "{e}");
        std::fs::write(&path, "[registry]\ndata_dir = \"/var/lib/tutti/registry\"\n[turn]\nenabled = false\n").unwrap();
        let p = plan(&["--config", path.to_str().unwrap()]).unwrap();
        assert_eq!(p.registry.unwrap().store, StoreConfig::Sqlite("/var/lib/tutti/registry".into()));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_packaged_example_configures_every_command() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/tutti.toml");
        let p = plan(&["--config", example]).unwrap();
        assert!(p.jam.is_some() && p.lobby.is_some() && p.turn.is_some() && p.directory.is_none());
        assert_eq!(p.registry.unwrap().store, StoreConfig::Sqlite("/var/lib/tutti/registry".into()));
        let config = Some(PathBuf::from(example));
        server::Args { config: config.clone(), ..Default::default() }.all_settings().unwrap();
        directory::Args { config: config.clone(), ..Default::default() }.options().unwrap();
        lobby::Args { config: config.clone(), ..Default::default() }.settings().unwrap();
        registry::Args { config: config.clone(), ..Default::default() }.settings().unwrap();
        turn::Args { config, ..Default::default() }.settings_with_secret(Some("s".into())).unwrap();
    }

    #[test]
    fn unspecified_addresses_are_reached_over_loopback() {
        assert_eq!(reachable("0.0.0.0:22124".parse().unwrap()), "127.0.0.1:22124".parse().unwrap());
        assert_eq!(reachable("[::]:1".parse().unwrap()), "[::1]:1".parse().unwrap());
        assert_eq!(reachable("10.0.0.1:1".parse().unwrap()), "10.0.0.1:1".parse().unwrap());
    }
}
