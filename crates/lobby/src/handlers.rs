//! The Socket.IO events, each a thin translation: check the rate and the payload, turn it into a
//! [`Job`], carry it out, ack `{ok: true}` or `{error, message}`. Persistent abuse disconnects.
//! Nothing here logs payloads, interests or addresses.
//!
//! Order: socketioxide runs every handler as its own task, so two events of one socket could be
//! handled out of order (a chat line overtaking the one before). The work is therefore done by the
//! [`Handled`] extractor, which socketioxide runs synchronously, in arrival order, while it reads the
//! packet: in this process's lobby at once, or scaled out queued to the socket's own ordered worker.
//! Handlers are registered by a connect middleware, which runs before the client learns it is
//! connected, so that no early event is lost.

use crate::hub::{Done, Hub, Job, Pairing, Proof, Queued};
use crate::{Error, Interests, Limits};
use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::{DisconnectReason, Socket};
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type Shared<A> = State<Arc<Hub<A>>>;

/// Before the client is told it is connected: the socket is registered with nothing but its random
/// id, and its handlers exist.
pub(crate) async fn register<A: Adapter>(s: SocketRef<A>, State(hub): Shared<A>) -> Result<(), Infallible> {
    hub.lobby().connect(s.id, Instant::now());
    hub.counters.connected.fetch_add(1, Ordering::Relaxed);
    s.on("find", done::<Find>);
    s.on("next", done::<Next>);
    s.on("stop", done::<Stop>);
    s.on("signal", done::<Signal>);
    s.on("message", done::<Message>);
    s.on("typing", done::<Typing>);
    s.on("challenge", done::<Challenge>);
    s.on("identify", done::<Identify>);
    s.on("reachable", done::<Reachable>);
    s.on("call", done::<Call>);
    s.on("call_answer", done::<CallAnswer>);
    s.on("call_cancel", done::<CallCancel>);
    s.on_disconnect(on_disconnect::<A>);
    // its own room: until the socket is marked connected, the only way to emit to it (see
    // Hub::emit_connecting); scaled out, for good, so that other processes can reach it through the
    // adapter
    s.join(s.id.to_string());
    if let Pairing::Redis { workers, .. } = &hub.pairing {
        let (tx, rx) = mpsc::unbounded_channel();
        workers.lock().unwrap_or_else(|p| p.into_inner()).insert(s.id, tx);
        tokio::spawn(redis_worker(s.clone(), hub.clone(), rx));
    }
    Ok(())
}

/// Once marked connected: tell the socket how many are online.
pub(crate) async fn on_connect<A: Adapter>(s: SocketRef<A>, State(hub): Shared<A>) {
    hub.marked_connected(&s);
    let _ = s.emit("online", &json!({ "count": hub.online_now() }));
}

/// The handler proper has nothing left to do: [`Handled`] did it.
async fn done<E: Event>(_: Handled<E>) {}

/// Extracting this carries the event `E` out (see the module header for why).
struct Handled<E>(PhantomData<E>);

impl<A: Adapter, E: Event> FromMessageParts<A> for Handled<E> {
    type Error = Infallible;
    fn from_message_parts(
        s: &Arc<Socket<A>>,
        v: &mut socketioxide_core::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let Ok(State(hub)) = Shared::<A>::from_message_parts(s, v, ack_id) else { return Ok(Handled(PhantomData)) };
        let Ok(ack) = AckSender::from_message_parts(s, v, ack_id);
        let Ok(socket) = SocketRef::from_message_parts(s, v, ack_id);
        // a packet far above what the event may carry is refused unparsed (a flood of oversized
        // packets must not cost a JSON parse each)
        let limit = E::max_packet(&hub.config.limits);
        if v.len() > limit {
            let too_large = Error::TooLarge { what: "event", limit, unit: "bytes" };
            handle(&socket, &hub, ack, || Err(too_large));
            return Ok(Handled(PhantomData));
        }
        let Ok(TryData(data)) = TryData::<Value>::from_message_parts(s, v, ack_id);
        handle(&socket, &hub, ack, || E::job(data.ok(), &hub.config.limits));
        Ok(Handled(PhantomData))
    }
}

/// One client event: how its payload becomes a [`Job`].
trait Event: Send + Sync + 'static {
    fn job(data: Option<Value>, limits: &Limits) -> Result<Job, Error>;

    /// The largest packet (event name, payload and framing, as received) worth parsing: well above
    /// any valid one (a proof's three fields of 1 KiB, ten interests).
    fn max_packet(_: &Limits) -> usize {
        8 * 1024
    }
}

/// Room for an event's name, framing and field names around its payload.
const FRAMING: usize = 1024;

struct Find;
struct Next;
struct Stop;
struct Signal;
struct Message;
struct Typing;
struct Challenge;
struct Identify;
struct Reachable;
struct Call;
struct CallAnswer;
struct CallCancel;

fn bad(event: &'static str, reason: &str) -> Error {
    Error::BadPayload { event, reason: reason.to_string() }
}

impl Event for Find {
    /// `{interests?: string[]}`; a missing or null payload means no interests.
    fn job(data: Option<Value>, limits: &Limits) -> Result<Job, Error> {
        let raw = match data {
            Some(Value::Object(map)) => match map.get("interests") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(tags)) => tags
                    .iter()
                    .map(|t| t.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("find", "interests must be strings"))?,
                Some(_) => return Err(bad("find", "interests must be an array of strings")),
            },
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(bad("find", "expected an object")),
        };
        Ok(Job::Find(Interests::parse(&raw, limits)?))
    }
}

impl Event for Next {
    fn job(_: Option<Value>, _: &Limits) -> Result<Job, Error> {
        Ok(Job::Next)
    }
}

impl Event for Stop {
    fn job(_: Option<Value>, _: &Limits) -> Result<Job, Error> {
        Ok(Job::Stop)
    }
}

impl Event for Signal {
    fn max_packet(limits: &Limits) -> usize {
        limits.signal_bytes + FRAMING
    }

    /// `{data}`: opaque JSON, at most `signal_bytes` once encoded.
    fn job(data: Option<Value>, limits: &Limits) -> Result<Job, Error> {
        let data = match data {
            Some(Value::Object(mut map)) => map.remove("data").ok_or_else(|| bad("signal", "missing `data`"))?,
            _ => return Err(bad("signal", "expected {data}")),
        };
        let size = serde_json::to_vec(&data).map_or(usize::MAX, |v| v.len());
        limits.check_signal(size)?;
        Ok(Job::Signal(data))
    }
}

impl Event for Message {
    /// Characters escaped as `\uXXXX` take six bytes.
    fn max_packet(limits: &Limits) -> usize {
        limits.text_chars * 6 + FRAMING
    }

    /// `{text: string}`, at most `text_chars` characters.
    fn job(data: Option<Value>, limits: &Limits) -> Result<Job, Error> {
        let text = match data {
            Some(Value::Object(mut map)) => match map.remove("text") {
                Some(Value::String(text)) => text,
                _ => return Err(bad("message", "expected {text: string}")),
            },
            _ => return Err(bad("message", "expected {text: string}")),
        };
        limits.check_text(&text)?;
        Ok(Job::Message(text))
    }
}

impl Event for Typing {
    /// `{on: bool}`.
    fn job(data: Option<Value>, _: &Limits) -> Result<Job, Error> {
        match &data {
            Some(Value::Object(map)) => map.get("on").and_then(Value::as_bool).map(Job::Typing),
            _ => None,
        }
        .ok_or_else(|| bad("typing", "expected {on: bool}"))
    }
}

impl Event for Challenge {
    fn job(_: Option<Value>, _: &Limits) -> Result<Job, Error> {
        Ok(Job::Challenge)
    }
}

/// The longest field of an identity proof: a PEM Ed25519 key is 150 bytes of base64, a signature 88.
const MAX_PROOF_FIELD: usize = 1024;

impl Event for Identify {
    /// `{publickey, challenge, signature}`: strings.
    fn job(data: Option<Value>, _: &Limits) -> Result<Job, Error> {
        let Some(Value::Object(map)) = data else {
            return Err(bad("identify", "expected {publickey, challenge, signature}"));
        };
        let field = |name: &str| match map.get(name) {
            Some(Value::String(s)) if s.len() <= MAX_PROOF_FIELD => Ok(s.clone()),
            Some(Value::String(_)) => Err(bad("identify", "a field is too long")),
            _ => Err(bad("identify", "expected {publickey, challenge, signature} strings")),
        };
        Ok(Job::Identify(Proof {
            publickey: field("publickey")?,
            challenge: field("challenge")?,
            signature: field("signature")?,
        }))
    }
}

impl Event for Reachable {
    /// `{on: bool}`.
    fn job(data: Option<Value>, _: &Limits) -> Result<Job, Error> {
        match &data {
            Some(Value::Object(map)) => map.get("on").and_then(Value::as_bool).map(Job::Reachable),
            _ => None,
        }
        .ok_or_else(|| bad("reachable", "expected {on: bool}"))
    }
}

impl Event for Call {
    /// `{to: ID}`: 40 hex digits, with or without `0x`.
    fn job(data: Option<Value>, _: &Limits) -> Result<Job, Error> {
        let to = match &data {
            Some(Value::Object(map)) => map.get("to").and_then(Value::as_str),
            _ => None,
        }
        .ok_or_else(|| bad("call", "expected {to: ID}"))?;
        let addr = tutti_registry::Addr::parse(to).map_err(|_| bad("call", "`to` is not an ID (40 hex digits)"))?;
        Ok(Job::Call(addr.hex()))
    }
}

impl Event for CallAnswer {
    /// `{accept: bool}`.
    fn job(data: Option<Value>, _: &Limits) -> Result<Job, Error> {
        match &data {
            Some(Value::Object(map)) => map.get("accept").and_then(Value::as_bool).map(Job::Answer),
            _ => None,
        }
        .ok_or_else(|| bad("call_answer", "expected {accept: bool}"))
    }
}

impl Event for CallCancel {
    fn job(_: Option<Value>, _: &Limits) -> Result<Job, Error> {
        Ok(Job::Cancel)
    }
}

/// Scaled out: runs one socket's jobs in order against Redis, and its random fallback when its wait
/// runs out (a timer here rather than every process scanning the shared queue).
async fn redis_worker<A: Adapter>(s: SocketRef<A>, hub: Arc<Hub<A>>, mut jobs: mpsc::UnboundedReceiver<Queued<A>>) {
    let Pairing::Redis { queue, .. } = &hub.pairing else { return };
    // when the fallback may be due (if the socket still waits then; trying again is harmless), and
    // when its call's ring times out (if it still rings then)
    let mut fallback: Option<tokio::time::Instant> = None;
    let mut ring: Option<tokio::time::Instant> = None;
    let after = |d: Duration| tokio::time::Instant::now() + d;
    loop {
        let due = |at: Option<tokio::time::Instant>| async move {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            job = jobs.recv() => {
                let Some((job, ack)) = job else { break };
                let outcome = hub.run_redis(queue, s.id, job).await;
                if let Ok(done) = &outcome {
                    fallback = done.fallback_in.map(after).or(fallback);
                    ring = done.ring_in.map(after).or(ring);
                }
                answer(&s, &hub, ack, outcome);
            }
            () = due(fallback) => {
                fallback = hub.fallback_redis(queue, s.id).await.map(after);
            }
            () = due(ring) => {
                ring = hub.ring_timeout_redis(queue, s.id).await.map(after);
            }
        }
    }
    // the socket is gone: leave the queue and the partner, once every earlier job is done
    let notices = queue.disconnect(s.id).await.map(|o| o.notices).unwrap_or_default();
    hub.deliver(notices).await;
}

async fn on_disconnect<A: Adapter>(s: SocketRef<A>, reason: DisconnectReason, State(hub): Shared<A>) {
    hub.counters.disconnected(reason);
    hub.forget(s.id).await;
}

/// Acks the outcome; a strike-worthy refusal counts towards the abuse limit, which disconnects.
fn answer<A: Adapter>(s: &SocketRef<A>, hub: &Hub<A>, ack: AckSender<A>, outcome: Result<Done, Error>) {
    let error = match outcome {
        Ok(done) => {
            let mut reply = json!({ "ok": true });
            if let (Value::Object(reply), Some(Value::Object(more))) = (&mut reply, done.reply) {
                reply.extend(more);
            }
            let _ = ack.send(&reply);
            return;
        }
        Err(error) => error,
    };
    let abusive = matches!(error, Error::Abusive) || (error.is_strike() && hub.strike(s.id).is_err());
    let error = if abusive { Error::Abusive } else { error };
    let _ = ack.send(&json!({ "error": error.code(), "message": error.to_string() }));
    if abusive {
        tracing::info!("disconnecting a socket for persistent abuse");
        let _ = s.clone().disconnect();
    }
}

/// Charges the event, builds its job, and carries it out (now, or queued on the socket's worker).
fn handle<A: Adapter>(
    s: &SocketRef<A>,
    hub: &Arc<Hub<A>>,
    ack: AckSender<A>,
    job: impl FnOnce() -> Result<Job, Error>,
) {
    let job = match hub.admit(s.id).and_then(|()| job()) {
        Ok(job) => job,
        Err(error) => return answer(s, hub, ack, Err(error)),
    };
    match &hub.pairing {
        Pairing::Local => {
            let outcome = hub.run_local(s.id, job);
            answer(s, hub, ack, outcome);
        }
        Pairing::Redis { workers, .. } => {
            if let Some(worker) = workers.lock().unwrap_or_else(|p| p.into_inner()).get(&s.id) {
                let _ = worker.send((job, ack));
            }
        }
    }
}

/// The job the payload of client event `event` asks for, as the handlers above make it; `None` for an event the
/// lobby does not listen to. For the fuzz target ([`crate::fuzz`]).
pub(crate) fn job_of(event: &str, data: Option<Value>, limits: &Limits) -> Option<Result<Job, Error>> {
    let job = match event {
        "find" => Find::job,
        "next" => Next::job,
        "stop" => Stop::job,
        "signal" => Signal::job,
        "message" => Message::job,
        "typing" => Typing::job,
        "challenge" => Challenge::job,
        "identify" => Identify::job,
        "reachable" => Reachable::job,
        "call" => Call::job,
        "call_answer" => CallAnswer::job,
        "call_cancel" => CallCancel::job,
        _ => return None,
    };
    Some(job(data, limits))
}
