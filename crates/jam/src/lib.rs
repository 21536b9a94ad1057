//! Jam state machines (server, client, directory), mixer and jitter buffer: no sockets, time injected.
//! The IO shells in `tutti-net` drive them; tests drive them with bytes and `Instant`s.
#![forbid(unsafe_code)]

mod channel;
pub mod chat;
pub mod client;
pub mod country;
pub mod directory;
pub mod instrument;
pub mod jitter;
pub mod level;
pub mod mix;
mod outbox;
mod personal_mix;
pub mod recording;
pub mod registration;
pub mod server;
pub mod stats;
pub mod stream;
pub mod tick_phase;

pub use channel::MAX_CHANNELS;
pub use chat::TimeOfDay;
pub use client::{Client, ClientConfig, ClientEvent, Reception};
pub use recording::{RecordedFrame, RecordingTap};
pub use server::{ClientSummary, Event, HandOver, Server, ServerConfig};
pub use stats::{DropReason, Stats};
pub use stream::{StreamConfig, StreamTap};
