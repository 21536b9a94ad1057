//! Counters of a TURN server: refusals by reason and relayed packets and bytes. No addresses, no names.

/// Refused requests and dropped packets, by reason (counts only, for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Unauthorized,
    StaleNonce,
    WrongCredentials,
    AllocationMismatch,
    BadRequest,
    ForbiddenPeer,
    Quota,
    Capacity,
    Unsupported,
    NoAllocation,
    NoPermission,
    RateLimited,
}

impl Refusal {
    pub const ALL: [Refusal; 13] = [
        Refusal::Malformed,
        Refusal::Unauthorized,
        Refusal::StaleNonce,
        Refusal::WrongCredentials,
        Refusal::AllocationMismatch,
        Refusal::BadRequest,
        Refusal::ForbiddenPeer,
        Refusal::Quota,
        Refusal::Capacity,
        Refusal::Unsupported,
        Refusal::NoAllocation,
        Refusal::NoPermission,
        Refusal::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Unauthorized => "unauthorized",
            Refusal::StaleNonce => "stale_nonce",
            Refusal::WrongCredentials => "wrong_credentials",
            Refusal::AllocationMismatch => "allocation_mismatch",
            Refusal::BadRequest => "bad_request",
            Refusal::ForbiddenPeer => "forbidden_peer",
            Refusal::Quota => "quota",
            Refusal::Capacity => "capacity",
            Refusal::Unsupported => "unsupported",
            Refusal::NoAllocation => "no_allocation",
            Refusal::NoPermission => "no_permission",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

/// Counters of a server (no addresses, no names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub allocations: u64,
    pub allocations_total: u64,
    pub requests: u64,
    pub packets_to_peers: u64,
    pub packets_to_clients: u64,
    pub bytes_to_peers: u64,
    pub bytes_to_clients: u64,
    pub refused: [u64; Refusal::ALL.len()],
}

impl Stats {
    pub fn refused(&self, reason: Refusal) -> u64 {
        self.refused[reason as usize]
    }
}
