//! The authenticated requests of RFC 8656 (Allocate, Refresh, CreatePermission, ChannelBind) and the long-term
//! credential check with REST usernames and stateless nonces: the control half of [`Server`]; the data
//! path and timers live in the parent module.

use super::*;

/// Ports tried for one allocation before answering 508.
const PORT_TRIES: u32 = 16;
/// How long a port reserved by EVEN-PORT stays reserved (RFC 8656 §7.2: about 30 s).
const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// An authenticated request's credentials.
struct Auth {
    username: String,
    user: String,
    key: [u8; 16],
}

impl Server {
    fn respond(&mut self, from: ClientKey, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit { via: Via::Client(from), to: from.client, bytes });
    }

    /// An error answer, signed with `key` when the request was authenticated.
    fn error(&mut self, from: ClientKey, m: &Message, code: u16, key: Option<&[u8; 16]>, reason: Refusal) {
        self.refuse(reason);
        let mut w = Writer::new(m.method, Class::Error, m.txid).error(code, reason_phrase(code));
        if matches!(code, 401 | 438) {
            w = w.attr(stun::REALM, self.config.realm.as_bytes()).attr(stun::NONCE, self.nonce(self.now).as_bytes());
        }
        if let Some(key) = key {
            w = w.integrity(key);
        }
        let bytes = if m.has_fingerprint { w.finish_with_fingerprint() } else { w.finish() };
        self.respond(from, bytes);
    }

    fn success(
        &mut self,
        from: ClientKey,
        m: &Message,
        key: &[u8; 16],
        build: impl FnOnce(Writer) -> Writer,
    ) -> Vec<u8> {
        let w = build(Writer::new(m.method, Class::Success, m.txid)).integrity(key);
        let bytes = if m.has_fingerprint { w.finish_with_fingerprint() } else { w.finish() };
        self.respond(from, bytes.clone());
        bytes
    }

    fn nonce(&self, now: Instant) -> String {
        let issued = self.unix(now);
        format!("{issued:016x}{:016x}", self.nonce_mac(issued))
    }

    fn nonce_mac(&self, issued: u64) -> u64 {
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.config.nonce_key).expect("HMAC takes any key");
        mac.update(&issued.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag[..8]);
        u64::from_be_bytes(first)
    }

    fn nonce_fresh(&self, now: Instant, nonce: &str) -> bool {
        if nonce.len() != 32 || !nonce.is_ascii() {
            return false;
        }
        let (Ok(issued), Ok(mac)) = (u64::from_str_radix(&nonce[..16], 16), u64::from_str_radix(&nonce[16..], 16))
        else {
            return false;
        };
        mac == self.nonce_mac(issued) && self.unix(now).saturating_sub(issued) < self.config.nonce_lifetime.as_secs()
    }

    /// The long-term credential check of RFC 8489 §9.2.4 with REST usernames; answers the failures itself.
    /// The expiry is checked when an allocation is made, not on the requests that keep it (as coturn does,
    /// which keeps a session's key): `established` is the username of the client's allocation, whose
    /// Refresh, CreatePermission and ChannelBind still pass once that username has expired, so that a call
    /// outlives its credentials' TTL while new allocations with them are refused.
    fn authenticate(&mut self, now: Instant, from: ClientKey, m: &Message, established: Option<&str>) -> Option<Auth> {
        if !m.has_integrity() {
            self.error(from, m, 401, None, Refusal::Unauthorized);
            return None;
        }
        let (Ok(Some(username)), Ok(Some(_realm)), Ok(Some(nonce))) =
            (m.text(stun::USERNAME), m.text(stun::REALM), m.text(stun::NONCE))
        else {
            self.error(from, m, 400, None, Refusal::BadRequest);
            return None;
        };
        if !self.nonce_fresh(now, nonce) {
            self.error(from, m, 438, None, Refusal::StaleNonce);
            return None;
        }
        let user = match check_rest_username(username, self.unix(now)) {
            Ok((_, id)) => if id.is_empty() { username } else { id }.to_string(),
            Err(CredentialError::Expired) if established == Some(username) => {
                username.split_once(':').map_or(username, |(_, id)| id).to_string()
            }
            Err(CredentialError::Expired | CredentialError::NoExpiry) => {
                self.error(from, m, 401, None, Refusal::Unauthorized);
                return None;
            }
        };
        let key = self.config.secrets.iter().find_map(|secret| {
            let key = long_term_key(username, &self.config.realm, &rest_password(secret, username));
            m.check_integrity(&key).then_some(key)
        });
        let Some(key) = key else {
            self.error(from, m, 401, None, Refusal::Unauthorized);
            return None;
        };
        Some(Auth { username: username.to_string(), user, key })
    }

    pub(super) fn request(&mut self, now: Instant, from: ClientKey, m: &Message, method: u16) {
        if method == stun::BINDING {
            let w =
                Writer::new(stun::BINDING, Class::Success, m.txid).xor_address(stun::XOR_MAPPED_ADDRESS, from.client);
            let bytes = if m.has_fingerprint { w.finish_with_fingerprint() } else { w.finish() };
            return self.respond(from, bytes);
        }
        if !matches!(method, stun::ALLOCATE | stun::REFRESH | stun::CREATE_PERMISSION | stun::CHANNEL_BIND) {
            return self.error(from, m, 400, None, Refusal::Unsupported);
        }
        let unknown: Vec<u8> = m.types().filter(|t| *t < 0x8000 && !known(*t)).flat_map(u16::to_be_bytes).collect();
        if !unknown.is_empty() {
            self.refuse(Refusal::Unsupported);
            let w = Writer::new(method, Class::Error, m.txid)
                .error(420, "Unknown Attribute")
                .attr(stun::UNKNOWN_ATTRIBUTES, &unknown);
            return self.respond(from, w.finish());
        }
        let mut existing = self.by_client.get(&from).copied();
        if let Some(relay) = existing {
            if self.allocations.get(relay.0 as usize).and_then(Option::as_ref).is_none_or(|a| a.expires <= now) {
                self.remove(relay);
                existing = None;
            }
        }
        let established = existing
            .and_then(|relay| self.allocations.get(relay.0 as usize).and_then(Option::as_ref))
            .map(|a| a.username.clone());
        let Some(auth) = self.authenticate(now, from, m, established.as_deref()) else { return };
        if let Some(relay) = existing {
            let Some(a) = self.allocations.get(relay.0 as usize).and_then(Option::as_ref) else { return };
            if a.username != auth.username {
                return self.error(from, m, 441, Some(&auth.key), Refusal::WrongCredentials);
            }
        }
        match (method, existing) {
            (stun::ALLOCATE, None) => self.allocate(now, from, m, auth),
            (stun::ALLOCATE, Some(relay)) => {
                let retransmit = self
                    .allocations
                    .get(relay.0 as usize)
                    .and_then(Option::as_ref)
                    .filter(|a| a.allocate_txid == m.txid)
                    .map(|a| a.allocate_response.clone());
                match retransmit {
                    Some(bytes) => self.respond(from, bytes),
                    None => self.error(from, m, 437, Some(&auth.key), Refusal::AllocationMismatch),
                }
            }
            (_, None) => self.error(from, m, 437, Some(&auth.key), Refusal::AllocationMismatch),
            (stun::REFRESH, Some(relay)) => self.refresh(now, from, m, relay, &auth),
            (stun::CREATE_PERMISSION, Some(relay)) => self.create_permission(now, from, m, relay, &auth),
            (_, Some(relay)) => self.channel_bind(now, from, m, relay, &auth),
        }
    }

    fn lifetime(&self, requested: Option<u32>) -> Duration {
        let requested = requested.map_or(self.config.default_lifetime, |s| Duration::from_secs(u64::from(s)));
        requested.min(self.config.max_lifetime)
    }

    fn allocate(&mut self, now: Instant, from: ClientKey, m: &Message, auth: Auth) {
        let key = auth.key;
        if self.pending.values().any(|p| p.alloc.client == from) {
            return; // a retransmission while the relay opens: the answer follows
        }
        match m.get(stun::REQUESTED_TRANSPORT).and_then(|v| v.first()) {
            None => return self.error(from, m, 400, Some(&key), Refusal::BadRequest),
            Some(17) => {}
            Some(_) => return self.error(from, m, 442, Some(&key), Refusal::Unsupported),
        }
        let reserved = match m.get(stun::RESERVATION_TOKEN) {
            None => None,
            Some(token) => {
                let found = <[u8; 8]>::try_from(token).ok().and_then(|t| self.reservations.remove(&t));
                match found {
                    Some((addr, expires)) if expires > now && m.get(stun::EVEN_PORT).is_none() => Some(addr),
                    _ => return self.error(from, m, 508, Some(&key), Refusal::Capacity),
                }
            }
        };
        let v6 = match m.get(stun::REQUESTED_ADDRESS_FAMILY).and_then(|v| v.first()) {
            None => from.client.is_ipv6() && self.config.relay_ips.iter().any(IpAddr::is_ipv6),
            Some(1) => false,
            Some(2) => true,
            Some(_) => return self.error(from, m, 440, Some(&key), Refusal::Unsupported),
        };
        let v6 = reserved.map_or(v6, |addr| addr.is_ipv6());
        let Some(relay_ip) = self.config.relay_ips.iter().copied().find(|ip| ip.is_ipv6() == v6) else {
            return self.error(from, m, 440, Some(&key), Refusal::Unsupported);
        };
        let in_use = self.by_client.len() + self.pending.len();
        if self.config.total_quota > 0 && in_use >= self.config.total_quota as usize {
            return self.error(from, m, 508, Some(&key), Refusal::Capacity);
        }
        let user_count = self.per_user.get(&auth.user).copied().unwrap_or(0)
            + self.pending.values().filter(|p| p.alloc.user == auth.user).count() as u32;
        if self.config.user_quota > 0 && user_count >= self.config.user_quota {
            return self.error(from, m, 486, Some(&key), Refusal::Quota);
        }
        let lifetime = match m.u32(stun::LIFETIME) {
            Ok(requested) => self.lifetime(requested).max(self.config.default_lifetime.min(self.config.max_lifetime)),
            Err(_) => return self.error(from, m, 400, Some(&key), Refusal::BadRequest),
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.allocations.push(None);
                (self.allocations.len() - 1) as u32
            }
        };
        let relay = RelayId(id);
        let mut alloc = Allocation::new(
            now,
            from,
            SocketAddr::new(relay_ip, 0),
            auth.username,
            auth.user,
            key,
            lifetime,
            self.config.max_bps,
        );
        alloc.allocate_txid = m.txid;
        let fingerprint = m.has_fingerprint;
        let even = m.get(stun::EVEN_PORT);
        let reserve = even.and_then(|v| v.first()).is_some_and(|b| b & 0x80 != 0);
        let pending = Pending {
            alloc,
            lifetime,
            even: even.is_some(),
            reserve,
            reserved_port: reserved.map(|a| a.port()),
            tries: 0,
            fingerprint,
        };
        self.pending.insert(relay, pending);
        self.try_port(relay);
    }

    fn try_port(&mut self, relay: RelayId) {
        let (min, max) = (u32::from(self.config.min_port), u32::from(self.config.max_port.max(self.config.min_port)));
        let Some(p) = self.pending.get_mut(&relay) else { return };
        let mut port = self.next_port.clamp(min, max);
        for _ in 0..8 {
            if p.even && port % 2 == 1 {
                port = if port < max { port + 1 } else { min + min % 2 };
            }
            let taken = |port: u32| self.reservations.values().any(|(a, _)| u32::from(a.port()) == port);
            if !taken(port) && !(p.reserve && (port >= max || taken(port + 1))) {
                break;
            }
            port = if port + 2 > max { min } else { port + 2 };
        }
        self.next_port = if port + 2 > max { min } else { port + if p.reserve { 2 } else { 1 } };
        if let Some(reserved) = p.reserved_port {
            port = u32::from(reserved);
            p.tries = PORT_TRIES;
        }
        p.tries += 1;
        p.alloc.relay.set_port(port as u16);
        let addr = p.alloc.relay;
        self.events.push_back(Event::OpenRelay { relay, addr });
    }

    /// The shell's answer to [`Event::OpenRelay`].
    pub fn relay_opened(&mut self, now: Instant, relay: RelayId, opened: bool) {
        self.now = now;
        if !opened {
            let tries = self.pending.get(&relay).map_or(PORT_TRIES, |p| p.tries);
            if tries < PORT_TRIES {
                return self.try_port(relay);
            }
        }
        let Some(p) = self.pending.remove(&relay) else { return };
        let mut alloc = p.alloc;
        let txid = alloc.allocate_txid;
        let method_msg = Writer::new(stun::ALLOCATE, Class::Success, txid);
        if !opened {
            self.free.push(relay.0);
            self.refuse(Refusal::Capacity);
            let w =
                Writer::new(stun::ALLOCATE, Class::Error, txid).error(508, reason_phrase(508)).integrity(&alloc.key);
            let bytes = if p.fingerprint { w.finish_with_fingerprint() } else { w.finish() };
            return self.respond(alloc.client, bytes);
        }
        let mut method_msg = method_msg;
        if p.reserve {
            let token = self.reservation_token(alloc.relay);
            let next = SocketAddr::new(alloc.relay.ip(), alloc.relay.port().saturating_add(1));
            self.reservations.insert(token, (next, now + RESERVATION_LIFETIME));
            method_msg = method_msg.attr(stun::RESERVATION_TOKEN, &token);
        }
        let w = method_msg
            .xor_address(stun::XOR_RELAYED_ADDRESS, alloc.relay)
            .u32(stun::LIFETIME, p.lifetime.as_secs() as u32)
            .xor_address(stun::XOR_MAPPED_ADDRESS, alloc.client.client)
            .integrity(&alloc.key);
        let bytes = if p.fingerprint { w.finish_with_fingerprint() } else { w.finish() };
        alloc.allocate_response = bytes.clone();
        alloc.expires = now + p.lifetime;
        self.respond(alloc.client, bytes);
        *self.per_user.entry(alloc.user.clone()).or_insert(0) += 1;
        self.by_client.insert(alloc.client, relay);
        self.by_relay.insert(policy::canonical_addr(alloc.relay));
        if let Some(slot) = self.allocations.get_mut(relay.0 as usize) {
            *slot = Some(alloc);
        }
        self.stats.allocations_total += 1;
        self.next_sweep.get_or_insert(now + SWEEP_EVERY);
        debug!(relay = relay.0, "allocation created");
    }

    fn reservation_token(&self, relay: SocketAddr) -> [u8; 8] {
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.config.nonce_key).expect("HMAC takes any key");
        mac.update(b"reservation");
        mac.update(&relay.port().to_be_bytes());
        mac.update(&self.stats.allocations_total.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        let mut token = [0u8; 8];
        token.copy_from_slice(&tag[..8]);
        token
    }

    fn refresh(&mut self, now: Instant, from: ClientKey, m: &Message, relay: RelayId, auth: &Auth) {
        let Ok(requested) = m.u32(stun::LIFETIME) else {
            return self.error(from, m, 400, Some(&auth.key), Refusal::BadRequest);
        };
        let lifetime = self.lifetime(requested);
        if lifetime.is_zero() {
            self.remove(relay);
        } else if let Some(a) = self.allocations.get_mut(relay.0 as usize).and_then(Option::as_mut) {
            a.expires = now + lifetime;
        }
        self.success(from, m, &auth.key, |w| w.u32(stun::LIFETIME, lifetime.as_secs() as u32));
    }

    /// The peers of a request, each checked against the relay's family and the peer policy.
    fn peers(&mut self, from: ClientKey, m: &Message, relay: RelayId, key: &[u8; 16]) -> Option<Vec<SocketAddr>> {
        let relay_v6 = self.allocations.get(relay.0 as usize).and_then(Option::as_ref).map(|a| a.relay.is_ipv6());
        let mut peers = Vec::new();
        for value in m.get_all(stun::XOR_PEER_ADDRESS) {
            let Ok(peer) = m.xor_address(value, stun::XOR_PEER_ADDRESS) else {
                self.error(from, m, 400, Some(key), Refusal::BadRequest);
                return None;
            };
            if Some(peer.is_ipv6()) != relay_v6 {
                self.error(from, m, 443, Some(key), Refusal::BadRequest);
                return None;
            }
            if !self.peer_allowed(peer) {
                self.error(from, m, 403, Some(key), Refusal::ForbiddenPeer);
                return None;
            }
            peers.push(peer);
        }
        if peers.is_empty() {
            self.error(from, m, 400, Some(key), Refusal::BadRequest);
            return None;
        }
        Some(peers)
    }

    fn create_permission(&mut self, now: Instant, from: ClientKey, m: &Message, relay: RelayId, auth: &Auth) {
        let Some(peers) = self.peers(from, m, relay, &auth.key) else { return };
        let Some(a) = self.allocations.get_mut(relay.0 as usize).and_then(Option::as_mut) else { return };
        if !peers.iter().all(|p| a.permit(now, p.ip())) {
            return self.error(from, m, 508, Some(&auth.key), Refusal::Capacity);
        }
        self.success(from, m, &auth.key, |w| w);
    }

    fn channel_bind(&mut self, now: Instant, from: ClientKey, m: &Message, relay: RelayId, auth: &Auth) {
        let number = match m.get(stun::CHANNEL_NUMBER) {
            Some(&[a, b, _, _]) => u16::from_be_bytes([a, b]),
            _ => return self.error(from, m, 400, Some(&auth.key), Refusal::BadRequest),
        };
        if !(0x4000..=0x7FFF).contains(&number) || m.get_all(stun::XOR_PEER_ADDRESS).count() != 1 {
            return self.error(from, m, 400, Some(&auth.key), Refusal::BadRequest);
        }
        let Some(peers) = self.peers(from, m, relay, &auth.key) else { return };
        let Some(a) = self.allocations.get_mut(relay.0 as usize).and_then(Option::as_mut) else { return };
        match peers.first().map(|peer| a.bind(now, number, *peer)) {
            Some(Ok(())) => {
                self.success(from, m, &auth.key, |w| w);
            }
            Some(Err(BindError::TooMany)) => self.error(from, m, 508, Some(&auth.key), Refusal::Capacity),
            _ => self.error(from, m, 400, Some(&auth.key), Refusal::BadRequest),
        }
    }
}

/// Comprehension-required attributes this server understands.
fn known(typ: u16) -> bool {
    matches!(
        typ,
        stun::USERNAME
            | stun::MESSAGE_INTEGRITY
            | stun::MESSAGE_INTEGRITY_SHA256
            | stun::REALM
            | stun::NONCE
            | stun::LIFETIME
            | stun::XOR_PEER_ADDRESS
            | stun::DATA_ATTR
            | stun::CHANNEL_NUMBER
            | stun::REQUESTED_TRANSPORT
            | stun::REQUESTED_ADDRESS_FAMILY
            | stun::DONT_FRAGMENT
            | stun::EVEN_PORT
            | stun::RESERVATION_TOKEN
            | stun::MAPPED_ADDRESS
            | stun::XOR_MAPPED_ADDRESS
            | 0x0024 // PRIORITY, USE-CANDIDATE-like ICE attributes sent by some clients
            | 0x0025
    )
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        486 => "Allocation Quota Reached",
        508 => "Insufficient Capacity",
        _ => "Error",
    }
}
