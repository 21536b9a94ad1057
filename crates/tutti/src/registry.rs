//! `tutti registry`: the name registry's command line and `[registry]` TOML table, merged into one
//! [`RegistryConfig`] (flags win over the file, the file over the defaults), then served until
//! SIGINT/SIGTERM. Prints the address it listens on to stdout (port 0 picks a free one).

use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use tutti_registry::{RegistryConfig, RegistryServer, StoreConfig, DEFAULT_CACHE_MB, DEFAULT_REGISTRATIONS_PER_MINUTE};

/// Command-line flags of `tutti registry`. Every value flag can also be set in the `[registry]` table of
/// the `--config` file, under its long name with `_` for `-`.
#[derive(Debug, Default, clap::Args)]
#[command(after_help = "Routes (Jami name server API): GET /name/NAME, GET /name/NAME/owner|publickey|signature, \
GET /addr/ADDR, POST /name/NAME with {addr, owner, signature, publickey}. Names are final: nothing changes or \
removes a record. See docs/registry.md.")]
pub struct Args {
    /// TOML configuration file with a [registry] table; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address and port for the HTTP API [default: 127.0.0.1:8090].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded SQLite database (registry.sqlite3), created with mode 0700
    /// [default: $TUTTI_HOME/registry, else $XDG_DATA_HOME/tutti/registry, else ~/.local/share/tutti/registry].
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    pub data_dir: Option<PathBuf>,
    /// Keep names in this PostgreSQL database instead (postgres://user@host:port/db, or
    /// "host=/run/postgresql dbname=…"); several registry processes may share it. No TLS: use a local
    /// socket or a trusted network.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Keep names in memory only: nothing is written to disk, every name is forgotten on exit.
    #[arg(long, conflicts_with_all = ["data_dir", "database_url"])]
    pub memory: bool,
    /// Log each request's method, route and status to stderr (never an address or a name) [default: off].
    #[arg(long)]
    pub log_requests: bool,
    /// Registrations a minute per source address (IPv6: per /64 prefix); 0 for no limit [default: 10].
    #[arg(long, value_name = "N")]
    pub registrations_per_minute: Option<u32>,
    /// MiB of answers for registered names and addresses kept in memory (names are final, so a kept
    /// answer never turns wrong); 0 for none [default: 64].
    #[arg(long, value_name = "MIB")]
    pub cache_mb: Option<usize>,
}

/// The `[registry]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistry {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    memory: Option<bool>,
    log_requests: Option<bool>,
    registrations_per_minute: Option<u32>,
    cache_mb: Option<usize>,
    /// Whether `tutti all` runs the registry (`tutti registry` itself ignores it).
    #[serde(rename = "enabled")]
    _enabled: Option<bool>,
}

impl Args {
    /// Merges the flags over the configuration file over the defaults (names kept in the data
    /// directory's SQLite file).
    pub fn settings(&self) -> anyhow::Result<RegistryConfig> {
        self.settings_with_default_store(|| {
            Ok(StoreConfig::Sqlite(crate::config_file::data_dir("registry").context("pass --data-dir")?.0))
        })
    }

    /// The same with another store when neither flags nor file name one.
    pub fn settings_with_default_store(
        &self,
        default_store: impl FnOnce() -> anyhow::Result<StoreConfig>,
    ) -> anyhow::Result<RegistryConfig> {
        let file: FileRegistry = match &self.config {
            Some(path) => crate::config_file::table(path, "registry")?,
            None => FileRegistry::default(),
        };
        let file_memory = file.memory.unwrap_or(false);
        if [file.data_dir.is_some(), file.database_url.is_some(), file_memory].iter().filter(|set| **set).count() > 1 {
            bail!("the [registry] table sets more than one of data_dir, database_url and memory: keep one");
        }
        let store = if let Some(url) = &self.database_url {
            StoreConfig::Postgres(url.clone())
        } else if let Some(dir) = &self.data_dir {
            StoreConfig::Sqlite(dir.clone())
        } else if self.memory || file_memory {
            StoreConfig::Memory
        } else if let Some(url) = file.database_url {
            StoreConfig::Postgres(url)
        } else if let Some(dir) = file.data_dir {
            StoreConfig::Sqlite(dir)
        } else {
            default_store()?
        };
        let cache_mb = self.cache_mb.or(file.cache_mb).unwrap_or(DEFAULT_CACHE_MB);
        if cache_mb > 1 << 20 {
            bail!("--cache-mb {cache_mb}: give at most 1048576 (1 TiB)");
        }
        Ok(RegistryConfig {
            listen: self.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8090))),
            store,
            log_requests: self.log_requests || file.log_requests.unwrap_or(false),
            registrations_per_minute: self
                .registrations_per_minute
                .or(file.registrations_per_minute)
                .unwrap_or(DEFAULT_REGISTRATIONS_PER_MINUTE),
            cache_bytes: cache_mb.saturating_mul(1 << 20),
            privacy: None,
        })
    }
}

/// Binds the registry and says on stdout where it keeps names and listens.
pub async fn bind(config: &RegistryConfig) -> anyhow::Result<RegistryServer> {
    let server = RegistryServer::bind(config).await?;
    let addr = server.local_addr().context("cannot read the bound address")?;
    match &config.store {
        StoreConfig::Sqlite(dir) => {
            println!("tutti registry: names kept in {}", dir.join(tutti_registry::store::SQLITE_FILE).display())
        }
        StoreConfig::Postgres(_) => println!("tutti registry: names kept in PostgreSQL"),
        StoreConfig::Memory => println!("tutti registry: names kept in memory only (forgotten on exit)"),
    }
    println!("tutti registry: listening on http://{addr}/");
    Ok(server)
}

/// Runs the registry until SIGINT or SIGTERM.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut config = args.settings()?;
    let facts =
        crate::privacy::Facts { registry: Some(crate::privacy::settings::registry(&config)), ..Default::default() };
    config.privacy = Some(crate::privacy::html(&facts));
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = bind(&config).await?;
        server.serve(crate::lobby::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    fn settings(argv: &[&str]) -> anyhow::Result<RegistryConfig> {
        crate::config_file::parse_args::<Args>("registry", argv)?.settings()
    }

    #[test]
    fn defaults_are_private_and_local() {
        let config = settings(&["--data-dir", "/tmp/x"]).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8090)));
        assert_eq!(config.store, StoreConfig::Sqlite("/tmp/x".into()));
        assert!(!config.log_requests);
        assert_eq!(config.registrations_per_minute, 10);
        assert_eq!(config.cache_bytes, 64 << 20);
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("tutti-registry-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tutti.toml");
        std::fs::write(
            &file,
            "[registry]\nlisten = \"127.0.0.1:9000\"\ndatabase_url = \"postgres://a@127.0.0.1/db\"\nlog_requests = true\nregistrations_per_minute = 3\ncache_mb = 0\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let config = settings(&["--config", path]).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.store, StoreConfig::Postgres("postgres://a@127.0.0.1/db".into()));
        assert!(config.log_requests);
        assert_eq!(config.registrations_per_minute, 3);
        assert_eq!(config.cache_bytes, 0);
        let config = settings(&["--config", path, "--data-dir", "/tmp/y", "--registrations-per-minute", "0"]).unwrap();
        assert_eq!(config.store, StoreConfig::Sqlite("/tmp/y".into()));
        assert_eq!(config.registrations_per_minute, 0);
        std::fs::write(&file, "[registry]\ndata_dir = \"/a\"\ndatabase_url = \"postgres://b\"\n").unwrap();
        assert!(settings(&["--config", path]).unwrap_err().to_string().contains("keep one"));
        std::fs::write(&file, "[registry]\nmemory = true\nenabled = false\n").unwrap();
        assert_eq!(settings(&["--config", path]).unwrap().store, StoreConfig::Memory);
        assert_eq!(settings(&["--config", path, "--data-dir", "/d"]).unwrap().store, StoreConfig::Sqlite("/d".into()));
        std::fs::write(&file, "[registry]\nport = 1\n").unwrap();
        assert!(settings(&["--config", path]).is_err(), "unknown keys are refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_store_at_a_time() {
        assert!(settings(&["--data-dir", "/a", "--database-url", "postgres://b"]).is_err());
        assert!(settings(&["--data-dir", "/a", "--memory"]).is_err());
        assert_eq!(settings(&["--memory"]).unwrap().store, StoreConfig::Memory);
    }
}
