//! Printing a directory's server list (`tutti client --list HOST[:PORT]`): name, city and country,
//! clients/max and ping, one server per line, the directory itself first.

use anyhow::{bail, Context};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use tutti_net::{fetch_server_list, ListedServer};

/// The Jamulus default port, used when `HOST` has none.
const DEFAULT_PORT: u16 = 22124;
/// How long to wait for the list.
const LIST_TIMEOUT: Duration = Duration::from_secs(6);

/// Fetches the list from `directory` (`HOST[:PORT]`), pings every server and prints the table.
pub fn run(directory: &str) -> anyhow::Result<()> {
    let address = resolve(directory)?;
    let servers = fetch_server_list(address, LIST_TIMEOUT, true)
        .with_context(|| format!("cannot read the server list of {directory} (is it a directory, and reachable?)"))?;
    print!("{}", table(&servers));
    Ok(())
}

/// `HOST[:PORT]` (IPv6 in brackets) to an address; IPv4 preferred, as Jamulus contacts directories.
pub fn resolve(directory: &str) -> anyhow::Result<SocketAddr> {
    let with_port = if directory.parse::<SocketAddr>().is_ok() || has_port(directory) {
        directory.to_string()
    } else {
        format!("{directory}:{DEFAULT_PORT}")
    };
    let addresses: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve the directory address {directory:?} (use HOST or HOST:PORT)"))?
        .collect();
    match addresses.iter().find(|a| a.is_ipv4()).or(addresses.first()) {
        Some(a) => Ok(*a),
        None => bail!("the directory address {directory:?} resolves to nothing"),
    }
}

fn has_port(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, port)) => !host.contains(':') && port.parse::<u16>().is_ok(),
        None => false,
    }
}

/// The printed table.
pub fn table(servers: &[ListedServer]) -> String {
    let mut out = format!("{:<20}  {:<28}  {:>7}  {:>7}  {}\n", "NAME", "LOCATION", "CLIENTS", "PING", "ADDRESS");
    for s in servers {
        let country = tutti_jam::country::name(s.country).unwrap_or("");
        let location = match (s.city.is_empty(), country.is_empty()) {
            (false, false) => format!("{}, {country}", s.city),
            (false, true) => s.city.clone(),
            (true, _) => country.to_string(),
        };
        let max = if s.max_clients == 0 { "?".to_string() } else { s.max_clients.to_string() };
        let clients = format!("{}/{max}", s.clients.map_or("?".to_string(), |c| c.to_string()));
        let ping = s.ping_ms.map_or("-".to_string(), |p| format!("{p} ms"));
        out.push_str(&format!("{:<20}  {:<28}  {clients:>7}  {ping:>7}  {}\n", s.name, location, s.address));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_table() {
        assert_eq!(resolve("127.0.0.1").unwrap(), "127.0.0.1:22124".parse().unwrap());
        assert_eq!(resolve("127.0.0.1:22224").unwrap(), "127.0.0.1:22224".parse().unwrap());
        assert_eq!(resolve("localhost:5").unwrap().port(), 5);
        assert_eq!(resolve("[::1]:7").unwrap(), "[::1]:7".parse().unwrap());
        assert!(resolve("no such host.invalid").is_err());
        let servers = [
            ListedServer {
                address: "127.0.0.1:22124".parse().unwrap(),
                name: "Dir".into(),
                city: "Town".into(),
                country: 82,
                max_clients: 10,
                clients: Some(2),
                ping_ms: Some(3),
            },
            ListedServer {
                address: "192.0.2.1:22125".parse().unwrap(),
                name: "Quiet".into(),
                city: String::new(),
                country: 0,
                max_clients: 0,
                clients: None,
                ping_ms: None,
            },
        ];
        let text = table(&servers);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[1].contains("Town, Germany") && lines[1].contains("2/10") && lines[1].contains("3 ms"), "{text}");
        assert!(lines[2].contains("?/?") && lines[2].contains(" - ") && lines[2].contains("192.0.2.1:22125"), "{text}");
    }
}
