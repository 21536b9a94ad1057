//! The lobby's TURN relay access: which `turn:` URLs a matched user is given and the short-lived
//! credentials for them, minted per match from the shared secret by coturn's TURN REST scheme
//! (`use-auth-secret`): username `EXPIRY:ID` (Unix seconds; ID random per match, linking nothing),
//! password base64(HMAC-SHA1(secret, username)). The secret stays here: a page only ever sees what
//! [`TurnAccess::mint`] returns. Pure: the caller passes the Unix time and the random ID.

use crate::{Error, IceServer};
use base64::Engine as _;
use std::fmt;
use std::time::Duration;

/// How long minted credentials are valid unless configured (coturn's REST examples use 600 s to a day).
pub const DEFAULT_TURN_TTL: Duration = Duration::from_secs(600);

/// A TURN relay the lobby hands credentials for.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnAccess {
    urls: Vec<String>,
    secret: String,
    ttl: Duration,
}

impl TurnAccess {
    /// `urls` (`turn:` or `turns:`, e.g. `turn:relay.example:3478?transport=tcp`), the relay's shared
    /// secret (its `--static-auth-secret`), and how long credentials last (1 s to 7 days).
    pub fn new(urls: Vec<String>, secret: String, ttl: Duration) -> Result<TurnAccess, Error> {
        if urls.is_empty() {
            return Err(Error::Config("TURN: give at least one --turn-url".into()));
        }
        for url in &urls {
            let host = url.strip_prefix("turn:").or_else(|| url.strip_prefix("turns:"));
            if host.is_none_or(str::is_empty) {
                return Err(Error::Config(format!("--turn-url {url:?}: it must be a turn: or turns: URL")));
            }
        }
        if secret.is_empty() {
            return Err(Error::Config("TURN: the shared secret is empty".into()));
        }
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(7 * 24 * 3600) {
            return Err(Error::Config(format!("--turn-ttl {}: give 1 to 604800 seconds", ttl.as_secs_f64())));
        }
        Ok(TurnAccess { urls, secret, ttl })
    }

    /// The URLs handed to pages.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// How long credentials last.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Credentials for one matched user, valid for the TTL from `now_unix`: what the page gives its
    /// `RTCPeerConnection` as an ICE server. `id` is random per match (see [`random_user_id`]).
    pub fn mint(&self, now_unix: u64, id: &str) -> IceServer {
        let (username, credential) = tutti_turn::rest_credentials(&self.secret, self.ttl, id, now_unix);
        IceServer { urls: self.urls.clone(), username: Some(username), credential: Some(credential) }
    }
}

/// Never shows the secret (configurations get logged and printed).
impl fmt::Debug for TurnAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnAccess")
            .field("urls", &self.urls)
            .field("secret", &"<hidden>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A fresh random user ID for a username (12 base64url characters, 72 bits).
pub fn random_user_id() -> Result<String, Error> {
    let mut bytes = [0u8; 9];
    getrandom::fill(&mut bytes).map_err(|e| Error::Config(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_turn::credentials::{check_rest_username, rest_password};
    use tutti_turn::CredentialError;

    fn access(ttl: u64) -> TurnAccess {
        let urls = vec!["turn:relay.test:3478".into(), "turn:relay.test:3478?transport=tcp".into()];
        TurnAccess::new(urls, "north-secret".into(), Duration::from_secs(ttl)).unwrap()
    }

    #[test]
    fn minted_credentials_are_coturn_rest_credentials_for_every_url() {
        let server = access(600).mint(1_700_000_000, "AbC-12_xyz90");
        assert_eq!(server.urls, access(600).urls());
        let username = server.username.unwrap();
        assert_eq!(username, "1700000600:AbC-12_xyz90");
        assert_eq!(server.credential.unwrap(), rest_password("north-secret", &username));
        // what coturn's use-auth-secret (and tutti turn) check
        assert_eq!(check_rest_username(&username, 1_700_000_000), Ok((1_700_000_600, "AbC-12_xyz90")));
    }

    #[test]
    fn credentials_expire_after_the_ttl() {
        let server = access(60).mint(1_000, "id");
        let username = server.username.unwrap();
        assert_eq!(check_rest_username(&username, 1_060).map(|(expiry, _)| expiry), Ok(1_060));
        assert_eq!(check_rest_username(&username, 1_061), Err(CredentialError::Expired));
        // minted later, they last from then
        let later = access(60).mint(5_000, "id").username.unwrap();
        assert_eq!(later, "5060:id");
    }

    #[test]
    fn the_secret_is_never_in_what_a_page_gets_nor_in_debug_output() {
        let access = access(600);
        let server = access.mint(1_700_000_000, "id");
        let sent = serde_json::to_string(&server).unwrap();
        assert!(!sent.contains("north-secret"), "{sent}");
        assert!(!format!("{access:?}").contains("north-secret"));
    }

    #[test]
    fn user_ids_are_random_and_url_safe() {
        let (a, b) = (random_user_id().unwrap(), random_user_id().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
        assert!(!a.contains(':'), "the ID must not end the expiry field early");
    }

    #[test]
    fn bad_settings_are_refused_clearly() {
        let secret = || "s".to_string();
        let ttl = Duration::from_secs(600);
        assert!(TurnAccess::new(vec![], secret(), ttl).is_err());
        assert!(TurnAccess::new(vec!["stun:x:3478".into()], secret(), ttl).is_err());
        assert!(TurnAccess::new(vec!["turn:".into()], secret(), ttl).is_err());
        assert!(TurnAccess::new(vec!["turn:x".into()], String::new(), ttl).is_err());
        assert!(TurnAccess::new(vec!["turn:x".into()], secret(), Duration::ZERO).is_err());
        assert!(TurnAccess::new(vec!["turns:x:5349".into()], secret(), ttl).is_ok());
    }
}
