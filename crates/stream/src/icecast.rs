//! Pushing the stream to an Icecast server as a source: `--stream-to icecast://USER:PASS@HOST:PORT/MOUNT`
//! becomes an HTTP PUT of `audio/ogg` (Icecast 2.4's source protocol) carrying the header pages and
//! then the live pages; if Icecast goes away or refuses, it is tried again with a growing back-off.

use crate::audience::Audience;
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

/// Back-off between attempts: from the first to the longest.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// Where to push: parsed from `icecast://USER:PASS@HOST:PORT/MOUNT`.
#[derive(Clone, PartialEq, Eq)]
pub struct IcecastTarget {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub mount: String,
}

impl std::fmt::Debug for IcecastTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs and debug output.
        write!(f, "icecast://{}:***@{}:{}{}", self.user, self.host, self.port, self.mount)
    }
}

impl std::str::FromStr for IcecastTarget {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let usage = "expected icecast://USER:PASS@HOST:PORT/MOUNT";
        let rest = url.strip_prefix("icecast://").ok_or_else(|| format!("{url:?}: {usage}"))?;
        let (credentials, location) = rest.rsplit_once('@').ok_or_else(|| format!("no USER:PASS@ ({usage})"))?;
        let (user, password) = credentials.split_once(':').ok_or_else(|| format!("no :PASS ({usage})"))?;
        let (authority, mount) = location.split_once('/').ok_or_else(|| format!("no /MOUNT ({usage})"))?;
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| format!("no :PORT ({usage})"))?;
        let port = port.parse::<u16>().map_err(|_| format!("port {port:?} is not a number 1…65535 ({usage})"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if user.is_empty() || host.is_empty() || mount.is_empty() || port == 0 {
            return Err(format!("empty user, host, port or mount ({usage})"));
        }
        if mount.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err("the mount must not contain spaces or control characters".into());
        }
        Ok(IcecastTarget {
            user: user.to_string(),
            password: password.to_string(),
            host: host.to_string(),
            port,
            mount: format!("/{mount}"),
        })
    }
}

impl IcecastTarget {
    /// The PUT request that opens a source connection.
    pub fn request(&self, stream_name: &str) -> String {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.user, self.password));
        let name: String = stream_name.chars().filter(|c| !c.is_control()).collect();
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!(
            "PUT {} HTTP/1.1\r\nHost: {host}:{}\r\nAuthorization: Basic {auth}\r\nUser-Agent: tutti/{}\r\n\
             Content-Type: audio/ogg\r\nIce-Name: {name}\r\nIce-Public: 0\r\n\r\n",
            self.mount,
            self.port,
            env!("CARGO_PKG_VERSION"),
        )
    }
}

/// Whether Icecast's reply head (up to the blank line) accepts the source.
pub fn accepted(reply: &str) -> Result<(), String> {
    let status = reply.lines().next().unwrap_or("");
    match status.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(code) => Err(format!("Icecast answered {status:?} (code {code})")),
        None => Err("Icecast closed the connection without an answer".into()),
    }
}

/// Keeps a source connection to `target` open for as long as the stream runs.
pub(crate) async fn push(target: IcecastTarget, audience: Arc<Audience>, stream_name: String) {
    let mut retry = FIRST_RETRY;
    loop {
        match push_once(&target, &audience, &stream_name).await {
            Ok(()) => return,
            Err(e) => warn!(target = ?target, "Icecast source: {e}; trying again in {} s", retry.as_secs()),
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LONGEST_RETRY);
    }
}

/// One source connection: `Ok` only when the stream itself ended.
async fn push_once(target: &IcecastTarget, audience: &Audience, stream_name: &str) -> Result<(), String> {
    let mut tcp =
        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect((target.host.as_str(), target.port)))
            .await
            .map_err(|_| "connecting timed out".to_string())?
            .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    tcp.write_all(target.request(stream_name).as_bytes()).await.map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .map_err(|_| "no answer from Icecast".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 || reply.len() > 8192 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    accepted(&String::from_utf8_lossy(&reply))?;
    let mut pages = audience.pages.subscribe();
    tcp.write_all(&audience.headers).await.map_err(|e| e.to_string())?;
    info!(target = ?target, "Icecast source connected");
    loop {
        match pages.recv().await {
            Ok(page) => tcp.write_all(&page).await.map_err(|e| format!("connection lost: {e}"))?,
            // Too far behind (Icecast stalled): start over with fresh headers.
            Err(RecvError::Lagged(_)) => return Err("Icecast fell behind".into()),
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_clear_errors() {
        let t: IcecastTarget = "icecast://source:hack:me@127.0.0.1:8000/jam.opus".parse().unwrap();
        assert_eq!((t.user.as_str(), t.password.as_str()), ("source", "hack:me"));
        assert_eq!((t.host.as_str(), t.port, t.mount.as_str()), ("127.0.0.1", 8000, "/jam.opus"));
        assert!(!format!("{t:?}").contains("hack"), "no password in debug output");
        let v6: IcecastTarget = "icecast://u:p@[::1]:8000/m".parse().unwrap();
        assert_eq!(v6.host, "::1");
        for bad in
            ["http://u:p@h:1/m", "icecast://h:1/m", "icecast://u:p@h/m", "icecast://u:p@h:x/m", "icecast://u:p@h:1"]
        {
            assert!(bad.parse::<IcecastTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_is_a_put_of_ogg_with_basic_auth() {
        let t: IcecastTarget = "icecast://source:pw@localhost:8000/live".parse().unwrap();
        let r = t.request("Jam\r\nX-Evil: 1");
        assert!(r.starts_with("PUT /live HTTP/1.1\r\nHost: localhost:8000\r\n"));
        assert!(r.contains("Authorization: Basic c291cmNlOnB3\r\n"));
        assert!(r.contains("Content-Type: audio/ogg\r\n") && r.ends_with("\r\n\r\n"));
        assert!(r.contains("Ice-Name: JamX-Evil: 1\r\n"), "no header injection");
        assert!(accepted("HTTP/1.0 200 OK\r\n\r\n").is_ok());
        assert!(accepted("HTTP/1.0 401 Authentication Required\r\n\r\n").unwrap_err().contains("401"));
    }
}
