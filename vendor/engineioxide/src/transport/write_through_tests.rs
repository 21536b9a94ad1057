//! tutti patch: write-through under load, over real TCP sockets on loopback (small socket buffers,
//! so that writes also wait for the client), as the lobby uses it: handlers that relay what one
//! connection reads to another socket (some of them inside `queued_only`), a task that emits in
//! bursts beside them, and the receiving socket's own connection busy with its client's traffic.
//! Every frame must arrive exactly once and in its sender's order, without a stall (a lost
//! wake-up shows as a frame that never comes).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use engineioxide_core::{ProtocolVersion, Str};
use futures_util::{SinkExt, StreamExt};
use http::Request;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::Role},
};

use crate::{
    DisconnectReason, Socket, config::EngineIoConfig, engine::EngineIo, handler::EngineIoHandler,
};

/// How long a frame may keep the client waiting before the test calls it lost.
const STALL: Duration = Duration::from_secs(5);

/// Relays, as the lobby does: a message `to:<text>` read on any socket is emitted to the sink (the
/// socket that said `sink`), from the reading connection's task; `<text>` starting with `q` inside
/// `queued_only`. The sink's own `c…` messages are echoed to it as `e…`.
#[derive(Debug, Default)]
struct Relay {
    sink: Mutex<Option<Arc<Socket<()>>>>,
    sockets: Mutex<Vec<Arc<Socket<()>>>>,
    refused: std::sync::atomic::AtomicUsize,
}

impl Relay {
    fn sink(&self) -> Arc<Socket<()>> {
        self.sink
            .lock()
            .unwrap()
            .clone()
            .expect("the sink said who it is")
    }

    fn emit(&self, to: &Socket<()>, text: &str) {
        let send = || to.emit(Str::copy_from_slice(text)).is_ok();
        let sent = if text.starts_with('q') {
            crate::queued_only(send)
        } else {
            send()
        };
        if !sent {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl EngineIoHandler for Relay {
    type Data = ();
    fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
        self.sockets.lock().unwrap().push(socket);
    }
    fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
    fn on_message(self: &Arc<Self>, msg: Str, from: Arc<Socket<()>>) {
        if &*msg == "sink" {
            *self.sink.lock().unwrap() = Some(from);
        } else if let Some(text) = msg.strip_prefix("to:") {
            self.emit(&self.sink(), text);
        } else if let Some(n) = msg.strip_prefix('c') {
            self.emit(&from, &format!("e{n}"));
        }
    }
    fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
}

/// A listener whose accepted sockets have small send buffers, each connection served by `on_init`.
async fn serve(engine: Arc<EngineIo<Relay>>) -> std::net::SocketAddr {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).unwrap();
            let parts = Request::<()>::default().into_parts().0;
            tokio::spawn(super::ws::on_init(
                engine.clone(),
                tcp,
                ProtocolVersion::V4,
                None,
                parts,
            ));
        }
    });
    addr
}

/// A client with a small receive buffer, past the open packet.
async fn connect(addr: std::net::SocketAddr) -> WebSocketStream<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut ws = WebSocketStream::from_raw_socket(tcp, Role::Client, None).await;
    let open = tokio::time::timeout(STALL, ws.next()).await.unwrap();
    assert!(matches!(open, Some(Ok(Message::Text(ref t))) if t.starts_with("0{")));
    ws
}

/// `name0`, `name1`, … as the senders number them; every `queued`th one inside `queued_only`
/// (0: none).
fn numbered(name: char, i: usize, queued: usize) -> String {
    if queued > 0 && i.is_multiple_of(queued) {
        format!("q{name}{i}")
    } else {
        format!("{name}{i}")
    }
}

/// One round: two clients each have `each` numbered messages relayed to the sink (`a…` all
/// direct-eligible, `b…` every third inside `queued_only`), a task emits `each` more to it in
/// bursts (`t…`, every fifth queued only), and the sink's client sends `each / 4` of its own (echoed
/// to it from its own connection's task) while it reads, pausing every `pause_every` frames (0:
/// never) so that writes wait for it. `paced`: the senders pause now and then, so that the sink's
/// queue empties (writes through), else they send as fast as they can (mostly queued). Returns how
/// many were written through.
async fn round(each: usize, paced: bool, pause_every: usize) -> usize {
    let config = EngineIoConfig::builder()
        .ping_interval(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(60))
        .max_buffer_size(4 * each + 64)
        .build();
    let engine = Arc::new(EngineIo::new(Arc::<Relay>::default(), config));
    let addr = serve(engine.clone()).await;

    let mut sink = connect(addr).await;
    sink.send(Message::text("4sink")).await.unwrap();
    let mut senders = Vec::new();
    for (name, queued) in [('a', 0), ('b', 3)] {
        let mut client = connect(addr).await;
        senders.push(tokio::spawn(async move {
            // until the sink said who it is, relays would have nowhere to go
            tokio::time::sleep(Duration::from_millis(50)).await;
            for i in 0..each {
                let text = numbered(name, i, queued);
                client
                    .feed(Message::text(format!("4to:{text}")))
                    .await
                    .unwrap();
                if i % 4 == 3 {
                    client.flush().await.unwrap();
                    if paced {
                        // now and then the sink's queue empties: the next relay may go straight through
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            client.flush().await.unwrap();
            client
        }));
    }
    let sink_socket = {
        let engine = engine.clone();
        async move {
            loop {
                if let Some(sink) = engine.handler.sink.lock().unwrap().clone() {
                    return sink;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    .await;
    let burst = {
        let (engine, sink) = (engine.clone(), sink_socket.clone());
        tokio::spawn(async move {
            for i in 0..each {
                // bursts of 200 without a yield: the task's I/O budget runs out within one
                engine.handler.emit(&sink, &numbered('t', i, 5));
                if i % 200 == 199 {
                    if paced {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
            }
        })
    };

    let (mut sink_tx, mut sink_rx) = sink.split();
    let chatter = tokio::spawn(async move {
        for i in 0..each / 4 {
            sink_tx.send(Message::text(format!("4c{i}"))).await.unwrap();
            if i % 8 == 0 {
                tokio::task::yield_now().await;
            }
        }
        sink_tx
    });

    let expected: HashMap<char, usize> =
        [('a', each), ('b', each), ('t', each), ('e', each / 4)].into();
    let mut next: HashMap<char, usize> = expected.keys().map(|&k| (k, 0)).collect();
    let mut got = 0;
    while next != expected {
        let frame = match tokio::time::timeout(STALL, sink_rx.next()).await {
            Ok(frame) => frame,
            Err(_) => panic!(
                "stalled: no frame within {STALL:?}; next expected {next:?} of {expected:?}, \
                 queue {:?}",
                sink_socket.queue
            ),
        };
        let Some(Ok(Message::Text(text))) = frame else {
            panic!("{frame:?}")
        };
        let text = text.strip_prefix('4').expect("a message");
        let text = text.strip_prefix('q').unwrap_or(text);
        let who = text.chars().next().unwrap();
        let n: usize = text[1..].parse().unwrap();
        let want = next.get_mut(&who).expect("a known sender");
        assert_eq!(n, *want, "{who}: each once and in order, got {text}");
        *want += 1;
        got += 1;
        if pause_every > 0 && got % pause_every == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for sender in senders {
        sender.await.unwrap();
    }
    burst.await.unwrap();
    let _sink_tx = chatter.await.unwrap();
    assert_eq!(
        engine
            .handler
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    sink_socket.queue.direct_writes()
}

/// Direct writes (from the senders' connections and the bursting task), queued packets (the
/// `queued_only` ones, those that found the sink's connection busy, its own echoes) and writes
/// that wait for the client, mixed on one socket: each frame once, in each sender's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_queued_only_and_queued_writes_to_one_socket_over_tcp() {
    const EACH: usize = 3_000;
    crate::set_write_through(true);
    let mut direct = 0;
    for (paced, pause_every) in [(true, 0), (false, 0), (true, 97), (false, 500)] {
        direct += round(EACH, paced, pause_every).await;
    }
    let sent = 4 * (3 * EACH + EACH / 4);
    assert!(
        direct > 0 && direct < sent,
        "mixed: {direct} of {sent} written through"
    );
}
