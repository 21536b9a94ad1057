//! The two keys of the registry: a [`Name`] (3–32 of `a-z 0-9 - _`) and an [`Addr`] (the 160-bit Jami ID,
//! written `0x` + 40 lowercase hex digits). Both parse only their canonical forms after an ASCII-only
//! fold, so no Unicode look-alike can ever reach the store.

use std::fmt;

/// Shortest and longest name, in characters (all ASCII).
pub const NAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;

/// A registrable name: 3–32 characters, each a lowercase ASCII letter, a digit, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

/// Why a name or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not 3–32 of `a-z 0-9 - _`.
    #[error("invalid name: use 3 to 32 of lowercase letters a-z, digits, '-' and '_'")]
    InvalidName,
    /// Not `0x` + 40 hex digits.
    #[error("invalid address: give 0x and 40 hexadecimal digits")]
    InvalidAddr,
}

impl Name {
    /// The name exactly as given: it must already be canonical (what a registration signs).
    pub fn parse(text: &str) -> Result<Name, NameError> {
        let ok = NAME_LEN.contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Name(text.to_owned()))
        } else {
            Err(NameError::InvalidName)
        }
    }

    /// A name as a lookup gives it: ASCII letters are lowercased first (only ASCII: the Kelvin sign
    /// or a Cyrillic `а` stays what it is, and is refused).
    pub fn lookup(text: &str) -> Result<Name, NameError> {
        Name::parse(&text.to_ascii_lowercase())
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Jami ID: the SHA-1 of the public key's DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr([u8; 20]);

impl Addr {
    /// `0x` + 40 hex digits, or the 40 digits alone; either case.
    pub fn parse(text: &str) -> Result<Addr, NameError> {
        let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
        if hex.len() != 40 {
            return Err(NameError::InvalidAddr);
        }
        let mut bytes = [0u8; 20];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let high = hex_digit(pair[0]).ok_or(NameError::InvalidAddr)?;
            let low = hex_digit(pair[1]).ok_or(NameError::InvalidAddr)?;
            bytes[i] = high << 4 | low;
        }
        Ok(Addr(bytes))
    }

    /// From the 20 bytes of a SHA-1.
    pub fn from_bytes(bytes: [u8; 20]) -> Addr {
        Addr(bytes)
    }

    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The 40 lowercase hex digits without the `0x`.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Addr {
    /// `0x` + 40 lowercase hex digits, as the name server writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", self.hex())
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["abc", "a-b_c9", "jam-2026", &"x".repeat(32)] {
            assert_eq!(Name::parse(good).unwrap().as_str(), good);
        }
        for bad in ["ab", "", &"x".repeat(33), "Alice", "a b", "a.b", "a/b", "..", "é-name", "a\0b", "ab%2f"] {
            assert_eq!(Name::parse(bad), Err(NameError::InvalidName), "{bad:?}");
        }
    }

    #[test]
    fn lookups_lowercase_ascii_only() {
        assert_eq!(Name::lookup("ALICE").unwrap().as_str(), "alice");
        // U+212A KELVIN SIGN lowercases to 'k' under Unicode rules: it must not become "kate"
        assert_eq!(Name::lookup("\u{212A}ate"), Err(NameError::InvalidName));
        // Cyrillic 'а' (U+0430) looks like 'a'
        assert_eq!(Name::lookup("\u{0430}lice"), Err(NameError::InvalidName));
        // fullwidth letters
        assert_eq!(Name::lookup("\u{FF41}lice"), Err(NameError::InvalidName));
    }

    #[test]
    fn addresses_parse_in_either_form_and_print_canonically() {
        let text = "0x0123456789ABCDEF0123456789abcdef01234567";
        let addr = Addr::parse(text).unwrap();
        assert_eq!(addr.to_string(), text.to_ascii_lowercase());
        assert_eq!(Addr::parse(&text[2..]).unwrap(), addr);
        for bad in [
            "0x",
            "0x123",
            &format!("{text}0"),
            "0xg123456789abcdef0123456789abcdef01234567",
            "0x+123456789abcdef0123456789abcdef0123456",
        ] {
            assert_eq!(Addr::parse(bad), Err(NameError::InvalidAddr), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_parses_or_is_refused_without_panic(s in "\\PC{0,40}") {
            let _ = Name::lookup(&s);
            let _ = Addr::parse(&s);
        }

        #[test]
        fn valid_names_round_trip(s in "[a-z0-9_-]{3,32}") {
            let name = Name::parse(&s).unwrap();
            prop_assert_eq!(name.as_str(), s.as_str());
        }

        #[test]
        fn addresses_round_trip(bytes in proptest::array::uniform20(any::<u8>())) {
            let addr = Addr::from_bytes(bytes);
            prop_assert_eq!(Addr::parse(&addr.to_string()).unwrap(), addr);
        }
    }
}
