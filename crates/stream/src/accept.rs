//! The stream's TCP listener: each connection's request head is read first (`request::route`); a
//! listener is answered by hand and its socket handed to the encoder thread's `FanOut`, everything
//! else is handed to the page's router with the bytes already read put back in front. The peer's
//! address is dropped at `accept`.

use crate::audience::Audience;
use crate::deadline::StallGuarded;
use crate::fanout::Joining;
use crate::request::{self, Route};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Bytes the kernel may hold for one connection (two seconds of a 128 kbit/s stream).
const SEND_BUFFER: usize = 32 * 1024;
/// A request head must arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Site connections waiting for the router.
const SITE_QUEUE: usize = 64;

pub(crate) type SiteIo = Prefixed<StallGuarded<TcpStream>>;

pub(crate) struct Doors {
    pub audience: Arc<Audience>,
    pub stall: Duration,
    pub listeners: std::sync::mpsc::Sender<Joining<std::net::TcpStream>>,
}

/// Accepts connections for ever, sorting each in a task of its own; returns the router's side.
pub(crate) fn open(tcp: TcpListener, local_addr: SocketAddr, doors: Doors) -> SiteListener {
    let (site, connections) = mpsc::channel(SITE_QUEUE);
    let doors = Arc::new(doors);
    tokio::spawn(async move {
        loop {
            match tcp.accept().await {
                Ok((stream, _address)) => {
                    let _ = stream.set_nodelay(true);
                    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
                    tokio::spawn(sort(stream, doors.clone(), site.clone()));
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    SiteListener { connections, local_addr }
}

async fn sort(mut stream: TcpStream, doors: Arc<Doors>, site: mpsc::Sender<(SiteIo, SocketAddr)>) {
    let mut head = Vec::with_capacity(1024);
    let route = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            match request::route(&head) {
                Route::More => {}
                decided => return Some(decided),
            }
            match stream.read_buf(&mut head).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await;
    match route {
        Ok(Some(Route::Listen)) => {
            let Some(listener) = doors.audience.admit() else {
                let _ = stream.write_all(request::FULL).await;
                return;
            };
            match stream.into_std() {
                // Non-blocking already: the encoder thread writes to it without waiting.
                Ok(socket) => {
                    let _ = doors.listeners.send(Joining { socket, listener });
                }
                Err(e) => tracing::debug!("stream listener: {e}"),
            }
        }
        Ok(Some(Route::ListenHead)) => {
            let _ = stream.write_all(request::LISTEN_HEAD).await;
        }
        Ok(Some(_)) => {
            let inner = StallGuarded::new(stream, doors.stall);
            let anonymous = SocketAddr::from(([0, 0, 0, 0], 0));
            let _ = site.send((Prefixed { head, read: 0, inner }, anonymous)).await;
        }
        // Closed, failed or too slow before its request was complete.
        Ok(None) | Err(_) => {}
    }
}

/// The router's listener: the site connections sorted out by `open`.
pub(crate) struct SiteListener {
    connections: mpsc::Receiver<(SiteIo, SocketAddr)>,
    local_addr: SocketAddr,
}

impl axum::serve::Listener for SiteListener {
    type Io = SiteIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

/// A connection with bytes already read from it put back in front.
pub(crate) struct Prefixed<S> {
    head: Vec<u8>,
    read: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.read < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.read);
            let from = self.read;
            buf.put_slice(&self.head[from..from + n]);
            self.read += n;
            if self.read == self.head.len() {
                self.head = Vec::new();
                self.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
