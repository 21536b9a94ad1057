//! The lobby server: binds, builds the Socket.IO layer (local, or with the Redis adapter and the Redis
//! queue), mounts the page, and runs the online-count and fallback timers until told to stop.

use crate::admission::Admission;
use crate::hub::{Hub, Pairing};
use crate::redis_queue::RedisQueue;
use crate::registry_proxy::{self, RegistryTarget};
use crate::tls::{self, Certificate, TlsListener};
use crate::{handlers, page, Counts, Error, LobbyConfig};
use axum::extract::Request;
use axum::http::header::{HeaderName, CONTENT_TYPE, SEC_WEBSOCKET_KEY};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use socketioxide::adapter::Adapter;
use socketioxide::adapter::LocalAdapter;
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketIo, SocketIoBuilder};
use socketioxide_redis::{RedisAdapter, RedisAdapterCtr};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How often the online count may be broadcast (at most twice a second).
const ONLINE_EVERY: Duration = Duration::from_millis(500);
/// How often sockets that never finished connecting are looked for (see `Hub::sweep`).
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How often waiters whose wait ran out are offered a random partner.
const TICK_EVERY: Duration = Duration::from_millis(250);

/// A bound, not yet serving lobby.
pub struct LobbyServer {
    listener: tokio::net::TcpListener,
    config: LobbyConfig,
    tls: Option<Arc<Certificate>>,
}

impl LobbyServer {
    /// Binds the listening socket (port 0 picks a free port; see [`LobbyServer::local_addr`]).
    pub async fn bind(config: LobbyConfig) -> Result<Self, Error> {
        let tls = config.tls.clone().map(Certificate::load).transpose()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind { addr: config.listen, source })?;
        Ok(LobbyServer { listener, config, tls })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let LobbyServer { listener, config, tls } = self;
        // write-through (vendor/engineioxide/PATCHES.md, patch 6) is on; off with
        // TUTTI_LOBBY_WRITE_THROUGH=0, for benchmarks that compare both
        if std::env::var_os("TUTTI_LOBBY_WRITE_THROUGH").is_some_and(|v| v == "0") {
            engineioxide::set_write_through(false);
        }
        let listener = Listening { tcp: listener, tls };
        match config.redis.clone() {
            None => {
                let hub = Arc::new(Hub::new(config, Pairing::Local));
                let (layer, io) = configure(SocketIo::builder(), &hub).build_layer();
                hub.set_io(io.clone());
                io.ns("/", handlers::on_connect::<LocalAdapter>.with(handlers::register::<LocalAdapter>));
                run(listener, hub, layer, shutdown).await
            }
            Some(url) => {
                let url = with_resp3(&url);
                let client = redis::Client::open(url.as_str()).map_err(|e| Error::Redis(e.to_string()))?;
                let adapter =
                    RedisAdapterCtr::new_with_redis(&client).await.map_err(|e| Error::Redis(e.to_string()))?;
                let queue = RedisQueue::connect(&client, config.redis_ttl).await?;
                let hub =
                    Arc::new(Hub::new(config, Pairing::Redis { queue: Box::new(queue), workers: Default::default() }));
                let builder = SocketIo::builder().with_adapter::<RedisAdapter<_>>(adapter);
                let (layer, io) = configure(builder, &hub).build_layer();
                hub.set_io(io.clone());
                io.ns("/", handlers::on_connect::<RedisAdapter<_>>.with(handlers::register::<RedisAdapter<_>>))
                    .await
                    .map_err(|e| Error::Redis(e.to_string()))?;
                run(listener, hub, layer, shutdown).await
            }
        }
    }
}

/// The Redis adapter's driver speaks RESP3.
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

fn configure<A: Adapter>(builder: SocketIoBuilder<A>, hub: &Arc<Hub<A>>) -> SocketIoBuilder<A> {
    builder.max_payload(hub.config.max_payload()).max_buffer_size(128).ws_read_buffer_size(1024).with_state(hub.clone())
}

/// The bound socket and, for HTTPS, the certificate.
struct Listening {
    tcp: tokio::net::TcpListener,
    tls: Option<Arc<Certificate>>,
}

async fn run<A: Adapter>(
    listener: Listening,
    hub: Arc<Hub<A>>,
    layer: SocketIoLayer<A>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let timers = {
        let hub = hub.clone();
        // scaled out, each socket's worker times its own fallback: no tick
        let local = matches!(hub.pairing, Pairing::Local);
        tokio::spawn(async move {
            let mut online = tokio::time::interval(ONLINE_EVERY);
            let mut tick = tokio::time::interval(TICK_EVERY);
            let mut sweep = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = online.tick() => hub.broadcast_online().await,
                    _ = tick.tick(), if local => hub.tick().await,
                    _ = sweep.tick() => hub.sweep().await,
                }
            }
        })
    };
    let (counts_hub, metrics_hub) = (hub.clone(), hub.clone());
    let mut app = Router::new().merge(page::routes(&hub.config));
    if let Some(url) = &hub.config.registry {
        app = app.merge(registry_proxy::routes(
            RegistryTarget::parse(url)?,
            tutti_registry::DEFAULT_REGISTRATIONS_PER_MINUTE,
        ));
    }
    let app = app
        .route("/stats", get(move || std::future::ready(axum::Json(stats(&counts_hub)))))
        .route("/metrics", get(move || std::future::ready(metrics(&metrics_hub))))
        .layer(layer)
        .layer(axum::middleware::map_request(keep_needed_headers));
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    // small frames must leave at once (no Nagle delay): chat and signaling are latency-bound
    let config = &hub.config;
    // refused connections get a 503 over plain HTTP only
    let admission = |answer_http| {
        Admission::new(
            listener.tcp,
            answer_http,
            hub.counters.clone(),
            config.accept_rate,
            config.accept_rate_per_address,
        )
    };
    let result = match listener.tls {
        None => {
            let tcp = admission(true).tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(tcp, app).with_graceful_shutdown(shutdown).await.map_err(Error::Serve)
        }
        Some(certificate) => {
            let reload = tls::reload_on_hangup(certificate.clone())?;
            // tap_io only for axum's ConnectInfo of a tapped listener; nodelay is set before the handshake
            let tls = TlsListener::new(admission(false), &certificate, true)?.tap_io(|_| {});
            let result = axum::serve(tls, app).with_graceful_shutdown(shutdown).await.map_err(Error::Serve);
            reload.abort();
            result
        }
    };
    timers.abort();
    if let Pairing::Redis { queue, .. } = &hub.pairing {
        // this process's sockets leave Redis at once; their partners elsewhere are told
        hub.deliver(queue.leave().await).await;
    }
    result
}

/// The request headers the transports still read once hyper has parsed the request: the WebSocket key
/// (for the 101 answer) and a long-polling body's type. hyper has decided on the upgrade and the body's
/// framing before this point.
const NEEDED_HEADERS: [HeaderName; 2] = [SEC_WEBSOCKET_KEY, CONTENT_TYPE];

/// Keeps only [`NEEDED_HEADERS`], copied, and the upgrade extension. socketioxide keeps every socket's
/// request with it: this way no cookie, user agent or forwarded-for address stays in memory, hyper's
/// read buffer (8–16 KiB per connection, which the original request points into) is freed once the
/// connection is upgraded, and the header map kept is sized for what is there (one header for a
/// WebSocket: 0.1 KiB instead of 0.65 KiB for room for six).
async fn keep_needed_headers(mut request: Request) -> Request {
    let present: Vec<(HeaderName, HeaderValue)> = NEEDED_HEADERS
        .into_iter()
        .filter_map(|name| {
            let value = request.headers().get(&name).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())?;
            Some((name, value))
        })
        .collect();
    let mut kept = HeaderMap::with_capacity(present.len());
    kept.extend(present);
    *request.headers_mut() = kept;
    // the same for extensions: one of hyper's also points into that buffer; only the upgrade is needed
    let upgrade = request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    // the client's address only for a registry request (its per-address limit); a socket never keeps it
    let peer = if request.uri().path().starts_with("/registry/") {
        request.extensions_mut().remove::<axum::extract::ConnectInfo<SocketAddr>>()
    } else {
        None
    };
    *request.extensions_mut() = Default::default();
    if let Some(peer) = peer {
        request.extensions_mut().insert(peer);
    }
    if let Some(upgrade) = upgrade {
        request.extensions_mut().insert(upgrade);
    }
    if let Ok(uri) = request.uri().to_string().parse() {
        *request.uri_mut() = uri;
    }
    request
}

fn stats<A: Adapter>(hub: &Hub<A>) -> Counts {
    hub.lobby().counts()
}

fn metrics<A: Adapter>(hub: &Hub<A>) -> ([(HeaderName, &'static str); 1], String) {
    let (counts, refusals) = {
        let lobby = hub.lobby();
        (lobby.counts(), lobby.refusals())
    };
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], hub.counters.render(counts, refusals))
}
