//! `tutti server`'s configuration: the command line and the `[server]` tables of the TOML file, merged into
//! one typed [`Settings`] per server (flags win over the file, the file over the defaults). Flag names and
//! meanings are Jamulus 3.9.1's, so existing launch scripts keep working.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use tutti_jam::{ServerConfig, MAX_CHANNELS};
use tutti_net::ServerOptions;

/// The default jam server port (as Jamulus).
pub const DEFAULT_PORT: u16 = 22124;

/// Command-line flags of `tutti server`. Every value flag can also be set in the `[server]` table of
/// the `--config` file, under its long name.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// TOML configuration file with a [server] table (keys = long flag names); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP port to listen on [default: 22124].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Local address to bind [default: all addresses].
    #[arg(long, value_name = "IP")]
    pub serverbindip: Option<IpAddr>,
    /// Maximum number of clients, 1…150 [default: 10].
    #[arg(short = 'u', long, value_name = "N")]
    pub numchannels: Option<usize>,
    /// Chat message for every new client: the text itself, or a file holding it. HTML allowed.
    #[arg(short = 'w', long, value_name = "TEXT|FILE")]
    pub welcomemessage: Option<String>,
    /// Add a link to the privacy policy at URL to the welcome message (`tutti privacy-policy --format html`
    /// writes one; the lobby and the registry serve theirs at /privacy).
    #[arg(long, value_name = "URL")]
    pub welcome_privacy_link: Option<String>,
    /// Server name, city and country ("name;city;country", country as ISO code or Qt number).
    #[arg(short = 'o', long, value_name = "NAME;CITY;COUNTRY")]
    pub serverinfo: Option<String>,
    /// Ask clients to accept a Creative Commons licence before they play.
    #[arg(short = 'L', long)]
    pub licence: bool,
    /// 64-sample mixing ticks (lower latency, twice the packet rate) instead of 128.
    #[arg(short = 'F', long)]
    pub fastupdate: bool,
    /// Append a connection log (time, client IP, client count) to FILE. Off by default.
    #[arg(short = 'l', long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Send a disconnect to every client when the server quits.
    #[arg(short = 'd', long)]
    pub discononquit: bool,
    /// IP TOS byte of outgoing packets, 0…255 (0 = leave the system default) [default: 128].
    #[arg(short = 'Q', long, value_name = "TOS")]
    pub qos: Option<u8>,
    /// Decode, mix and encode on every core of the machine (one thread per core) instead of one.
    #[arg(short = 'T', long)]
    pub multithreading: bool,
    /// Register with this directory: HOST[:PORT] (port 22124 if none), or `localhost` to be a
    /// directory as well (Jamulus `-e`).
    #[arg(short = 'e', long, alias = "centralserver", value_name = "HOST[:PORT]")]
    pub directoryserver: Option<String>,
    /// Public IPv4 address to register with the directory (instead of the local address towards it).
    #[arg(long, value_name = "IP")]
    pub serverpublicip: Option<Ipv4Addr>,
    /// Record every client (one WAV per musician, plus REAPER/Audacity projects) into a new folder
    /// under DIR per session. Clients are told before anything of theirs is written. Off by default.
    #[arg(short = 'R', long, value_name = "DIR")]
    pub recording: Option<PathBuf>,
    /// With --recording: start with recording switched off (JSON-RPC or SIGUSR2 switch it on).
    #[arg(long)]
    pub norecord: bool,
    /// JSON-RPC (Jamulus' server API, jamulusserver/*).
    #[command(flatten)]
    pub jsonrpc: crate::jsonrpc::Flags,
    /// Serve Prometheus metrics at http://ADDR/metrics: PORT (on 127.0.0.1) or IP:PORT. Off by default.
    #[arg(long, value_name = "[IP:]PORT")]
    pub metrics: Option<String>,
    /// The listen-in stream (--stream and its companions).
    #[command(flatten)]
    pub stream: crate::stream_args::StreamFlags,
    /// Accepted for Jamulus compatibility (tutti is always headless).
    #[arg(short = 'n', long, hide = true)]
    pub nogui: bool,
    /// Accepted for Jamulus compatibility (`tutti server` is always a server).
    #[arg(short = 's', long = "server", hide = true)]
    pub server_mode: bool,
}

/// The `[server]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    port: Option<u16>,
    serverbindip: Option<IpAddr>,
    numchannels: Option<usize>,
    welcomemessage: Option<String>,
    welcome_privacy_link: Option<String>,
    serverinfo: Option<String>,
    licence: Option<bool>,
    fastupdate: Option<bool>,
    log: Option<PathBuf>,
    discononquit: Option<bool>,
    qos: Option<u8>,
    multithreading: Option<bool>,
    directoryserver: Option<String>,
    serverpublicip: Option<Ipv4Addr>,
    recording: Option<PathBuf>,
    norecord: Option<bool>,
    jsonrpcport: Option<u16>,
    jsonrpcsecretfile: Option<PathBuf>,
    jsonrpcbindip: Option<IpAddr>,
    metrics: Option<String>,
    stream: Option<String>,
    stream_mix_of: Option<String>,
    stream_bitrate: Option<u32>,
    stream_hide_names: Option<bool>,
    stream_to: Option<String>,
    stream_max_listeners: Option<u32>,
    stream_pages_per_write: Option<usize>,
    /// Whether `tutti all` runs this server (`tutti server` itself ignores it).
    enabled: Option<bool>,
}

/// The file as `tutti server` reads it: one `[server]` table, or several `[[server]]` tables (one
/// process hosting several servers, each on its own port and thread). Other subcommands' tables are
/// ignored.
#[derive(Debug, Default, Deserialize)]
struct File {
    server: Option<toml::Value>,
}

/// Server name, city and country as `--serverinfo` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerInfo {
    pub name: String,
    pub city: String,
    pub country: u16,
}

/// Everything `tutti server` runs with, after merging flags, file and defaults.
#[derive(Debug)]
pub struct Settings {
    pub options: ServerOptions,
    pub info: ServerInfo,
    /// JSON-RPC address and secret, when enabled.
    pub jsonrpc: Option<(SocketAddr, String)>,
    /// `--metrics` address, when enabled.
    pub metrics: Option<SocketAddr>,
    /// `--directoryserver` as given.
    pub directory: String,
    /// `--serverpublicip`: the address sent to the directory instead of the local one.
    pub public_ip: Option<Ipv4Addr>,
    /// `--stream`: the listen-in stream, when on.
    pub stream: Option<crate::stream_args::StreamSettings>,
}

impl Args {
    /// The first (or only) server's settings.
    #[cfg(test)]
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut all = self.all_settings()?;
        Ok(all.remove(0))
    }

    /// Every server to run: one per `[[server]]` table of the file (at least one), each with the flags
    /// merged over it. Several servers need distinct ports, so `--port` only goes with one table.
    pub fn all_settings(&self) -> anyhow::Result<Vec<Settings>> {
        self.settings_of_tables(false)
    }

    /// For `tutti all`: the same without the tables that say `enabled = false`.
    pub fn enabled_settings(&self) -> anyhow::Result<Vec<Settings>> {
        self.settings_of_tables(true)
    }

    fn settings_of_tables(&self, only_enabled: bool) -> anyhow::Result<Vec<Settings>> {
        let mut tables = match &self.config {
            Some(path) => read_file(path)?,
            None => vec![FileServer::default()],
        };
        if only_enabled {
            tables.retain(|table| table.enabled != Some(false));
        }
        if tables.len() > 1 && self.port.is_some() {
            bail!("--port cannot apply to {} [[server]] tables at once: give each table its own port", tables.len());
        }
        let all = tables.into_iter().map(|t| self.merge(t)).collect::<anyhow::Result<Vec<_>>>()?;
        for (i, a) in all.iter().enumerate() {
            if let Some(b) = all[..i].iter().find(|b| b.options.bind.port() == a.options.bind.port()) {
                bail!("two [[server]] tables use UDP port {}: give each its own port", b.options.bind.port());
            }
        }
        Ok(all)
    }

    /// Merges the flags over one table of the configuration file over the defaults, and checks every value.
    fn merge(&self, file: FileServer) -> anyhow::Result<Settings> {
        let flag = |f: bool, file: Option<bool>| f || file.unwrap_or(false);
        let directory = self.directoryserver.clone().or(file.directoryserver);
        let directory_arg = directory.clone().unwrap_or_default();
        let recording = self.recording.clone().or(file.recording);
        if let Some(dir) = &recording {
            tutti_net::recorder::prepare_directory(dir)
                .map_err(|e| anyhow::anyhow!("--recording: {e}; give a folder tutti may create and write"))?;
        }
        let jsonrpc = crate::jsonrpc::endpoint(
            self.jsonrpc.jsonrpcport.or(file.jsonrpcport),
            self.jsonrpc.jsonrpcsecretfile.as_ref().or(file.jsonrpcsecretfile.as_ref()),
            self.jsonrpc.jsonrpcbindip.or(file.jsonrpcbindip),
        )?;
        let stream = self.stream.merge(crate::stream_args::FileKeys {
            stream: file.stream.clone(),
            stream_mix_of: file.stream_mix_of.clone(),
            stream_bitrate: file.stream_bitrate,
            stream_hide_names: file.stream_hide_names,
            stream_to: file.stream_to.clone(),
            stream_max_listeners: file.stream_max_listeners,
            stream_pages_per_write: file.stream_pages_per_write,
        })?;
        let metrics = match self.metrics.clone().or(file.metrics) {
            Some(text) => Some(parse_metrics_address(&text)?),
            None => None,
        };
        let channels = self.numchannels.or(file.numchannels).unwrap_or(10);
        if !(1..=MAX_CHANNELS).contains(&channels) {
            bail!("--numchannels {channels}: a server has 1 to {MAX_CHANNELS} channels");
        }
        let mut welcome = match self.welcomemessage.clone().or(file.welcomemessage) {
            Some(w) => Some(welcome_text(&w)?),
            None => None,
        };
        if let Some(url) = self.welcome_privacy_link.clone().or(file.welcome_privacy_link) {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(['"', '<', '>', ' ']) {
                bail!("--welcome-privacy-link {url:?}: give an http:// or https:// URL");
            }
            let link = format!("<a href=\"{url}\">Privacy policy</a>");
            welcome = Some(match welcome {
                Some(text) => format!("{text}<br>{link}"),
                None => link,
            });
        }
        let info = match self.serverinfo.clone().or(file.serverinfo) {
            Some(s) => parse_server_info(&s)?,
            None => ServerInfo::default(),
        };
        let ip = self.serverbindip.or(file.serverbindip).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let port = self.port.or(file.port).unwrap_or(DEFAULT_PORT);
        let public_ip = self.serverpublicip.or(file.serverpublicip);
        let (registration, directory) = crate::directory::server_roles(
            directory.as_deref(),
            &info,
            public_ip,
            SocketAddr::new(ip, port),
            channels,
        )?;
        let config = ServerConfig {
            max_channels: channels,
            welcome_message: welcome,
            licence_required: flag(self.licence, file.licence),
            fast_update: flag(self.fastupdate, file.fastupdate),
            time_of_day: tutti_net::clock::local_time_of_day,
            threads: if flag(self.multithreading, file.multithreading) {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                1
            },
            registration,
            directory,
            ..ServerConfig::default()
        };
        let mut options = ServerOptions::new(SocketAddr::new(ip, port), config);
        options.recording = recording;
        options.record = !flag(self.norecord, file.norecord);
        options.server_name = info.name.clone();
        options.log_file = self.log.clone().or(file.log);
        options.qos = self.qos.or(file.qos).unwrap_or(128);
        options.disconnect_on_quit = flag(self.discononquit, file.discononquit);
        Ok(Settings { options, info, jsonrpc, metrics, directory: directory_arg, public_ip, stream })
    }
}

fn read_file(path: &Path) -> anyhow::Result<Vec<FileServer>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let file: File =
        toml::from_str(&text).with_context(|| format!("{} is not a valid tutti configuration", path.display()))?;
    let invalid = |e: toml::de::Error| {
        anyhow::Error::new(e).context(format!("{} is not a valid tutti configuration", path.display()))
    };
    Ok(match file.server {
        None => vec![FileServer::default()],
        Some(toml::Value::Array(tables)) if !tables.is_empty() => {
            tables.into_iter().map(|t| t.try_into().map_err(invalid)).collect::<anyhow::Result<_>>()?
        }
        Some(toml::Value::Array(_)) => vec![FileServer::default()],
        Some(table) => vec![table.try_into().map_err(invalid)?],
    })
}

/// `--metrics`: `PORT` (on 127.0.0.1) or `IP:PORT`.
fn parse_metrics_address(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse()
        .with_context(|| format!("--metrics {text:?}: give a port (e.g. 9100) or IP:PORT (e.g. 127.0.0.1:9100)"))
}

/// `--welcomemessage`: the contents of the file it names, if it names one, else the text itself.
fn welcome_text(arg: &str) -> anyhow::Result<String> {
    let path = Path::new(arg);
    if path.is_file() {
        return std::fs::read_to_string(path).with_context(|| format!("cannot read the welcome message file {arg}"));
    }
    Ok(arg.to_string())
}

/// `name;city;country` with country as a Qt 5 number or an ISO 3166 code; name and city cut to 20.
pub fn parse_server_info(text: &str) -> anyhow::Result<ServerInfo> {
    let mut parts = text.split(';');
    let name = parts.next().unwrap_or("").trim();
    let city = parts.next().unwrap_or("").trim();
    let country = match parts.next().map(str::trim) {
        None | Some("") => 0,
        Some(c) => tutti_jam::country::parse(c).with_context(|| {
            format!("--serverinfo: unknown country {c:?} (use a two-letter ISO code like DE or a Qt country number)")
        })?,
    };
    if parts.next().is_some() {
        bail!("--serverinfo takes \"name;city;country\", not more fields: {text:?}");
    }
    Ok(ServerInfo {
        name: tutti_proto::truncate_utf16(name, 20).to_string(),
        city: tutti_proto::truncate_utf16(city, 20).to_string(),
        country,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn settings(argv: &[&str]) -> anyhow::Result<Settings> {
        let cli = Cli::try_parse_from(std::iter::once("server").chain(argv.iter().copied()))?;
        cli.args.settings()
    }

    fn config_file(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(text)
    }

    /// A file in the temp dir, removed on drop.
    mod tempfile_path {
        pub struct TempPath(pub std::path::PathBuf);
        impl TempPath {
            pub fn with(text: &str) -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let n = N.fetch_add(1, Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!("tutti-config-{}-{n}.toml", std::process::id()));
                std::fs::write(&path, text).unwrap();
                TempPath(path)
            }
            pub fn arg(&self) -> &str {
                self.0.to_str().unwrap()
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn defaults_are_jamulus_defaults_and_private() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.options.bind, "0.0.0.0:22124".parse().unwrap());
        assert_eq!(s.options.config.max_channels, 10);
        assert_eq!(s.options.qos, 128);
        assert!(s.options.log_file.is_none(), "no log file unless asked");
        assert!(s.options.config.welcome_message.is_none());
        assert!(!s.options.config.fast_update && !s.options.config.licence_required);
    }

    #[test]
    fn short_and_long_jamulus_flags() {
        let s =
            settings(&["-p", "22200", "-u", "150", "-F", "-L", "-d", "-Q", "0", "-T", "-n", "-s", "-w", "hi"]).unwrap();
        assert_eq!(s.options.bind.port(), 22200);
        assert_eq!(s.options.config.max_channels, 150);
        assert!(s.options.config.fast_update && s.options.config.licence_required && s.options.disconnect_on_quit);
        assert_eq!(s.options.qos, 0);
        assert_eq!(s.options.config.welcome_message.as_deref(), Some("hi"));
        assert_eq!(settings(&["-o", "Jam;Town;de"]).unwrap().info.country, 82, "ISO codes work too");
        let s =
            settings(&["--serverbindip", "127.0.0.1", "--log", "/tmp/x.log", "--serverinfo", "Jam;Town;82"]).unwrap();
        assert_eq!(s.options.bind, "127.0.0.1:22124".parse().unwrap());
        assert_eq!(s.options.log_file.as_deref(), Some(Path::new("/tmp/x.log")));
        assert_eq!(s.info, ServerInfo { name: "Jam".into(), city: "Town".into(), country: 82 });
    }

    #[test]
    fn file_sets_everything_and_flags_win() {
        let f = config_file(
            "[server]\nport = 23000\nnumchannels = 20\nwelcomemessage = \"from file\"\nfastupdate = true\n",
        );
        let s = settings(&["--config", f.arg()]).unwrap();
        assert_eq!((s.options.bind.port(), s.options.config.max_channels), (23000, 20));
        assert!(s.options.config.fast_update);
        assert_eq!(s.options.config.welcome_message.as_deref(), Some("from file"));
        let s = settings(&["--config", f.arg(), "-p", "23001", "-w", "from flag"]).unwrap();
        assert_eq!(s.options.bind.port(), 23001);
        assert_eq!(s.options.config.welcome_message.as_deref(), Some("from flag"));
    }

    #[test]
    fn several_server_tables_run_several_servers() {
        let file = config_file("[[server]]\nport = 23001\n\n[[server]]\nport = 23002\nnumchannels = 150\n\n[lobby]\n");
        let cli = Cli::try_parse_from(["server", "--config", file.arg(), "-u", "20"]).unwrap();
        let all = cli.args.all_settings().unwrap();
        let ports: Vec<u16> = all.iter().map(|s| s.options.bind.port()).collect();
        assert_eq!(ports, [23001, 23002]);
        assert!(all.iter().all(|s| s.options.config.max_channels == 20), "flags apply to every table");
        let err = settings(&["--config", file.arg(), "-p", "23000"]).unwrap_err().to_string();
        assert!(err.contains("own port"), "{err}");
        let same = config_file("[[server]]\nport = 23001\n[[server]]\nport = 23001\n");
        let err = settings(&["--config", same.arg()]).unwrap_err().to_string();
        assert!(err.contains("port 23001"), "{err}");
    }

    #[test]
    fn clear_errors_for_bad_input() {
        let unknown = config_file("[server]\nprot = 1\n");
        let e = format!("{:#}", settings(&["--config", unknown.arg()]).unwrap_err());
        assert!(e.contains("is not a valid tutti configuration") && e.contains("prot"), "{e}");
        let e = format!("{:#}", settings(&["--config", "/nonexistent/tutti.toml"]).unwrap_err());
        assert!(e.contains("cannot read the configuration file"), "{e}");
        assert!(settings(&["-u", "0"]).unwrap_err().to_string().contains("1 to 150"));
        assert!(settings(&["--serverinfo", "a;b;c;d"]).is_err());
        assert!(settings(&["--serverinfo", "a;b;999"]).unwrap_err().to_string().contains("unknown country"));
        assert!(settings(&["--bogus"]).is_err());
        let e = settings(&["--jsonrpcport", "8765"]).unwrap_err().to_string();
        assert!(e.contains("needs --jsonrpcsecretfile"), "{e}");
        let short = config_file("tooshort\n");
        let e = settings(&["--jsonrpcport", "8765", "--jsonrpcsecretfile", short.arg()]).unwrap_err().to_string();
        assert!(e.contains("at least 16 characters"), "{e}");
        let e = settings(&["-R", "/proc/tutti-cannot-be-here"]).unwrap_err().to_string();
        assert!(e.contains("--recording") && e.contains("could not be created"), "{e}");
        assert!(settings(&["--metrics", "nonsense"]).unwrap_err().to_string().contains("--metrics"));
    }

    #[test]
    fn operator_features_are_off_by_default_and_loopback_when_on() {
        let s = settings(&[]).unwrap();
        assert!(s.options.recording.is_none() && s.jsonrpc.is_none() && s.metrics.is_none());
        let secret = config_file("0123456789abcdef-secret\nsecond line\n");
        let s = settings(&["--jsonrpcport", "8765", "--jsonrpcsecretfile", secret.arg(), "--metrics", "9100"]).unwrap();
        assert_eq!(s.jsonrpc, Some(("127.0.0.1:8765".parse().unwrap(), "0123456789abcdef-secret".into())));
        assert_eq!(s.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        let s = settings(&["--jsonrpcport", "1", "--jsonrpcsecretfile", secret.arg(), "--jsonrpcbindip", "0.0.0.0"]);
        assert_eq!(s.unwrap().jsonrpc.unwrap().0, "0.0.0.0:1".parse().unwrap());
        let dir = std::env::temp_dir().join(format!("tutti-rec-settings-{}", std::process::id()));
        let s = settings(&["-R", dir.to_str().unwrap(), "--norecord"]).unwrap();
        assert_eq!(s.options.recording.as_deref(), Some(dir.as_path()));
        assert!(!s.options.record);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "DIR is 0700");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn welcome_message_from_a_file() {
        let f = config_file("Hello <b>from a file</b>");
        let s = settings(&["-w", f.arg()]).unwrap();
        assert_eq!(s.options.config.welcome_message.as_deref(), Some("Hello <b>from a file</b>"));
    }

    #[test]
    fn the_privacy_link_joins_the_welcome_message() {
        let s = settings(&["-w", "Hi", "--welcome-privacy-link", "https://jam.example/privacy"]).unwrap();
        assert_eq!(
            s.options.config.welcome_message.as_deref(),
            Some("Hi<br><a href=\"https://jam.example/privacy\">Privacy policy</a>")
        );
        let s = settings(&["--welcome-privacy-link", "http://127.0.0.1:8080/privacy"]).unwrap();
        assert_eq!(
            s.options.config.welcome_message.as_deref(),
            Some("<a href=\"http://127.0.0.1:8080/privacy\">Privacy policy</a>")
        );
        assert!(settings(&["--welcome-privacy-link", "javascript:alert(1)"]).is_err());
        assert!(settings(&["--welcome-privacy-link", "https://x/\"onmouseover=\""]).is_err());
    }
}
