//! The state every handler shares: the [`Lobby`] behind one lock (or, scaled out, the Redis queue for
//! matching), the online counter, and delivery of [`Notice`]s and relayed events to sockets, local or
//! (through the Redis adapter) on another process. No lock is held across an await.

use crate::metrics::Counters;
use crate::redis_queue::RedisQueue;
use crate::{Error, Interests, Lobby, LobbyConfig, Notice, Online};
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use socketioxide::{SendError, SocketError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a socket may take from its connect middleware to the namespace (a Redis round trip or
/// two) before [`Hub::sweep`] takes it for gone.
const ORPHAN_AFTER: Duration = Duration::from_secs(10);

/// How many sockets must have left since the sweep saw the most before memory is given back.
const TRIM_AFTER_LEAVING: usize = 32;

/// One checked client request, ready to be carried out.
pub(crate) enum Job {
    Find(Interests),
    Next,
    Stop,
    Signal(Value),
    Message(String),
    Typing(bool),
    Challenge,
    Identify(Proof),
    Reachable(bool),
    /// The callee's ID, 40 lowercase hex digits.
    Call(String),
    Answer(bool),
    Cancel,
}

/// A socket's proof of its identity key: the key (base64 of its PEM), the challenge it was given and
/// its signature over `tutti-lobby-reach-v1:` + challenge.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Proof {
    pub(crate) publickey: String,
    pub(crate) challenge: String,
    pub(crate) signature: String,
}

/// What a job did: fields for the ack besides `ok`, and (scaled out) timers it set.
#[derive(Debug, Default)]
pub(crate) struct Done {
    pub(crate) reply: Option<Value>,
    /// The socket waits with interests: its random fallback is due after this long.
    pub(crate) fallback_in: Option<Duration>,
    /// The socket's call rings: it times out after this long.
    pub(crate) ring_in: Option<Duration>,
}

/// A job and where its outcome goes.
pub(crate) type Queued<A> = (Job, AckSender<A>);

/// Where matching and pairs live.
pub(crate) enum Pairing<A: Adapter> {
    /// In this process's [`Lobby`]; every job runs synchronously in the socket's handler, in order.
    Local,
    /// In Redis, shared by every lobby process; each socket's jobs run in order on its own task.
    Redis { queue: Box<RedisQueue>, workers: Mutex<HashMap<Sid, mpsc::UnboundedSender<Queued<A>>>> },
}

/// Shared server state.
pub(crate) struct Hub<A: Adapter> {
    pub(crate) config: LobbyConfig,
    /// Sockets of this process, their budgets and (with [`Pairing::Local`]) queue and pairs.
    lobby: Mutex<Lobby<Sid>>,
    pub(crate) pairing: Pairing<A>,
    online: Mutex<Online>,
    /// The last total counted (scaled out: over every process), for sockets that just connected.
    last_total: AtomicUsize,
    io: OnceLock<SocketIo<A>>,
    /// Held to emit to a socket through its own room ([`Hub::emit_connecting`]) and to leave it.
    marking: Mutex<()>,
    /// The shell's counters for `/metrics`.
    pub(crate) counters: Arc<Counters>,
    /// The most sockets seen by the sweep since memory was last given back.
    most_sockets: AtomicUsize,
}

impl<A: Adapter> Hub<A> {
    pub(crate) fn new(config: LobbyConfig, pairing: Pairing<A>) -> Self {
        let lobby = Lobby::new(config.limits.clone(), config.fallback_wait).with_ring_timeout(config.ring_timeout);
        Hub {
            config,
            lobby: Mutex::new(lobby),
            pairing,
            online: Mutex::new(Online::default()),
            last_total: AtomicUsize::new(0),
            io: OnceLock::new(),
            marking: Mutex::new(()),
            counters: Arc::default(),
            most_sockets: AtomicUsize::new(0),
        }
    }

    pub(crate) fn set_io(&self, io: SocketIo<A>) {
        let _ = self.io.set(io);
    }

    fn io(&self) -> &SocketIo<A> {
        self.io.get().expect("the Socket.IO layer is built before any socket connects")
    }

    pub(crate) fn lobby(&self) -> MutexGuard<'_, Lobby<Sid>> {
        self.lobby.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Charges one event to the socket's budget.
    pub(crate) fn admit(&self, id: Sid) -> Result<(), Error> {
        self.lobby().admit(id, Instant::now())
    }

    /// Records a refusal found outside the lobby (size, payload shape).
    pub(crate) fn strike(&self, id: Sid) -> Result<(), Error> {
        self.lobby().strike(id, Instant::now())
    }

    /// Carries out a job with the pairs in this process: synchronous, so a socket's events keep
    /// their order.
    pub(crate) fn run_local(&self, id: Sid, job: Job) -> Result<Done, Error> {
        let now = Instant::now();
        let notices = match job {
            Job::Find(interests) => self.lobby().find(id, interests, now)?,
            Job::Next => self.lobby().next(id, now)?,
            Job::Stop => self.lobby().stop(id)?,
            Job::Signal(data) => return self.relay_local(id, "signal", &json!({ "data": data })),
            Job::Message(text) => return self.relay_local(id, "message", &json!({ "text": text })),
            Job::Typing(on) => return self.relay_local(id, "typing", &json!({ "on": on })),
            Job::Challenge => return self.challenge(id),
            Job::Identify(proof) => return self.identify(id, proof).map(|(done, _)| done),
            Job::Reachable(on) => {
                self.lobby().set_reachable(id, on)?;
                return Ok(Done::default());
            }
            Job::Call(to) => self.lobby().call(id, &to, now)?,
            Job::Answer(accept) => self.lobby().answer(id, accept)?,
            Job::Cancel => self.lobby().cancel_call(id)?,
        };
        // queued, so that none leaves before all are out (see engineioxide::queued_only)
        engineioxide::queued_only(|| {
            for notice in notices {
                let (to, event, data) = self.notice_event(notice);
                self.emit_local(to, event, &data);
            }
        });
        Ok(Done::default())
    }

    /// `challenge`: a fresh random challenge (32 bytes, base64url), kept for this socket only.
    fn challenge(&self, id: Sid) -> Result<Done, Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.lobby().set_challenge(id, challenge.clone(), Instant::now())?;
        Ok(Done { reply: Some(json!({ "challenge": challenge })), ..Done::default() })
    }

    /// `identify`: checks the proof (the socket's fresh challenge, once; an Ed25519 key; the signature)
    /// and keeps the ID it proves. Also says whether the socket had another identity before.
    fn identify(&self, id: Sid, proof: Proof) -> Result<(Done, bool), Error> {
        let challenge = self
            .lobby()
            .take_challenge(id, Instant::now())
            .ok_or(Error::BadProof("no fresh challenge for this socket: ask for one (they last 60 s, once)"))?;
        if challenge != proof.challenge {
            return Err(Error::BadProof("not the challenge this socket was given last"));
        }
        let key = tutti_registry::PublicKey::from_base64_pem(&proof.publickey)
            .map_err(|_| Error::BadProof("publickey is not base64 of a PEM public key"))?;
        if key.kind() != tutti_registry::KeyKind::Ed25519 {
            return Err(Error::BadProof("the key is not an Ed25519 key"));
        }
        let message = format!("{}{challenge}", tutti_identity::LOBBY_REACH);
        key.verify_base64(message.as_bytes(), &proof.signature)
            .map_err(|_| Error::BadProof("the signature does not verify"))?;
        let identity = key.addr().hex();
        let mut lobby = self.lobby();
        let had = lobby.identity(id).is_some();
        lobby.identify(id, identity.clone(), serde_json::to_value(&proof).unwrap_or(Value::Null))?;
        Ok((Done { reply: Some(json!({ "id": identity })), ..Done::default() }, had))
    }

    fn relay_local(&self, from: Sid, event: &'static str, data: &Value) -> Result<Done, Error> {
        let partner = self.lobby().partner(from).ok_or(Error::NoPartner)?;
        self.emit_local(partner, event, data);
        Ok(Done::default())
    }

    /// Carries out a job with the pairs in Redis; says when the socket's random fallback is due if the
    /// job left it waiting with interests, and when its call times out if it rings.
    pub(crate) async fn run_redis(&self, queue: &RedisQueue, id: Sid, job: Job) -> Result<Done, Error> {
        let outcome = match job {
            Job::Find(interests) => queue.find(id, &interests, &self.config).await?,
            Job::Next => queue.next(id, &self.config).await?,
            Job::Stop => queue.stop(id).await?,
            Job::Signal(data) => return self.relay_redis(queue, id, "signal", &json!({ "data": data })).await,
            Job::Message(text) => return self.relay_redis(queue, id, "message", &json!({ "text": text })).await,
            Job::Typing(on) => return self.relay_redis(queue, id, "typing", &json!({ "on": on })).await,
            Job::Challenge => return self.challenge(id),
            Job::Identify(proof) => {
                let (done, had) = self.identify(id, proof)?;
                if had {
                    // the earlier identity is no longer reachable through this socket
                    queue.reach(id, "", false).await?;
                }
                return Ok(done);
            }
            Job::Reachable(on) => {
                let identity = self.lobby().identity(id).ok_or(Error::NotIdentified)?.to_string();
                queue.reach(id, &identity, on).await?;
                return Ok(Done::default());
            }
            Job::Call(to) => {
                if self.lobby().identity(id).is_none() {
                    return Err(Error::NotIdentified);
                }
                queue.call(id, &to, &self.config).await?
            }
            Job::Answer(accept) => queue.answer(id, accept).await?,
            Job::Cancel => queue.cancel(id).await?,
        };
        self.deliver(outcome.notices).await;
        Ok(Done { reply: None, fallback_in: outcome.fallback_in, ring_in: outcome.ring_in })
    }

    /// Scaled out: the socket's call rang long enough; it ends unless answered. Says when to try again
    /// (only if it was too early).
    pub(crate) async fn ring_timeout_redis(&self, queue: &RedisQueue, id: Sid) -> Option<Duration> {
        let outcome = queue.ring_timeout(id).await.ok()?;
        self.deliver(outcome.notices).await;
        outcome.ring_in
    }

    /// Scaled out: the socket's wait ran out; tries a random partner once. Says when to try again
    /// (only if it was too early).
    pub(crate) async fn fallback_redis(&self, queue: &RedisQueue, id: Sid) -> Option<Duration> {
        let outcome = queue.fallback(id, &self.config).await.ok()?;
        self.deliver(outcome.notices).await;
        outcome.fallback_in
    }

    async fn relay_redis(
        &self,
        queue: &RedisQueue,
        from: Sid,
        event: &'static str,
        data: &Value,
    ) -> Result<Done, Error> {
        let partner = queue.partner(from).await?.ok_or(Error::NoPartner)?;
        self.emit_anywhere(partner, event, data).await;
        Ok(Done::default())
    }

    /// Emits to a socket of this process (a socket that is gone is skipped).
    fn emit_local<T: Serialize + ?Sized>(&self, to: Sid, event: &'static str, data: &T) -> bool {
        let Some(socket) = self.io().get_socket(to) else { return false };
        if let Err(SendError::Socket(SocketError::Closed)) = socket.emit(event, data) {
            let _marking = self.marking.lock().unwrap_or_else(|p| p.into_inner());
            if socket.connected() {
                // marked in between: the room may be gone already
                let _ = socket.emit(event, data);
            } else {
                self.emit_connecting(to, event, data);
            }
        }
        true
    }

    /// A socket was marked connected: it leaves its own room (with [`Pairing::Local`]; a room costs
    /// memory), not while [`Hub::emit_local`] may be emitting to it through that room.
    pub(crate) fn marked_connected(&self, socket: &SocketRef<A>) {
        if matches!(self.pairing, Pairing::Local) {
            let _marking = self.marking.lock().unwrap_or_else(|p| p.into_inner());
            socket.leave_all();
        }
    }

    /// Emits to a socket that is not marked connected yet: socketioxide marks a socket connected only
    /// after it handed the CONNECT answer to the engine, which may write it to the client at once
    /// (write-through, from the connecting task). The client may then send `find` and be matched
    /// before the mark, and `Socket::emit` refuses to emit to an unmarked socket. Every socket is in
    /// its own room until it is marked ([`crate::handlers`]), and a room emit does not look at the
    /// mark. (A socket that is gone has left its rooms: nothing is sent.)
    fn emit_connecting<T: Serialize + ?Sized>(&self, to: Sid, event: &'static str, data: &T) {
        // local only: the adapter publishes nothing, and the future is ready at its first poll
        let emit = std::pin::pin!(self.io().local().to(to.to_string()).emit(event, data));
        let sent = emit.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        if !matches!(sent, std::task::Poll::Ready(Ok(()))) {
            tracing::debug!(event, "an emit to a connecting socket failed");
        }
    }

    /// Scaled out: emits through the adapter to a socket on another process.
    async fn emit_remote<T: Serialize + ?Sized>(&self, to: Sid, event: &'static str, data: &T) {
        if matches!(self.pairing, Pairing::Redis { .. }) {
            let _ = self.io().to(to.to_string()).emit(event, data).await;
        }
    }

    /// Emits to a socket here or, through the adapter, on another process.
    async fn emit_anywhere<T: Serialize + ?Sized>(&self, to: Sid, event: &'static str, data: &T) {
        if !self.emit_local(to, event, data) {
            self.emit_remote(to, event, data).await;
        }
    }

    /// Delivers what an operation decided: to this process's sockets first, at once, then through the
    /// adapter. A socket must hear `matched` before anything its new partner says; a partner on another
    /// process can only speak after the adapter has carried its own `matched` there, and its words come
    /// back over the same pub/sub, so queueing the local notices first keeps that order. (Sent in the
    /// operation's order instead, a local `matched` waited for the remote one's publish round trip,
    /// and the remote partner's first message could overtake it.)
    pub(crate) async fn deliver(&self, notices: Vec<Notice<Sid>>) {
        let mut elsewhere = Vec::new();
        // queued, so that none leaves before all are out (see engineioxide::queued_only), and
        // before any remote one
        engineioxide::queued_only(|| {
            for (to, event, data) in notices.into_iter().map(|n| self.notice_event(n)) {
                if !self.emit_local(to, event, &data) {
                    elsewhere.push((to, event, data));
                }
            }
        });
        for (to, event, data) in elsewhere {
            self.emit_remote(to, event, &data).await;
        }
    }

    /// How many sockets are online (all processes when scaled out: one Redis round trip, which is also
    /// this process's heartbeat and purges dead processes).
    pub(crate) async fn online_count(&self) -> usize {
        let local = self.lobby().counts().sockets;
        let total = match &self.pairing {
            Pairing::Local => local,
            Pairing::Redis { queue, .. } => match queue.beat(local).await {
                Ok(beat) => {
                    if beat.lapsed {
                        tracing::warn!(
                            "this process missed its Redis heartbeat for longer than --redis-ttl: the other processes \
                             dropped its sockets, which are disconnected now (they reconnect)"
                        );
                        let _ = self.io().local().disconnect().await;
                    }
                    self.deliver(beat.notices).await;
                    beat.total
                }
                Err(_) => local,
            },
        };
        self.last_total.store(total, Ordering::Relaxed);
        total
    }

    /// The count for a socket that just connected, without a round trip: this process's own count
    /// or, scaled out, the last total counted (at most half a second old).
    pub(crate) fn online_now(&self) -> usize {
        let local = self.lobby().counts().sockets;
        match &self.pairing {
            Pairing::Local => local,
            Pairing::Redis { .. } => self.last_total.load(Ordering::Relaxed).max(local),
        }
    }

    /// Broadcasts the online count to this process's sockets if it changed since the last broadcast.
    pub(crate) async fn broadcast_online(&self) {
        let count = self.online_count().await;
        let due = self.online.lock().unwrap_or_else(|p| p.into_inner()).due(count);
        if let Some(count) = due {
            let _ = self.io().local().emit("online", &json!({ "count": count })).await;
        }
    }

    /// The socket is gone: it leaves the lobby, and its partner is told. Scaled out, dropping its
    /// worker's sender ends the worker, which then leaves the shared queue.
    pub(crate) async fn forget(&self, id: Sid) {
        let notices = self.lobby().disconnect(id);
        match &self.pairing {
            Pairing::Local => self.deliver(notices).await,
            Pairing::Redis { workers, .. } => drop(workers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id)),
        }
    }

    /// Forgets the sockets that never finished connecting. socketioxide runs the connect middleware
    /// (which registers a socket here) on a task of its own; when the connection closes before that
    /// task has added the socket to the namespace, the socket is dropped without a disconnect, and
    /// only its absence from the namespace tells (reconnect storms hit this: see
    /// docs/reliability.md). A socket registered more than `ORPHAN_AFTER` ago that the namespace does
    /// not hold is gone.
    pub(crate) async fn sweep(&self) {
        let Some(before) = Instant::now().checked_sub(ORPHAN_AFTER) else { return };
        let registered = self.lobby().connected_before(before);
        let gone: Vec<Sid> = registered.into_iter().filter(|id| self.io().get_socket(*id).is_none()).collect();
        for id in gone {
            self.counters.orphans.fetch_add(1, Ordering::Relaxed);
            // without its disconnect, socketioxide never took it out of its own room either
            // (crate::handlers): an entry per orphan in the adapter's room table otherwise
            let room = id.to_string();
            if self.io().to(room.clone()).leave(room).await.is_err() {
                tracing::debug!("an orphaned socket's own room could not be left");
            }
            self.forget(id).await;
        }
        self.give_back_memory();
    }

    /// Once many sockets have left (a crowd gone, abusers cut), shrinks the maps that grew for them, so
    /// that the allocator can hand the memory back to the system (the `tutti` binary's jemalloc does
    /// within about a second: docs/reliability.md).
    fn give_back_memory(&self) {
        let sockets = self.lobby().counts().sockets;
        let most = self.most_sockets.fetch_max(sockets, Ordering::Relaxed).max(sockets);
        if sockets + TRIM_AFTER_LEAVING <= most {
            self.most_sockets.store(sockets, Ordering::Relaxed);
            self.lobby().shrink();
            if let Pairing::Redis { workers, .. } = &self.pairing {
                crate::lobby::shrink_when_sparse(&mut workers.lock().unwrap_or_else(|p| p.into_inner()));
            }
        }
    }

    /// Not scaled out: the random fallback for waiters whose wait ran out. (Scaled out, nobody waits in
    /// this process's lobby: each socket's worker times its own fallback, and the shell does not tick.)
    pub(crate) async fn tick(&self) {
        let notices = self.lobby().tick(Instant::now());
        self.deliver(notices).await;
    }

    /// The event a notice becomes. A ring carries the caller's proof, which its process (the one that
    /// decided the ring) holds.
    fn notice_event(&self, notice: Notice<Sid>) -> (Sid, &'static str, Value) {
        match notice {
            Notice::Matched { to, initiator, common, .. } => {
                let mut data = json!({ "initiator": initiator, "common": common });
                if let (Some(turn), Value::Object(map)) = (&self.config.turn, &mut data) {
                    // fresh credentials for this match only; the secret stays here
                    let id = crate::random_user_id().unwrap_or_default();
                    let server = turn.mint(tutti_turn::unix_now(), &id);
                    map.insert("iceServers".into(), json!([server]));
                }
                (to, "matched", data)
            }
            Notice::PartnerLeft { to } => (to, "partner_left", json!({})),
            Notice::Ring { to, from } => {
                let lobby = self.lobby();
                let mut data = lobby.proof(from).cloned().unwrap_or_else(|| json!({}));
                if let (Value::Object(map), Some(identity)) = (&mut data, lobby.identity(from)) {
                    map.insert("from".into(), Value::String(identity.to_string()));
                }
                (to, "incoming_call", data)
            }
            Notice::CallEnded { to, reason } => (to, "call_ended", json!({ "reason": reason.as_str() })),
        }
    }
}
