//! `/registry/name/…` and `/registry/addr/…`: the page's name look-ups and registrations, forwarded to
//! the name registry the operator configured, so that the page talks to its own origin only and the
//! registry never learns a user's address. Forwards the method, the path and a JSON body, nothing else
//! (no cookie, user agent, forwarded-for or client address); passes back the registry's status and
//! JSON body. Must not log the path (it holds names and IDs).

use crate::Error;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The largest body forwarded either way.
pub const MAX_BODY: usize = 16 * 1024;
/// How long the registry may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the registry is: `host:port` to connect to, the `Host` header, and a path prefix.
#[derive(Debug, Clone)]
pub struct RegistryTarget {
    authority: String,
    prefix: String,
}

impl RegistryTarget {
    /// Parses `http://host[:port][/prefix]` (plain HTTP: the registry runs next to the lobby or on a
    /// trusted network; its answers are signed, so end-to-end checks do not depend on the transport).
    pub fn parse(url: &str) -> Result<RegistryTarget, Error> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            Error::Config(format!("--registry {url:?}: give an http://HOST:PORT URL (https is not supported here)"))
        })?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains(['@', '?', '#']) || prefix.contains(['?', '#']) {
            return Err(Error::Config(format!("--registry {url:?}: give an http://HOST:PORT URL")));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(RegistryTarget { authority, prefix: prefix.to_string() })
    }
}

/// The routes, forwarding to `target`.
pub fn routes(target: RegistryTarget) -> Router {
    let target = Arc::new(target);
    Router::new()
        .route("/registry/name/{*rest}", any(forward))
        .route("/registry/addr/{*rest}", any(forward))
        .with_state(target)
}

fn answer(status: StatusCode, body: impl Into<Body>) -> Response {
    (status, [(CONTENT_TYPE, "application/json"), (CACHE_CONTROL, "no-store")], body.into()).into_response()
}

fn refusal(status: StatusCode, text: &str) -> Response {
    answer(status, json!({ "error": text }).to_string())
}

async fn forward(State(target): State<Arc<RegistryTarget>>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::POST {
        return refusal(StatusCode::METHOD_NOT_ALLOWED, "only GET and POST are forwarded to the registry");
    }
    let path = request.uri().path().strip_prefix("/registry").unwrap_or("").to_string();
    // one segment of name or address, maybe a field after it: no dot segments, no encoded slashes
    if path.split('/').any(|segment| segment == "." || segment == "..") || path.to_ascii_lowercase().contains("%2f") {
        return refusal(StatusCode::BAD_REQUEST, "malformed registry path");
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return refusal(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than 16 KiB"),
    };
    match tokio::time::timeout(TIMEOUT, send(&target, method, &path, body)).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) | Err(_) => refusal(StatusCode::BAD_GATEWAY, "the name registry is not reachable"),
    }
}

/// One request on a fresh connection: the method, the path, `Host`, and for a POST the JSON body.
async fn send(target: &RegistryTarget, method: Method, path: &str, body: Bytes) -> Result<Response, ()> {
    let tcp = tokio::net::TcpStream::connect(&target.authority).await.map_err(drop)?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(drop)?;
    let driver = tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method.clone())
        .uri(format!("{}{path}", target.prefix))
        .header(HOST, &target.authority);
    if method == Method::POST {
        request = request.header(CONTENT_TYPE, "application/json").header(CONTENT_LENGTH, body.len());
    }
    let request = request.body(Full::new(body)).map_err(drop)?;
    let response = sender.send_request(request).await.map_err(drop)?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY).collect().await.map_err(drop)?.to_bytes();
    driver.abort();
    Ok(answer(status, body))
}
