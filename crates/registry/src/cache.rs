//! Answers for registered names and addresses, kept in memory. Records are final — never changed or
//! removed — so a cached answer can never turn wrong, in any number of processes sharing a database;
//! unknown names and addresses are not cached (they may be registered at any moment). Bounded in bytes
//! (key, answer and a fixed per-entry overhead counted), sharded to keep threads apart. While a shard
//! has room every answer is kept; once it is full, an answer is kept only when its key was asked for
//! before (a bitset of recently seen keys, cleared as it fills), and then its oldest entries leave first:
//! keys asked once — most of them under a uniform load over many names — cost no insert and no eviction.

use axum::body::Bytes;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// Bytes counted per entry besides its key and answer (map slot, queue slot, allocation headers).
pub const ENTRY_OVERHEAD: usize = 96;
const SHARDS: usize = 16;

/// Bits of a shard's record of keys seen once (8 KiB).
const SEEN_BITS: usize = 1 << 16;

#[derive(Default)]
struct Shard {
    answers: HashMap<Box<str>, Bytes>,
    order: VecDeque<Box<str>>,
    bytes: usize,
    /// Keys asked for once while the shard was full (by hash), and how many bits are set.
    seen: Vec<u64>,
    seen_count: usize,
}

impl Shard {
    /// Whether the key with `hash` was seen since the last clearing; records it if not.
    fn seen_before(&mut self, hash: u64) -> bool {
        if self.seen.is_empty() {
            self.seen = vec![0; SEEN_BITS / 64];
        }
        let bit = (hash >> 16) as usize % SEEN_BITS;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.seen[word] & mask != 0 {
            self.seen[word] &= !mask;
            return true;
        }
        if self.seen_count >= SEEN_BITS / 4 {
            // a quarter full: forget, so that old one-off keys do not pass for repeats
            self.seen.iter_mut().for_each(|w| *w = 0);
            self.seen_count = 0;
        }
        self.seen[word] |= mask;
        self.seen_count += 1;
        false
    }
}

/// A bounded map from a canonical request (`n` + name, `a` + address) to its JSON answer.
pub struct AnswerCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
}

fn cost(key: &str, answer: &Bytes) -> usize {
    key.len() * 2 + answer.len() + ENTRY_OVERHEAD
}

impl AnswerCache {
    /// A cache of at most `budget` bytes; 0 turns it off.
    pub fn new(budget: usize) -> AnswerCache {
        AnswerCache { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), shard_budget: budget / SHARDS }
    }

    fn shard(&self, key: &str) -> (&Mutex<Shard>, u64) {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let hash = hasher.finish();
        (&self.shards[hash as usize % SHARDS], hash)
    }

    /// The answer for `key`, if cached.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        if self.shard_budget == 0 {
            return None;
        }
        self.shard(key).0.lock().ok()?.answers.get(key).cloned()
    }

    /// Keeps `answer` for `key` (the answer for a registered record only), making room if needed.
    pub fn insert(&self, key: &str, answer: Bytes) {
        let size = cost(key, &answer);
        if size > self.shard_budget {
            return;
        }
        let (shard, hash) = self.shard(key);
        let Ok(mut shard) = shard.lock() else { return };
        if shard.answers.contains_key(key) {
            return;
        }
        if shard.bytes + size > self.shard_budget && !shard.seen_before(hash) {
            return;
        }
        while shard.bytes + size > self.shard_budget {
            let Some(oldest) = shard.order.pop_front() else { break };
            if let Some(gone) = shard.answers.remove(&oldest) {
                shard.bytes -= cost(&oldest, &gone);
            }
        }
        shard.answers.insert(key.into(), answer);
        shard.order.push_back(key.into());
        shard.bytes += size;
    }

    /// Bytes counted now, and entries.
    pub fn usage(&self) -> (usize, usize) {
        self.shards.iter().filter_map(|s| s.lock().ok()).fold((0, 0), |(b, n), s| (b + s.bytes, n + s.answers.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_return_the_answer_kept() {
        let cache = AnswerCache::new(1 << 20);
        assert_eq!(cache.get("nalice"), None);
        cache.insert("nalice", Bytes::from_static(b"{\"name\":\"alice\"}"));
        assert_eq!(cache.get("nalice").as_deref(), Some(&b"{\"name\":\"alice\"}"[..]));
        assert_eq!(cache.usage().1, 1);
    }

    #[test]
    fn the_budget_holds_and_when_full_repeats_push_the_oldest_out() {
        let budget = SHARDS * 1000;
        let cache = AnswerCache::new(budget);
        let answer = Bytes::from(vec![b'x'; 300]);
        for i in 0..1000 {
            cache.insert(&format!("nname-{i}"), answer.clone());
        }
        let (bytes, entries) = cache.usage();
        assert!(bytes <= budget, "{bytes} > {budget}");
        assert!(entries > SHARDS, "something is kept: {entries}");
        // full: a key asked for once is not kept, one asked for again is, and the oldest leave
        let kept_before: Vec<String> =
            (0..1000).map(|i| format!("nname-{i}")).filter(|k| cache.get(k).is_some()).collect();
        cache.insert("nonce", answer.clone());
        assert!(cache.get("nonce").is_none(), "asked once while full: not kept");
        cache.insert("nonce", answer.clone());
        assert!(cache.get("nonce").is_some(), "asked again: kept");
        assert!(cache.usage().0 <= budget);
        let oldest_in_its_shard = kept_before.iter().find(|k| cache.get(k).is_none());
        assert!(oldest_in_its_shard.is_some(), "an old entry made room");
    }

    #[test]
    fn zero_turns_it_off_and_oversized_answers_are_not_kept() {
        let off = AnswerCache::new(0);
        off.insert("nalice", Bytes::from_static(b"{}"));
        assert_eq!(off.get("nalice"), None);
        let small = AnswerCache::new(SHARDS * 200);
        small.insert("nbig", Bytes::from(vec![b'x'; 500]));
        assert_eq!(small.get("nbig"), None);
    }
}
