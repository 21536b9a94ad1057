//! The store conformance suite against a real PostgreSQL server (Debian's `postgresql`, started in a
//! temporary directory). Skipped, with the reason printed, only where that server cannot start.

use tutti_registry::store::{conformance, PostgresStore, Store};
use tutti_registry::test_postgres::TempPostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_store_conformance_suite() {
    let server = match TempPostgres::start() {
        Ok(server) => server,
        Err(reason) => {
            eprintln!("SKIPPED: PostgreSQL cannot start here: {reason}");
            return;
        }
    };
    let store = Store::Postgres(PostgresStore::connect(&server.url()).await.unwrap());
    conformance::run(&store).await;
    drop(store);
    let store = Store::Postgres(PostgresStore::connect(&server.url()).await.unwrap());
    conformance::check_after_reopen(&store).await;
}
