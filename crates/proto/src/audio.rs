//! Audio datagram framing (§4.2–§4.3): codec payload sizes per mode/quality/channels, and the layout of
//! an audio datagram as F coded frames each optionally followed by a sequence byte. No codec here:
//! the coded bytes are opaque (see `tutti-codec`).

use crate::message::TransportProps;
use crate::DecodeError;

/// Audio codec announced in NETW_TRANSPORT_PROPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// Obsolete; a 3.9.1 server answers OPUS_SUPPORTED and ignores the stream.
    Celt,
    /// Opus custom mode, 128-sample frames.
    Opus,
    /// Opus custom mode, 64-sample frames.
    Opus64,
}

impl AudioCodec {
    pub fn from_wire(v: u16) -> Option<Self> {
        match v {
            1 => Some(AudioCodec::Celt),
            2 => Some(AudioCodec::Opus),
            3 => Some(AudioCodec::Opus64),
            _ => None,
        }
    }

    pub fn to_wire(self) -> u16 {
        match self {
            AudioCodec::Celt => 1,
            AudioCodec::Opus => 2,
            AudioCodec::Opus64 => 3,
        }
    }

    /// Samples per coded frame at 48 kHz (`None` for CELT, which 3.9.1 refuses).
    pub fn frame_samples(self) -> Option<usize> {
        match self {
            AudioCodec::Celt => None,
            AudioCodec::Opus => Some(128),
            AudioCodec::Opus64 => Some(64),
        }
    }
}

/// Audio quality setting of a Jamulus client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    Low,
    Normal,
    High,
}

/// Sample rate of every Jamulus stream.
pub const SAMPLE_RATE: u32 = 48_000;

/// Coded bytes per frame (`iCeltNumCodedBytes`) for a codec, channel count (1 or 2; mono-in/stereo-out
/// is sent as 2) and quality. `None` for CELT or a channel count other than 1 or 2.
pub fn coded_bytes(codec: AudioCodec, channels: u8, quality: Quality) -> Option<usize> {
    use Quality::*;
    let table: [[usize; 3]; 2] = match codec {
        AudioCodec::Opus64 => [[12, 22, 36], [24, 35, 73]],
        AudioCodec::Opus => [[25, 45, 82], [47, 71, 165]],
        AudioCodec::Celt => return None,
    };
    let row = match channels {
        1 => table[0],
        2 => table[1],
        _ => return None,
    };
    Some(match quality {
        Low => row[0],
        Normal => row[1],
        High => row[2],
    })
}

/// One coded frame inside an audio datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFrame<'a> {
    pub coded: &'a [u8],
    /// The trailing sequence byte, when the stream carries counters.
    pub sequence: Option<u8>,
}

/// The layout of one peer's audio datagrams, derived from its NETW_TRANSPORT_PROPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub codec: AudioCodec,
    pub channels: u8,
    /// Coded bytes per frame, without the sequence byte.
    pub coded_bytes: usize,
    /// Frames per datagram (1, 2 or 4).
    pub frames_per_packet: usize,
    pub with_counter: bool,
}

impl AudioFormat {
    /// The format a client with these settings sends (`None` for CELT or a bad channel count).
    pub fn new(
        codec: AudioCodec,
        channels: u8,
        quality: Quality,
        frames_per_packet: usize,
        with_counter: bool,
    ) -> Option<Self> {
        let coded_bytes = coded_bytes(codec, channels, quality)?;
        if ![1, 2, 4].contains(&frames_per_packet) {
            return None;
        }
        Some(AudioFormat { codec, channels, coded_bytes, frames_per_packet, with_counter })
    }

    /// The format announced by `props`, or `None` for CELT (whose stream a 3.9.1 server ignores),
    /// or a base size too small for the counter byte. Props from [`crate::Message::decode`] are
    /// already range-checked.
    pub fn from_props(props: &TransportProps) -> Option<Self> {
        props.codec.frame_samples()?;
        let counter = usize::from(props.with_counter());
        let coded_bytes = (props.base_frame_size as usize).checked_sub(counter).filter(|&n| n > 0)?;
        Some(AudioFormat {
            codec: props.codec,
            channels: props.channels,
            coded_bytes,
            frames_per_packet: usize::from(props.block_factor),
            with_counter: props.with_counter(),
        })
    }

    /// The NETW_TRANSPORT_PROPS that announces this format.
    pub fn to_props(&self) -> TransportProps {
        TransportProps {
            base_frame_size: self.frame_len() as u32,
            block_factor: self.frames_per_packet as u16,
            channels: self.channels,
            sample_rate: SAMPLE_RATE,
            codec: self.codec,
            flags: if self.with_counter { TransportProps::WITH_COUNTER } else { 0 },
            codec_arg: 0,
        }
    }

    /// Samples per coded frame.
    pub fn frame_samples(&self) -> usize {
        self.codec.frame_samples().unwrap_or(128)
    }

    /// Bytes per frame on the wire (coded bytes plus the sequence byte if any).
    pub fn frame_len(&self) -> usize {
        self.coded_bytes + usize::from(self.with_counter)
    }

    /// Exact size of every audio datagram in this format.
    pub fn packet_len(&self) -> usize {
        self.frame_len() * self.frames_per_packet
    }

    /// The frames of an audio datagram; an error if its size is not exactly [`Self::packet_len`].
    pub fn frames<'a>(&self, datagram: &'a [u8]) -> Result<impl Iterator<Item = AudioFrame<'a>> + 'a, DecodeError> {
        if datagram.len() != self.packet_len() {
            return Err(DecodeError::AudioSize { len: datagram.len(), expected: self.packet_len() });
        }
        let coded_bytes = self.coded_bytes;
        let with_counter = self.with_counter;
        Ok(datagram.chunks_exact(self.frame_len()).map(move |chunk| {
            let (coded, rest) = chunk.split_at(coded_bytes);
            AudioFrame { coded, sequence: if with_counter { rest.first().copied() } else { None } }
        }))
    }

    /// Builds one datagram in `out` (cleared first) from `coded`, the packet's frames back to back.
    /// `counter` advances by one per frame, also when this format carries no counters (as Jamulus does).
    pub fn assemble(&self, coded: &[u8], counter: &mut u8, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let expected = self.coded_bytes * self.frames_per_packet;
        if coded.len() != expected {
            return Err(DecodeError::AudioSize { len: coded.len(), expected });
        }
        out.clear();
        for frame in coded.chunks_exact(self.coded_bytes) {
            out.extend_from_slice(frame);
            if self.with_counter {
                out.push(*counter);
            }
            *counter = counter.wrapping_add(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_the_capture() {
        // Client OPUS64 mono normal: 22 bytes, 23 with counter [cap #2, #22].
        let f = AudioFormat::new(AudioCodec::Opus64, 1, Quality::Normal, 1, true).unwrap();
        assert_eq!(f.packet_len(), 23);
        assert_eq!(f.to_props().base_frame_size, 23);
        // OPUS stereo high, F=2, counter = 332 (§4.3).
        let f = AudioFormat::new(AudioCodec::Opus, 2, Quality::High, 2, true).unwrap();
        assert_eq!(f.packet_len(), 332);
        assert_eq!(AudioFormat::new(AudioCodec::Opus, 1, Quality::Normal, 1, true).unwrap().packet_len(), 46);
    }

    #[test]
    fn assemble_and_split_round_trip() {
        let f = AudioFormat::new(AudioCodec::Opus, 1, Quality::Low, 4, true).unwrap();
        let coded: Vec<u8> = (0..100).collect();
        let mut counter = 254;
        let mut out = Vec::new();
        f.assemble(&coded, &mut counter, &mut out).unwrap();
        assert_eq!(counter, 2);
        let frames: Vec<_> = f.frames(&out).unwrap().collect();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].coded, &coded[..25]);
        assert_eq!(frames.iter().map(|f| f.sequence.unwrap()).collect::<Vec<_>>(), [254, 255, 0, 1]);
        assert!(f.frames(&out[1..]).is_err());
    }

    #[test]
    fn counter_advances_without_counters_on_the_wire() {
        let f = AudioFormat::new(AudioCodec::Opus64, 1, Quality::Normal, 2, false).unwrap();
        let mut counter = 0;
        let mut out = Vec::new();
        f.assemble(&[0; 44], &mut counter, &mut out).unwrap();
        assert_eq!((counter, out.len()), (2, 44));
    }

    #[test]
    fn props_round_trip_and_celt_refused() {
        let f = AudioFormat::new(AudioCodec::Opus, 2, Quality::Normal, 2, false).unwrap();
        assert_eq!(AudioFormat::from_props(&f.to_props()), Some(f));
        let mut celt = f.to_props();
        celt.codec = AudioCodec::Celt;
        assert_eq!(AudioFormat::from_props(&celt), None);
    }
}
