//! The HTTP side: `/` (the page), `/stream.opus` (header pages, then live pages until the listener
//! leaves or falls behind), `/status.json` and `/privacy`. No cookies, no logs of who listens.

use crate::audience::Audience;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

pub(crate) struct Site {
    pub audience: Arc<Audience>,
    pub server_name: String,
    pub show_names: bool,
    pub privacy_html: String,
}

pub(crate) fn router(site: Arc<Site>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/stream.opus", get(stream))
        .route("/status.json", get(status))
        .route("/privacy", get(privacy))
        .with_state(site)
}

async fn page(State(site): State<Arc<Site>>) -> Response {
    let musicians = site.show_names.then(|| site.audience.musicians());
    let listeners = site.audience.listeners.load(Ordering::Relaxed);
    let mut response = Html(crate::page::render(&site.server_name, musicians.as_deref(), listeners)).into_response();
    no_store(&mut response);
    response
}

async fn privacy(State(site): State<Arc<Site>>) -> Html<String> {
    Html(site.privacy_html.clone())
}

async fn status(State(site): State<Arc<Site>>) -> Response {
    let audience = &site.audience;
    let body = serde_json::json!({
        "listeners": audience.listeners.load(Ordering::Relaxed),
        "channels": audience.musicians().len(),
        "uptime_s": audience.started.elapsed().as_secs(),
        "listeners_dropped": audience.listeners_dropped.load(Ordering::Relaxed),
        "blocks_dropped": audience.blocks_dropped.load(Ordering::Relaxed),
        "page_delay_us_mean": audience.page_delay_ns.load(Ordering::Relaxed) / 1000
            / audience.frames_encoded.load(Ordering::Relaxed).max(1),
    });
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    no_store(&mut response);
    response
}

async fn stream(State(site): State<Arc<Site>>) -> Response {
    let audience = site.audience.clone();
    let Some(listener) = audience.admit() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the stream has as many listeners as it can serve\n").into_response();
    };
    let pages = audience.pages.subscribe();
    let headers = futures_util::stream::once(std::future::ready(Ok::<Bytes, Infallible>(audience.headers.clone())));
    let live =
        futures_util::stream::unfold((pages, listener, audience), |(mut pages, listener, audience)| async move {
            match pages.recv().await {
                Ok(page) => Some((Ok(page), (pages, listener, audience))),
                Err(RecvError::Lagged(_)) => {
                    audience.listeners_dropped.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(RecvError::Closed) => None,
            }
        });
    let mut response = Body::from_stream(headers.chain(live)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/ogg"));
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}
