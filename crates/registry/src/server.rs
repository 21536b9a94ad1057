//! The registry server: opens the store, binds, serves the HTTP API until told to stop, and forgets
//! refilled rate-limit buckets once a minute.

use crate::http::{router, Registry};
use crate::store::{Store, StoreConfig, StoreError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `tutti registry` runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// HTTP listening address.
    pub listen: SocketAddr,
    /// The database.
    pub store: StoreConfig,
    /// Log method, route template and status of every request (never an address or a name).
    pub log_requests: bool,
    /// Registrations a minute per source address (IPv6: per /64); 0 for no limit.
    pub registrations_per_minute: u32,
    /// Bytes of answers for registered names and addresses kept in memory; 0 for none.
    pub cache_bytes: usize,
    /// The privacy policy served at `/privacy` (an HTML page), if any.
    pub privacy: Option<String>,
}

/// The default per-source registration limit.
pub const DEFAULT_REGISTRATIONS_PER_MINUTE: u32 = 10;
/// The default size of the answer cache, MiB.
pub const DEFAULT_CACHE_MB: usize = 64;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening address cannot be bound.
    #[error("cannot listen on {addr}: {source} (another process uses it, or pass --listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serving failed.
    #[error("serving HTTP failed: {0}")]
    Serve(std::io::Error),
}

/// A registry with its store open and its socket bound.
pub struct RegistryServer {
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    log_requests: bool,
    privacy: Option<String>,
}

impl RegistryServer {
    /// Opens the store, then binds (port 0 picks a free port).
    pub async fn bind(config: &RegistryConfig) -> Result<Self, Error> {
        let store = Store::open(&config.store).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind { addr: config.listen, source })?;
        Ok(RegistryServer {
            listener,
            registry: Arc::new(Registry::new(store, config.registrations_per_minute, config.cache_bytes)),
            log_requests: config.log_requests,
            privacy: config.privacy.clone(),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (store and limit).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let RegistryServer { listener, registry, log_requests, privacy } = self;
        let sweeper = {
            let registry = registry.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    registry.forget_refilled(Instant::now());
                }
            })
        };
        let mut router = router(registry, log_requests);
        if let Some(page) = privacy {
            router = router.merge(crate::http::privacy_route(page));
        }
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(Error::Serve);
        sweeper.abort();
        result
    }
}
