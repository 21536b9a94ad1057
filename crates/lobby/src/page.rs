//! The web page people use, embedded in the binary (plain HTML/CSS/JS, no build step, nothing loaded
//! from elsewhere), and `config.json` with the operator's ICE servers and when the page says that
//! nobody was found yet. Every response forbids third-party loads (Content-Security-Policy), referrers
//! and caching of the config.

use crate::LobbyConfig;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;

const INDEX: &str = include_str!("../page/index.html");
const APP: &str = include_str!("../page/app.js");
const IDENTITY: &str = include_str!("../page/identity.js");
const HIDE_IP: &str = include_str!("../page/hideip.js");
const STYLE: &str = include_str!("../page/style.css");
/// The official Socket.IO browser client (socket.io-client 4.8.4, `dist/socket.io.min.js`, verbatim) and
/// the licences of what it bundles: see page/vendor/README.md.
const SOCKET_IO: &str = include_str!("../page/vendor/socket.io.min.js");
const SOCKET_IO_LICENSE: &str = include_str!("../page/vendor/socket.io-client.LICENSE.txt");

/// Only this origin (and the ICE servers, which CSP does not govern); media from the camera.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
}

/// The page's routes: `/`, `/app.js`, `/identity.js`, `/hideip.js`, `/style.css`, `/config.json`, the Socket.IO client
/// `/vendor/socket.io.min.js` with its licence `/vendor/socket.io-client.LICENSE.txt` (and an empty
/// `/favicon.ico`).
pub fn routes(lobby: &LobbyConfig) -> Router {
    let config = json!({
        "iceServers": lobby.ice_servers,
        "noPartnerNoticeAfter": lobby.no_partner_notice_after.as_secs_f64(),
        "registry": lobby.registry.is_some(),
        // whether "hide my IP" can work here (a relay), and whether the operator forces it
        "relay": lobby.has_relay(),
        "relayOnly": lobby.relay_only,
    })
    .to_string();
    let privacy = lobby.privacy.clone();
    let router =
        Router::new()
            .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
            .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP) }))
            .route("/identity.js", get(|| async { asset("text/javascript; charset=utf-8", IDENTITY) }))
            .route("/hideip.js", get(|| async { asset("text/javascript; charset=utf-8", HIDE_IP) }))
            .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
            .route("/vendor/socket.io.min.js", get(|| async { asset("text/javascript; charset=utf-8", SOCKET_IO) }))
            .route(
                "/vendor/socket.io-client.LICENSE.txt",
                get(|| async { asset("text/plain; charset=utf-8", SOCKET_IO_LICENSE) }),
            )
            .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
            .route(
                "/config.json",
                get(move || {
                    let config = config.clone();
                    async move {
                        ([(CONTENT_TYPE, "application/json"), (CACHE_CONTROL, "no-store")], config).into_response()
                    }
                }),
            );
    match privacy {
        Some(page) => router.route(
            "/privacy",
            get(move || {
                let page = page.clone();
                async move { ([(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response() }
            }),
        ),
        None => router,
    }
}
