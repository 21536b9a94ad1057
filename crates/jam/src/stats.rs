//! Counters a server keeps about its traffic: what came in, what went out, and every datagram it
//! dropped, by reason. Plain numbers for metrics and tests; no addresses, names or contents.

/// Why a received datagram (or part of it) was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Larger than the 20 000 bytes a Jamulus peer handles.
    Oversized,
    /// Looks like a protocol frame (tag, length) but the CRC is wrong.
    BadCrc,
    /// A frame whose message did not decode (wrong size, bad value, unknown ID).
    InvalidMessage,
    /// A connection message from an address that has no channel.
    UnknownSource,
    /// A first datagram from a new address whose size is no Jamulus audio size.
    NotAudio,
    /// A new address while every channel is taken.
    ServerFull,
    /// Audio before the client announced a usable format.
    AudioBeforeFormat,
    /// Audio whose size does not match the announced format.
    AudioWrongSize,
    /// A format the codec cannot produce or decode (e.g. CELT, or an impossible frame size).
    UnsupportedFormat,
    /// The client does not acknowledge our messages and its queue is full.
    LinkQueueFull,
    /// A connection-less request over a source's reply budget (amplification limit).
    RateLimited,
}

impl DropReason {
    pub const ALL: [DropReason; 11] = [
        DropReason::Oversized,
        DropReason::BadCrc,
        DropReason::InvalidMessage,
        DropReason::UnknownSource,
        DropReason::NotAudio,
        DropReason::ServerFull,
        DropReason::AudioBeforeFormat,
        DropReason::AudioWrongSize,
        DropReason::UnsupportedFormat,
        DropReason::LinkQueueFull,
        DropReason::RateLimited,
    ];

    /// Name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Oversized => "oversized",
            DropReason::BadCrc => "bad_crc",
            DropReason::InvalidMessage => "invalid_message",
            DropReason::UnknownSource => "unknown_source",
            DropReason::NotAudio => "not_audio",
            DropReason::ServerFull => "server_full",
            DropReason::AudioBeforeFormat => "audio_before_format",
            DropReason::AudioWrongSize => "audio_wrong_size",
            DropReason::UnsupportedFormat => "unsupported_format",
            DropReason::LinkQueueFull => "link_queue_full",
            DropReason::RateLimited => "rate_limited",
        }
    }
}

/// Traffic counters since the server started.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    pub audio_packets_in: u64,
    pub audio_packets_out: u64,
    /// Personal mixes mixed and encoded, summed over ticks (listeners with equal settings share one).
    pub mixes_rendered: u64,
    /// Tick steps handed to the worker threads (`--multithreading`, large ticks only).
    pub parallel_passes: u64,
    pub ticks: u64,
    /// Ticks that ran more than one period late (the caller could not keep up).
    pub late_ticks: u64,
    /// Audio frames of clients that have left: arrived after their turn / missing and concealed.
    pub departed_frames_late: u64,
    pub departed_frames_lost: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl Stats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }
}
