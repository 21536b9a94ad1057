//! The Socket.IO events, each a thin translation: parse and check the payload, ask the [`Lobby`] (or the
//! Redis queue), ack `{ok: true}` or `{error, message}`, deliver what was decided. Persistent abuse
//! disconnects. Nothing here logs payloads, interests or addresses.
//!
//! [`Lobby`]: crate::Lobby

use crate::hub::{Hub, Pairing};
use crate::{Error, Interests};
use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use std::sync::Arc;
use std::time::Instant;

type Shared<A> = State<Arc<Hub<A>>>;
type Payload = TryData<Value>;

/// A new socket: registered with nothing but its random id; told the online count.
pub(crate) async fn on_connect<A: Adapter>(s: SocketRef<A>, State(hub): Shared<A>) {
    hub.lobby().connect(s.id, Instant::now());
    if matches!(hub.pairing, Pairing::Redis(_)) {
        // its own room, so that other processes can reach it through the adapter
        s.join(s.id.to_string());
    }
    let count = hub.online_count().await;
    let _ = s.emit("online", &json!({ "count": count }));
    s.on("find", on_find::<A>);
    s.on("next", on_next::<A>);
    s.on("stop", on_stop::<A>);
    s.on("signal", on_signal::<A>);
    s.on("message", on_message::<A>);
    s.on("typing", on_typing::<A>);
    s.on_disconnect(on_disconnect::<A>);
    tracing::debug!(sockets = hub.lobby().counts().sockets, "socket connected");
}

async fn on_disconnect<A: Adapter>(s: SocketRef<A>, State(hub): Shared<A>) {
    let mut notices = hub.lobby().disconnect(s.id);
    if let Pairing::Redis(queue) = &hub.pairing {
        notices = queue.disconnect(s.id).await.unwrap_or_default();
    }
    hub.deliver(notices).await;
    tracing::debug!(sockets = hub.lobby().counts().sockets, "socket left");
}

/// Acks the outcome; a strike-worthy refusal counts towards the abuse limit, which disconnects.
fn answer<A: Adapter>(s: &SocketRef<A>, hub: &Hub<A>, ack: AckSender<A>, outcome: Result<(), Error>) {
    let Err(error) = outcome else {
        let _ = ack.send(&json!({ "ok": true }));
        return;
    };
    let abusive = matches!(error, Error::Abusive) || (error.is_strike() && hub.strike(s.id).is_err());
    let error = if abusive { Error::Abusive } else { error };
    let _ = ack.send(&json!({ "error": error.code(), "message": error.to_string() }));
    if abusive {
        tracing::info!("disconnecting a socket for persistent abuse");
        let _ = s.clone().disconnect();
    }
}

/// Reads `{interests?: string[]}`; a missing or null payload means no interests.
fn interests(payload: &Result<Value, impl std::fmt::Display>, hub: &Hub<impl Adapter>) -> Result<Interests, Error> {
    let raw = match payload {
        Ok(Value::Object(map)) => match map.get("interests") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(tags)) => tags
                .iter()
                .map(|t| t.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("find", "interests must be strings"))?,
            Some(_) => return Err(bad("find", "interests must be an array of strings")),
        },
        Ok(Value::Null) | Err(_) => Vec::new(),
        Ok(_) => return Err(bad("find", "expected an object")),
    };
    Interests::parse(&raw, hub.lobby().limits())
}

fn bad(event: &'static str, reason: &str) -> Error {
    Error::BadPayload { event, reason: reason.to_string() }
}

async fn on_find<A: Adapter>(s: SocketRef<A>, TryData(d): Payload, ack: AckSender<A>, State(hub): Shared<A>) {
    let outcome = async {
        hub.admit(s.id)?;
        let interests = interests(&d, &hub)?;
        let notices = match &hub.pairing {
            Pairing::Local => hub.lobby().find(s.id, interests, Instant::now())?,
            Pairing::Redis(queue) => queue.find(s.id, &interests, &hub.config).await?,
        };
        hub.deliver(notices).await;
        Ok(())
    }
    .await;
    answer(&s, &hub, ack, outcome);
}

async fn on_next<A: Adapter>(s: SocketRef<A>, ack: AckSender<A>, State(hub): Shared<A>) {
    let outcome = async {
        hub.admit(s.id)?;
        let notices = match &hub.pairing {
            Pairing::Local => hub.lobby().next(s.id, Instant::now())?,
            Pairing::Redis(queue) => queue.next(s.id, &hub.config).await?,
        };
        hub.deliver(notices).await;
        Ok(())
    }
    .await;
    answer(&s, &hub, ack, outcome);
}

async fn on_stop<A: Adapter>(s: SocketRef<A>, ack: AckSender<A>, State(hub): Shared<A>) {
    let outcome = async {
        hub.admit(s.id)?;
        let notices = match &hub.pairing {
            Pairing::Local => hub.lobby().stop(s.id)?,
            Pairing::Redis(queue) => queue.stop(s.id).await?,
        };
        hub.deliver(notices).await;
        Ok(())
    }
    .await;
    answer(&s, &hub, ack, outcome);
}

/// Relays one event to the sender's partner, and only to it.
async fn relay<A: Adapter>(
    hub: &Hub<A>,
    from: socketioxide::socket::Sid,
    event: &'static str,
    data: &Value,
) -> Result<(), Error> {
    let partner = hub.partner(from).await?.ok_or(Error::NoPartner)?;
    hub.emit_to(partner, event, data).await;
    Ok(())
}

async fn on_signal<A: Adapter>(s: SocketRef<A>, TryData(d): Payload, ack: AckSender<A>, State(hub): Shared<A>) {
    let outcome = async {
        hub.admit(s.id)?;
        let data = match d {
            Ok(Value::Object(mut map)) => map.remove("data").ok_or_else(|| bad("signal", "missing `data`"))?,
            _ => return Err(bad("signal", "expected {data}")),
        };
        let size = serde_json::to_vec(&data).map_or(usize::MAX, |v| v.len());
        hub.config.limits.check_signal(size)?;
        relay(&hub, s.id, "signal", &json!({ "data": data })).await
    }
    .await;
    answer(&s, &hub, ack, outcome);
}

async fn on_message<A: Adapter>(s: SocketRef<A>, TryData(d): Payload, ack: AckSender<A>, State(hub): Shared<A>) {
    let outcome = async {
        hub.admit(s.id)?;
        let text = match &d {
            Ok(Value::Object(map)) => map.get("text").and_then(Value::as_str),
            _ => None,
        }
        .ok_or_else(|| bad("message", "expected {text: string}"))?;
        hub.config.limits.check_text(text)?;
        relay(&hub, s.id, "message", &json!({ "text": text })).await
    }
    .await;
    answer(&s, &hub, ack, outcome);
}

async fn on_typing<A: Adapter>(s: SocketRef<A>, TryData(d): Payload, ack: AckSender<A>, State(hub): Shared<A>) {
    let outcome = async {
        hub.admit(s.id)?;
        let on = match &d {
            Ok(Value::Object(map)) => map.get("on").and_then(Value::as_bool),
            _ => None,
        }
        .ok_or_else(|| bad("typing", "expected {on: bool}"))?;
        relay(&hub, s.id, "typing", &json!({ "on": on })).await
    }
    .await;
    answer(&s, &hub, ack, outcome);
}
