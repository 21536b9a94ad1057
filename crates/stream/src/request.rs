//! Which connections are listeners: the request head is read before any HTTP machinery sees it, and
//! `GET /stream.opus` (or `HEAD`) is answered by hand, so a listener costs a socket and a place in
//! the pages (see `fanout`), not an HTTP connection's buffers and a task. Everything else goes on to
//! the page's router with the bytes already read put back in front. Sans-IO.

/// Request heads longer than this are left to the router (which refuses them).
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Where a connection goes, decided from the start of its request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /stream.opus`: a listener.
    Listen,
    /// `HEAD /stream.opus`: the response head only.
    ListenHead,
    /// Anything else: the router.
    Site,
    /// Not decided yet: read more.
    More,
}

/// Decides from the bytes read so far.
pub(crate) fn route(head: &[u8]) -> Route {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
        // The request line alone decides the site's requests early; a listener's head is read whole
        // so that nothing of it is left unread (an unread request would make the close a reset).
        return match head.iter().position(|&b| b == b'\n') {
            Some(line) if is_stream_line(&head[..line]).is_none() => Route::Site,
            _ if head.len() >= MAX_HEAD => Route::Site,
            _ => Route::More,
        };
    };
    let line = head[..end].split(|&b| b == b'\n').next().unwrap_or_default();
    match is_stream_line(line) {
        Some(true) => Route::Listen,
        Some(false) => Route::ListenHead,
        None => Route::Site,
    }
}

/// `Some(true)` for `GET /stream.opus[?…] HTTP/1.x`, `Some(false)` for the same with `HEAD`.
fn is_stream_line(line: &[u8]) -> Option<bool> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with(b"HTTP/1.") {
        return None;
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path != b"/stream.opus" {
        return None;
    }
    match method {
        b"GET" => Some(true),
        b"HEAD" => Some(false),
        _ => None,
    }
}

/// The listener's response head: the body is the stream until the connection closes.
pub(crate) const LISTEN_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: audio/ogg\r\n\
Cache-Control: no-store\r\n\
X-Content-Type-Options: nosniff\r\n\
Referrer-Policy: no-referrer\r\n\
Connection: close\r\n\r\n";

/// The answer when the stream has as many listeners as it may serve.
pub(crate) const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 49\r\n\
Cache-Control: no-store\r\n\
Connection: close\r\n\r\n\
the stream has as many listeners as it can serve\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_told_apart_from_the_site() {
        assert_eq!(route(b"GET /stream.opus HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Listen);
        assert_eq!(route(b"GET /stream.opus?t=1 HTTP/1.0\r\n\r\n"), Route::Listen);
        assert_eq!(route(b"HEAD /stream.opus HTTP/1.1\r\n\r\n"), Route::ListenHead);
        assert_eq!(route(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Site);
        assert_eq!(route(b"GET /status.json HTTP/1.1\r\n"), Route::Site, "decided by the request line");
        assert_eq!(route(b"POST /stream.opus HTTP/1.1\r\n\r\n"), Route::Site);
        assert_eq!(route(b"GET /stream.opus.bak HTTP/1.1\r\n\r\n"), Route::Site);
        assert_eq!(route(b"GET /stream.opus HTTP/2\r\n\r\n"), Route::Site);
        assert_eq!(route(b"garbage\r\n\r\n"), Route::Site);
    }

    #[test]
    fn a_listener_head_is_read_whole() {
        assert_eq!(route(b""), Route::More);
        assert_eq!(route(b"GET /str"), Route::More);
        assert_eq!(route(b"GET /stream.opus HTTP/1.1\r\nHost: x\r\n"), Route::More);
        let mut long = b"GET /stream.opus HTTP/1.1\r\n".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(route(&long), Route::Site, "an endless head goes to the router, which refuses it");
    }

    #[test]
    fn the_full_answer_declares_its_length() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
