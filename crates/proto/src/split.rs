//! Split messages (§1.5): a connection message whose data exceeds 550 bytes is cut into numbered parts
//! (ID 2001), each acknowledged on its own, and glued back together by the receiver. This module cuts
//! and glues; sending the parts reliably is [`crate::link`]'s job.

use crate::wire::{Reader, Writer};
use crate::DecodeError;

/// Data bytes per part.
pub const PART_SIZE: usize = 550;
/// Most parts a receiver accepts (`20000 / 550`).
pub const MAX_PARTS: usize = 36;

/// One part of a split message, as carried in a SPECIAL_SPLIT_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPart {
    /// ID of the message that was split.
    pub id: u16,
    /// Total number of parts.
    pub count: u8,
    /// This part's 0-based index.
    pub index: u8,
    pub data: Vec<u8>,
}

impl SplitPart {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = r.u16("id")?;
        let count = r.u8("count")?;
        let index = r.u8("index")?;
        let n = r.remaining();
        if n > PART_SIZE {
            return Err(r.invalid("data", n as u32));
        }
        Ok(SplitPart { id, count, index, data: r.take(n, "data")?.to_vec() })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.id).u8(self.count).u8(self.index);
        for &b in &self.data {
            w.u8(b);
        }
    }
}

/// Cuts `data` of message `id` into parts, or returns `None` when it is short enough to go whole
/// or too long to be split (more than [`MAX_PARTS`] parts).
pub fn split(id: u16, data: &[u8]) -> Option<Vec<SplitPart>> {
    if data.len() <= PART_SIZE {
        return None;
    }
    let count = data.len().div_ceil(PART_SIZE);
    if count > MAX_PARTS {
        return None;
    }
    Some(
        data.chunks(PART_SIZE)
            .enumerate()
            .map(|(index, chunk)| SplitPart { id, count: count as u8, index: index as u8, data: chunk.to_vec() })
            .collect(),
    )
}

/// The receiver's one reassembly buffer.
#[derive(Debug, Default)]
pub struct Reassembler {
    id: u16,
    count: u8,
    received: u8,
    data: Vec<u8>,
}

impl Reassembler {
    /// Takes the next part; returns the original (ID, data) once the last part has arrived.
    /// A part out of order, or one that does not belong to the message being assembled, discards
    /// what was gathered; if it is a first part it starts a new message.
    pub fn push(&mut self, part: &SplitPart) -> Option<(u16, Vec<u8>)> {
        let continues = part.index == self.received && part.index > 0 && part.id == self.id && part.count == self.count;
        if !continues {
            self.clear();
            if part.index != 0 {
                return None;
            }
            self.id = part.id;
            self.count = part.count;
        }
        if part.index >= part.count || usize::from(part.index) >= MAX_PARTS {
            self.clear();
            return None;
        }
        self.data.extend_from_slice(&part.data);
        self.received += 1;
        if self.received == self.count {
            let id = self.id;
            let data = std::mem::take(&mut self.data);
            self.clear();
            return Some((id, data));
        }
        None
    }

    /// Forgets any partly assembled message (a non-split message arrived, or the link was reset).
    pub fn clear(&mut self) {
        self.received = 0;
        self.count = 0;
        self.data.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_data_is_not_split() {
        assert!(split(24, &[0; PART_SIZE]).is_none());
        assert!(split(24, &vec![0; PART_SIZE * MAX_PARTS + 1]).is_none());
    }

    #[test]
    fn split_and_reassemble() {
        let data: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
        let parts = split(18, &data).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2].data.len(), 400);
        let mut r = Reassembler::default();
        assert_eq!(r.push(&parts[0]), None);
        assert_eq!(r.push(&parts[1]), None);
        assert_eq!(r.push(&parts[2]), Some((18, data)));
    }

    #[test]
    fn out_of_order_part_discards_and_first_part_restarts() {
        let data = vec![7u8; 1200];
        let parts = split(24, &data).unwrap();
        let mut r = Reassembler::default();
        r.push(&parts[0]);
        assert_eq!(r.push(&parts[2]), None, "index 2 after 0 discards");
        assert_eq!(r.push(&parts[1]), None, "buffer was discarded");
        r.push(&parts[0]);
        r.push(&parts[1]);
        assert_eq!(r.push(&parts[2]), Some((24, data)));
    }

    #[test]
    fn index_beyond_count_is_rejected() {
        let mut r = Reassembler::default();
        let bogus = SplitPart { id: 18, count: 1, index: 0, data: vec![1] };
        assert_eq!(r.push(&bogus), Some((18, vec![1])));
        let zero = SplitPart { id: 18, count: 0, index: 0, data: vec![1] };
        assert_eq!(r.push(&zero), None);
    }
}
