//! How Jamulus names what it records: session folders `Jam-YYYYMMDD-HHMMSSmmm` (UTC), track names
//! `<NAME>-<ADDR>` with every character outside ASCII letters and digits folded or replaced by `_`,
//! and WAV files `<NAME>-<ADDR>-<FRAME>-<CH>.wav`.

use chrono::{DateTime, Utc};
use std::net::{IpAddr, SocketAddr};

/// `Jam-20261122-233111123` for the given UTC time.
pub fn session_name(at: DateTime<Utc>) -> String {
    format!("Jam-{}{:03}", at.format("%Y%m%d-%H%M%S"), at.timestamp_subsec_millis())
}

/// A musician name as it appears in file and track names: ASCII letters and digits kept, accented
/// Latin-1 letters folded to their base letter, everything else `_`, padded with `_` to 4 characters.
pub fn file_safe_name(name: &str) -> String {
    let mut out: String = name.chars().map(fold).collect();
    while out.chars().count() < 4 {
        out.push('_');
    }
    out
}

/// The client address in names: the last IPv4 octet hidden (except for 127.0.0.1), then `:port`,
/// with `.` and `:` as `_`: `192_168_1_x_22134`, `127_0_0_1_22383`.
pub fn file_safe_address(address: SocketAddr) -> String {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && ip.octets() == [127, 0, 0, 1] => ip.to_string(),
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            format!("{a}.{b}.{c}.x")
        }
        IpAddr::V6(ip) => ip.to_string(),
    };
    format!("{ip}:{}", address.port()).chars().map(fold).collect()
}

/// `NAME-ADDR`, the track a file belongs to.
pub fn track_name(name: &str, address: SocketAddr) -> String {
    format!("{}-{}", file_safe_name(name), file_safe_address(address))
}

/// `NAME-ADDR-FRAME-CH.wav`.
pub fn wav_name(name: &str, address: SocketAddr, frame: u64, channels: u8) -> String {
    format!("{}-{frame}-{channels}.wav", track_name(name, address))
}

/// `x.wav` → `x_1.wav`, `x_2.wav`, … (for a name that is taken).
pub fn numbered(file: &str, n: u32) -> String {
    match file.strip_suffix(".wav") {
        Some(stem) => format!("{stem}_{n}.wav"),
        None => format!("{file}_{n}"),
    }
}

fn fold(c: char) -> char {
    if c.is_ascii_alphanumeric() {
        return c;
    }
    match c {
        'À'..='Å' | 'Æ' => 'A',
        'Ç' => 'C',
        'È'..='Ë' => 'E',
        'Ì'..='Ï' => 'I',
        'Ð' => 'D',
        'Ñ' => 'N',
        'Ò'..='Ö' | 'Ø' => 'O',
        'Ù'..='Ü' => 'U',
        'Ý' => 'Y',
        'ß' => 'S',
        'à'..='å' | 'æ' => 'a',
        'ç' => 'c',
        'è'..='ë' => 'e',
        'ì'..='ï' => 'i',
        'ð' => 'd',
        'ñ' => 'n',
        'ò'..='ö' | 'ø' => 'o',
        'ù'..='ü' => 'u',
        'ý' | 'ÿ' => 'y',
        '×' => 'x',
        '¹' => '1',
        '²' => '2',
        '³' => '3',
        'µ' => 'u',
        _ => '_',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_as_jamulus_writes_them() {
        assert_eq!(file_safe_name(""), "____");
        assert_eq!(file_safe_name("Bob"), "Bob_");
        // Observed with the real 3.9.1 server: "Zoë Ä.b" became the track "Zoe_A_b".
        assert_eq!(file_safe_name("Zoë Ä.b"), "Zoe_A_b");
        assert_eq!(file_safe_name("Øß×²µ日"), "OSx2u_");
        assert_eq!(file_safe_address("127.0.0.1:22383".parse().unwrap()), "127_0_0_1_22383");
        assert_eq!(file_safe_address("192.168.1.77:22134".parse().unwrap()), "192_168_1_x_22134");
        assert_eq!(wav_name("", "127.0.0.1:39168".parse().unwrap(), 0, 1), "____-127_0_0_1_39168-0-1.wav");
        assert_eq!(numbered("a-1-2.wav", 1), "a-1-2_1.wav");
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 23, 31, 11).unwrap() + chrono::Duration::milliseconds(123);
        assert_eq!(session_name(at), "Jam-20261122-233111123");
    }
}
