//! `tutti directory`: a Jamulus-compatible directory (server list) that real Jamulus 3.9.1 servers
//! register with and real clients read. Command line and `[directory]` table of the `--config` file
//! (flags win over the file, the file over the defaults), then run until SIGINT/SIGTERM.
//! Flag names are those of a Jamulus server started as a directory where Jamulus has them.

use crate::server::{parse_server_info, DEFAULT_PORT};
use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use tutti_jam::directory::{DirectoryConfig, Limits, ListFilter, ListPolicy, OwnEntry, JAMULUS_MAX_SERVERS};
use tutti_jam::registration::{internal_address, RegistrationConfig};
use tutti_net::{DirectoryOptions, RunningDirectory};
use tutti_proto::message::ServerInfo;

/// Command-line flags of `tutti directory`. Every value flag can also be set in the `[directory]`
/// table of the `--config` file, under its long name.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// TOML configuration file with a [directory] table (keys = long flag names); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP port to listen on [default: 22124].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Local address to bind [default: all addresses].
    #[arg(long, value_name = "IP")]
    pub serverbindip: Option<IpAddr>,
    /// The directory's own list entry: "name;city;country" (country as ISO code or Qt number).
    #[arg(short = 'o', long, value_name = "NAME;CITY;COUNTRY")]
    pub serverinfo: Option<String>,
    /// Max clients shown in the directory's own list entry [default: 10].
    #[arg(short = 'u', long, value_name = "N")]
    pub numchannels: Option<u8>,
    /// Registration filter: allowed server IPs and/or a minimum version, "IP;IP;[3.8.0]".
    #[arg(short = 'f', long, value_name = "FILTER")]
    pub listfilter: Option<String>,
    /// Keep the list in FILE (Jamulus format) so it survives restarts; written atomically.
    #[arg(long, value_name = "FILE")]
    pub directoryfile: Option<PathBuf>,
    /// List entries at most, the directory's own included [default: 150, as Jamulus].
    #[arg(long, value_name = "N")]
    pub maxservers: Option<usize>,
    /// The directory's public IPv4, used for hole punching towards clients on its own network.
    #[arg(long, value_name = "IP")]
    pub serverpublicip: Option<Ipv4Addr>,
    /// What clients that have not proven their address get: "jamulus" (one whole answer per IP per
    /// 5 s, so real Jamulus clients work) or "strict" (never more than 3x their bytes) [default: jamulus].
    #[arg(long, value_name = "POLICY")]
    pub listpolicy: Option<String>,
    /// List answers per second to one proven IP (0 = no limit, for benchmarks) [default: 10].
    #[arg(long, value_name = "N")]
    pub maxlistrate: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDirectory {
    port: Option<u16>,
    serverbindip: Option<IpAddr>,
    serverinfo: Option<String>,
    numchannels: Option<u8>,
    listfilter: Option<String>,
    directoryfile: Option<PathBuf>,
    maxservers: Option<usize>,
    serverpublicip: Option<Ipv4Addr>,
    listpolicy: Option<String>,
    maxlistrate: Option<u32>,
    /// Whether `tutti all` runs the directory (`tutti directory` itself ignores it).
    #[serde(rename = "enabled")]
    _enabled: Option<bool>,
}

impl Args {
    /// Merges the flags over the configuration file over the defaults, and checks every value.
    pub fn options(&self) -> anyhow::Result<DirectoryOptions> {
        let file = match &self.config {
            Some(path) => crate::config_file::table(path, "directory")?,
            None => FileDirectory::default(),
        };
        let info = match self.serverinfo.clone().or(file.serverinfo) {
            Some(s) => parse_server_info(&s)?,
            None => Default::default(),
        };
        let filter = match self.listfilter.clone().or(file.listfilter) {
            Some(f) => ListFilter::parse(&f).with_context(|| format!("--listfilter {f:?}"))?,
            None => ListFilter::default(),
        };
        let max_servers = self.maxservers.or(file.maxservers).unwrap_or(JAMULUS_MAX_SERVERS);
        if !(1..=1_000_000).contains(&max_servers) {
            bail!("--maxservers {max_servers}: use 1 to 1000000 (the directory's own entry counts as one)");
        }
        let policy = match self.listpolicy.clone().or(file.listpolicy).as_deref() {
            None | Some("jamulus") => ListPolicy::Jamulus,
            Some("strict") => ListPolicy::Strict,
            Some(other) => bail!("--listpolicy {other:?}: use \"jamulus\" or \"strict\""),
        };
        let mut limits = Limits { policy, ..Limits::default() };
        if let Some(rate) = self.maxlistrate.or(file.maxlistrate) {
            limits.proven_lists_per_second = rate;
        }
        let config = DirectoryConfig {
            own: OwnEntry {
                name: info.name,
                city: info.city,
                country: info.country,
                max_clients: self.numchannels.or(file.numchannels).unwrap_or(10),
            },
            max_servers,
            filter,
            limits,
            public_ip: self.serverpublicip.or(file.serverpublicip),
            ..DirectoryConfig::default()
        };
        let ip = self.serverbindip.or(file.serverbindip).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let port = self.port.or(file.port).unwrap_or(DEFAULT_PORT);
        Ok(DirectoryOptions {
            bind: SocketAddr::new(ip, port),
            config,
            file: self.directoryfile.clone().or(file.directoryfile),
        })
    }
}

/// Starts the directory and says on stderr where it listens. SIGINT/SIGTERM are the caller's: see
/// [`RunningDirectory::stop_flag`].
pub fn start(options: DirectoryOptions) -> anyhow::Result<RunningDirectory> {
    let bind = options.bind;
    let directory =
        RunningDirectory::start(options).with_context(|| format!("cannot start the directory on UDP {bind}"))?;
    eprintln!("tutti: directory listening on UDP {} (Ctrl-C to stop)", directory.local_addr());
    Ok(directory)
}

/// Waits until the directory stops and reports what it did on stderr.
pub fn wait(directory: RunningDirectory) -> anyhow::Result<()> {
    let stats = directory.wait().context("the directory failed")?;
    eprintln!(
        "tutti: directory stopped after {} datagrams in, {} out, {} dropped",
        stats.datagrams_in,
        stats.datagrams_out,
        stats.dropped_total()
    );
    Ok(())
}

/// Runs the directory until SIGINT or SIGTERM.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let directory = start(args.options()?)?;
    crate::server::stop_on_signals(&directory.stop_flag())?;
    wait(directory)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn options(argv: &[&str]) -> anyhow::Result<DirectoryOptions> {
        crate::config_file::parse_args::<Args>("directory", argv)?.options()
    }

    #[test]
    fn defaults_flags_and_file() {
        let o = options(&[]).unwrap();
        assert_eq!(o.bind, "0.0.0.0:22124".parse().unwrap());
        assert_eq!(o.config.max_servers, 150);
        assert_eq!(o.config.limits.policy, ListPolicy::Jamulus);
        assert!(o.file.is_none());
        let o = options(&[
            "-p",
            "22224",
            "--serverbindip",
            "127.0.0.1",
            "-o",
            "Dir;Town;de",
            "-f",
            "10.0.0.1;[3.8.0]",
            "--maxservers",
            "10000",
            "--listpolicy",
            "strict",
            "--directoryfile",
            "/tmp/d.txt",
            "--maxlistrate",
            "0",
        ])
        .unwrap();
        assert_eq!(o.bind, "127.0.0.1:22224".parse().unwrap());
        assert_eq!((o.config.own.name.as_str(), o.config.own.country), ("Dir", 82));
        assert_eq!(o.config.filter.allowed.len(), 1);
        assert_eq!((o.config.max_servers, o.config.limits.proven_lists_per_second), (10000, 0));
        assert_eq!(o.config.limits.policy, ListPolicy::Strict);

        let path = std::env::temp_dir().join(format!("tutti-directory-{}.toml", std::process::id()));
        std::fs::write(&path, "[directory]\nport = 23000\nmaxservers = 20\n").unwrap();
        let arg = path.to_str().unwrap();
        let o = options(&["--config", arg, "--maxservers", "30"]).unwrap();
        assert_eq!((o.bind.port(), o.config.max_servers), (23000, 30), "flags win over the file");
        std::fs::write(&path, "[directory]\nprot = 1\n").unwrap();
        let e = format!("{:#}", options(&["--config", arg]).unwrap_err());
        assert!(e.contains("prot"), "{e}");
        std::fs::remove_file(&path).unwrap();

        assert!(options(&["--listpolicy", "lax"]).unwrap_err().to_string().contains("strict"));
        assert!(format!("{:#}", options(&["-f", "host.example"]).unwrap_err()).contains("neither"));
        assert!(options(&["--maxservers", "0"]).is_err());
    }
}

/// `tutti server --directoryserver`: `localhost` (or exactly `127.0.0.1`) makes the server its own
/// directory, like Jamulus; anything else is a directory to register with, resolved here (IPv4).
/// The internal address sent is `--serverpublicip`, else the bind address, else the local address
/// the system would use towards the directory (a UDP "connect", which sends nothing).
pub fn server_roles(
    directory: Option<&str>,
    info: &crate::server::ServerInfo,
    public_ip: Option<Ipv4Addr>,
    bind: SocketAddr,
    channels: usize,
) -> anyhow::Result<(Option<RegistrationConfig>, Option<DirectoryConfig>)> {
    let Some(directory) = directory.map(str::trim).filter(|d| !d.is_empty()) else {
        if public_ip.is_some() {
            bail!("--serverpublicip only makes sense with --directoryserver");
        }
        return Ok((None, None));
    };
    if directory.eq_ignore_ascii_case("localhost") || directory == "127.0.0.1" {
        let own = OwnEntry {
            name: info.name.clone(),
            city: info.city.clone(),
            country: info.country,
            max_clients: channels.min(255) as u8,
        };
        return Ok((
            None,
            Some(DirectoryConfig {
                own,
                public_ip,
                secret: tutti_net::directory::cookie_secret(),
                ..DirectoryConfig::default()
            }),
        ));
    }
    let address = crate::list::resolve(directory).context("--directoryserver")?;
    if !address.is_ipv4() {
        bail!("--directoryserver {directory}: directories are reached over IPv4 only (as in Jamulus)");
    }
    let local = match bind.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
        _ => std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .and_then(|s| s.connect(address).and_then(|_| s.local_addr()))
            .ok()
            .and_then(|a| match a.ip() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            }),
    };
    let registration = RegistrationConfig {
        directory: address,
        info: ServerInfo {
            port: bind.port(),
            country: info.country,
            max_clients: channels.min(255) as u8,
            permanent: false,
            name: info.name.clone(),
            internal_address: internal_address(public_ip, local),
            city: info.city.clone(),
        },
    };
    Ok((Some(registration), None))
}

#[cfg(test)]
mod server_role_tests {
    use super::*;

    #[test]
    fn localhost_is_a_directory_anything_else_a_registration() {
        let info = crate::server::ServerInfo { name: "Jam".into(), city: "Town".into(), country: 82 };
        let bind: SocketAddr = "127.0.0.1:22125".parse().unwrap();
        let (r, d) = server_roles(Some("LocalHost"), &info, None, bind, 12).unwrap();
        assert!(r.is_none());
        assert_eq!(d.unwrap().own.max_clients, 12);
        let (r, d) = server_roles(Some("127.0.0.1:22224"), &info, None, bind, 8).unwrap();
        let r = r.unwrap();
        assert!(d.is_none());
        assert_eq!(r.directory, "127.0.0.1:22224".parse().unwrap());
        assert_eq!((r.info.port, r.info.max_clients, r.info.internal_address.as_str()), (22125, 8, "127.0.0.1"));
        let public = Some(Ipv4Addr::new(203, 0, 113, 5));
        let (r, _) = server_roles(Some("127.0.0.1"), &info, None, bind, 8).unwrap();
        assert!(r.is_none(), "exactly 127.0.0.1 means directory, as in Jamulus");
        let (r, _) = server_roles(Some("127.0.0.1:22224"), &info, public, bind, 8).unwrap();
        assert_eq!(r.unwrap().info.internal_address, "203.0.113.5");
        assert!(server_roles(None, &info, public, bind, 8).is_err(), "--serverpublicip alone");
        assert!(matches!(server_roles(None, &info, None, bind, 8).unwrap(), (None, None)));
    }
}
