//! TURN REST credentials as coturn's `use-auth-secret` checks them: username `EXPIRY[:ID]` (Unix seconds),
//! password base64(HMAC-SHA1(secret, username)); and the long-term credential key MD5(user:realm:password).
//! Pure functions of their inputs: the caller passes the current Unix time.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use std::time::Duration;

/// Why a REST username is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the username does not start with an expiry time in Unix seconds")]
    NoExpiry,
    #[error("the credentials expired")]
    Expired,
}

/// Username and password valid for `ttl` from `now_unix` (seconds since 1970) for the user `id` (may be
/// empty), as a lobby hands them to a browser: `("EXPIRY:ID", base64(HMAC-SHA1(secret, "EXPIRY:ID")))`.
pub fn rest_credentials(secret: &str, ttl: Duration, id: &str, now_unix: u64) -> (String, String) {
    let expiry = now_unix.saturating_add(ttl.as_secs());
    let username = if id.is_empty() { expiry.to_string() } else { format!("{expiry}:{id}") };
    let password = rest_password(secret, &username);
    (username, password)
}

/// base64(HMAC-SHA1(secret, username)).
pub fn rest_password(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The expiry and the user id (what follows the first `:`, or the whole name when there is none) of a REST
/// username, if it has not expired at `now_unix`.
pub fn check_rest_username(username: &str, now_unix: u64) -> Result<(u64, &str), CredentialError> {
    let (expiry, id) = match username.split_once(':') {
        Some((expiry, id)) => (expiry, id),
        None => (username, ""),
    };
    let expiry: u64 = expiry.parse().map_err(|_| CredentialError::NoExpiry)?;
    if expiry < now_unix {
        return Err(CredentialError::Expired);
    }
    Ok((expiry, id))
}

/// The long-term credential key: MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coturn_rest_example() {
        // The scheme of coturn's turnserver.conf: password = base64(hmac-sha1(secret, "expiry:user")).
        let (user, pass) = rest_credentials("north", Duration::from_secs(3600), "alice", 1_700_000_000);
        assert_eq!(user, "1700003600:alice");
        assert_eq!(pass, rest_password("north", "1700003600:alice"));
        assert_eq!(pass.len(), 28, "20 bytes in base64");
        assert_eq!(check_rest_username(&user, 1_700_000_000), Ok((1_700_003_600, "alice")));
        assert_eq!(check_rest_username(&user, 1_700_003_601), Err(CredentialError::Expired));
        assert_eq!(check_rest_username("alice", 0), Err(CredentialError::NoExpiry));
        let (user, _) = rest_credentials("north", Duration::from_secs(60), "", 100);
        assert_eq!(user, "160");
    }

    #[test]
    fn known_hmac_and_md5() {
        // HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog") = de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9.
        assert_eq!(rest_password("key", "The quick brown fox jumps over the lazy dog"), "3nybhbi3iqa8ino29wqQcBydtNk=");
        // RFC 5769 §2.4: MD5("<U+30DE><U+30C8><U+30EA><U+30C3><U+30AF><U+30B9>:example.org:TheMatrIX") after SASLprep.
        let key = long_term_key("\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}", "example.org", "TheMatrIX");
        assert_eq!(key.len(), 16);
    }
}
