//! The CBR custom-mode encoder with Jamulus' settings.

use crate::ffi::{self, EncoderCtl, RawEncoder};
use crate::{bitrate_bps, coded_bytes, coded_bytes_range, Channels, CodecError, FrameSize, Quality};

/// Packet loss percentage Jamulus configures on 64-sample encoders.
const OPUS64_PACKET_LOSS_PERC: i32 = 35;
/// Complexity Jamulus configures on 128-sample encoders.
const OPUS_COMPLEXITY: i32 = 1;

/// Encodes one frame at a time into packets of a fixed size (CBR).
///
/// Settings, as Jamulus 3.9.1 applies them: VBR off, bit rate
/// `48000 * coded_bytes * 8 / frame`, complexity 1 for 128-sample frames,
/// packet loss 35 % for 64-sample frames (complexity stays at CELT's default 5).
/// Jamulus also asks for `OPUS_APPLICATION_RESTRICTED_LOWDELAY`, which the
/// custom-mode encoder answers with `OPUS_UNIMPLEMENTED`; it is not sent here.
pub struct Encoder {
    raw: RawEncoder,
    frame: FrameSize,
    channels: Channels,
    coded_bytes: usize,
}

impl Encoder {
    /// An encoder with the coded size Jamulus uses for `quality`.
    pub fn new(frame: FrameSize, channels: Channels, quality: Quality) -> Result<Self, CodecError> {
        Self::with_coded_bytes(frame, channels, coded_bytes(frame, channels, quality))
    }

    /// An encoder producing `coded_bytes` bytes per frame (see [`coded_bytes_range`]).
    pub fn with_coded_bytes(frame: FrameSize, channels: Channels, coded_bytes: usize) -> Result<Self, CodecError> {
        let range = coded_bytes_range(frame, channels);
        if !range.contains(&coded_bytes) {
            return Err(CodecError::CodedBytesOutOfRange { coded_bytes, min: *range.start(), max: *range.end() });
        }
        let mut raw = RawEncoder::new(ffi::shared_mode(frame)?, channels)?;
        raw.ctl(EncoderCtl::Vbr, 0)?;
        raw.ctl(EncoderCtl::Bitrate, bitrate_bps(frame, coded_bytes) as i32)?;
        match frame {
            FrameSize::Samples128 => raw.ctl(EncoderCtl::Complexity, OPUS_COMPLEXITY)?,
            FrameSize::Samples64 => raw.ctl(EncoderCtl::PacketLossPerc, OPUS64_PACKET_LOSS_PERC)?,
        }
        Ok(Encoder { raw, frame, channels, coded_bytes })
    }

    /// Frame size of this encoder.
    pub fn frame_size(&self) -> FrameSize {
        self.frame
    }

    /// Channel layout of this encoder.
    pub fn channels(&self) -> Channels {
        self.channels
    }

    /// Bytes per coded frame; every packet has exactly this size.
    pub fn coded_bytes(&self) -> usize {
        self.coded_bytes
    }

    /// Interleaved samples per frame the encode functions take (frame x channels).
    pub fn pcm_len(&self) -> usize {
        self.frame.samples() * self.channels.count()
    }

    /// Encodes one frame of interleaved `i16` PCM into `packet`, which must be
    /// exactly [`Encoder::coded_bytes`] long. Returns the bytes written (always
    /// `coded_bytes`).
    pub fn encode(&mut self, pcm: &[i16], packet: &mut [u8]) -> Result<usize, CodecError> {
        self.check_packet(packet.len())?;
        let n = self.raw.encode(pcm, packet)?;
        self.check_written(n)
    }

    /// Like [`Encoder::encode`] for `f32` PCM (full scale = 1.0).
    pub fn encode_float(&mut self, pcm: &[f32], packet: &mut [u8]) -> Result<usize, CodecError> {
        self.check_packet(packet.len())?;
        let n = self.raw.encode_float(pcm, packet)?;
        self.check_written(n)
    }

    /// Forgets the signal history (as a freshly created encoder; settings are kept).
    pub fn reset(&mut self) -> Result<(), CodecError> {
        self.raw.reset()
    }

    fn check_packet(&self, len: usize) -> Result<(), CodecError> {
        if len != self.coded_bytes {
            return Err(CodecError::PacketBufferLength { expected: self.coded_bytes, actual: len });
        }
        Ok(())
    }

    fn check_written(&self, n: usize) -> Result<usize, CodecError> {
        if n != self.coded_bytes {
            return Err(CodecError::UnexpectedPacketLength { expected: self.coded_bytes, actual: n });
        }
        Ok(n)
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("frame", &self.frame)
            .field("channels", &self.channels)
            .field("coded_bytes", &self.coded_bytes)
            .finish_non_exhaustive()
    }
}
