//! The HTTP API of the Jami name server, over a [`Store`]: routes, status codes and JSON bodies as Jami
//! clients expect them, with every refusal a 4xx and a JSON `{"error": …}` and nothing written. Keeps no
//! trace of who asked: the only per-source state is the registration limit's buckets in memory.

use crate::cache::AnswerCache;
use crate::limit::RegistrationLimit;
use crate::registration::{verify, Decision, NameAnswer, RegistrationBody};
use crate::store::Store;
use crate::{Addr, Name, Record};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, RawPathParamsRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, RawPathParams, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// What the handlers share.
pub struct Registry {
    store: Store,
    limit: Mutex<RegistrationLimit>,
    answers: AnswerCache,
}

impl Registry {
    /// Handlers over `store`, with `per_minute` registrations a minute per source (0: no limit) and
    /// up to `cache_bytes` of answers for registered names and addresses kept in memory (0: none).
    pub fn new(store: Store, per_minute: u32, cache_bytes: usize) -> Self {
        Registry {
            store,
            limit: Mutex::new(RegistrationLimit::new(per_minute)),
            answers: AnswerCache::new(cache_bytes),
        }
    }

    /// Bytes and entries in the answer cache.
    pub fn cache_usage(&self) -> (usize, usize) {
        self.answers.usage()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Drops the limiter's refilled buckets (called periodically by the server).
    pub fn forget_refilled(&self, now: Instant) {
        if let Ok(mut limit) = self.limit.lock() {
            limit.forget_refilled(now);
        }
    }
}

/// A refusal: a status and the text of the JSON `{"error": …}` body.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, message: impl std::fmt::Display) -> Self {
        ApiError(status, message.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type Answer = Result<Response, ApiError>;

/// The routes. `log_requests` adds the access log (method, route template, status; never an address
/// or a name).
pub fn router(registry: Arc<Registry>, log_requests: bool) -> Router {
    let router = Router::new()
        .route("/name/{name}", get(get_name).post(post_name))
        .route("/name/{name}/{field}", get(get_field))
        .route("/addr/{addr}", get(get_addr))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(cors_for_reads))
        .with_state(registry);
    if log_requests {
        router.layer(axum::middleware::from_fn(access_log))
    } else {
        router
    }
}

/// `GET /privacy`: the operator's privacy policy, generated from the configuration the registry runs with.
pub fn privacy_route(page: String) -> Router {
    Router::new().route(
        "/privacy",
        get(move || {
            let page = page.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response() }
        }),
    )
}

/// Answers for unknown routes: the cheapest request the server handles (no store access).
async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// Lookups are public data: any web page may read them.
async fn cors_for_reads(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

async fn access_log(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = matched.as_ref().map_or("(no route)", MatchedPath::as_str).to_owned();
    let response = next.run(request).await;
    tracing::info!(target: "tutti_registry::access", "{method} {route} {}", response.status().as_u16());
    response
}

fn path_param<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad path: {}", e.body_text())))
}

async fn lookup(registry: &Registry, raw: &str) -> Result<Record, ApiError> {
    let name = Name::lookup(raw).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    match registry.store.record(&name).await {
        Ok(Some(record)) => Ok(record),
        // the reference server's spelling, which clients may match on
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, "name not registred")),
        Err(e) => Err(store_failed(e)),
    }
}

fn store_failed(e: crate::StoreError) -> ApiError {
    tracing::warn!("registry: {e}");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the registry's database is unavailable; try again later")
}

/// A JSON answer from bytes made earlier.
fn json_bytes(answer: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], answer).into_response()
}

fn to_bytes(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// The answer cache's key for a name as a lookup gives it (`n` + the name, ASCII-lowercased), built on
/// the stack; None when the text is not a valid name (the slow path then says why).
fn name_key(text: &str) -> Option<([u8; 40], usize)> {
    let mut key = [0u8; 40];
    key[0] = b'n';
    if !crate::name::NAME_LEN.contains(&text.len()) {
        return None;
    }
    for (slot, byte) in key[1..].iter_mut().zip(text.bytes()) {
        let byte = byte.to_ascii_lowercase();
        if !(byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_') {
            return None;
        }
        *slot = byte;
    }
    Some((key, text.len() + 1))
}

async fn get_name(
    State(registry): State<Arc<Registry>>,
    params: Result<RawPathParams, RawPathParamsRejection>,
) -> Answer {
    let params = params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad path: {}", e.body_text())))?;
    let raw = params.iter().next().map_or("", |(_, value)| value);
    let Some((key, len)) = name_key(raw) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Name::lookup(raw).err().unwrap_or(crate::NameError::InvalidName),
        ));
    };
    let key = std::str::from_utf8(&key[..len]).unwrap_or("");
    if let Some(answer) = registry.answers.get(key) {
        return Ok(json_bytes(answer));
    }
    let record = lookup(&registry, raw).await?;
    let answer = to_bytes(&NameAnswer::from(&record));
    registry.answers.insert(key, answer.clone());
    Ok(json_bytes(answer))
}

async fn get_field(
    State(registry): State<Arc<Registry>>,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let (raw, field) = path_param(params)?;
    if !matches!(field.as_str(), "owner" | "publickey" | "signature") {
        return Err(not_found().await);
    }
    let record = lookup(&registry, &raw).await?;
    let value = match field.as_str() {
        "owner" => &record.owner,
        "publickey" => &record.publickey,
        _ => &record.signature,
    };
    Ok(Json(json!({ "name": record.name.as_str(), field: value })).into_response())
}

async fn get_addr(State(registry): State<Arc<Registry>>, addr: Result<Path<String>, PathRejection>) -> Answer {
    let addr = Addr::parse(&path_param(addr)?)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid address: give 0x and 40 hexadecimal digits"))?;
    let key = format!("a{}", addr.hex());
    if let Some(answer) = registry.answers.get(&key) {
        return Ok(json_bytes(answer));
    }
    match registry.store.name_of(&addr).await {
        Ok(Some(name)) => {
            let answer = to_bytes(&json!({ "name": name.as_str() }));
            registry.answers.insert(&key, answer.clone());
            Ok(json_bytes(answer))
        }
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, "address not registered")),
        Err(e) => Err(store_failed(e)),
    }
}

async fn post_name(
    State(registry): State<Arc<Registry>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let verdict =
        registry.limit.lock().map_or(Err(Duration::from_secs(60)), |mut l| l.check(Instant::now(), peer.ip()));
    if let Err(wait) = verdict {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let message = format!("too many registrations from this address; try again in {seconds} s");
        let mut refusal = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
        refusal.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(refusal);
    }
    let raw = path_param(name)?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body over {MAX_BODY} bytes"))
        }
        status => ApiError::new(status, e.body_text()),
    })?;
    let name = Name::parse(&raw).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let body: RegistrationBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}")))?;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // an RSA-8192 check takes about a millisecond: off the threads that answer lookups
    let record = match tokio::task::spawn_blocking(move || verify(&name, &body, now)).await {
        Ok(Ok(record)) => record,
        Ok(Err(refusal)) if refusal.is_authentication() => {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, refusal))
        }
        Ok(Err(refusal)) => return Err(ApiError::new(StatusCode::BAD_REQUEST, refusal)),
        Err(_) => return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the check failed")),
    };
    match registry.store.register(record).await {
        Ok(Decision::Insert | Decision::AlreadyRegistered) => Ok(Json(json!({ "success": true })).into_response()),
        Ok(Decision::NameTaken) => Err(ApiError::new(StatusCode::FORBIDDEN, "name already taken")),
        Ok(Decision::AddrHasName(_)) => Err(ApiError::new(StatusCode::FORBIDDEN, "this address already has a name")),
        Err(e) => Err(store_failed(e)),
    }
}
