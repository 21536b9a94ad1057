//! Protocol frames (§1.1) and the rule that tells them from audio (§1.2): a datagram is a protocol frame
//! only if it is ≥ 9 bytes, starts with `00 00`, its length field equals size − 9 and its CRC matches.
//! Everything else is audio. This module does not interpret message data.

use crate::crc::crc16;

/// Size of the header (tag, ID, counter, length) in front of the data part.
pub const HEADER_LEN: usize = 7;
/// Header plus CRC: a frame is exactly this much longer than its data.
pub const OVERHEAD: usize = HEADER_LEN + 2;
/// The largest datagram a Jamulus peer handles (`MAX_SIZE_BYTES_NETW_BUF`).
pub const MAX_DATAGRAM: usize = 20_000;

/// A protocol frame borrowed from a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub id: u16,
    /// Sequence counter; 0 for connection-less messages.
    pub cnt: u8,
    pub data: &'a [u8],
}

/// What one received datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    Protocol(Frame<'a>),
    Audio(&'a [u8]),
}

impl<'a> Datagram<'a> {
    /// Applies the receiver's test exactly as a Jamulus peer does.
    pub fn classify(bytes: &'a [u8]) -> Self {
        match Frame::parse(bytes) {
            Some(frame) => Datagram::Protocol(frame),
            None => Datagram::Audio(bytes),
        }
    }
}

impl<'a> Frame<'a> {
    /// The frame in `bytes`, or `None` if they are not a protocol frame (then they are audio).
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        if bytes.len() < OVERHEAD || bytes[0] != 0 || bytes[1] != 0 {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([bytes[5], bytes[6]]));
        if len != bytes.len() - OVERHEAD {
            return None;
        }
        let (body, crc) = bytes.split_at(HEADER_LEN + len);
        if crc16(body) != u16::from_le_bytes([crc[0], crc[1]]) {
            return None;
        }
        Some(Frame { id: u16::from_le_bytes([bytes[2], bytes[3]]), cnt: bytes[4], data: &body[HEADER_LEN..] })
    }

    /// True for IDs 1000…1999, which take the connection-less path (§1.2).
    pub fn is_connection_less(&self) -> bool {
        crate::message::is_connection_less(self.id)
    }

    /// The datagram for this frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(OVERHEAD + self.data.len());
        write_frame(&mut out, self.id, self.cnt, self.data);
        out
    }
}

/// Appends a complete frame (header, `data`, CRC) to `out`.
///
/// # Panics
/// If `data` is longer than 65535 bytes: callers build data parts from bounded messages, so this is a bug.
pub fn write_frame(out: &mut Vec<u8>, id: u16, cnt: u8, data: &[u8]) {
    let len = u16::try_from(data.len()).expect("frame data longer than 65535 bytes");
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(cnt);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    let crc = crc16(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_from_the_capture() {
        let bytes = [0, 0, 0x20, 0, 0, 1, 0, 0, 0xf9, 0xcc];
        let frame = Frame::parse(&bytes).unwrap();
        assert_eq!(frame, Frame { id: 32, cnt: 0, data: &[0] });
        assert_eq!(frame.to_bytes(), bytes);
    }

    #[test]
    fn audio_starting_with_zero_is_audio() {
        // A silent OPUS64 frame [cap #2] and the same bytes as a 9-byte prefix with the wrong CRC.
        let mut silence = vec![0x00, 0xff, 0xfe];
        silence.resize(22, 0);
        assert_eq!(Datagram::classify(&silence), Datagram::Audio(&silence));
        let mut almost = vec![0, 0, 0x20, 0, 0, 1, 0, 0, 0xf9, 0xcd];
        assert!(matches!(Datagram::classify(&almost), Datagram::Audio(_)));
        almost[9] = 0xcc;
        almost.push(0);
        assert!(matches!(Datagram::classify(&almost), Datagram::Audio(_)), "length must match exactly");
    }

    #[test]
    fn short_datagrams_are_audio() {
        for n in 0..OVERHEAD {
            let bytes = vec![0u8; n];
            assert!(matches!(Datagram::classify(&bytes), Datagram::Audio(_)));
        }
    }
}
