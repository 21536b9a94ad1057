//! The directory's registration filter (Jamulus `--listfilter`): a semicolon-separated list of IPv4
//! addresses that may register (an allow list; empty = everybody) and an optional minimum version
//! written as `[x.y.z]`. Servers below the minimum, or without a version (legacy CLM_REGISTER_SERVER),
//! are refused with "version too old"; other source addresses with "requirements not fulfilled".

use std::net::Ipv4Addr;

/// What `--listfilter` allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Source IPs allowed to register; empty = any.
    pub allowed: Vec<Ipv4Addr>,
    /// Lowest version a registering server may run.
    pub min_version: Option<Version>,
}

/// A `major.minor.patch` version; trailing text ("3.9.1dev") is ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Reads the leading `x[.y[.z]]` of a version string; `None` if it does not start with a digit.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = [0u32; 3];
        let mut any = false;
        for (i, part) in text.trim().split('.').take(3).enumerate() {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            parts[i] = digits.parse().ok()?;
            any = true;
            if digits.len() != part.len() {
                break;
            }
        }
        any.then_some(Version(parts[0], parts[1], parts[2]))
    }
}

/// A `--listfilter` item that is neither an IPv4 address nor `[x.y.z]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("list filter item {0:?} is neither an IPv4 address nor a minimum version like [3.8.0]")]
pub struct FilterError(pub String);

impl ListFilter {
    /// Parses `1.2.3.4;5.6.7.8;[3.8.0]`. Empty items are skipped.
    pub fn parse(text: &str) -> Result<ListFilter, FilterError> {
        let mut filter = ListFilter::default();
        for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            if let Some(inner) = item.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
                filter.min_version = Some(Version::parse(inner).ok_or_else(|| FilterError(item.to_string()))?);
            } else {
                filter.allowed.push(item.parse().map_err(|_| FilterError(item.to_string()))?);
            }
        }
        Ok(filter)
    }

    pub fn allows_source(&self, ip: Ipv4Addr) -> bool {
        self.allowed.is_empty() || self.allowed.contains(&ip)
    }

    /// `version` is `None` for legacy registrations that carry none.
    pub fn allows_version(&self, version: Option<&str>) -> bool {
        match self.min_version {
            None => true,
            Some(min) => version.and_then(Version::parse).is_some_and(|v| v >= min),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_minimum_version() {
        let f = ListFilter::parse("10.0.0.1; 192.0.2.7;[3.8.2];").unwrap();
        assert_eq!(f.allowed, vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 0, 2, 7)]);
        assert_eq!(f.min_version, Some(Version(3, 8, 2)));
        assert!(f.allows_source(Ipv4Addr::new(10, 0, 0, 1)) && !f.allows_source(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(f.allows_version(Some("3.9.1")) && f.allows_version(Some("3.8.2dev-abc")));
        assert!(!f.allows_version(Some("3.8.1")) && !f.allows_version(None) && !f.allows_version(Some("x")));
        assert!(ListFilter::parse("").unwrap().allows_version(None));
        assert!(ListFilter::parse("example.com").is_err() && ListFilter::parse("[abc]").is_err());
    }
}
