//! Registering a server with a directory (§6.2), sans IO: CLM_REGISTER_SERVER_EX at start with up to
//! five transmissions 500 ms apart until a CLM_REGISTER_SERVER_RESP arrives, a refresh every 15 min,
//! a NAT keep-alive (CLM_EMPTY_MESSAGE) every 59 s, the permanent flag after 48 h of continuous
//! registration, CLM_UNREGISTER_SERVER on shutdown, and hole punching on the directory's request.
//!
//! Only the configured directory is ever contacted, and only its CLM_REGISTER_SERVER_RESP and
//! CLM_SEND_EMPTY_MESSAGE are obeyed (Jamulus obeys CLM_SEND_EMPTY_MESSAGE from anybody).

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tutti_proto::message::{OsType, RegistrationResult, ServerInfo};
use tutti_proto::{Message, JAMULUS_VERSION};

/// Resend interval while waiting for the directory's answer.
pub const RETRY: Duration = Duration::from_millis(500);
/// Transmissions of one registration before giving up ("time_out").
pub const TRANSMISSIONS: u8 = 5;
/// Refresh interval.
pub const REFRESH: Duration = Duration::from_secs(15 * 60);
/// NAT keep-alive interval.
pub const KEEPALIVE: Duration = Duration::from_secs(59);
/// Continuous registration after which the server calls itself permanent.
pub const PERMANENT_AFTER: Duration = Duration::from_secs(48 * 3600);

/// What to register where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// The directory's resolved address.
    pub directory: SocketAddr,
    /// Name, city, country, max clients, the server's own port and its internal address
    /// (`--serverpublicip`, or the local address towards the directory). `permanent` is managed here.
    pub info: ServerInfo,
}

/// Where the registration stands (Jamulus' JSON-RPC `registrationStatus` names in `as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationStatus {
    NotRegistered,
    Requested,
    TimeOut,
    Registered,
    DirectoryFull,
    VersionTooOld,
    RequirementsNotFulfilled,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::NotRegistered => "not_registered",
            RegistrationStatus::Requested => "requested",
            RegistrationStatus::TimeOut => "time_out",
            RegistrationStatus::Registered => "registered",
            RegistrationStatus::DirectoryFull => "directory_server_full",
            RegistrationStatus::VersionTooOld => "server_version_too_old",
            RegistrationStatus::RequirementsNotFulfilled => "requirements_not_fulfilled",
        }
    }
}

/// The registration state machine. Datagrams it wants sent come out of `poll_transmit`; they must
/// leave from the server's own socket, since the directory lists their source address.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrationConfig,
    status: RegistrationStatus,
    started: bool,
    stopped: bool,
    transmissions: u8,
    next_retry: Option<Instant>,
    next_refresh: Option<Instant>,
    next_keepalive: Option<Instant>,
    registered_since: Option<Instant>,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    status_changed: bool,
}

impl Registrar {
    pub fn new(config: RegistrationConfig) -> Self {
        Registrar {
            config,
            status: RegistrationStatus::NotRegistered,
            started: false,
            stopped: false,
            transmissions: 0,
            next_retry: None,
            next_refresh: None,
            next_keepalive: None,
            registered_since: None,
            outbox: VecDeque::new(),
            status_changed: false,
        }
    }

    pub fn status(&self) -> RegistrationStatus {
        self.status
    }

    pub fn directory(&self) -> SocketAddr {
        self.config.directory
    }

    /// The status if it changed since the last call (for the operator's log).
    pub fn poll_status_change(&mut self) -> Option<RegistrationStatus> {
        std::mem::take(&mut self.status_changed).then_some(self.status)
    }

    /// Registers at the first call, then retries, refreshes and keeps the NAT open when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        if !self.started {
            self.started = true;
            self.set_status(RegistrationStatus::Requested);
            self.send_registration();
            self.transmissions = 1;
            self.next_retry = Some(now + RETRY);
            self.next_refresh = Some(now + REFRESH);
            self.next_keepalive = Some(now + KEEPALIVE);
        }
        if self.next_retry.is_some_and(|t| t <= now) {
            if self.transmissions < TRANSMISSIONS {
                self.transmissions += 1;
                self.send_registration();
                self.next_retry = Some(now + RETRY);
            } else {
                self.next_retry = None;
                self.set_status(RegistrationStatus::TimeOut);
            }
        }
        if self.next_refresh.is_some_and(|t| t <= now) {
            self.next_refresh = Some(now + REFRESH);
            if self.registered_since.is_some_and(|since| now.duration_since(since) >= PERMANENT_AFTER) {
                self.config.info.permanent = true;
            }
            self.send_registration();
        }
        if self.next_keepalive.is_some_and(|t| t <= now) {
            self.next_keepalive = Some(now + KEEPALIVE);
            self.outbox.push_back((self.config.directory, Message::ClmEmptyMessage.to_datagram(0)));
        }
    }

    /// When `handle_timeout` must run next (`None` before the first call: run it at once).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        [self.next_retry, self.next_refresh, self.next_keepalive].into_iter().flatten().min()
    }

    /// Takes a connection-less message; returns true if it was the registrar's (from its directory).
    pub fn handle_message(&mut self, now: Instant, from: SocketAddr, message: &Message) -> bool {
        if !self.is_directory(from) {
            return false;
        }
        match message {
            Message::ClmRegisterServerResp(result) => {
                self.next_retry = None;
                let status = match result {
                    RegistrationResult::Registered => {
                        self.registered_since.get_or_insert(now);
                        RegistrationStatus::Registered
                    }
                    RegistrationResult::ListFull => RegistrationStatus::DirectoryFull,
                    RegistrationResult::VersionTooOld => RegistrationStatus::VersionTooOld,
                    RegistrationResult::RequirementsNotFulfilled => RegistrationStatus::RequirementsNotFulfilled,
                };
                if status != RegistrationStatus::Registered {
                    self.registered_since = None;
                    self.config.info.permanent = false;
                }
                self.set_status(status);
                true
            }
            Message::ClmSendEmptyMessage { address, port } => {
                if !self.stopped && !address.is_unspecified() && *port != 0 {
                    let to = SocketAddr::from((*address, *port));
                    self.outbox.push_back((to, Message::ClmEmptyMessage.to_datagram(0)));
                }
                true
            }
            Message::ClmEmptyMessage => true,
            _ => false,
        }
    }

    /// What is registered.
    pub fn info(&self) -> &ServerInfo {
        &self.config.info
    }

    /// Name, city or country changed: one transmission if registered (no retry cycle).
    pub fn set_info(&mut self, name: String, city: String, country: u16) {
        let info = &mut self.config.info;
        if (&info.name, &info.city, info.country) == (&name, &city, country) {
            return;
        }
        (info.name, info.city, info.country) = (name, city, country);
        if self.status == RegistrationStatus::Registered {
            self.send_registration();
        }
    }

    /// Says goodbye to the directory (on shutdown); nothing more is sent afterwards.
    pub fn unregister(&mut self) {
        if self.started && !self.stopped {
            self.outbox.push_back((self.config.directory, Message::ClmUnregisterServer.to_datagram(0)));
        }
        self.stopped = true;
        self.next_retry = None;
        self.set_status(RegistrationStatus::NotRegistered);
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.outbox.pop_front()
    }

    fn is_directory(&self, from: SocketAddr) -> bool {
        let canonical = |a: SocketAddr| match a {
            SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped().map_or(a, |ip| SocketAddr::from((ip, v6.port()))),
            v4 => v4,
        };
        canonical(from) == canonical(self.config.directory)
    }

    fn send_registration(&mut self) {
        let message = Message::ClmRegisterServerEx {
            info: self.config.info.clone(),
            os: OsType::Linux,
            version: JAMULUS_VERSION.to_string(),
        };
        self.outbox.push_back((self.config.directory, message.to_datagram(0)));
    }

    fn set_status(&mut self, status: RegistrationStatus) {
        if self.status != status {
            self.status = status;
            self.status_changed = true;
        }
    }
}

/// The "internal address" string for a registration: `--serverpublicip` if given, else `local`
/// (the address the socket uses towards the directory) unless it is unspecified, else empty (the
/// directory then records 127.0.0.1).
pub fn internal_address(public_ip: Option<Ipv4Addr>, local: Option<Ipv4Addr>) -> String {
    match public_ip.or(local.filter(|ip| !ip.is_unspecified())) {
        Some(ip) => ip.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_proto::Frame;

    fn registrar() -> Registrar {
        Registrar::new(RegistrationConfig {
            directory: "192.0.2.10:22124".parse().unwrap(),
            info: ServerInfo { port: 22125, name: "Jam".into(), max_clients: 8, ..ServerInfo::default() },
        })
    }

    fn sent(r: &mut Registrar) -> Vec<(SocketAddr, Message)> {
        std::iter::from_fn(|| r.poll_transmit())
            .map(|(to, d)| {
                let f = Frame::parse(&d).unwrap();
                (to, Message::decode(f.id, f.data).unwrap())
            })
            .collect()
    }

    fn count(r: &mut Registrar, f: impl Fn(&Message) -> bool) -> usize {
        sent(r).iter().filter(|(_, m)| f(m)).count()
    }

    fn is_register(m: &Message) -> bool {
        matches!(m, Message::ClmRegisterServerEx { .. })
    }

    #[test]
    fn five_transmissions_then_time_out() {
        let t0 = Instant::now();
        let mut r = registrar();
        let mut n = 0;
        for ms in (0..5000).step_by(100) {
            r.handle_timeout(t0 + Duration::from_millis(ms));
            n += count(&mut r, is_register);
        }
        assert_eq!(n, 5);
        assert_eq!(r.status(), RegistrationStatus::TimeOut);
    }

    #[test]
    fn answer_stops_retries_then_refresh_keepalive_permanent_and_unregister() {
        let t0 = Instant::now();
        let mut r = registrar();
        r.handle_timeout(t0);
        let out = sent(&mut r);
        let [(to, Message::ClmRegisterServerEx { info, version, .. })] = &out[..] else { panic!("{out:?}") };
        assert_eq!((*to, info.port, version.as_str(), info.permanent), (r.directory(), 22125, "3.9.1", false));
        let stranger: SocketAddr = "192.0.2.99:22124".parse().unwrap();
        let ok = Message::ClmRegisterServerResp(RegistrationResult::Registered);
        assert!(!r.handle_message(t0, stranger, &ok), "only the directory's answer counts");
        assert!(r.handle_message(t0, r.directory(), &ok));
        assert_eq!(r.poll_status_change(), Some(RegistrationStatus::Registered));
        r.handle_timeout(t0 + Duration::from_secs(2));
        assert!(sent(&mut r).is_empty(), "no retry after the answer");

        let (mut registers, mut keepalives) = (0, 0);
        let mut now = t0;
        while now < t0 + PERMANENT_AFTER + REFRESH {
            now += Duration::from_secs(1);
            r.handle_timeout(now);
            for (_, m) in sent(&mut r) {
                match m {
                    Message::ClmRegisterServerEx { info, .. } => {
                        registers += 1;
                        assert_eq!(info.permanent, now.duration_since(t0) >= PERMANENT_AFTER);
                    }
                    Message::ClmEmptyMessage => keepalives += 1,
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(registers, (PERMANENT_AFTER + REFRESH).as_secs() / REFRESH.as_secs());
        assert_eq!(keepalives, (PERMANENT_AFTER + REFRESH).as_secs() / KEEPALIVE.as_secs());

        let punch = Message::ClmSendEmptyMessage { address: Ipv4Addr::new(198, 51, 100, 3), port: 5000 };
        assert!(!r.handle_message(now, stranger, &punch) && sent(&mut r).is_empty(), "strangers cannot aim us");
        assert!(r.handle_message(now, r.directory(), &punch));
        assert_eq!(sent(&mut r), [("198.51.100.3:5000".parse().unwrap(), Message::ClmEmptyMessage)]);

        r.unregister();
        assert_eq!(sent(&mut r), [(r.directory(), Message::ClmUnregisterServer)]);
        r.handle_timeout(now + REFRESH);
        assert!(sent(&mut r).is_empty(), "silent after unregistering");
    }

    #[test]
    fn refusals_are_reported() {
        let t0 = Instant::now();
        for (result, status) in [
            (RegistrationResult::ListFull, RegistrationStatus::DirectoryFull),
            (RegistrationResult::VersionTooOld, RegistrationStatus::VersionTooOld),
            (RegistrationResult::RequirementsNotFulfilled, RegistrationStatus::RequirementsNotFulfilled),
        ] {
            let mut r = registrar();
            r.handle_timeout(t0);
            r.handle_message(t0, r.directory(), &Message::ClmRegisterServerResp(result));
            assert_eq!(r.status(), status);
            assert!(!status.as_str().is_empty());
        }
        assert_eq!(internal_address(Some(Ipv4Addr::new(203, 0, 113, 4)), Some(Ipv4Addr::LOCALHOST)), "203.0.113.4");
        assert_eq!(internal_address(None, Some(Ipv4Addr::UNSPECIFIED)), "");
    }
}
