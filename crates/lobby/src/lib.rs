//! Lobby: an anonymous random video-chat lobby. It matches strangers (by shared interests first), relays
//! WebRTC signaling, text and typing between the two partners of a pair, and keeps everything in RAM,
//! forgetting a socket at disconnect. The protocol is Socket.IO v5 (docs/lobby-protocol.md).
//!
//! Sans-IO core: [`Lobby`] (matching, pairs, limits) is synchronous and pure; [`server`] is the thin
//! axum + socketioxide shell around it, and [`page`] the embedded web page.

mod error;
mod interests;
mod limits;
mod lobby;
mod online;

pub use error::Error;
pub use interests::Interests;
pub use limits::{Budget, Limits};
pub use lobby::{CallEnd, Counts, Lobby, Notice, CHALLENGE_TTL};
pub use online::Online;

mod config;
mod handlers;
mod hub;
pub mod page;
mod redis_queue;
pub mod registry_proxy;
pub mod server;

pub use config::{IceServer, LobbyConfig};
pub use server::LobbyServer;
