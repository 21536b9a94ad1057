//! The Jamulus 3.9.1 wire protocol, sans IO: frames and their CRC, every message, split messages,
//! reliable delivery of connection messages, and audio datagram framing.
//!
//! Nothing in this crate owns a socket or reads a clock; time comes in as `Instant` arguments.
//! Every decoder returns [`DecodeError`] for malformed input and never panics.
#![forbid(unsafe_code)]

pub mod audio;
mod crc;
mod error;
pub mod frame;
pub mod link;
pub mod message;
pub mod pcap;
pub mod split;
mod wire;

pub use audio::{AudioCodec, AudioFormat, AudioFrame, Quality};
pub use crc::crc16;
pub use error::DecodeError;
pub use frame::{Datagram, Frame};
pub use link::{Delivered, Link, LinkError};
pub use message::Message;
pub use wire::{truncate_utf16, utf16_len};

/// The protocol version this crate speaks, as sent in VERSION_AND_OS.
pub const JAMULUS_VERSION: &str = "3.9.1";
