//! The JSON-RPC flags of `tutti server` and `tutti client` (`--jsonrpcport`, `--jsonrpcsecretfile`,
//! `--jsonrpcbindip`, Jamulus' names; on 127.0.0.1 unless `--jsonrpcbindip` says otherwise) and the secret file.
//! The protocol itself is `tutti_net::jsonrpc`.

pub use tutti_net::jsonrpc::*;

use anyhow::bail;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The JSON-RPC flags `tutti server` and `tutti client` share (Jamulus' names).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Flags {
    /// Serve Jamulus' JSON-RPC API on this TCP port; needs --jsonrpcsecretfile. Off by default.
    #[arg(long, value_name = "PORT")]
    pub jsonrpcport: Option<u16>,
    /// File whose first line (at least 16 characters) is the JSON-RPC secret.
    #[arg(long, value_name = "FILE")]
    pub jsonrpcsecretfile: Option<PathBuf>,
    /// Address JSON-RPC listens on [default: 127.0.0.1].
    #[arg(long, value_name = "IP")]
    pub jsonrpcbindip: Option<IpAddr>,
}

/// `--jsonrpcport`, `--jsonrpcsecretfile` and `--jsonrpcbindip` checked together: where to listen
/// and the secret, or `None` when JSON-RPC is off.
pub fn endpoint(
    port: Option<u16>,
    secret_file: Option<&PathBuf>,
    bind_ip: Option<IpAddr>,
) -> anyhow::Result<Option<(SocketAddr, String)>> {
    match (port, secret_file) {
        (Some(port), Some(secret_file)) => {
            let secret = read_secret(secret_file)?;
            let ip = bind_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            Ok(Some((SocketAddr::new(ip, port), secret)))
        }
        (Some(_), None) => {
            bail!("--jsonrpcport needs --jsonrpcsecretfile FILE (a file whose first line is the secret)")
        }
        (None, Some(_)) => bail!("--jsonrpcsecretfile needs --jsonrpcport PORT"),
        (None, None) => Ok(None),
    }
}

/// Reads the secret: the first line of `path`, at least 16 characters.
pub fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the JSON-RPC secret file {}: {e}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.chars().count() < 16 {
        anyhow::bail!(
            "the JSON-RPC secret in {} is too short: its first line needs at least 16 characters \
             (e.g. `openssl rand -base64 24 > {}`)",
            path.display(),
            path.display()
        );
    }
    Ok(secret)
}
