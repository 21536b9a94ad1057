//! Where records live: an embedded SQLite file (the default), a PostgreSQL database shared by several
//! registry processes, or memory only (nothing kept after exit). Both apply [`decide`](crate::decide) inside one transaction per batch and answer
//! only after the commit is durable; both keep the uniqueness of name and address in the database's
//! own constraints as well. Records are never updated or deleted.

mod memory;
mod postgres;
mod sqlite;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;

use crate::{Addr, Decision, Name, Record};
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::{SqliteStore, FILE_NAME as SQLITE_FILE};
use std::path::PathBuf;

/// Which database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `registry.sqlite3` in this directory (created with mode 0700 if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://user@host:port/db` or `host=/run/postgresql …`).
    Postgres(String),
    /// Memory only: nothing is written anywhere, every name is forgotten when the process ends.
    Memory,
}

/// A database failure. Nothing was acknowledged when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(String),
    /// A stored row does not parse (edited by hand, or written by something else).
    #[error("corrupt record in the database: {0}")]
    Corrupt(String),
    /// The data directory cannot be used.
    #[error("{0}")]
    DataDir(String),
    /// A database made by a newer tutti.
    #[error("the database has schema version {0}, newer than this tutti understands (1): upgrade tutti")]
    Schema(i64),
}

/// The registry's records.
pub enum Store {
    /// Embedded SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
    /// Memory only.
    Memory(MemoryStore),
}

impl Store {
    /// Opens (and on first use creates) the database.
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        match config {
            StoreConfig::Sqlite(dir) => Ok(Store::Sqlite(SqliteStore::open(dir)?)),
            StoreConfig::Postgres(url) => Ok(Store::Postgres(PostgresStore::connect(url).await?)),
            StoreConfig::Memory => Ok(Store::Memory(MemoryStore::default())),
        }
    }

    /// The record of `name`.
    pub async fn record(&self, name: &Name) -> Result<Option<Record>, StoreError> {
        match self {
            Store::Sqlite(s) => s.record(name),
            Store::Postgres(p) => p.record(name).await,
            Store::Memory(m) => m.record(name),
        }
    }

    /// The name `addr` registered.
    pub async fn name_of(&self, addr: &Addr) -> Result<Option<Name>, StoreError> {
        match self {
            Store::Sqlite(s) => s.name_of(addr),
            Store::Postgres(p) => p.name_of(addr).await,
            Store::Memory(m) => m.name_of(addr),
        }
    }

    /// Applies the rule to `record` and stores it if new; returns once that is durable.
    pub async fn register(&self, record: Record) -> Result<Decision, StoreError> {
        let mut decisions = self.register_many(vec![record]).await?;
        decisions.pop().ok_or_else(|| StoreError::Database("no decision returned".into()))
    }

    /// The same for several records, in order (a later one sees the earlier ones).
    pub async fn register_many(&self, records: Vec<Record>) -> Result<Vec<Decision>, StoreError> {
        match self {
            Store::Sqlite(s) => s.register_many(records).await,
            Store::Postgres(p) => p.register_many(records).await,
            Store::Memory(m) => m.register_many(records),
        }
    }

    /// How many names are registered.
    pub async fn count(&self) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.count(),
            Store::Postgres(p) => p.count().await,
            Store::Memory(m) => m.count(),
        }
    }
}

/// A stored row's fields, checked back into a [`Record`].
pub(crate) fn record_from_row(
    name: &Name,
    addr: &str,
    owner: String,
    publickey: String,
    signature: String,
    registered_at: i64,
) -> Result<Record, StoreError> {
    let addr = Addr::parse(addr).map_err(|_| StoreError::Corrupt(format!("address of {name}")))?;
    let registered_at =
        u64::try_from(registered_at).map_err(|_| StoreError::Corrupt(format!("registration time of {name}")))?;
    Ok(Record { name: name.clone(), addr, owner, publickey, signature, registered_at })
}

/// A stored name, checked.
pub(crate) fn name_from_row(text: &str) -> Result<Name, StoreError> {
    Name::parse(text).map_err(|_| StoreError::Corrupt(format!("name {text:?}")))
}
