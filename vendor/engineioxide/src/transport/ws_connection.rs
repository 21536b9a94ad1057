//! tutti patch: a WebSocket session after its handshake, as one small hand-written future.
//!
//! Upstream runs three tasks per WebSocket session: a reader (whose future also holds the whole
//! handshake's state), a writer fed by a channel, and a heartbeat. Here one task, spawned once the
//! handshake is done, reads frames, writes the socket's [`Queue`](crate::queue::Queue) and, for a v4
//! session that opened as WebSocket, keeps the heartbeat; its future holds no packet across a
//! wake-up. About 4 KiB less per idle socket than the three tasks.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker, ready},
    time::Duration,
};

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion};
use futures_util::{SinkExt, StreamExt};
use smallvec::smallvec;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Instant, Sleep},
};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};
use tokio_util::future::FutureExt as _;

use crate::{
    DisconnectReason, Socket, engine::EngineIo, errors::Error, handler::EngineIoHandler,
    queue::Direct,
};

/// How a connection ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The client sent a close packet or frame, or closed the stream.
    ClientClosed,
    /// The session was closed on the server's side (by the handler, the engine or the heartbeat).
    SessionClosed,
}

/// The v4 heartbeat of a session that opened as WebSocket. Time is an input. As the reference server
/// (Node's engine.io): the first ping `interval` after the open packet, each next one `interval` after
/// the pong that answered the last; a pong is due within `timeout` of its ping, else the session ends.
/// A pong without a ping outstanding changes nothing.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    pong_due: Option<Instant>,
}

impl Heartbeat {
    pub(crate) fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        Self {
            interval,
            timeout,
            next_ping: now + interval,
            pong_due: None,
        }
    }

    /// When [`Heartbeat::on_timer`] is to be called next.
    pub(crate) fn deadline(&self) -> Instant {
        self.pong_due.unwrap_or(self.next_ping)
    }

    /// Ok(true): send a ping now. Err: the pong came too late.
    fn on_timer(&mut self, now: Instant) -> Result<bool, Error> {
        if let Some(due) = self.pong_due {
            return if now >= due {
                Err(Error::HeartbeatTimeout)
            } else {
                Ok(false)
            };
        }
        if now < self.next_ping {
            return Ok(false);
        }
        self.pong_due = Some(now + self.timeout);
        Ok(true)
    }

    fn on_pong(&mut self, now: Instant) {
        if self.pong_due.take().is_some() {
            self.next_ping = now + self.interval;
        }
    }
}

/// Serves one WebSocket session until either side ends it. `Unpin`, so that it is polled in place:
/// the task's future holds it once.
pub(crate) struct Connection<H: EngineIoHandler, S> {
    engine: Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    // shared with the socket's queue while the session runs (write-through, see [`Wire`])
    wire: Arc<Shared<S>>,
    heartbeat: Option<Heartbeat>,
    // boxed (and only with a heartbeat): a `Sleep` is not `Unpin`
    timer: Option<Pin<Box<Sleep>>>,
}

/// The WebSocket's write side as the connection's task and, write-through, other tasks use it.
///
/// Write-through (tutti patch): a handler that emits to this socket from another connection's task
/// (a relayed chat line, say) writes the frame into the WebSocket itself when the socket's queue is
/// empty and this connection is idle (no task holds it, nothing waits to be flushed), as Node's
/// socket.io writes from the read callback; otherwise the packet is queued, as before, and this
/// connection's task writes it. One wake-up and one task switch less per relayed event.
struct Wire<S> {
    ws: WebSocketStream<S>,
    // frames were written since the last complete flush
    unflushed: bool,
    // the connection's task, the one woken by the WebSocket when a direct write could not flush
    waker: Option<Waker>,
    protocol: ProtocolVersion,
}

/// A [`Wire`] behind a lock: the connection's task holds it while polled, a direct write only
/// tries it.
struct Shared<S>(Mutex<Wire<S>>);

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Wire<S>> {
        // no update leaves a wire half-changed: a poisoned lock is still usable
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Direct for Shared<S> {
    fn try_write(&self, packets: PacketBuf) -> Result<(), PacketBuf> {
        let Ok(mut wire) = self.0.try_lock() else {
            return Err(packets);
        };
        if wire.unflushed {
            return Err(packets);
        }
        let Some(waker) = wire.waker.clone() else {
            return Err(packets);
        };
        // the connection's task is the one the WebSocket wakes when it can take more
        let mut cx = Context::from_waker(&waker);
        if !matches!(wire.ws.poll_ready_unpin(&mut cx), Poll::Ready(Ok(()))) {
            return Err(packets);
        }
        // a broken connection's task will find out; if not all is flushed, the WebSocket wakes the
        // connection's task once it can take the rest
        if wire.write(packets, &mut cx).is_ok() {
            let _ = wire.flush(&mut cx);
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    /// Moves `packets` into the WebSocket, each frame flushed (one write) on its own as the
    /// reference server does: frames emitted together do not share a write (one that did would
    /// reach a client in one read, and a client that handles one frame per read, as the
    /// conformance suites' clients do, would miss the second). While the socket does not take
    /// more, frames are buffered behind the first.
    fn write(&mut self, packets: PacketBuf, cx: &mut Context<'_>) -> Result<(), Error> {
        for packet in packets {
            if let Some(msg) = message(packet, self.protocol) {
                if let Poll::Ready(Err(e)) = self.flush(cx) {
                    return Err(e);
                }
                self.ws.start_send_unpin(msg)?;
                self.unflushed = true;
            }
        }
        Ok(())
    }

    /// Flushes what was written; `Ready(Ok)` once nothing waits. A pending flush stays `unflushed`.
    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.unflushed {
            ready!(self.ws.poll_flush_unpin(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

impl<H: EngineIoHandler, S> Connection<H, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Serves the session in a task of its own.
    pub(crate) fn spawn(
        engine: Arc<EngineIo<H>>,
        socket: Arc<Socket<H::Data>>,
        ws: WebSocketStream<S>,
        heartbeat: Option<Heartbeat>,
    ) -> tokio::task::JoinHandle<()> {
        let timer = heartbeat
            .as_ref()
            .map(|heartbeat| Box::pin(tokio::time::sleep_until(heartbeat.deadline())));
        let wire = Wire {
            ws,
            unflushed: false,
            waker: None,
            protocol: socket.protocol,
        };
        let connection = Self {
            engine,
            socket,
            wire: Arc::new(Shared(Mutex::new(wire))),
            heartbeat,
            timer,
        };
        tokio::spawn(connection.run())
    }

    /// Serves the session once it holds the socket's `internal_rx` lock (a polling request that
    /// was in progress during the upgrade may still hold it), then ends it: the engine learns why,
    /// and after an end without error what the session queued last (a Close packet, say) goes out,
    /// then the close frame (or the answer to the client's). A client that reads nothing gets one
    /// ping timeout for that.
    async fn run(mut self) {
        let socket = self.socket.clone();
        // Uncontended unless a polling request still runs (an upgrade). The wait is boxed, and so
        // is the end below, so that this future stays small for the session's life.
        let reader = match socket.internal_rx.try_lock() {
            Ok(reader) => Some(reader),
            Err(_) => {
                let lock = socket.internal_rx.lock();
                Box::pin(lock.with_cancellation_token(&socket.cancellation_token)).await
            }
        };
        let Some(reader) = reader else {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "session closed before the ws connection started");
            return;
        };
        socket.queue.set_direct(Some(self.wire.clone()));
        let end = (&mut self).await;
        // no direct write after this
        socket.queue.set_direct(None);
        drop(reader);
        Box::pin(self.end(end)).await;
    }

    async fn end(self, end: Result<End, Error>) {
        let Self {
            engine,
            socket,
            wire,
            ..
        } = self;
        let socket = &socket;
        let reason = match end {
            Err(ref _e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = %socket.id, "ws connection error: {_e:?}");
                Option::<DisconnectReason>::from(_e).unwrap_or(DisconnectReason::TransportError)
            }
            // the session is closed already if it ended on the server's side
            Ok(_) => DisconnectReason::TransportClose,
        };
        engine.close_session(socket.id, reason);
        if end.is_err() {
            return;
        }
        let timeout = engine.config.ping_timeout;
        let last_words = async {
            // written as everything before: queued packets into the WebSocket, then a flush
            // (the wire locked for each poll only: a direct write may hold it a moment longer)
            let drained = std::future::poll_fn(|cx| {
                socket.queue.register(cx.waker());
                poll_write(&mut wire.lock(), socket, cx)
            });
            drained.await.ok();
            // this flush also sends tungstenite's answer to a close frame from the client
            std::future::poll_fn(|cx| wire.lock().ws.poll_flush_unpin(cx))
                .await
                .ok();
            std::future::poll_fn(|cx| wire.lock().ws.poll_close_unpin(cx))
                .await
                .ok();
        };
        tokio::time::timeout(timeout, last_words).await.ok();
    }
}

/// Moves queued packets into the WebSocket while it takes them (see [`Wire::write`]). Ready once the
/// queue is empty and everything flushed; otherwise the WebSocket's write side will wake the task,
/// and the queue's if the caller registered with it first. (A client that does not read fills its
/// socket buffer, then this queue, then emits fail as `Full`.)
fn poll_write<D: Default + Send + Sync + 'static, S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    socket: &Socket<D>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    loop {
        ready!(wire.flush(cx))?;
        ready!(wire.ws.poll_ready_unpin(cx))?;
        let Some(packets) = socket.queue.try_recv() else {
            return Poll::Ready(Ok(()));
        };
        wire.write(packets, cx)?;
    }
}

impl<H: EngineIoHandler, S> Future for Connection<H, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Output = Result<End, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // held while polled: a direct write from another task waits for the next idle moment
        let mut wire = this.wire.lock();
        if !wire.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            wire.waker = Some(cx.waker().clone());
        }
        loop {
            // the engine wakes the queue's reader when it cancels the session
            this.socket.queue.register(cx.waker());
            if this.socket.cancellation_token.is_cancelled() {
                return Poll::Ready(Ok(End::SessionClosed));
            }
            if let (Some(heartbeat), Some(timer)) = (this.heartbeat.as_mut(), this.timer.as_mut())
                && timer.as_mut().poll(cx).is_ready()
            {
                let alive = match heartbeat.on_timer(Instant::now()) {
                    Ok(false) => true,
                    Ok(true) => {
                        #[cfg(feature = "tracing")]
                        tracing::trace!(sid = ?this.socket.id, "emitting ping");
                        let ping = this.socket.queue.try_send(smallvec![Packet::Ping]);
                        ping.is_ok()
                    }
                    Err(_) => false,
                };
                if !alive {
                    // as upstream's heartbeat task: a Close packet, then the session ends
                    this.socket.close(DisconnectReason::HeartbeatTimeout);
                    return Poll::Ready(Ok(End::SessionClosed));
                }
                timer.as_mut().reset(heartbeat.deadline());
                continue; // to poll the timer at its new deadline
            }

            // Write what is queued. Not done yet means a waker is registered: the queue's above,
            // or the WebSocket's write side.
            if let Poll::Ready(Err(e)) = poll_write(&mut wire, &this.socket, cx) {
                return Poll::Ready(Err(e));
            }

            // Read: one frame per turn, so that what it caused is written before the next.
            match ready!(wire.ws.poll_next_unpin(cx)) {
                None => return Poll::Ready(Ok(End::ClientClosed)),
                Some(msg) => {
                    if on_frame(&this.engine, &this.socket, msg?, this.heartbeat.as_mut())? {
                        return Poll::Ready(Ok(End::ClientClosed));
                    }
                }
            }
        }
    }
}

/// Hands one frame from the client to the handler. True if the client closed the session.
fn on_frame<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    msg: Message,
    heartbeat: Option<&mut Heartbeat>,
) -> Result<bool, Error> {
    match msg {
        Message::Text(msg) => {
            match Packet::parse(socket.protocol, super::ws::ws_bytes_to_str(msg))? {
                Packet::Close => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!("[sid={}] closing session", socket.id);
                    return Ok(true);
                }
                Packet::Pong | Packet::Ping => match heartbeat {
                    Some(heartbeat) => heartbeat.on_pong(Instant::now()),
                    // A stored notification means that the client is already known to be alive.
                    None => socket.heartbeat.notify_one(),
                },
                Packet::Message(msg) => engine.handler.on_message(msg, socket.clone()),
                p => return Err(Error::BadPacket(p)),
            }
        }
        Message::Binary(mut data) => {
            if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
                // The first byte is the message type, which we don't need.
                data = data.split_off(1);
            }
            engine.handler.on_binary(data, socket.clone());
        }
        Message::Close(_) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("websocket closed, closing session");
            return Ok(true);
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = ?socket.id, "unexpected ws message");
        }
    }
    Ok(false)
}

/// The WebSocket frame of a packet; none for a NOOP.
fn message(packet: Packet, protocol: ProtocolVersion) -> Option<Message> {
    Some(match packet {
        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
            if protocol == ProtocolVersion::V3 {
                // v3 protocol requires packet type as the first byte.
                // This requires a new buffer. This is OK as it is only for the V3 protocol.
                let mut buff = Vec::with_capacity(bin.len() + 1);
                buff.push(0x04);
                buff.extend(bin);
                Message::Binary(buff.into())
            } else {
                Message::Binary(bin)
            }
        }
        // A Noop Packet maybe sent by the server to upgrade from a polling connection
        // In the case that the packet was not poll in time it will remain in the buffer and therefore
        // it should be discarded here
        Packet::Noop => return None,
        packet => Message::Text(String::from(packet).into()),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use engineioxide_core::{Str, TransportType};
    use http::Request;
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::config::EngineIoConfig;

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// Records what the engine tells its handler.
    #[derive(Debug, Default)]
    struct Recorder {
        sockets: Mutex<Vec<Arc<Socket<()>>>>,
        disconnects: Mutex<Vec<DisconnectReason>>,
        messages: Mutex<Vec<String>>,
    }
    impl EngineIoHandler for Recorder {
        type Data = ();
        fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
            self.sockets.lock().unwrap().push(socket);
        }
        fn on_disconnect(&self, _: Arc<Socket<()>>, reason: DisconnectReason) {
            self.disconnects.lock().unwrap().push(reason);
        }
        fn on_message(self: &Arc<Self>, msg: Str, _: Arc<Socket<()>>) {
            self.messages.lock().unwrap().push(msg.to_string());
        }
        fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
    }

    fn engine(interval_ms: u64, timeout_ms: u64) -> Arc<EngineIo<Recorder>> {
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(interval_ms))
            .ping_timeout(Duration::from_millis(timeout_ms))
            .build();
        Arc::new(EngineIo::new(Arc::default(), config))
    }

    fn socket(engine: &Arc<EngineIo<Recorder>>) -> Arc<Socket<()>> {
        engine.handler.sockets.lock().unwrap()[0].clone()
    }

    async fn next_text(client: &mut WebSocketStream<DuplexStream>) -> String {
        match tokio::time::timeout(TIMEOUT, client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// A whole WebSocket session as a client sees it: `on_init` on one end of a pipe.
    async fn open(engine: &Arc<EngineIo<Recorder>>) -> WebSocketStream<DuplexStream> {
        let (server, client) = tokio::io::duplex(4096);
        let parts = Request::<()>::default().into_parts().0;
        let init =
            super::super::ws::on_init(engine.clone(), server, ProtocolVersion::V4, None, parts);
        tokio::spawn(init);
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        assert!(
            next_text(&mut client).await.starts_with("0{"),
            "open packet first"
        );
        client
    }

    async fn disconnects(engine: &Arc<EngineIo<Recorder>>) -> Vec<DisconnectReason> {
        // on_disconnect is called from a task of its own
        for _ in 0..400 {
            let reasons = engine.handler.disconnects.lock().unwrap().clone();
            if !reasons.is_empty() {
                return reasons;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        vec![]
    }

    #[test]
    fn heartbeat_pings_one_interval_after_the_open_and_after_each_pong() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut hb = Heartbeat::new(t0, ms(100), ms(30));
        assert_eq!(
            hb.deadline(),
            t0 + ms(100),
            "no ping right after the open packet"
        );
        assert!(!hb.on_timer(t0 + ms(99)).unwrap());
        assert!(
            hb.on_timer(t0 + ms(100)).unwrap(),
            "first ping one interval after the open"
        );
        assert_eq!(hb.deadline(), t0 + ms(130), "then the pong is due");
        assert!(
            !hb.on_timer(t0 + ms(110)).unwrap(),
            "early wake-up: nothing to do"
        );
        hb.on_pong(t0 + ms(120));
        assert_eq!(
            hb.deadline(),
            t0 + ms(220),
            "next ping one interval after the pong"
        );
        assert!(!hb.on_timer(t0 + ms(219)).unwrap());
        assert!(hb.on_timer(t0 + ms(220)).unwrap());
        assert!(matches!(
            hb.on_timer(t0 + ms(250)),
            Err(Error::HeartbeatTimeout)
        ));
    }

    #[test]
    fn a_pong_without_a_ping_changes_nothing_and_a_late_timer_pings_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut hb = Heartbeat::new(t0, ms(100), ms(30));
        hb.on_pong(t0 + ms(50));
        assert_eq!(hb.deadline(), t0 + ms(100));
        assert!(hb.on_timer(t0 + ms(1000)).unwrap());
        assert!(
            !hb.on_timer(t0 + ms(1001)).unwrap(),
            "one ping, not a burst"
        );
        hb.on_pong(t0 + ms(1010));
        assert_eq!(hb.deadline(), t0 + ms(1110));
    }

    #[tokio::test]
    async fn a_session_that_answers_pings_stays_and_one_that_stops_is_closed() {
        let engine = engine(60, 40);
        let mut client = open(&engine).await;
        for _ in 0..4 {
            assert_eq!(next_text(&mut client).await, "2");
            client.send(Message::text("3")).await.unwrap();
        }
        assert!(engine.handler.disconnects.lock().unwrap().is_empty());
        assert_eq!(next_text(&mut client).await, "2");
        // no pong
        assert_eq!(
            disconnects(&engine).await,
            [DisconnectReason::HeartbeatTimeout]
        );
        assert_eq!(next_text(&mut client).await, "1", "engine.io close packet");
        let end = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
        assert!(matches!(end, Some(Ok(Message::Close(_))) | None), "{end:?}");
    }

    #[tokio::test]
    async fn messages_go_both_ways_and_a_client_close_is_answered() {
        let engine = engine(10_000, 5_000);
        let mut client = open(&engine).await;
        client.send(Message::text("4hello")).await.unwrap();
        let socket = socket(&engine);
        for text in ["world", "and", "more"] {
            socket.emit(text).unwrap();
        }
        for text in ["4world", "4and", "4more"] {
            assert_eq!(next_text(&mut client).await, text);
        }
        // the emits may have been written through, before the connection read "hello"
        for _ in 0..400 {
            if !engine.handler.messages.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(*engine.handler.messages.lock().unwrap(), ["hello"]);
        client.close(None).await.unwrap();
        let answer = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
        assert!(
            matches!(answer, Some(Ok(Message::Close(_))) | None),
            "{answer:?}"
        );
        assert_eq!(
            disconnects(&engine).await,
            [DisconnectReason::TransportClose]
        );
        assert!(socket.is_closed());
    }

    #[tokio::test]
    async fn a_session_closed_by_the_server_sends_its_last_packets_then_a_close_frame() {
        let engine = engine(10_000, 5_000);
        let mut client = open(&engine).await;
        let socket = socket(&engine);
        socket.emit("bye").unwrap();
        socket.close(DisconnectReason::ClosingServer);
        assert_eq!(next_text(&mut client).await, "4bye");
        assert_eq!(next_text(&mut client).await, "1", "engine.io close packet");
        let end = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
        assert!(matches!(end, Some(Ok(Message::Close(_))) | None), "{end:?}");
        assert_eq!(
            disconnects(&engine).await,
            [DisconnectReason::ClosingServer]
        );
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_fills_the_queue_and_is_closed_by_the_heartbeat() {
        let engine = engine(50, 50);
        let mut client = open(&engine).await;
        assert_eq!(next_text(&mut client).await, "2");
        client.send(Message::text("3")).await.unwrap();
        let socket = socket(&engine);
        // the client stops reading: the pipe (4 KiB), then the queue (128 packets) fill up
        let big = "x".repeat(1000);
        let mut full = false;
        for _ in 0..1000 {
            if socket.emit(big.clone()).is_err() {
                full = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(full, "emits fail once the queue is full");
        assert_eq!(
            disconnects(&engine).await,
            [DisconnectReason::HeartbeatTimeout]
        );
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn connection_waits_for_the_lock_of_a_polling_request() {
        let engine = engine(10_000, 5_000);
        let parts = Request::<()>::default().into_parts().0;
        let socket =
            engine.create_session(ProtocolVersion::V4, TransportType::Websocket, parts, false);
        let (server, client) = tokio::io::duplex(1024);
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;

        let polling = socket.internal_rx.lock().await;
        let conn = Connection::spawn(engine.clone(), socket.clone(), server, None);
        socket.emit(Str::from("hello")).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !conn.is_finished(),
            "the connection should wait for the lock"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(20), client.next())
                .await
                .is_err(),
            "nothing written while polling holds the lock"
        );

        drop(polling);
        assert_eq!(next_text(&mut client).await, "4hello");
    }

    #[tokio::test]
    async fn connection_waiting_for_the_lock_stops_with_the_session() {
        let engine = engine(10_000, 5_000);
        let parts = Request::<()>::default().into_parts().0;
        let socket =
            engine.create_session(ProtocolVersion::V4, TransportType::Websocket, parts, false);
        let (server, _client) = tokio::io::duplex(1024);
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;

        let _polling = socket.internal_rx.lock().await;
        let conn = Connection::spawn(engine.clone(), socket.clone(), server, None);
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancellation_token.cancel();
        tokio::time::timeout(TIMEOUT, conn)
            .await
            .expect("the connection should stop")
            .unwrap();
    }

    /// A stream that records the size of each write.
    struct Recorded {
        inner: DuplexStream,
        writes: Arc<Mutex<Vec<usize>>>,
    }
    impl AsyncRead for Recorded {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }
    impl AsyncWrite for Recorded {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
            self.writes.lock().unwrap().push(written);
            Poll::Ready(Ok(written))
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// As the reference server: frames queued together still go out one write each, so that a
    /// client reading one frame per read sees each (the conformance suites' clients do).
    #[tokio::test]
    async fn frames_queued_together_go_out_in_a_write_each() {
        let engine = engine(10_000, 5_000);
        let parts = Request::<()>::default().into_parts().0;
        let socket =
            engine.create_session(ProtocolVersion::V4, TransportType::Websocket, parts, false);
        let (server, client) = tokio::io::duplex(4096);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let server = Recorded {
            inner: server,
            writes: writes.clone(),
        };
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;

        let polling = socket.internal_rx.lock().await;
        let _conn = Connection::spawn(engine.clone(), socket.clone(), server, None);
        socket.emit(Str::from("one")).unwrap();
        socket.emit(Str::from("two")).unwrap();
        socket
            .reserve()
            .unwrap()
            .emit_many_binary(Bytes::from_static(b"3"), vec![Bytes::from_static(b"4")]);
        drop(polling);
        assert_eq!(next_text(&mut client).await, "4one");
        assert_eq!(next_text(&mut client).await, "4two");
        for _ in 0..2 {
            let frame = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
            assert!(matches!(frame, Some(Ok(Message::Binary(_)))), "{frame:?}");
        }
        // "4one" and "4two" as text frames of 2 + 4 bytes; the binary ones 2 + 1 each
        assert_eq!(*writes.lock().unwrap(), [6, 6, 3, 3]);
    }

    /// Two tasks emit thousands of numbered messages to one socket while its client keeps its
    /// connection busy reading: some are written through, some queued, and each arrives once and
    /// in its sender's order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn direct_and_queued_writes_mixed_keep_each_senders_order() {
        const EACH: usize = 5_000;
        crate::set_write_through(true);
        let engine = engine(10_000, 5_000);
        let (server, client) = tokio::io::duplex(64 * 1024);
        let parts = Request::<()>::default().into_parts().0;
        tokio::spawn(super::super::ws::on_init(
            engine.clone(),
            server,
            ProtocolVersion::V4,
            None,
            parts,
        ));
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let (mut client_tx, mut client_rx) = client.split();
        let open = tokio::time::timeout(TIMEOUT, client_rx.next())
            .await
            .unwrap();
        assert!(matches!(open, Some(Ok(Message::Text(ref t))) if t.starts_with("0{")));
        let socket = socket(&engine);
        // the client's own traffic keeps the connection's task busy now and then
        let chatter = tokio::spawn(async move {
            for i in 0..2_000 {
                if client_tx
                    .send(Message::text(format!("4c{i}")))
                    .await
                    .is_err()
                {
                    break;
                }
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            client_tx
        });
        let senders: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let socket = socket.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        // every tenth queued whatever the connection does, so that some are
                        let emit = || socket.emit(format!("{name}{i}")).is_ok();
                        while !(if i % 10 == 0 {
                            crate::queued_only(emit)
                        } else {
                            emit()
                        }) {
                            tokio::task::yield_now().await; // full: the client catches up
                        }
                        if i % 7 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let mut next = [0usize; 2];
        while next != [EACH, EACH] {
            let frame = tokio::time::timeout(TIMEOUT, client_rx.next())
                .await
                .unwrap();
            let Some(Ok(Message::Text(text))) = frame else {
                panic!("{frame:?}")
            };
            let text = text.strip_prefix('4').expect("a message");
            let (who, n) = text.split_at(1);
            let who = if who == "a" { 0 } else { 1 };
            assert_eq!(
                n.parse::<usize>().unwrap(),
                next[who],
                "in order, once: {text}"
            );
            next[who] += 1;
        }
        for sender in senders {
            sender.await.unwrap();
        }
        let _client_tx = chatter.await.unwrap();
        let direct = socket.queue.direct_writes();
        assert!(
            direct > 0 && direct < 2 * EACH,
            "mixed: {direct} of {} written through",
            2 * EACH
        );
    }

    #[test]
    fn a_connection_future_is_small() {
        type Conn = Connection<Recorder, tokio::net::TcpStream>;
        let size = std::mem::size_of::<Conn>();
        assert!(size <= 450, "{size} bytes");
    }
}
