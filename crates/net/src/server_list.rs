//! Reading a directory's server list over UDP, as a Jamulus client does: CLM_REQ_SERVER_LIST,
//! repeated every 2 s until the full list (CLM_SERVER_LIST, possibly in several datagrams) arrives,
//! accepted only from the directory's IP; the directory's cookie ping is echoed so that a tutti
//! directory treats us as proven. Then every listed server is pinged once with
//! CLM_PING_MS_WITHNUMCLIENTS for its round-trip time and client count.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use tutti_proto::frame::MAX_DATAGRAM;
use tutti_proto::message::{RedServerListEntry, ServerListEntry};
use tutti_proto::{Frame, Message};

/// Request repeat interval (as the Jamulus client).
const REPEAT: Duration = Duration::from_secs(2);
/// After a full-list datagram, how long to wait for further parts of a large list.
const MORE_PARTS: Duration = Duration::from_millis(300);
/// How long pings may take.
const PING_WAIT: Duration = Duration::from_secs(1);

/// One server as listed, with what the ping found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedServer {
    pub address: SocketAddr,
    pub name: String,
    pub city: String,
    /// Qt 5 country number (0 = unknown, as in a reduced list).
    pub country: u16,
    /// 0 = unknown (reduced list).
    pub max_clients: u8,
    /// Connected clients, from the ping answer.
    pub clients: Option<u8>,
    pub ping_ms: Option<u32>,
}

/// Asks `directory` for its list; gives up after `timeout` (then an error, unless a reduced list
/// arrived, which is used instead). `ping` also pings every listed server.
pub fn fetch_server_list(directory: SocketAddr, timeout: Duration, ping: bool) -> io::Result<Vec<ListedServer>> {
    let bind: SocketAddr =
        if directory.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { "[::]:0".parse().unwrap() };
    let socket = UdpSocket::bind(bind)?;
    let started = Instant::now();
    let deadline = started + timeout;
    let request = Message::ClmReqServerList.to_datagram(0);
    socket.send_to(&request, directory)?;
    let mut next_request = started + REPEAT;
    let mut full: Vec<ServerListEntry> = Vec::new();
    let mut reduced: Option<Vec<RedServerListEntry>> = None;
    let mut last_part: Option<Instant> = None;
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let now = Instant::now();
        let until = match last_part {
            Some(t) => (t + MORE_PARTS).min(deadline),
            None => next_request.min(deadline),
        };
        if now >= until {
            if last_part.is_some() || now >= deadline {
                break;
            }
            socket.send_to(&request, directory)?;
            next_request = now + REPEAT;
            continue;
        }
        socket.set_read_timeout(Some(until - now))?;
        let Some((n, from)) = receive(&socket, &mut buf)? else { continue };
        if from.ip() != directory.ip() {
            continue;
        }
        let Some(frame) = Frame::parse(&buf[..n]) else { continue };
        match Message::decode(frame.id, frame.data) {
            Ok(Message::ClmServerList(part)) => {
                // Entry 0 (0.0.0.0:0) starts an answer: a later answer (to a repeated request) replaces
                // an earlier one instead of doubling it.
                if part.first().is_some_and(|e| e.address.is_unspecified() && e.port == 0) {
                    full.clear();
                }
                full.extend(part);
                last_part = Some(Instant::now());
            }
            Ok(Message::ClmRedServerList(part)) if last_part.is_none() => {
                reduced.get_or_insert_with(Vec::new).extend(part);
            }
            Ok(Message::ClmPingMs(cookie)) => {
                // Prove that we receive, then ask again (a strict directory only lists to proven peers).
                socket.send_to(&Message::ClmPingMs(cookie).to_datagram(0), from)?;
                if last_part.is_none() {
                    socket.send_to(&request, directory)?;
                }
            }
            _ => {}
        }
    }
    let mut servers: Vec<ListedServer> = if last_part.is_some() {
        full.into_iter()
            .map(|e| ListedServer {
                address: listed_address(directory, e.address, e.port),
                name: e.name,
                city: e.city,
                country: e.country,
                max_clients: e.max_clients,
                clients: None,
                ping_ms: None,
            })
            .collect()
    } else if let Some(reduced) = reduced {
        reduced
            .into_iter()
            .map(|e| ListedServer {
                address: listed_address(directory, e.address, e.port),
                name: e.name,
                city: String::new(),
                country: 0,
                max_clients: 0,
                clients: None,
                ping_ms: None,
            })
            .collect()
    } else {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no server list from {directory} within {} s", timeout.as_secs()),
        ));
    };
    if ping {
        ping_all(&socket, &mut servers, started)?;
    }
    Ok(servers)
}

/// Entry 0 (0.0.0.0:0) is the directory itself, at the address we asked.
fn listed_address(directory: SocketAddr, ip: Ipv4Addr, port: u16) -> SocketAddr {
    if ip.is_unspecified() && port == 0 {
        directory
    } else {
        SocketAddr::from((ip, port))
    }
}

fn ping_all(socket: &UdpSocket, servers: &mut [ListedServer], started: Instant) -> io::Result<()> {
    let mut by_address: HashMap<SocketAddr, usize> = HashMap::new();
    for (i, server) in servers.iter().enumerate() {
        if server.address.is_ipv4() == socket.local_addr()?.is_ipv4() {
            by_address.entry(server.address).or_insert(i);
        }
    }
    let ms = |t: Instant| t.duration_since(started).as_millis() as u32;
    for address in by_address.keys() {
        let ping = Message::ClmPingMsWithNumClients { time: ms(Instant::now()), clients: 0 };
        let _ = socket.send_to(&ping.to_datagram(0), address);
    }
    let deadline = Instant::now() + PING_WAIT;
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut answered = 0;
    while answered < by_address.len() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        socket.set_read_timeout(Some(deadline - now))?;
        let Some((n, from)) = receive(socket, &mut buf)? else { continue };
        let Some(&i) = by_address.get(&from) else { continue };
        let Some(frame) = Frame::parse(&buf[..n]) else { continue };
        if let Ok(Message::ClmPingMsWithNumClients { time, clients }) = Message::decode(frame.id, frame.data) {
            if servers[i].ping_ms.is_none() {
                answered += 1;
            }
            servers[i].ping_ms = Some(ms(Instant::now()).saturating_sub(time));
            servers[i].clients = Some(clients);
        }
    }
    Ok(())
}

fn receive(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
    match socket.recv_from(buf) {
        Ok(r) => Ok(Some(r)),
        Err(e) => match e.kind() {
            io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset => Ok(None),
            _ => Err(e),
        },
    }
}
