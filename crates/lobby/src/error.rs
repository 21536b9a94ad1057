//! The lobby's one error type: refusals a client gets back in an error ack (each with a stable `code`),
//! and failures of the server itself (bind, Redis) with what to do about them.

use std::net::SocketAddr;

/// Everything that can go wrong in the lobby.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event's payload is not what the protocol describes.
    #[error("the payload of `{event}` is malformed: {reason}")]
    BadPayload { event: &'static str, reason: String },
    /// `find` with too many, too long or empty interest tags.
    #[error("interests: at most {max_tags} tags of at most {max_chars} characters each")]
    InvalidInterests { max_tags: usize, max_chars: usize },
    /// A text or signal over its size limit.
    #[error("{what} is larger than the limit of {limit} {unit}")]
    TooLarge { what: &'static str, limit: usize, unit: &'static str },
    /// More events than the per-socket rate allows.
    #[error("too many events: slow down")]
    RateLimited,
    /// So many refused events that the socket is disconnected.
    #[error("persistent abuse: disconnected")]
    Abusive,
    /// `signal`, `message` or `typing` without a partner.
    #[error("there is no partner to send this to")]
    NoPartner,
    /// `find` while already matched (use `next`).
    #[error("already matched: send `next` to change partner")]
    AlreadyMatched,
    /// `reachable` or `call` before proving an identity (`identify`).
    #[error("prove an identity first (challenge, then identify)")]
    NotIdentified,
    /// `identify` with a wrong, expired or reused challenge, a key that is not Ed25519, or a bad signature.
    #[error("the identity proof does not verify: {0}")]
    BadProof(&'static str),
    /// `call` to an ID that nobody made reachable (or that is gone).
    #[error("nobody is reachable under this ID")]
    Unreachable,
    /// `call` to someone who is in a conversation or another call.
    #[error("busy: in a conversation or another call")]
    Busy,
    /// `call` while the caller's own call is still ringing.
    #[error("a call is already ringing: cancel it first")]
    CallPending,
    /// `call_answer` or `call_cancel` without such a pending call.
    #[error("there is no such pending call")]
    NoCall,
    /// An event from a socket the lobby does not know (it already left).
    #[error("this socket is not in the lobby")]
    UnknownSocket,
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source} (is another process using it? pick another --listen)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// The HTTP server stopped with an error.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// The TLS certificate or key could not be read or do not belong together.
    #[error("TLS: {0}")]
    Tls(String),
    /// Redis (scale-out) could not be reached or refused a command.
    #[error("redis: {0} (check that --redis points at a running Redis 7 or newer)")]
    Redis(String),
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// The stable machine-readable code sent in error acks (see docs/lobby-protocol.md).
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadPayload { .. } => "bad_payload",
            Error::InvalidInterests { .. } => "invalid_interests",
            Error::TooLarge { .. } => "too_large",
            Error::RateLimited => "rate_limited",
            Error::Abusive => "abusive",
            Error::NoPartner => "no_partner",
            Error::AlreadyMatched => "already_matched",
            Error::UnknownSocket => "unknown_socket",
            Error::NotIdentified => "not_identified",
            Error::BadProof(_) => "bad_proof",
            Error::Unreachable => "unreachable",
            Error::Busy => "busy",
            Error::CallPending => "call_pending",
            Error::NoCall => "no_call",
            Error::Bind { .. } | Error::Serve(_) | Error::Tls(_) | Error::Redis(_) | Error::Config(_) => "server_error",
        }
    }

    /// Whether this refusal, found by the shell, counts as a strike towards an abuse disconnect
    /// (rate refusals are counted by [`Lobby::admit`](crate::Lobby::admit) itself).
    pub fn is_strike(&self) -> bool {
        matches!(
            self,
            Error::BadPayload { .. } | Error::TooLarge { .. } | Error::InvalidInterests { .. } | Error::BadProof(_)
        )
    }
}
