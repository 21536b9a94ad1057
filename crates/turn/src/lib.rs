//! tutti's TURN relay (RFC 8656 over UDP and TCP, UDP relays): the STUN codec ([`stun`]), coturn's
//! TURN REST credentials ([`credentials`]), which peers may be reached ([`policy`]) and the allocation
//! state machine ([`server`]) are sans-IO, with time as an input; [`shell`] runs them on mio sockets.

pub mod allocation;
pub mod batch;
pub mod credentials;
pub mod policy;
pub mod server;
pub mod shell;
pub mod stats;
pub mod stun;

pub use credentials::{rest_credentials, CredentialError};
pub use policy::{IpRange, PeerPolicy};
pub use server::{ClientKey, Config, Event, RelayId, Server, Transmit, Transport, Via};
pub use shell::{random_nonce_key, unix_now, ShellConfig, TurnError, TurnRelay};
pub use stats::{Refusal, Stats};
pub use stun::DecodeError;
