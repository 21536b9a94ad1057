//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`. Reads run on the calling
//! thread over a small pool of read connections that map the file (a point lookup in the page cache takes
//! microseconds and no `pread`);
//! writes go to one writer thread that commits whatever registrations are waiting in one transaction
//! (group commit) and answers each only after that commit.

use super::{name_from_row, record_from_row, StoreError};
use crate::{decide, Addr, Decision, Name, Record};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// The database file's name in the data directory.
pub const FILE_NAME: &str = "registry.sqlite3";
/// Registrations committed together at most.
const GROUP_COMMIT: usize = 256;
/// Idle read connections kept.
const IDLE_READERS: usize = 16;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS names (
    name          TEXT    NOT NULL PRIMARY KEY,
    addr          TEXT    NOT NULL UNIQUE,
    owner         TEXT    NOT NULL,
    publickey     TEXT    NOT NULL,
    signature     TEXT    NOT NULL,
    registered_at INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

type Reply = oneshot::Sender<Result<Vec<Decision>, StoreError>>;

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: mpsc::UnboundedSender<(Vec<Record>, Reply)>,
}

fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens `dir/registry.sqlite3`, creating the directory (0700) and the file (0600) if missing.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        create_private_dir(dir)?;
        let path = dir.join(FILE_NAME);
        create_private_file(&path)?;
        let mut conn = open(&path)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_error)?;
        match version {
            0 => conn.execute_batch(SCHEMA).map_err(db_error)?,
            1 => {}
            newer => return Err(StoreError::Schema(newer)),
        }
        let (writer, jobs) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("registry-writer".into())
            .spawn(move || write_loop(&mut conn, jobs))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore { path, readers: Mutex::new(Vec::new()), writer })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_reader<T>(&self, read: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map_err(|_| StoreError::Database("reader pool poisoned".into()))?.pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = open(&self.path)?;
                conn.execute_batch("PRAGMA query_only = 1").map_err(db_error)?;
                conn
            }
        };
        let result = read(&conn);
        if let Ok(mut readers) = self.readers.lock() {
            if readers.len() < IDLE_READERS {
                readers.push(conn);
            }
        }
        result
    }

    pub(super) fn record(&self, name: &Name) -> Result<Option<Record>, StoreError> {
        self.with_reader(|conn| record_of(conn, name))
    }

    pub(super) fn name_of(&self, addr: &Addr) -> Result<Option<Name>, StoreError> {
        self.with_reader(|conn| name_of(conn, addr))
    }

    pub(super) fn count(&self) -> Result<u64, StoreError> {
        self.with_reader(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM names", [], |r| r.get(0)).map_err(db_error)?;
            Ok(n.max(0) as u64)
        })
    }

    pub(super) async fn register_many(&self, records: Vec<Record>) -> Result<Vec<Decision>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer.send((records, reply)).map_err(|_| StoreError::Database("the writer thread stopped".into()))?;
        answer.await.map_err(|_| StoreError::Database("the writer thread stopped".into()))?
    }
}

/// Every connection maps up to this much of the file read-only (SQLite clamps it to its compile-time
/// maximum, 2 GiB here): page reads become memory accesses instead of a `pread` each (6.0 instead of
/// 7.8 µs per lookup at 1M names, docs/perf.md). Writes still go through `write` and `fsync`, and the
/// file never shrinks (records are never deleted), so a mapped page cannot disappear under a reader.
const MMAP_BYTES: u64 = 1 << 40;

fn open(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_error)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
        .map_err(db_error)?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES).map_err(db_error)?;
    Ok(conn)
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| {
        StoreError::DataDir(format!("cannot create the data directory {}: {e} (pass --data-dir)", dir.display()))
    })
}

/// SQLite gives its -wal and -shm files the main file's mode, so creating that one 0600 first keeps all
/// three private.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::DataDir(format!("cannot open the database {}: {e} (pass --data-dir)", path.display())))
}

fn record_of(conn: &Connection, name: &Name) -> Result<Option<Record>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT addr, owner, publickey, signature, registered_at FROM names WHERE name = ?1")
        .map_err(db_error)?;
    let row = statement
        .query_row([name.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)?))
        })
        .optional()
        .map_err(db_error)?;
    row.map(|(addr, owner, publickey, signature, at)| record_from_row(name, &addr, owner, publickey, signature, at))
        .transpose()
}

fn name_of(conn: &Connection, addr: &Addr) -> Result<Option<Name>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT name FROM names WHERE addr = ?1").map_err(db_error)?;
    let name: Option<String> = statement.query_row([addr.to_string()], |r| r.get(0)).optional().map_err(db_error)?;
    name.as_deref().map(name_from_row).transpose()
}

fn write_loop(conn: &mut Connection, mut jobs: mpsc::UnboundedReceiver<(Vec<Record>, Reply)>) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        let mut size = batch[0].0.len();
        while size < GROUP_COMMIT {
            match jobs.try_recv() {
                Ok(job) => {
                    size += job.0.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        match commit(conn, &batch) {
            Ok(mut decisions) => {
                for (records, reply) in batch.into_iter().rev() {
                    let ours = decisions.split_off(decisions.len() - records.len());
                    let _ = reply.send(Ok(ours));
                }
            }
            Err(error) => {
                tracing::warn!("registry: a write to the database failed: {error}");
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Database(error.to_string())));
                }
            }
        }
    }
}

/// One transaction for the whole batch; every decision is taken inside it, so a later record sees the
/// earlier ones, and nothing is answered before COMMIT returns (with `synchronous=FULL`, after fsync).
fn commit(conn: &mut Connection, batch: &[(Vec<Record>, Reply)]) -> Result<Vec<Decision>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_error)?;
    let mut decisions = Vec::new();
    for record in batch.iter().flat_map(|(records, _)| records) {
        let holder = record_of(&tx, &record.name)?.map(|r| r.addr);
        let name_of_addr = name_of(&tx, &record.addr)?;
        let decision = decide(record, holder, name_of_addr.as_ref());
        if decision == Decision::Insert {
            let registered_at = i64::try_from(record.registered_at).unwrap_or(i64::MAX);
            tx.prepare_cached(
                "INSERT INTO names (name, addr, owner, publickey, signature, registered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    record.name.as_str(),
                    record.addr.to_string(),
                    record.owner,
                    record.publickey,
                    record.signature,
                    registered_at
                ])
            })
            .map_err(db_error)?;
        }
        decisions.push(decision);
    }
    tx.commit().map_err(db_error)?;
    Ok(decisions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conformance, Store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_store_conformance_suite() {
        let dir = std::env::temp_dir().join(format!("tutti-registry-sqlite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::Sqlite(SqliteStore::open(&dir).unwrap());
        conformance::run(&store).await;
        drop(store);
        // reopened, everything is still there
        let store = Store::Sqlite(SqliteStore::open(&dir).unwrap());
        conformance::check_after_reopen(&store).await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_directory_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tutti-registry-mode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        assert_eq!(store.path(), dir.join(FILE_NAME));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_reason() {
        let dir = std::env::temp_dir().join(format!("tutti-registry-schema-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        drop(SqliteStore::open(&dir).unwrap());
        Connection::open(dir.join(FILE_NAME)).unwrap().execute_batch("PRAGMA user_version = 9").unwrap();
        assert!(matches!(SqliteStore::open(&dir), Err(StoreError::Schema(9))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
