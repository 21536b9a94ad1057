//! The directory's persistence file, in Jamulus' `--directoryfile` format so that files move between
//! Jamulus and tutti: one line per listed server,
//! `ip:port;internal-ip:port;base64(name);base64(city);country;maxclients;permanent`, written in
//! reverse list order. Lines without exactly 7 fields, or with an invalid or duplicate address, are
//! skipped on load. Only the text lives here; writing it atomically is the IO shell's job.

use super::registry::{Registered, ServerListing};
use std::collections::HashSet;
use std::net::SocketAddrV4;

/// The file's text for these servers (given in list order).
pub fn format<'a>(servers: impl DoubleEndedIterator<Item = &'a Registered>) -> String {
    let mut text = String::new();
    for s in servers.rev() {
        let l = &s.listing;
        text.push_str(&format!(
            "{};{};{};{};{};{};{}\n",
            s.address,
            l.internal,
            base64_encode(l.name.as_bytes()),
            base64_encode(l.city.as_bytes()),
            l.country,
            l.max_clients,
            u8::from(l.permanent)
        ));
    }
    text
}

/// What [`parse`] found: the servers in list order, and how many lines it skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    pub servers: Vec<(SocketAddrV4, ServerListing)>,
    pub skipped: usize,
}

/// Reads the file's text. Never fails: bad lines are counted and skipped. Keeps at most `max` servers.
pub fn parse(text: &str, max: usize) -> Loaded {
    let mut loaded = Loaded::default();
    let mut seen = HashSet::new();
    // The file lists servers last-first; restore the list order.
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for line in lines.into_iter().rev() {
        match parse_line(line) {
            Some((address, listing)) if loaded.servers.len() < max && seen.insert(address) => {
                loaded.servers.push((address, listing));
            }
            _ => loaded.skipped += 1,
        }
    }
    loaded
}

fn parse_line(line: &str) -> Option<(SocketAddrV4, ServerListing)> {
    let fields: Vec<&str> = line.trim().split(';').collect();
    let [address, internal, name, city, country, max_clients, permanent] = fields[..] else { return None };
    let address: SocketAddrV4 = address.parse().ok()?;
    if address.ip().is_unspecified() || address.port() == 0 {
        return None;
    }
    let text = |b64: &str, max: usize| {
        let s = String::from_utf8(base64_decode(b64)?).ok()?;
        (tutti_proto::utf16_len(&s) <= max).then_some(s)
    };
    Some((
        address,
        ServerListing {
            name: text(name, tutti_proto::message::MAX_SERVER_NAME)?,
            city: text(city, tutti_proto::message::MAX_CITY)?,
            country: country.parse().ok()?,
            max_clients: max_clients.parse().ok()?,
            permanent: permanent.parse::<u8>().ok()? != 0,
            internal: internal.parse().ok()?,
            version: String::new(),
        },
    ))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Instant;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "Jam Köln ♪", "RegisteredSrv"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"SrvCity"), "U3J2Q2l0eQ==");
        assert!(base64_decode("a$b").is_none());
    }

    #[test]
    fn round_trip_in_list_order_and_bad_lines_skipped() {
        let now = Instant::now();
        let server = |port, name: &str| Registered {
            address: SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 5), port),
            listing: ServerListing {
                name: name.into(),
                city: "Köln".into(),
                country: 82,
                max_clients: 8,
                permanent: port == 2,
                internal: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 22124),
                version: String::new(),
            },
            refreshed: now,
        };
        let servers = [server(1, "one"), server(2, "two;three")];
        let text = format(servers.iter());
        assert!(text.starts_with("203.0.113.5:2;10.0.0.5:22124;"), "reverse order: {text}");
        let garbage = "nonsense\n1.2.3.4:5;x\n203.0.113.5:1;10.0.0.5:1;AA==;AA==;1;1;0\n\n";
        let loaded = parse(&format!("{garbage}{text}"), 100);
        assert_eq!(loaded.skipped, 3, "two malformed lines and one duplicate");
        let names: Vec<_> = loaded.servers.iter().map(|(_, l)| l.name.as_str()).collect();
        assert_eq!(names, ["one", "two;three"]);
        assert_eq!(loaded.servers[1].1, servers[1].listing);
        assert_eq!(parse(&text, 1).servers.len(), 1, "capped");
    }
}
