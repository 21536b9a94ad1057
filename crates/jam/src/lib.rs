//! Jam state machines (server, client, directory), mixer and jitter buffer: no sockets, time injected.
//! The tokio/thread shells in `tutti-net` drive them; tests drive them with bytes and `Instant`s.
#![forbid(unsafe_code)]

pub mod chat;
pub mod level;
pub mod mix;
