//! STUN messages (RFC 8489) with the TURN attributes (RFC 8656) and ChannelData framing: a reader
//! that checks every length before it looks, and a writer with MESSAGE-INTEGRITY and FINGERPRINT.
//! Knows nothing of allocations, credentials policy or sockets.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const MAGIC_COOKIE: u32 = 0x2112_A442;
pub const HEADER_LEN: usize = 20;
/// Attributes read from one message at most; a message with more is refused.
pub const MAX_ATTRIBUTES: usize = 32;

// Methods.
pub const BINDING: u16 = 0x001;
pub const ALLOCATE: u16 = 0x003;
pub const REFRESH: u16 = 0x004;
pub const SEND: u16 = 0x006;
pub const DATA: u16 = 0x007;
pub const CREATE_PERMISSION: u16 = 0x008;
pub const CHANNEL_BIND: u16 = 0x009;

// Attributes.
pub const MAPPED_ADDRESS: u16 = 0x0001;
pub const USERNAME: u16 = 0x0006;
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
pub const ERROR_CODE: u16 = 0x0009;
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
pub const CHANNEL_NUMBER: u16 = 0x000C;
pub const LIFETIME: u16 = 0x000D;
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
pub const DATA_ATTR: u16 = 0x0013;
pub const REALM: u16 = 0x0014;
pub const NONCE: u16 = 0x0015;
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
pub const EVEN_PORT: u16 = 0x0018;
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
pub const DONT_FRAGMENT: u16 = 0x001A;
pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
pub const RESERVATION_TOKEN: u16 = 0x0022;
pub const SOFTWARE: u16 = 0x8022;
pub const FINGERPRINT: u16 = 0x8028;

/// Why bytes are not a STUN message or ChannelData frame (or an attribute's value is not valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than a STUN header")]
    ShortHeader,
    #[error("the first two bits are not zero")]
    NotStun,
    #[error("wrong magic cookie")]
    BadCookie,
    #[error("the length field does not match the bytes present")]
    BadLength,
    #[error("attribute {0:#06x} runs past the end of the message")]
    AttributeOverrun(u16),
    #[error("more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
    #[error("attribute {0:#06x} has an invalid value")]
    BadAttribute(u16),
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
    #[error("ChannelData frame is truncated")]
    ShortChannelData,
}

/// The class bits of a message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// The message type of `method` in `class`.
pub fn message_type(method: u16, class: Class) -> u16 {
    let c = match class {
        Class::Request => 0,
        Class::Indication => 0x010,
        Class::Success => 0x100,
        Class::Error => 0x110,
    };
    (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | c
}

fn split_type(typ: u16) -> (u16, Class) {
    let method = (typ & 0x000F) | ((typ & 0x00E0) >> 1) | ((typ & 0x3E00) >> 2);
    let class = match typ & 0x0110 {
        0 => Class::Request,
        0x010 => Class::Indication,
        0x100 => Class::Success,
        _ => Class::Error,
    };
    (method, class)
}

/// Whether a datagram (or the start of a TCP stream) is ChannelData: its first two bits are 01.
pub fn is_channel_data(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| b & 0xC0 == 0x40)
}

/// Splits a ChannelData frame into its channel number and data (the data may be followed by padding).
pub fn parse_channel_data(bytes: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    let header: [u8; 4] = bytes.get(..4).and_then(|h| h.try_into().ok()).ok_or(DecodeError::ShortChannelData)?;
    let channel = u16::from_be_bytes([header[0], header[1]]);
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let data = bytes.get(4..4 + len).ok_or(DecodeError::ShortChannelData)?;
    Ok((channel, data))
}

/// Writes a ChannelData frame into `out` (cleared first); `pad` adds the zero padding TCP needs.
pub fn write_channel_data(out: &mut Vec<u8>, channel: u16, data: &[u8], pad: bool) {
    out.clear();
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(data.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(data);
    if pad {
        out.resize(out.len().next_multiple_of(4), 0);
    }
}

/// How many bytes the frame at the start of a TCP stream takes (STUN message or padded ChannelData), once at
/// least 4 bytes are there; None if that is not yet known.
pub fn frame_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..4)?;
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if header[0] & 0xC0 == 0x40 {
        Some((4 + len).next_multiple_of(4))
    } else {
        Some(HEADER_LEN + len)
    }
}

/// One attribute: its type and where its value lies in the message.
#[derive(Debug, Clone, Copy, Default)]
struct Attr {
    typ: u16,
    start: usize,
    len: usize,
}

/// A parsed STUN message borrowing the received bytes.
#[derive(Debug)]
pub struct Message<'a> {
    pub method: u16,
    pub class: Class,
    pub txid: [u8; 12],
    raw: &'a [u8],
    attrs: [Attr; MAX_ATTRIBUTES],
    count: usize,
    /// Offset of the MESSAGE-INTEGRITY attribute's header, if present.
    integrity_at: Option<usize>,
    pub has_fingerprint: bool,
}

impl<'a> Message<'a> {
    /// Parses a whole STUN message (the length field must match `bytes`).
    pub fn parse(raw: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let header: &[u8; HEADER_LEN] =
            raw.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(DecodeError::ShortHeader)?;
        if header[0] & 0xC0 != 0 {
            return Err(DecodeError::NotStun);
        }
        if u32::from_be_bytes([header[4], header[5], header[6], header[7]]) != MAGIC_COOKIE {
            return Err(DecodeError::BadCookie);
        }
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if len % 4 != 0 || HEADER_LEN + len != raw.len() {
            return Err(DecodeError::BadLength);
        }
        let (method, class) = split_type(u16::from_be_bytes([header[0], header[1]]));
        let mut txid = [0u8; 12];
        txid.copy_from_slice(&header[8..20]);
        let mut message = Message {
            method,
            class,
            txid,
            raw,
            attrs: [Attr::default(); MAX_ATTRIBUTES],
            count: 0,
            integrity_at: None,
            has_fingerprint: false,
        };
        let mut at = HEADER_LEN;
        while at < raw.len() {
            let head = raw.get(at..at + 4).ok_or(DecodeError::BadLength)?;
            let typ = u16::from_be_bytes([head[0], head[1]]);
            let alen = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let start = at + 4;
            if start + alen > raw.len() {
                return Err(DecodeError::AttributeOverrun(typ));
            }
            if typ == FINGERPRINT {
                let value = raw.get(start..start + 4).ok_or(DecodeError::BadAttribute(FINGERPRINT))?;
                if alen != 4 || start + 4 != raw.len() {
                    return Err(DecodeError::BadAttribute(FINGERPRINT));
                }
                let expected = fingerprint(raw, at);
                if value != expected.to_be_bytes() {
                    return Err(DecodeError::BadFingerprint);
                }
                message.has_fingerprint = true;
                break;
            }
            // After MESSAGE-INTEGRITY only FINGERPRINT counts (RFC 8489 §14.5).
            if message.integrity_at.is_none() {
                if typ == MESSAGE_INTEGRITY {
                    if alen != 20 {
                        return Err(DecodeError::BadAttribute(MESSAGE_INTEGRITY));
                    }
                    message.integrity_at = Some(at);
                }
                let slot = message.attrs.get_mut(message.count).ok_or(DecodeError::TooManyAttributes)?;
                *slot = Attr { typ, start, len: alen };
                message.count += 1;
            }
            at = start + alen.next_multiple_of(4);
        }
        Ok(message)
    }

    fn attrs(&self) -> &[Attr] {
        self.attrs.get(..self.count).unwrap_or(&[])
    }

    /// The value of the first attribute of type `typ`.
    pub fn get(&self, typ: u16) -> Option<&'a [u8]> {
        let attr = self.attrs().iter().find(|a| a.typ == typ)?;
        self.raw.get(attr.start..attr.start + attr.len)
    }

    /// Every value of attributes of type `typ`, in order.
    pub fn get_all(&self, typ: u16) -> impl Iterator<Item = &'a [u8]> + '_ {
        let raw = self.raw;
        self.attrs().iter().filter(move |a| a.typ == typ).filter_map(move |a| raw.get(a.start..a.start + a.len))
    }

    /// Attribute types present, in order.
    pub fn types(&self) -> impl Iterator<Item = u16> + '_ {
        self.attrs().iter().map(|a| a.typ)
    }

    pub fn has_integrity(&self) -> bool {
        self.integrity_at.is_some()
    }

    /// Checks MESSAGE-INTEGRITY against `key`; false if absent or wrong.
    pub fn check_integrity(&self, key: &[u8]) -> bool {
        let Some(at) = self.integrity_at else { return false };
        let Some(received) = self.raw.get(at + 4..at + 24) else { return false };
        let Some(covered) = self.raw.get(..at) else { return false };
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else { return false };
        let len = (at + 24 - HEADER_LEN) as u16;
        mac.update(covered.get(..2).unwrap_or(&[]));
        mac.update(&len.to_be_bytes());
        mac.update(covered.get(4..).unwrap_or(&[]));
        mac.verify_slice(received).is_ok()
    }

    /// A UTF-8 text attribute (USERNAME, REALM, NONCE) of at most 763 bytes.
    pub fn text(&self, typ: u16) -> Result<Option<&'a str>, DecodeError> {
        match self.get(typ) {
            None => Ok(None),
            Some(v) if v.len() <= 763 => std::str::from_utf8(v).map(Some).map_err(|_| DecodeError::BadAttribute(typ)),
            Some(_) => Err(DecodeError::BadAttribute(typ)),
        }
    }

    /// A 32-bit attribute (LIFETIME).
    pub fn u32(&self, typ: u16) -> Result<Option<u32>, DecodeError> {
        match self.get(typ) {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 4] = v.try_into().map_err(|_| DecodeError::BadAttribute(typ))?;
                Ok(Some(u32::from_be_bytes(bytes)))
            }
        }
    }

    /// Decodes an XOR-…-ADDRESS value of this message.
    pub fn xor_address(&self, value: &[u8], typ: u16) -> Result<SocketAddr, DecodeError> {
        decode_xor_address(value, &self.txid).ok_or(DecodeError::BadAttribute(typ))
    }
}

fn decode_xor_address(value: &[u8], txid: &[u8; 12]) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(txid);
    match (family, value.len()) {
        (1, 8) => {
            let mut ip = [0u8; 4];
            for (i, b) in ip.iter_mut().enumerate() {
                *b = value.get(4 + i)? ^ mask[i];
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        (2, 20) => {
            let mut ip = [0u8; 16];
            for (i, b) in ip.iter_mut().enumerate() {
                *b = value.get(4 + i)? ^ mask[i];
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// CRC-32 (IEEE) of `raw[..at]` with the length field covering a FINGERPRINT at `at`, XOR 0x5354554e.
fn fingerprint(raw: &[u8], at: usize) -> u32 {
    let len = (at + 8 - HEADER_LEN) as u16;
    let mut crc = !0u32;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            crc = CRC_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
        }
    };
    feed(raw.get(..2).unwrap_or(&[]));
    feed(&len.to_be_bytes());
    feed(raw.get(4..at).unwrap_or(&[]));
    !crc ^ 0x5354_554E
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Builds one STUN message; attributes in the order added, MESSAGE-INTEGRITY and FINGERPRINT last.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    txid: [u8; 12],
}

impl Writer {
    pub fn new(method: u16, class: Class, txid: [u8; 12]) -> Writer {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&txid);
        Writer { buf, txid }
    }

    fn set_len(&mut self) {
        let len = (self.buf.len() - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Adds an attribute (values longer than 65,535 bytes are cut).
    pub fn attr(mut self, typ: u16, value: &[u8]) -> Writer {
        let value = value.get(..usize::from(u16::MAX)).unwrap_or(value);
        self.buf.extend_from_slice(&typ.to_be_bytes());
        self.buf.extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self
    }

    pub fn u32(self, typ: u16, value: u32) -> Writer {
        self.attr(typ, &value.to_be_bytes())
    }

    pub fn xor_address(self, typ: u16, addr: SocketAddr) -> Writer {
        let mut mask = [0u8; 16];
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&self.txid);
        let port = (addr.port() ^ (MAGIC_COOKIE >> 16) as u16).to_be_bytes();
        let mut value = [0u8; 20];
        value[2..4].copy_from_slice(&port);
        let len = match addr.ip() {
            IpAddr::V4(ip) => {
                value[1] = 1;
                for (i, b) in ip.octets().iter().enumerate() {
                    value[4 + i] = b ^ mask[i];
                }
                8
            }
            IpAddr::V6(ip) => {
                value[1] = 2;
                for (i, b) in ip.octets().iter().enumerate() {
                    value[4 + i] = b ^ mask[i];
                }
                20
            }
        };
        self.attr(typ, &value[..len])
    }

    pub fn error(self, code: u16, reason: &str) -> Writer {
        let mut value = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        value.extend_from_slice(reason.as_bytes());
        self.attr(ERROR_CODE, &value)
    }

    /// Adds MESSAGE-INTEGRITY (HMAC-SHA1 with `key`).
    pub fn integrity(mut self, key: &[u8]) -> Writer {
        let at = self.buf.len();
        self.buf.extend_from_slice(&MESSAGE_INTEGRITY.to_be_bytes());
        self.buf.extend_from_slice(&20u16.to_be_bytes());
        self.buf.extend_from_slice(&[0; 20]);
        self.set_len();
        if let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) {
            mac.update(&self.buf[..at]);
            let tag = mac.finalize().into_bytes();
            self.buf[at + 4..at + 24].copy_from_slice(&tag);
        }
        self
    }

    /// Adds FINGERPRINT and returns the bytes.
    pub fn finish_with_fingerprint(mut self) -> Vec<u8> {
        let at = self.buf.len();
        self.buf.extend_from_slice(&FINGERPRINT.to_be_bytes());
        self.buf.extend_from_slice(&4u16.to_be_bytes());
        self.buf.extend_from_slice(&[0; 4]);
        self.set_len();
        let crc = fingerprint(&self.buf, at);
        self.buf[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.set_len();
        self.buf
    }
}

/// The error code of an ERROR-CODE value.
pub fn error_code(value: &[u8]) -> Option<u16> {
    let class = u16::from(*value.get(2)? & 0x07);
    let number = u16::from(*value.get(3)?);
    Some(class * 100 + number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc5769_sample_request_parses_and_verifies() {
        // RFC 5769 §2.1: short-term integrity with "VOkJxbRl1RmTxUk/WvJxBt", FINGERPRINT.
        let hex = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e20746573742063 6c69656e74\
                   00240004 6e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800\
                   149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";
        let clean: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes: Vec<u8> =
            (0..clean.len()).step_by(2).map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap()).collect();
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.method, BINDING);
        assert_eq!(message.class, Class::Request);
        assert!(message.has_fingerprint);
        assert_eq!(message.text(USERNAME).unwrap(), Some("evtj:h6vY"));
        assert!(message.check_integrity(b"VOkJxbRl1RmTxUk/WvJxBt"));
        assert!(!message.check_integrity(b"wrong"));
    }

    #[test]
    fn writer_round_trips_with_integrity_and_fingerprint() {
        let txid = [7u8; 12];
        let peer: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let peer6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let bytes = Writer::new(CREATE_PERMISSION, Class::Request, txid)
            .xor_address(XOR_PEER_ADDRESS, peer)
            .xor_address(XOR_PEER_ADDRESS, peer6)
            .attr(USERNAME, b"1700000000:alice")
            .integrity(b"key")
            .finish_with_fingerprint();
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.method, CREATE_PERMISSION);
        let peers: Vec<SocketAddr> =
            message.get_all(XOR_PEER_ADDRESS).map(|v| message.xor_address(v, XOR_PEER_ADDRESS).unwrap()).collect();
        assert_eq!(peers, vec![peer, peer6]);
        assert!(message.check_integrity(b"key"));
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert_eq!(Message::parse(&bad).unwrap_err(), DecodeError::BadFingerprint);
    }

    #[test]
    fn message_types_split_and_join() {
        for method in [BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND, 0xABC] {
            for class in [Class::Request, Class::Indication, Class::Success, Class::Error] {
                assert_eq!(split_type(message_type(method, class)), (method, class));
            }
        }
        assert_eq!(message_type(ALLOCATE, Class::Error), 0x0113);
        assert_eq!(message_type(SEND, Class::Indication), 0x0016);
    }

    #[test]
    fn channel_data_frames() {
        let mut out = Vec::new();
        write_channel_data(&mut out, 0x4001, b"hello", true);
        assert_eq!(out.len(), 12);
        assert_eq!(frame_len(&out), Some(12));
        assert_eq!(parse_channel_data(&out).unwrap(), (0x4001, &b"hello"[..]));
        assert_eq!(parse_channel_data(&out[..6]).unwrap_err(), DecodeError::ShortChannelData);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = Message::parse(&bytes) {
                let _ = m.check_integrity(b"k");
                for v in m.get_all(XOR_PEER_ADDRESS) { let _ = m.xor_address(v, XOR_PEER_ADDRESS); }
                let _ = m.text(USERNAME);
                let _ = m.u32(LIFETIME);
            }
            let _ = parse_channel_data(&bytes);
            let _ = frame_len(&bytes);
        }

        #[test]
        fn valid_headers_with_random_attributes_never_panic(
            typ in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..40)
        ) {
            let mut bytes = Writer::new(ALLOCATE, Class::Request, [1; 12]).attr(typ, &body).finish();
            let _ = Message::parse(&bytes);
            bytes.truncate(bytes.len().saturating_sub(3));
            prop_assert!(Message::parse(&bytes).is_err());
        }

        #[test]
        fn addresses_round_trip(ip in any::<[u8; 16]>(), v4 in any::<[u8; 4]>(), port in any::<u16>(), txid in any::<[u8; 12]>()) {
            for addr in [SocketAddr::from((v4, port)), SocketAddr::from((ip, port))] {
                let bytes = Writer::new(SEND, Class::Indication, txid).xor_address(XOR_PEER_ADDRESS, addr).finish();
                let m = Message::parse(&bytes).unwrap();
                prop_assert_eq!(m.xor_address(m.get(XOR_PEER_ADDRESS).unwrap(), XOR_PEER_ADDRESS).unwrap(), addr);
            }
        }
    }
}
