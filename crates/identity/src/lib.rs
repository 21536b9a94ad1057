//! tutti identities: an account is an Ed25519 key pair on the person's device and nothing else. Its ID
//! is the Jami ID rule applied to the public key (so it is a name-registry address as it is), the
//! person can carry it to another device in a password-encrypted archive, and deleting the files
//! deletes the account. [`identity`] and [`archive`] are pure; [`home`] owns the files.

pub mod archive;
pub mod home;
pub mod identity;

pub use archive::{open, peek_id, seal, ArchiveError, Kdf};
pub use home::{Home, HomeError};
pub use identity::{grouped, verify, Identity, KeyError, DTLS_FINGERPRINT, LOBBY_REACH};
