//! Standard Opus for the listen-in stream: 48 kHz stereo, 20 ms frames, any bit rate, packets that
//! every Opus decoder (browsers, VLC, mpv, ffmpeg, opusdec) plays.
//!
//! The vendored libopus is the CELT layer only; CELT at 20 ms with libopus' built-in standard mode
//! writes standard Opus packets (TOC byte 0xF8/0xFC: CELT-only, fullband, 20 ms, one frame), which is
//! what libopus' full encoder chooses itself for stereo music at these bit rates. No SILK, no
//! resampler: the mix is already 48 kHz.

use crate::ffi::{self, EncoderCtl, RawEncoder};
use crate::{Channels, CodecError, MAX_PACKET_BYTES};

/// Samples per channel in one stream frame (20 ms at 48 kHz).
pub const STREAM_FRAME: usize = 960;
/// The encoder's delay in samples at 48 kHz (CELT's MDCT overlap, 2.5 ms), which RFC 7845 asks the
/// Ogg stream's `OpusHead` to declare as pre-skip.
pub const STREAM_PRE_SKIP: u16 = 120;
/// The default stream bit rate (bits per second).
pub const DEFAULT_STREAM_BITRATE: u32 = 128_000;
/// Bit rates the stream encoder accepts (bits per second).
pub const STREAM_BITRATES: std::ops::RangeInclusive<u32> = 16_000..=510_000;

/// Encodes 20 ms stereo frames into standard Opus packets (constrained VBR around the bit rate).
pub struct StreamEncoder {
    raw: RawEncoder,
    bitrate: u32,
}

impl StreamEncoder {
    /// An encoder for `bitrate` bits per second (within [`STREAM_BITRATES`]).
    pub fn new(bitrate: u32) -> Result<Self, CodecError> {
        if !STREAM_BITRATES.contains(&bitrate) {
            return Err(CodecError::BitrateOutOfRange {
                bitrate,
                min: *STREAM_BITRATES.start(),
                max: *STREAM_BITRATES.end(),
            });
        }
        let mut raw = RawEncoder::new(ffi::standard_mode()?, Channels::Stereo)?;
        raw.ctl(EncoderCtl::Vbr, 1)?;
        raw.ctl(EncoderCtl::Bitrate, bitrate as i32)?;
        raw.ctl(EncoderCtl::Complexity, 10)?;
        Ok(StreamEncoder { raw, bitrate })
    }

    /// The bit rate this encoder aims at.
    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Encodes one frame ([`STREAM_FRAME`] stereo samples, interleaved, full scale = 1.0) into
    /// `packet` (at most [`MAX_PACKET_BYTES`] of it are used); returns the packet's length.
    pub fn encode_float(&mut self, pcm: &[f32], packet: &mut [u8]) -> Result<usize, CodecError> {
        let len = packet.len().min(MAX_PACKET_BYTES);
        self.raw.encode_float(pcm, &mut packet[..len])
    }
}

impl std::fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncoder").field("bitrate", &self.bitrate).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::RawDecoder;

    fn decode_all(packets: &[Vec<u8>]) -> Vec<f32> {
        let mut dec = RawDecoder::new(ffi::standard_mode().unwrap(), Channels::Stereo).unwrap();
        let mut out = Vec::new();
        for p in packets {
            let mut pcm = vec![0.0f32; STREAM_FRAME * 2];
            assert_eq!(dec.decode_float(Some(p), &mut pcm).unwrap(), STREAM_FRAME);
            out.extend_from_slice(&pcm);
        }
        out
    }

    #[test]
    fn packets_are_standard_celt_only_fullband_20_ms_stereo() {
        let mut enc = StreamEncoder::new(DEFAULT_STREAM_BITRATE).unwrap();
        let mut packets = Vec::new();
        let mut t = 0usize;
        for _ in 0..100 {
            let pcm: Vec<f32> = (0..STREAM_FRAME)
                .flat_map(|i| {
                    let s = 0.5 * (std::f32::consts::TAU * 440.0 * (t + i) as f32 / 48_000.0).sin();
                    [s, s]
                })
                .collect();
            t += STREAM_FRAME;
            let mut packet = [0u8; 1500];
            let n = enc.encode_float(&pcm, &mut packet).unwrap();
            // TOC (RFC 6716 §3.1): config 31 (CELT-only, fullband, 20 ms), stereo, one frame.
            assert_eq!(packet[0], 0xFC, "TOC {:#x}", packet[0]);
            packets.push(packet[..n].to_vec());
        }
        let bytes: usize = packets.iter().map(Vec::len).sum();
        let kbps = bytes as f32 * 8.0 / 2.0 / 1000.0;
        assert!((100.0..=160.0).contains(&kbps), "about 128 kbit/s: {kbps}");
        let pcm = decode_all(&packets);
        let tail = &pcm[pcm.len() / 2..];
        let rms = (tail.iter().map(|s| s * s).sum::<f32>() / tail.len() as f32).sqrt();
        assert!((rms - 0.5 / 2f32.sqrt()).abs() < 0.03, "the tone survives: rms {rms}");
    }

    #[test]
    fn pre_skip_is_the_encoders_delay() {
        let mut enc = StreamEncoder::new(DEFAULT_STREAM_BITRATE).unwrap();
        let mut packets = Vec::new();
        for frame in 0..4 {
            let mut pcm = vec![0.0f32; STREAM_FRAME * 2];
            if frame == 1 {
                pcm[200 * 2] = 0.9;
                pcm[200 * 2 + 1] = 0.9;
            }
            let mut packet = [0u8; 1275];
            let n = enc.encode_float(&pcm, &mut packet).unwrap();
            packets.push(packet[..n].to_vec());
        }
        let pcm = decode_all(&packets);
        let peak = (0..pcm.len() / 2).max_by(|&a, &b| pcm[a * 2].abs().total_cmp(&pcm[b * 2].abs())).unwrap();
        let delay = peak as i64 - (STREAM_FRAME + 200) as i64;
        assert!((delay - i64::from(STREAM_PRE_SKIP)).abs() <= 2, "impulse delayed by {delay} samples");
    }

    #[test]
    fn bit_rates_outside_the_range_are_refused() {
        assert!(matches!(StreamEncoder::new(8_000), Err(CodecError::BitrateOutOfRange { .. })));
        assert_eq!(StreamEncoder::new(64_000).unwrap().bitrate(), 64_000);
    }
}
