//! Listen-in: the jam's mix as a live Ogg Opus stream. The jam server hands one tick of the audience's
//! mix at a time to a [`StreamFeed`] (its `StreamTap`); an encoder thread encodes each 20 ms once and
//! writes the Ogg pages to every listener itself (`fanout`: a listener is a socket and a place in
//! the pages kept); the HTTP listener sorts connections by their request (`accept`, `request`),
//! serves the page that plays the stream, and optionally an Icecast source connection pushes the
//! pages on.
//!
//! Sans-IO pieces: [`ogg`] (pages, RFC 7845 headers), [`reframe`] (ticks into 20 ms frames),
//! `request` (which connections are listeners), [`icecast::IcecastTarget`] (the `--stream-to`
//! URL). The rest is the shell.

mod accept;
mod audience;
mod deadline;
mod encoding;
mod fanout;
mod feed;
mod http;
pub mod icecast;
pub mod ogg;
mod page;
mod priority;
pub mod reframe;
mod request;

pub use feed::StreamFeed;
pub use icecast::IcecastTarget;

use audience::Audience;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tutti_codec::{StreamEncoder, STREAM_PRE_SKIP};

/// How long a listener's connection may make no progress before it is closed.
pub const DEFAULT_STALL: Duration = Duration::from_secs(3);
/// Listeners served at most, by default.
pub const DEFAULT_MAX_LISTENERS: u32 = 2000;
/// Pages (20 ms each) written to a listener at once, by default: 60 ms.
pub const DEFAULT_PAGES_PER_WRITE: usize = 3;

/// How the stream is served.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Where the HTTP listener binds (`--stream`).
    pub listen: SocketAddr,
    /// Opus bit rate in bits per second (`--stream-bitrate`).
    pub bitrate: u32,
    /// Show the musicians' names on the page (off with `--stream-hide-names`).
    pub show_names: bool,
    /// The server's name, for the page and the stream's tags.
    pub server_name: String,
    /// The privacy policy served at `/privacy`.
    pub privacy_html: String,
    pub max_listeners: u32,
    /// Pages written to each listener at once (`--stream-pages-per-write`): fewer writes per listener
    /// for 20 ms more delay per page.
    pub pages_per_write: usize,
    /// Close a listener whose connection made no progress for this long.
    pub stall: Duration,
    /// Also push the stream to this Icecast server (`--stream-to`).
    pub icecast: Option<IcecastTarget>,
}

/// Why the stream could not start.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot listen for stream listeners on {address}: {source} (is another program using the port?)")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("cannot start the stream encoder: {0}")]
    Encoder(#[from] tutti_codec::CodecError),
    #[error("cannot start the stream's threads: {0}")]
    Thread(std::io::Error),
}

/// The running stream (HTTP listener, encoder thread, Icecast source); stops when dropped.
pub struct Stream {
    local_addr: SocketAddr,
    audience: Arc<Audience>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    /// Binds the HTTP listener and starts the encoder; returns the stream and the feed to install
    /// in the jam server.
    pub fn start(options: StreamOptions) -> Result<(Stream, StreamFeed), StreamError> {
        let encoder = StreamEncoder::new(options.bitrate)?;
        let tcp = std::net::TcpListener::bind(options.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| StreamError::Bind { address: options.listen, source })?;
        let local_addr = tcp.local_addr().map_err(|source| StreamError::Bind { address: options.listen, source })?;
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() ^ d.as_secs() as u32);
        let mut writer = ogg::OggOpusWriter::new(serial);
        let title =
            format!("TITLE={}", if options.server_name.is_empty() { "tutti jam" } else { &options.server_name });
        let headers = Bytes::from(writer.header_pages(STREAM_PRE_SKIP, "tutti listen-in (libopus 1.6.1)", &[&title]));
        let audience = Arc::new(Audience::new(headers.clone(), options.max_listeners));
        let start = Bytes::from([request::LISTEN_HEAD, &headers[..]].concat());
        let fanout = fanout::FanOut::new(
            start,
            audience::PAGES_BEHIND,
            options.pages_per_write,
            options.stall,
            audience.listeners_dropped.clone(),
        );
        let (joining_tx, joining) = std::sync::mpsc::channel();

        let (blocks_tx, blocks_rx) = std::sync::mpsc::sync_channel(feed::QUEUED_BLOCKS);
        let (spare_tx, spare_rx) = std::sync::mpsc::channel();
        let encoding = encoding::Encoding { encoder, writer, audience: audience.clone(), fanout, joining };
        std::thread::Builder::new()
            .name("stream-encoder".into())
            .spawn(move || {
                priority::below_the_jam();
                encoding.run(blocks_rx, spare_tx)
            })
            .map_err(StreamError::Thread)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stream-http")
            .on_thread_start(priority::below_the_jam)
            .enable_all()
            .build()
            .map_err(StreamError::Thread)?;
        let site = Arc::new(http::Site {
            audience: audience.clone(),
            server_name: options.server_name.clone(),
            show_names: options.show_names,
            privacy_html: options.privacy_html.clone(),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let (stall, icecast, server_name) = (options.stall, options.icecast.clone(), options.server_name.clone());
        let source = audience.clone();
        let thread = std::thread::Builder::new()
            .name("stream-http".into())
            .spawn(move || {
                priority::below_the_jam();
                runtime.block_on(async move {
                    if let Some(target) = icecast {
                        tokio::spawn(icecast::push(target, source, server_name));
                    }
                    let tcp = match tokio::net::TcpListener::from_std(tcp) {
                        Ok(tcp) => tcp,
                        Err(e) => return tracing::warn!("stream listener: {e}"),
                    };
                    let doors = accept::Doors { audience: site.audience.clone(), stall, listeners: joining_tx };
                    let listener = accept::open(tcp, local_addr, doors);
                    // Not a graceful shutdown: live streams never end by themselves.
                    tokio::select! {
                        served = axum::serve(listener, http::router(site)) => {
                            if let Err(e) = served {
                                tracing::warn!("stream listener stopped: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(StreamError::Thread)?;
        tracing::info!(%local_addr, bitrate = options.bitrate, "listen-in stream on");
        let feed = StreamFeed::new(blocks_tx, spare_rx, audience.clone());
        Ok((Stream { local_addr, audience, shutdown: Some(shutdown), thread: Some(thread) }, feed))
    }

    /// Where the HTTP listener is bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Listeners now.
    pub fn listeners(&self) -> u32 {
        self.audience.listeners.load(Ordering::Relaxed)
    }

    /// Stops serving listeners and waits for the HTTP thread.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop_now();
    }
}
