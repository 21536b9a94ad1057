//! Reader for classic pcap captures of UDP/IPv4 traffic (Ethernet, Linux SLL or raw/null link types),
//! so that test fixtures and `tutti inspect` can replay real Jamulus traffic. Parses bytes already in
//! memory; never panics on a damaged file: a truncated or foreign record ends the walk with an error.

use std::net::{Ipv4Addr, SocketAddrV4};

/// One UDP datagram found in a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRecord<'a> {
    /// Capture time in microseconds since the Unix epoch.
    pub micros: u64,
    pub source: SocketAddrV4,
    pub destination: SocketAddrV4,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    #[error("not a classic pcap file (magic number {0:08x}); convert pcapng with `editcap -F pcap`")]
    Magic(u32),
    #[error("pcap link type {0} is not supported (Ethernet 1, raw 101, Linux SLL 113, null 0)")]
    LinkType(u32),
    #[error("pcap file is truncated at byte {0}")]
    Truncated(usize),
}

/// Iterates over the UDP/IPv4 datagrams of a classic pcap file held in `bytes`; other packets
/// (IPv6, TCP, ARP, fragments) are skipped.
pub fn udp_records(bytes: &[u8]) -> Result<impl Iterator<Item = Result<UdpRecord<'_>, PcapError>>, PcapError> {
    let header = bytes.get(..24).ok_or(PcapError::Truncated(bytes.len()))?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let (big_endian, nanos) = match magic {
        0xa1b2_c3d4 => (false, false),
        0xa1b2_3c4d => (false, true),
        0xd4c3_b2a1 => (true, false),
        0x4d3c_b2a1 => (true, true),
        other => return Err(PcapError::Magic(other)),
    };
    let read_u32 = move |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let link_type = read_u32(&header[20..24]);
    let link_header = match link_type {
        0 => 4,
        1 => 14,
        101 => 0,
        113 => 16,
        other => return Err(PcapError::LinkType(other)),
    };
    let mut offset = 24;
    Ok(std::iter::from_fn(move || loop {
        if offset == bytes.len() {
            return None;
        }
        let Some(record) = bytes.get(offset..offset + 16) else {
            let at = offset;
            offset = bytes.len();
            return Some(Err(PcapError::Truncated(at)));
        };
        let (seconds, fraction) = (u64::from(read_u32(&record[0..4])), u64::from(read_u32(&record[4..8])));
        let included = read_u32(&record[8..12]) as usize;
        let start = offset + 16;
        let Some(packet) = bytes.get(start..start.saturating_add(included)) else {
            offset = bytes.len();
            return Some(Err(PcapError::Truncated(start)));
        };
        offset = start + included;
        let micros = seconds * 1_000_000 + if nanos { fraction / 1000 } else { fraction };
        if let Some(record) = packet.get(link_header..).and_then(|ip| udp_in_ipv4(ip, micros)) {
            return Some(Ok(record));
        }
    }))
}

fn udp_in_ipv4(ip: &[u8], micros: u64) -> Option<UdpRecord<'_>> {
    let version_ihl = *ip.first()?;
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff;
    if version_ihl >> 4 != 4 || *ip.get(9)? != 17 || fragment != 0 || header_len < 20 {
        return None;
    }
    let address = |at: usize| ip.get(at..at + 4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
    let (src, dst) = (address(12)?, address(16)?);
    let udp = ip.get(header_len..)?;
    let port = |at: usize| udp.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let udp_len = usize::from(port(4)?);
    let payload = udp.get(8..udp_len)?;
    Some(UdpRecord {
        micros,
        source: SocketAddrV4::new(src, port(0)?),
        destination: SocketAddrV4::new(dst, port(2)?),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(udp_records(b"short").is_err());
        assert!(matches!(udp_records(&[0u8; 24]), Err(PcapError::Magic(0))));
        let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1];
        header.resize(24, 0);
        header[20] = 1;
        header.extend_from_slice(&[1, 2, 3]);
        let records: Vec<_> = udp_records(&header).unwrap().collect();
        assert!(matches!(records[..], [Err(PcapError::Truncated(24))]));
    }
}
