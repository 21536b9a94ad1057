//! What a privacy policy has to say, as plain facts about the configuration the services run with. Each part
//! that is not running is `None`. Built from the same settings the services start from (see `privacy::facts_of`),
//! rendered by `privacy::render`.

use std::path::PathBuf;

/// Everything the policy depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Who runs the service, as the operator says (`--operator`), if said.
    pub operator: Option<String>,
    pub jam: Option<JamFacts>,
    pub lobby: Option<LobbyFacts>,
    pub registry: Option<RegistryFacts>,
    pub turn: Option<TurnFacts>,
}

/// The jam server (and, if it is one, the directory it also is).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JamFacts {
    /// `--log FILE`: a connection log with time, client IP address and client count.
    pub connection_log: Option<PathBuf>,
    /// `--recording DIR`, and whether recording starts switched on.
    pub recording: Option<(PathBuf, bool)>,
    /// `--directoryserver HOST`: the directory this server registers with (a third party).
    pub registers_with: Option<String>,
    /// `--serverpublicip`: the address sent to the directory.
    pub public_ip: Option<String>,
    /// The server is a directory too: other servers' listings kept in memory.
    pub is_directory: bool,
    /// `--directoryfile`: the directory's list kept on disk across restarts.
    pub directory_file: Option<PathBuf>,
    /// `--metrics ADDR`.
    pub metrics: Option<String>,
    /// JSON-RPC address (operator's control interface: it can see names and addresses of clients).
    pub json_rpc: Option<String>,
    /// `--stream ADDR`: the listen-in stream's HTTP address (listeners are anonymous).
    pub stream: Option<String>,
    /// `--stream-to`: the Icecast server (host:port/mount) the stream is pushed to (a third party).
    pub stream_icecast: Option<String>,
}

/// The lobby (random video chat).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LobbyFacts {
    /// STUN/TURN URLs given to the page (each host a third party the browser contacts).
    pub ice_servers: Vec<String>,
    /// TURN URLs the lobby hands short-lived credentials for.
    pub turn_urls: Vec<String>,
    /// Every call goes through the relay: partners never see each other's addresses.
    pub relay_only: bool,
    /// Redis URL of the scale-out (lobby state shared between processes, in Redis memory).
    pub redis: Option<String>,
    /// The registry that name look-ups are forwarded to.
    pub registry: Option<String>,
    /// HTTPS built in.
    pub tls: bool,
}

/// The name registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryFacts {
    /// Where registrations are kept: "SQLite database FILE", "PostgreSQL", "memory".
    pub store: String,
    /// Registrations kept on disk (survive restarts) rather than in memory.
    pub durable: bool,
    /// `--log-requests`: method, route and status of each request (no address, no name).
    pub log_requests: bool,
    /// Registrations per minute per source network (0: no limit).
    pub registrations_per_minute: u32,
}

/// The TURN relay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnFacts {
    pub realm: String,
    /// `--metrics`: counts only.
    pub metrics: Option<String>,
    /// Bandwidth cap per allocation (bytes per second, 0: none).
    pub max_bps: u64,
}
