//! The state every handler shares: the [`Lobby`] behind one lock (or, scaled out, the Redis queue for
//! matching), the online counter, and delivery of [`Notice`]s and relayed events to sockets, local or
//! (through the Redis adapter) on another process. No lock is held across an await.

use crate::redis_queue::RedisQueue;
use crate::{Error, Lobby, LobbyConfig, Notice, Online};
use serde::Serialize;
use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Where matching and pairs live.
pub(crate) enum Pairing {
    /// In this process's [`Lobby`].
    Local,
    /// In Redis, shared by every lobby process.
    Redis(RedisQueue),
}

/// Shared server state.
pub(crate) struct Hub<A: Adapter> {
    pub(crate) config: LobbyConfig,
    /// Sockets of this process, their budgets and (with [`Pairing::Local`]) queue and pairs.
    pub(crate) lobby: Mutex<Lobby<Sid>>,
    pub(crate) pairing: Pairing,
    online: Mutex<Online>,
    io: OnceLock<SocketIo<A>>,
}

impl<A: Adapter> Hub<A> {
    pub(crate) fn new(config: LobbyConfig, pairing: Pairing) -> Self {
        let lobby = Lobby::new(config.limits.clone(), config.fallback_wait);
        Hub { config, lobby: Mutex::new(lobby), pairing, online: Mutex::new(Online::default()), io: OnceLock::new() }
    }

    pub(crate) fn set_io(&self, io: SocketIo<A>) {
        let _ = self.io.set(io);
    }

    fn io(&self) -> &SocketIo<A> {
        self.io.get().expect("the Socket.IO layer is built before any socket connects")
    }

    pub(crate) fn lobby(&self) -> std::sync::MutexGuard<'_, Lobby<Sid>> {
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

    /// The socket's current partner, wherever the pairs live.
    pub(crate) async fn partner(&self, id: Sid) -> Result<Option<Sid>, Error> {
        match &self.pairing {
            Pairing::Local => Ok(self.lobby().partner(id)),
            Pairing::Redis(queue) => queue.partner(id).await,
        }
    }

    /// Emits one event to one socket: directly when it is connected here, else through the adapter.
    pub(crate) async fn emit_to<T: Serialize + ?Sized>(&self, to: Sid, event: &'static str, data: &T) {
        if let Some(socket) = self.io().get_socket(to) {
            let _ = socket.emit(event, data);
        } else if matches!(self.pairing, Pairing::Redis(_)) {
            let _ = self.io().to(to.to_string()).emit(event, data).await;
        }
    }

    /// Delivers what an operation decided.
    pub(crate) async fn deliver(&self, notices: Vec<Notice<Sid>>) {
        for notice in notices {
            match notice {
                Notice::Matched { to, initiator, common, .. } => {
                    self.emit_to(to, "matched", &json!({ "initiator": initiator, "common": common })).await;
                }
                Notice::PartnerLeft { to } => self.emit_to(to, "partner_left", &json!({})).await,
            }
        }
    }

    /// How many sockets are online (all processes when scaled out).
    pub(crate) async fn online_count(&self) -> usize {
        let local = self.lobby().counts().sockets;
        match &self.pairing {
            Pairing::Local => local,
            Pairing::Redis(queue) => queue.online(local).await.unwrap_or(local),
        }
    }

    /// Broadcasts the online count if it changed since the last broadcast.
    pub(crate) async fn broadcast_online(&self) {
        let count = self.online_count().await;
        let due = self.online.lock().unwrap_or_else(|p| p.into_inner()).due(count);
        if let Some(count) = due {
            let _ = self.io().local().emit("online", &json!({ "count": count })).await;
        }
    }

    /// The random fallback for waiters whose wait ran out.
    pub(crate) async fn tick(&self) {
        let notices = match &self.pairing {
            Pairing::Local => self.lobby().tick(Instant::now()),
            Pairing::Redis(queue) => queue.tick(&self.config).await.unwrap_or_default(),
        };
        self.deliver(notices).await;
    }
}
