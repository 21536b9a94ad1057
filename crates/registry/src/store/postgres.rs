//! The PostgreSQL store, for several registry processes on one database. Uniqueness of name and
//! address is the database's own (PRIMARY KEY and UNIQUE): an insert that loses a race inserts nothing,
//! and the rows it collided with (never deleted) say why. A success is answered after the commit,
//! which PostgreSQL makes durable (`synchronous_commit` on, its default).

use super::{name_from_row, record_from_row, StoreError};
use crate::{decide, Addr, Decision, Name, Record};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::RwLock;
use tokio_postgres::{Client, NoTls, Statement};

/// Connections each process keeps (queries are pipelined on each).
const CONNECTIONS: usize = 4;
/// The advisory lock taken while the schema is created (two processes may start together).
const SCHEMA_LOCK: i64 = 0x7475_7474_6972_6567; // "tuttireg"

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tutti_registry_names (
    name          TEXT   NOT NULL PRIMARY KEY,
    addr          TEXT   NOT NULL UNIQUE,
    owner         TEXT   NOT NULL,
    publickey     TEXT   NOT NULL,
    signature     TEXT   NOT NULL,
    registered_at BIGINT NOT NULL
)";

struct Conn {
    client: Client,
    by_name: Statement,
    by_addr: Statement,
    insert: Statement,
}

/// The PostgreSQL store.
pub struct PostgresStore {
    url: String,
    slots: Vec<RwLock<Arc<Conn>>>,
    next: AtomicUsize,
}

fn db_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

async fn connect(url: &str) -> Result<Conn, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(db_error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("registry: the PostgreSQL connection ended: {e}");
        }
    });
    let by_name = client
        .prepare("SELECT addr, owner, publickey, signature, registered_at FROM tutti_registry_names WHERE name = $1")
        .await
        .map_err(db_error)?;
    let by_addr = client.prepare("SELECT name FROM tutti_registry_names WHERE addr = $1").await.map_err(db_error)?;
    let insert = client
        .prepare(
            "INSERT INTO tutti_registry_names (name, addr, owner, publickey, signature, registered_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db_error)?;
    Ok(Conn { client, by_name, by_addr, insert })
}

impl PostgresStore {
    /// Connects, and creates the table if it is not there yet.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let (setup, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
        let driver = tokio::spawn(connection);
        setup.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK]).await.map_err(db_error)?;
        let created = setup.batch_execute(SCHEMA).await.map_err(db_error);
        setup.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK]).await.map_err(db_error)?;
        created?;
        drop(setup);
        let _ = driver.await;
        let mut slots = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            slots.push(RwLock::new(Arc::new(connect(url).await?)));
        }
        Ok(PostgresStore { url: url.to_owned(), slots, next: AtomicUsize::new(0) })
    }

    /// A live connection, reconnecting the slot if its connection has closed.
    async fn conn(&self) -> Result<Arc<Conn>, StoreError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let current = slot.read().await.clone();
        if !current.client.is_closed() {
            return Ok(current);
        }
        let mut writable = slot.write().await;
        if writable.client.is_closed() {
            *writable = Arc::new(connect(&self.url).await?);
        }
        Ok(writable.clone())
    }

    pub(super) async fn record(&self, name: &Name) -> Result<Option<Record>, StoreError> {
        let conn = self.conn().await?;
        let row = conn.client.query_opt(&conn.by_name, &[&name.as_str()]).await.map_err(db_error)?;
        row.map(|r| {
            let addr: String = r.try_get(0).map_err(db_error)?;
            record_from_row(
                name,
                &addr,
                r.try_get(1).map_err(db_error)?,
                r.try_get(2).map_err(db_error)?,
                r.try_get(3).map_err(db_error)?,
                r.try_get(4).map_err(db_error)?,
            )
        })
        .transpose()
    }

    pub(super) async fn name_of(&self, addr: &Addr) -> Result<Option<Name>, StoreError> {
        let conn = self.conn().await?;
        let row = conn.client.query_opt(&conn.by_addr, &[&addr.to_string()]).await.map_err(db_error)?;
        row.map(|r| name_from_row(r.try_get(0).map_err(db_error)?)).transpose()
    }

    pub(super) async fn count(&self) -> Result<u64, StoreError> {
        let conn = self.conn().await?;
        let row = conn.client.query_one("SELECT count(*) FROM tutti_registry_names", &[]).await.map_err(db_error)?;
        let n: i64 = row.try_get(0).map_err(db_error)?;
        Ok(n.max(0) as u64)
    }

    pub(super) async fn register_many(&self, records: Vec<Record>) -> Result<Vec<Decision>, StoreError> {
        let mut decisions = Vec::with_capacity(records.len());
        for record in records {
            decisions.push(self.register(record).await?);
        }
        Ok(decisions)
    }

    /// Insert first (the constraints decide races between processes); when nothing was inserted, the
    /// rows in the way say whether it was the same registration or a conflict.
    async fn register(&self, record: Record) -> Result<Decision, StoreError> {
        let conn = self.conn().await?;
        let registered_at = i64::try_from(record.registered_at).unwrap_or(i64::MAX);
        let inserted = conn
            .client
            .execute(
                &conn.insert,
                &[
                    &record.name.as_str(),
                    &record.addr.to_string(),
                    &record.owner,
                    &record.publickey,
                    &record.signature,
                    &registered_at,
                ],
            )
            .await
            .map_err(db_error)?;
        if inserted == 1 {
            return Ok(Decision::Insert);
        }
        let holder = self.record(&record.name).await?.map(|r| r.addr);
        let name_of_addr = self.name_of(&record.addr).await?;
        match decide(&record, holder, name_of_addr.as_ref()) {
            Decision::Insert => {
                Err(StoreError::Database("insert refused by a constraint, but no row is in the way".into()))
            }
            decision => Ok(decision),
        }
    }
}
