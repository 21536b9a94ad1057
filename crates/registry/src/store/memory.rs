//! A store in memory only: nothing touches the disk, everything is gone when the process ends. For
//! trying the product (`tutti all` on its defaults) and for tests; the same rule ([`decide`]) under one
//! lock, so a batch is decided in order and concurrent registrations of one name have one winner.

use super::StoreError;
use crate::{decide, Addr, Decision, Name, Record};
use std::collections::HashMap;
use std::sync::RwLock;

/// Records by name, and names by address.
#[derive(Default)]
pub struct MemoryStore {
    maps: RwLock<Maps>,
}

#[derive(Default)]
struct Maps {
    records: HashMap<Name, Record>,
    names: HashMap<Addr, Name>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Database("the in-memory store's lock is poisoned".into())
}

impl MemoryStore {
    pub(super) fn record(&self, name: &Name) -> Result<Option<Record>, StoreError> {
        Ok(self.maps.read().map_err(poisoned)?.records.get(name).cloned())
    }

    pub(super) fn name_of(&self, addr: &Addr) -> Result<Option<Name>, StoreError> {
        Ok(self.maps.read().map_err(poisoned)?.names.get(addr).cloned())
    }

    pub(super) fn count(&self) -> Result<u64, StoreError> {
        Ok(self.maps.read().map_err(poisoned)?.records.len() as u64)
    }

    pub(super) fn register_many(&self, records: Vec<Record>) -> Result<Vec<Decision>, StoreError> {
        let mut maps = self.maps.write().map_err(poisoned)?;
        let mut decisions = Vec::with_capacity(records.len());
        for record in records {
            let holder = maps.records.get(&record.name).map(|r| r.addr);
            let decision = decide(&record, holder, maps.names.get(&record.addr));
            if decision == Decision::Insert {
                maps.names.insert(record.addr, record.name.clone());
                maps.records.insert(record.name.clone(), record);
            }
            decisions.push(decision);
        }
        Ok(decisions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conformance, Store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_store_conformance_suite() {
        conformance::run(&Store::Memory(MemoryStore::default())).await;
    }
}
