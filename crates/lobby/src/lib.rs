//! Lobby: an anonymous random video-chat lobby. It matches strangers (by shared interests first), relays
//! WebRTC signaling, text and typing between the two partners of a pair, and keeps everything in RAM,
//! forgetting a socket at disconnect. The protocol is Socket.IO v5 (docs/lobby-protocol.md).
//!
//! Optional identities: a socket may prove an Ed25519 key (a signed fresh challenge), make its ID
//! reachable while connected, and call or be called by ID; an accepted call pairs like a match.
//!
//! Sans-IO core: [`Lobby`] (matching, pairs, calls, limits) is synchronous and pure; [`server`] is the
//! thin axum + socketioxide shell around it, [`page`] the embedded web page, and [`registry_proxy`]
//! forwards the page's name look-ups to the operator's registry.

mod error;
mod interests;
mod limits;
mod lobby;
mod metrics;
mod online;

pub use error::Error;
pub use interests::Interests;
pub use limits::{Budget, Limits};
pub use lobby::{CallEnd, Counts, Lobby, Notice, Refusals, CHALLENGE_TTL};
pub use online::Online;

mod address_pace;
mod admission;
mod config;
#[doc(hidden)]
pub mod fuzz;
mod handlers;
mod hub;
#[cfg(feature = "load")]
pub mod load;
pub mod page;
mod redis_queue;
pub mod registry_proxy;
mod relay;
pub mod server;
pub mod tls;

pub use config::{IceServer, LobbyConfig, DEFAULT_ACCEPT_RATE, DEFAULT_ACCEPT_RATE_PER_ADDRESS};
pub use relay::{random_user_id, TurnAccess, DEFAULT_TURN_TTL};
pub use server::LobbyServer;
pub use tls::TlsFiles;
