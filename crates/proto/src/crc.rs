//! The CRC-16 that closes every protocol frame: CRC-16/GENIBUS (poly 0x1021, init 0xFFFF, MSB first,
//! no reflection, result inverted), sent little-endian. Pure function over bytes; nothing else lives here.

const POLY: u16 = 0x1021;

const TABLE: [u16; 256] = build_table();

const fn build_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut reg = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            reg = if reg & 0x8000 != 0 { (reg << 1) ^ POLY } else { reg << 1 };
            bit += 1;
        }
        table[i] = reg;
        i += 1;
    }
    table
}

/// CRC of `bytes` exactly as a protocol frame carries it (already inverted).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut reg: u16 = 0xFFFF;
    for &b in bytes {
        reg = (reg << 8) ^ TABLE[usize::from((reg >> 8) as u8 ^ b)];
    }
    !reg
}

#[cfg(test)]
mod tests {
    use super::crc16;

    /// The bit-serial definition, kept as the oracle for the table-driven version.
    fn crc16_bitwise(bytes: &[u8]) -> u16 {
        let mut reg: u16 = 0xFFFF;
        for &byte in bytes {
            for i in (0..8).rev() {
                let feedback = ((reg >> 15) & 1) ^ u16::from((byte >> i) & 1);
                reg <<= 1;
                if feedback != 0 {
                    reg ^= 0x1021;
                }
            }
        }
        !reg
    }

    #[test]
    fn catalogue_check_value() {
        assert_eq!(crc16(b"123456789"), 0xD64E);
    }

    #[test]
    fn worked_examples_from_the_capture() {
        // CLIENT_ID [cap #3] and the ACK of it [cap #4].
        assert_eq!(crc16(&[0, 0, 0x20, 0, 0, 1, 0, 0]), 0xCCF9);
        assert_eq!(crc16(&[0, 0, 1, 0, 0, 2, 0, 0x20, 0]), 0xB462);
    }

    #[test]
    fn table_equals_bitwise_definition() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            assert_eq!(crc16(&bytes), crc16_bitwise(&bytes), "len {len}");
        }
    }
}
