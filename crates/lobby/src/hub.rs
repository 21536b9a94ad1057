//! The state every handler shares: the [`Lobby`] behind one lock (or, scaled out, the Redis queue for
//! matching), the online counter, and delivery of [`Notice`]s and relayed events to sockets, local or
//! (through the Redis adapter) on another process. No lock is held across an await.

use crate::redis_queue::RedisQueue;
use crate::{Error, Interests, Lobby, LobbyConfig, Notice, Online};
use serde::Serialize;
use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::AckSender;
use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One checked client request, ready to be carried out.
pub(crate) enum Job {
    Find(Interests),
    Next,
    Stop,
    Signal(Value),
    Message(String),
    Typing(bool),
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
}

impl<A: Adapter> Hub<A> {
    pub(crate) fn new(config: LobbyConfig, pairing: Pairing<A>) -> Self {
        let lobby = Lobby::new(config.limits.clone(), config.fallback_wait);
        Hub {
            config,
            lobby: Mutex::new(lobby),
            pairing,
            online: Mutex::new(Online::default()),
            last_total: AtomicUsize::new(0),
            io: OnceLock::new(),
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
    pub(crate) fn run_local(&self, id: Sid, job: Job) -> Result<(), Error> {
        let now = Instant::now();
        let notices = match job {
            Job::Find(interests) => self.lobby().find(id, interests, now)?,
            Job::Next => self.lobby().next(id, now)?,
            Job::Stop => self.lobby().stop(id)?,
            Job::Signal(data) => return self.relay_local(id, "signal", &json!({ "data": data })),
            Job::Message(text) => return self.relay_local(id, "message", &json!({ "text": text })),
            Job::Typing(on) => return self.relay_local(id, "typing", &json!({ "on": on })),
        };
        for (to, event, data) in notices.into_iter().map(notice_event) {
            self.emit_local(to, event, &data);
        }
        Ok(())
    }

    fn relay_local(&self, from: Sid, event: &'static str, data: &Value) -> Result<(), Error> {
        let partner = self.lobby().partner(from).ok_or(Error::NoPartner)?;
        self.emit_local(partner, event, data);
        Ok(())
    }

    /// Carries out a job with the pairs in Redis; says when the socket's random fallback is due if the
    /// job left it waiting with interests.
    pub(crate) async fn run_redis(&self, queue: &RedisQueue, id: Sid, job: Job) -> Result<Option<Duration>, Error> {
        let outcome = match job {
            Job::Find(interests) => queue.find(id, &interests, &self.config).await?,
            Job::Next => queue.next(id, &self.config).await?,
            Job::Stop => queue.stop(id).await?,
            Job::Signal(data) => {
                return self.relay_redis(queue, id, "signal", &json!({ "data": data })).await.map(|()| None)
            }
            Job::Message(text) => {
                return self.relay_redis(queue, id, "message", &json!({ "text": text })).await.map(|()| None)
            }
            Job::Typing(on) => return self.relay_redis(queue, id, "typing", &json!({ "on": on })).await.map(|()| None),
        };
        self.deliver(outcome.notices).await;
        Ok(outcome.fallback_in)
    }

    /// Scaled out: the socket's wait ran out; tries a random partner once. Says when to try again
    /// (only if it was too early).
    pub(crate) async fn fallback_redis(&self, queue: &RedisQueue, id: Sid) -> Option<Duration> {
        let outcome = queue.fallback(id, &self.config).await.ok()?;
        self.deliver(outcome.notices).await;
        outcome.fallback_in
    }

    async fn relay_redis(&self, queue: &RedisQueue, from: Sid, event: &'static str, data: &Value) -> Result<(), Error> {
        let partner = queue.partner(from).await?.ok_or(Error::NoPartner)?;
        self.emit_anywhere(partner, event, data).await;
        Ok(())
    }

    /// Emits to a socket of this process (a socket that is gone is skipped).
    fn emit_local<T: Serialize + ?Sized>(&self, to: Sid, event: &'static str, data: &T) -> bool {
        match self.io().get_socket(to) {
            Some(socket) => {
                let _ = socket.emit(event, data);
                true
            }
            None => false,
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
        for (to, event, data) in notices.into_iter().map(notice_event) {
            if !self.emit_local(to, event, &data) {
                elsewhere.push((to, event, data));
            }
        }
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

    /// Not scaled out: the random fallback for waiters whose wait ran out. (Scaled out, nobody waits in
    /// this process's lobby: each socket's worker times its own fallback, and the shell does not tick.)
    pub(crate) async fn tick(&self) {
        let notices = self.lobby().tick(Instant::now());
        self.deliver(notices).await;
    }
}

fn notice_event(notice: Notice<Sid>) -> (Sid, &'static str, Value) {
    match notice {
        Notice::Matched { to, initiator, common, .. } => {
            (to, "matched", json!({ "initiator": initiator, "common": common }))
        }
        Notice::PartnerLeft { to } => (to, "partner_left", json!({})),
    }
}
