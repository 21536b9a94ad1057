//! The online counter's broadcast rule: send the count only when it changed since the last broadcast,
//! and (the shell ticks twice a second) never more often than that.

/// Remembers the last count broadcast.
#[derive(Debug, Default)]
pub struct Online {
    last_sent: Option<usize>,
}

impl Online {
    /// The count to broadcast now, if it changed.
    pub fn due(&mut self, count: usize) -> Option<usize> {
        if self.last_sent == Some(count) {
            return None;
        }
        self.last_sent = Some(count);
        Some(count)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_changes_are_sent() {
        let mut o = super::Online::default();
        assert_eq!(o.due(0), Some(0));
        assert_eq!(o.due(0), None);
        assert_eq!(o.due(2), Some(2));
        assert_eq!(o.due(2), None);
    }
}
