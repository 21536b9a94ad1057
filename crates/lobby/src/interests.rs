//! Interest tags: what `find` may carry, normalized (trimmed, lowercased, deduplicated, sorted) so that
//! overlap is a plain set intersection.

use crate::{Error, Limits};

/// A socket's normalized interest tags (sorted, unique, non-empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interests(Vec<String>);

impl Interests {
    /// Normalizes raw tags; blank tags are dropped, too many or too long ones are refused.
    pub fn parse(raw: &[String], limits: &Limits) -> Result<Self, Error> {
        let invalid = || Error::InvalidInterests { max_tags: limits.interest_tags, max_chars: limits.interest_chars };
        if raw.len() > limits.interest_tags {
            return Err(invalid());
        }
        let mut tags = Vec::with_capacity(raw.len());
        for tag in raw {
            let tag = tag.trim().to_lowercase();
            if tag.chars().count() > limits.interest_chars {
                return Err(invalid());
            }
            if !tag.is_empty() {
                tags.push(tag);
            }
        }
        tags.sort();
        tags.dedup();
        Ok(Interests(tags))
    }

    /// No tags: matched with anyone at once.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags both have, sorted.
    pub fn common(&self, other: &Interests) -> Vec<String> {
        self.0.iter().filter(|t| other.0.binary_search(t).is_ok()).cloned().collect()
    }

    /// The tags, sorted.
    pub fn tags(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalizes_and_intersects() {
        let l = Limits::default();
        let a = Interests::parse(&tags(&[" Jazz", "MUSIC", "", "jazz"]), &l).unwrap();
        assert_eq!(a.tags(), &tags(&["jazz", "music"]));
        let b = Interests::parse(&tags(&["music", "chess"]), &l).unwrap();
        assert_eq!(a.common(&b), tags(&["music"]));
    }

    #[test]
    fn refuses_too_many_or_too_long() {
        let l = Limits::default();
        assert!(Interests::parse(&vec!["x".to_string(); 11], &l).is_err());
        assert!(Interests::parse(&["y".repeat(33)], &l).is_err());
        assert!(Interests::parse(&["y".repeat(32)], &l).is_ok());
    }
}
