//! Ogg pages for an Opus stream (RFC 3533 framing, RFC 7845 mapping): the two header pages
//! (`OpusHead`, `OpusTags`) and one page per audio packet, with granule positions at 48 kHz and the
//! page CRC. Sans-IO: bytes out, nothing else.

/// The Ogg CRC-32 (polynomial 0x04C11DB7, not reflected, initial value 0, no final XOR).
pub fn crc32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |crc, &b| (crc << 8) ^ CRC_TABLE[((crc >> 24) as u8 ^ b) as usize])
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 { (r << 1) ^ 0x04C1_1DB7 } else { r << 1 };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
};

const BEGINNING_OF_STREAM: u8 = 0x02;
const END_OF_STREAM: u8 = 0x04;

/// One logical Ogg Opus stream being written.
#[derive(Debug)]
pub struct OggOpusWriter {
    serial: u32,
    sequence: u32,
    granule: u64,
}

impl OggOpusWriter {
    /// A stream with this serial number (any value; pick a random one per stream).
    pub fn new(serial: u32) -> Self {
        OggOpusWriter { serial, sequence: 0, granule: 0 }
    }

    /// The `OpusHead` and `OpusTags` pages (RFC 7845 §5): stereo, 48 kHz input, `pre_skip` samples
    /// to drop at the start, channel mapping family 0. Call once, before any audio page.
    pub fn header_pages(&mut self, pre_skip: u16, vendor: &str, comments: &[&str]) -> Vec<u8> {
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(2); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate (informational)
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family 0: mono or stereo
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&(comments.len() as u32).to_le_bytes());
        for c in comments {
            tags.extend_from_slice(&(c.len() as u32).to_le_bytes());
            tags.extend_from_slice(c.as_bytes());
        }
        let mut out = Vec::new();
        self.page(&head, BEGINNING_OF_STREAM, 0, &mut out);
        self.page(&tags, 0, 0, &mut out);
        out
    }

    /// One page holding one audio packet that decodes to `samples` samples (at 48 kHz); its granule
    /// position counts every sample up to the end of this packet, pre-skip included.
    pub fn audio_page(&mut self, packet: &[u8], samples: u64, out: &mut Vec<u8>) {
        self.granule += samples;
        self.page(packet, 0, self.granule, out);
    }

    /// A last, empty page that marks the end of the stream.
    pub fn end_page(&mut self, out: &mut Vec<u8>) {
        self.page(&[], END_OF_STREAM, self.granule, out);
    }

    /// Samples written so far (the last page's granule position).
    pub fn granule(&self) -> u64 {
        self.granule
    }

    fn page(&mut self, packet: &[u8], flags: u8, granule: u64, out: &mut Vec<u8>) {
        // One packet per page: lacing values of 255 and a last one below 255 (0 if it divides).
        debug_assert!(packet.len() < 255 * 255, "a packet this long needs several pages");
        let segments = packet.len() / 255 + 1;
        let start = out.len();
        out.extend_from_slice(b"OggS");
        out.push(0); // version
        out.push(flags);
        out.extend_from_slice(&granule.to_le_bytes());
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // CRC, filled in below
        out.push(segments as u8);
        out.extend(std::iter::repeat_n(255u8, segments - 1));
        out.push((packet.len() % 255) as u8);
        out.extend_from_slice(packet);
        let crc = crc32(&out[start..]);
        out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
        self.sequence = self.sequence.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal page reader, independent of the writer: (flags, granule, sequence, packet).
    fn read_page(bytes: &[u8]) -> (u8, u64, u32, Vec<u8>, usize) {
        assert_eq!(&bytes[..4], b"OggS");
        let flags = bytes[5];
        let granule = u64::from_le_bytes(bytes[6..14].try_into().unwrap());
        let sequence = u32::from_le_bytes(bytes[18..22].try_into().unwrap());
        let crc = u32::from_le_bytes(bytes[22..26].try_into().unwrap());
        let n = usize::from(bytes[26]);
        let body: usize = bytes[27..27 + n].iter().map(|&l| usize::from(l)).sum();
        let len = 27 + n + body;
        let mut zeroed = bytes[..len].to_vec();
        zeroed[22..26].fill(0);
        assert_eq!(crc32(&zeroed), crc, "page CRC");
        (flags, granule, sequence, bytes[27 + n..len].to_vec(), len)
    }

    #[test]
    fn crc_is_the_ogg_one() {
        // CRC-32 with polynomial 0x04C11DB7, init 0, no reflection, no final XOR ("123456789").
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn headers_follow_rfc_7845() {
        let mut w = OggOpusWriter::new(0x1234_5678);
        let bytes = w.header_pages(120, "tutti", &["TITLE=jam"]);
        let (flags, granule, seq, head, len) = read_page(&bytes);
        assert_eq!((flags, granule, seq), (BEGINNING_OF_STREAM, 0, 0));
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[8..], [1, 2, 120, 0, 0x80, 0xBB, 0, 0, 0, 0, 0]);
        let (flags, granule, seq, tags, rest) = read_page(&bytes[len..]);
        assert_eq!((flags, granule, seq), (0, 0, 1));
        assert_eq!(&tags[..8], b"OpusTags");
        assert_eq!(&tags[8..12], &5u32.to_le_bytes());
        assert_eq!(&tags[12..17], b"tutti");
        assert_eq!(&tags[17..21], &1u32.to_le_bytes());
        assert_eq!(&tags[25..], b"TITLE=jam");
        assert_eq!(len + rest, bytes.len());
        assert_eq!(&bytes[14..18], &0x1234_5678u32.to_le_bytes(), "serial");
    }

    #[test]
    fn audio_pages_count_samples_and_lace_any_length() {
        let mut w = OggOpusWriter::new(7);
        w.header_pages(120, "tutti", &[]);
        for (i, len) in [1usize, 254, 255, 256, 510, 1275].into_iter().enumerate() {
            let packet: Vec<u8> = (0..len).map(|b| b as u8).collect();
            let mut out = Vec::new();
            w.audio_page(&packet, 960, &mut out);
            let (flags, granule, seq, body, used) = read_page(&out);
            assert_eq!((flags, granule, seq), (0, 960 * (i as u64 + 1), i as u32 + 2));
            assert_eq!(body, packet);
            assert_eq!(used, out.len());
        }
        let mut out = Vec::new();
        w.end_page(&mut out);
        assert_eq!(read_page(&out).0, END_OF_STREAM);
    }
}
