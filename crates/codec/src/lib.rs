//! Opus custom-mode (CELT) encoding and decoding exactly as Jamulus 3.9.1 uses it.
//!
//! Jamulus does not send standard Opus packets: it uses the *custom mode* API
//! (`opus_custom_*`) at 48 kHz with frames of 64 samples (codec "OPUS64") or
//! 128 samples (codec "OPUS"), CBR, one fixed number of coded bytes per frame
//! (see [`coded_bytes`]). The packets start with CELT's one-byte custom-mode
//! header (`0x00` mono, `0x04` stereo for these frame sizes).
//!
//! libopus 1.6.1 (CELT layer only) is compiled from vendored source by
//! `tutti-opus-sys`; no system libopus is used.
//!
//! ```
//! use tutti_codec::{Channels, Decoder, Encoder, FrameSize, Quality};
//!
//! let mut enc = Encoder::new(FrameSize::Samples64, Channels::Mono, Quality::Normal)?;
//! let mut dec = Decoder::new(FrameSize::Samples64, Channels::Mono)?;
//! let pcm = [0i16; 64];
//! let mut packet = [0u8; 22];
//! assert_eq!(enc.encode(&pcm, &mut packet)?, 22);
//! let mut out = [0i16; 64];
//! assert_eq!(dec.decode(Some(&packet), &mut out)?, 64);
//! assert_eq!(dec.decode(None, &mut out)?, 64); // lost frame: concealment
//! # Ok::<(), tutti_codec::CodecError>(())
//! ```
//!
//! Encoders and decoders are `Send`, do not allocate per frame, and share one
//! immutable `OpusCustomMode` per frame size for the whole process.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod decoder;
mod encoder;
mod ffi;
mod stream_encoder;

pub use decoder::Decoder;
pub use encoder::Encoder;
pub use stream_encoder::{StreamEncoder, DEFAULT_STREAM_BITRATE, STREAM_BITRATES, STREAM_FRAME, STREAM_PRE_SKIP};

/// Sample rate of every Jamulus audio stream.
pub const SAMPLE_RATE_HZ: u32 = 48_000;

/// The largest packet libopus accepts, in bytes.
pub const MAX_PACKET_BYTES: usize = ffi::MAX_PACKET_BYTES;

/// The version string of the linked libopus, e.g. `"libopus 1.6.1"`.
pub fn opus_version() -> &'static str {
    ffi::version_string()
}

/// Samples per channel in one coded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameSize {
    /// 64 samples (1.333 ms): Jamulus codec 3, "OPUS64", 750 frames/s.
    Samples64,
    /// 128 samples (2.667 ms): Jamulus codec 2, "OPUS", 375 frames/s.
    Samples128,
}

impl FrameSize {
    /// Samples per channel in one frame (64 or 128).
    pub const fn samples(self) -> usize {
        match self {
            FrameSize::Samples64 => 64,
            FrameSize::Samples128 => 128,
        }
    }

    /// Frames per second at 48 kHz (750 or 375).
    pub const fn frames_per_second(self) -> u32 {
        SAMPLE_RATE_HZ / self.samples() as u32
    }

    /// The Jamulus codec that carries frames of this size.
    pub const fn codec(self) -> tutti_proto::AudioCodec {
        match self {
            FrameSize::Samples64 => tutti_proto::AudioCodec::Opus64,
            FrameSize::Samples128 => tutti_proto::AudioCodec::Opus,
        }
    }

    /// The frame size with `samples` samples per channel, if Jamulus uses it.
    pub const fn from_samples(samples: usize) -> Result<FrameSize, CodecError> {
        match samples {
            64 => Ok(FrameSize::Samples64),
            128 => Ok(FrameSize::Samples128),
            other => Err(CodecError::UnsupportedFrameSize(other)),
        }
    }
}

/// Channel layout of the coded stream. PCM is interleaved `L, R` for stereo.
///
/// Jamulus' "mono-in/stereo-out" is transmitted as [`Channels::Stereo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channels {
    /// One channel.
    Mono,
    /// Two channels, interleaved `L, R`.
    Stereo,
}

impl Channels {
    /// 1 or 2.
    pub const fn count(self) -> usize {
        match self {
            Channels::Mono => 1,
            Channels::Stereo => 2,
        }
    }

    /// The layout for a channel count of 1 or 2.
    pub const fn from_count(count: usize) -> Result<Channels, CodecError> {
        match count {
            1 => Ok(Channels::Mono),
            2 => Ok(Channels::Stereo),
            other => Err(CodecError::UnsupportedChannels(other)),
        }
    }
}

/// Jamulus' audio quality setting; selects the coded bytes per frame. The table is a wire fact and
/// lives in `tutti-proto`.
pub use tutti_proto::Quality;

/// Coded bytes per frame that Jamulus 3.9.1 uses (`iCeltNumCodedBytes`).
///
/// | frame | mono low/normal/high | stereo low/normal/high |
/// |---|---|---|
/// | 64 (OPUS64) | 12 / 22 / 36 | 24 / 35 / 73 |
/// | 128 (OPUS) | 25 / 45 / 82 | 47 / 71 / 165 |
pub fn coded_bytes(frame: FrameSize, channels: Channels, quality: Quality) -> usize {
    tutti_proto::audio::coded_bytes(frame.codec(), channels.count() as u8, quality)
        .expect("the table covers OPUS and OPUS64 with one or two channels")
}

/// The bit rate Jamulus configures for a CBR stream: `48000 * bytes * 8 / frame`.
pub const fn bitrate_bps(frame: FrameSize, coded_bytes: usize) -> u32 {
    (SAMPLE_RATE_HZ as usize * coded_bytes * 8 / frame.samples()) as u32
}

/// The range of coded bytes per frame an [`Encoder`] accepts.
///
/// The lower bound is 3: one custom-mode header byte plus CELT's minimum of two
/// payload bytes (asking for 2 yields 3-byte packets). The upper bound is where the configured bit rate would exceed CELT's
/// 750 kb/s-per-channel cap (which would shrink CBR packets): 125 bytes for
/// 64-sample mono, 250 for 64-sample stereo and 128-sample mono, 500 for
/// 128-sample stereo.
pub const fn coded_bytes_range(frame: FrameSize, channels: Channels) -> std::ops::RangeInclusive<usize> {
    let max = 750_000 * channels.count() * frame.samples() / (SAMPLE_RATE_HZ as usize * 8);
    3..=max
}

/// Everything that can go wrong in this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Jamulus only uses 64- and 128-sample frames.
    #[error("unsupported frame size of {0} samples (Jamulus uses 64 or 128)")]
    UnsupportedFrameSize(usize),
    /// Only mono and stereo exist.
    #[error("unsupported channel count {0} (1 = mono, 2 = stereo)")]
    UnsupportedChannels(usize),
    /// See [`coded_bytes_range`].
    #[error("{coded_bytes} coded bytes per frame is outside {min}..={max} for this frame size and channel count")]
    CodedBytesOutOfRange {
        /// What was asked for.
        coded_bytes: usize,
        /// Smallest accepted value.
        min: usize,
        /// Largest accepted value.
        max: usize,
    },
    /// PCM buffers must hold exactly one frame (samples per channel x channels).
    #[error("PCM buffer holds {actual} samples, expected {expected} (one frame, interleaved)")]
    PcmLength {
        /// Frame samples x channels.
        expected: usize,
        /// The buffer's length.
        actual: usize,
    },
    /// The packet buffer given to [`Encoder::encode`] must be exactly the coded size.
    #[error("packet buffer holds {actual} bytes, expected exactly {expected} (the coded bytes per frame)")]
    PacketBufferLength {
        /// The encoder's coded bytes per frame.
        expected: usize,
        /// The buffer's length.
        actual: usize,
    },
    /// See [`STREAM_BITRATES`].
    #[error("stream bit rate {bitrate} bit/s is outside {min}..={max}")]
    BitrateOutOfRange {
        /// What was asked for.
        bitrate: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// A packet handed to a decoder exceeds the Opus maximum.
    #[error("packet of {0} bytes is longer than the {max}-byte Opus maximum", max = MAX_PACKET_BYTES)]
    PacketTooLong(usize),
    /// The encoder produced another size than requested (must not happen in CBR).
    #[error("encoder produced {actual} bytes instead of {expected} (CBR violated)")]
    UnexpectedPacketLength {
        /// The encoder's coded bytes per frame.
        expected: usize,
        /// What libopus returned.
        actual: usize,
    },
    /// libopus reported an error.
    #[error("{call} failed: {} (opus error {code})", ffi::error_message(*code))]
    Opus {
        /// The libopus function or CTL.
        call: &'static str,
        /// The (negative) libopus error code.
        code: i32,
    },
}
