//! The custom-mode decoder, with packet-loss concealment.

use crate::ffi::{self, RawDecoder};
use crate::{Channels, CodecError, FrameSize};

/// Decodes one frame at a time; a missing frame is concealed (Opus PLC).
///
/// Packets of any size up to 1275 bytes are accepted (CELT decodes whatever
/// size it is given; Jamulus packets have the sender's fixed coded size, with
/// any trailing sequence-counter byte already removed). The channel count is
/// that of the output PCM: a mono decoder downmixes a stereo packet and a
/// stereo decoder duplicates a mono one.
pub struct Decoder {
    raw: RawDecoder,
    frame: FrameSize,
    channels: Channels,
}

impl Decoder {
    /// A decoder for `frame`-sized frames producing `channels` channels.
    pub fn new(frame: FrameSize, channels: Channels) -> Result<Self, CodecError> {
        let raw = RawDecoder::new(ffi::shared_mode(frame)?, channels)?;
        Ok(Decoder { raw, frame, channels })
    }

    /// Frame size of this decoder.
    pub fn frame_size(&self) -> FrameSize {
        self.frame
    }

    /// Channel layout of the decoded PCM.
    pub fn channels(&self) -> Channels {
        self.channels
    }

    /// Interleaved samples per frame the decode functions write (frame x channels).
    pub fn pcm_len(&self) -> usize {
        self.frame.samples() * self.channels.count()
    }

    /// Decodes `packet` (or conceals a lost frame when it is `None` or empty)
    /// into `pcm`, which must be exactly [`Decoder::pcm_len`] long. Returns the
    /// samples per channel written (the frame size).
    pub fn decode(&mut self, packet: Option<&[u8]>, pcm: &mut [i16]) -> Result<usize, CodecError> {
        self.raw.decode(packet, pcm)
    }

    /// Like [`Decoder::decode`] with `f32` output (full scale = 1.0, not clipped).
    pub fn decode_float(&mut self, packet: Option<&[u8]>, pcm: &mut [f32]) -> Result<usize, CodecError> {
        self.raw.decode_float(packet, pcm)
    }

    /// Forgets the signal history (as a freshly created decoder).
    pub fn reset(&mut self) -> Result<(), CodecError> {
        self.raw.reset()
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("frame", &self.frame).field("channels", &self.channels).finish_non_exhaustive()
    }
}
