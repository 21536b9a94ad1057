//! The one error type of this crate: what was wrong with bytes that came from the network, and where.
//! Every decoder returns it instead of panicking; nothing here allocates.

/// Why a message (or an audio packet) could not be decoded. `message` names the message type,
/// `field` the field being read when the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{message}: data ends inside field `{field}`")]
    Truncated { message: &'static str, field: &'static str },
    #[error("{message}: {extra} unexpected byte(s) after the last field")]
    TrailingBytes { message: &'static str, extra: usize },
    #[error("{message}: field `{field}` is {len} UTF-16 units long, the limit is {max}")]
    StringTooLong { message: &'static str, field: &'static str, len: usize, max: usize },
    #[error("{message}: field `{field}` has the invalid value {value}")]
    InvalidValue { message: &'static str, field: &'static str, value: u32 },
    #[error("{message}: field `{field}` is not an IPv4 address literal")]
    InvalidAddress { message: &'static str, field: &'static str },
    #[error("message ID {0} is not defined by the Jamulus 3.9.1 protocol")]
    UnknownId(u16),
    #[error("audio packet of {len} bytes, the announced format needs {expected}")]
    AudioSize { len: usize, expected: usize },
}
