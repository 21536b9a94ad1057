//! The HTTP side of the page: `/` (the page), `/status.json` and `/privacy` (`/stream.opus` itself is
//! answered before the router: `accept`, `fanout`). No cookies, no logs of who listens. Every answer
//! closes its connection: a browser that loaded the page asks for the stream on a new one, which is
//! then recognised from its first request.

use crate::audience::Audience;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) struct Site {
    pub audience: Arc<Audience>,
    pub server_name: String,
    pub show_names: bool,
    pub privacy_html: String,
}

pub(crate) fn router(site: Arc<Site>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/status.json", get(status))
        .route("/privacy", get(privacy))
        .with_state(site)
        .layer(axum::middleware::map_response(close_after))
}

async fn close_after(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
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

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}
