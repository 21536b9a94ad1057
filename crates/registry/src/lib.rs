//! tutti's name registry: a self-hostable name server that Jami clients use and tutti identities
//! share. The rules (names, addresses, keys, signatures, one name per address, names final) are sans-IO
//! in [`name`], [`key`] and [`registration`]; [`store`] keeps records in SQLite or PostgreSQL with a
//! durable commit before every success; [`http`] and [`server`] are the axum shell.

pub mod cache;
pub mod http;
pub mod key;
pub mod limit;
pub mod name;
pub mod registration;
pub mod server;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod test_http;
#[cfg(any(test, feature = "testing"))]
pub mod test_keys;
#[cfg(any(test, feature = "testing"))]
pub mod test_postgres;

pub use key::{KeyError, KeyKind, PublicKey};
pub use name::{Addr, Name, NameError};
pub use registration::{
    decide, sign_ed25519, verify, verify_answer, AnswerError, Decision, NameAnswer, Record, Refusal, RegistrationBody,
};
pub use server::{Error, RegistryConfig, RegistryServer, DEFAULT_CACHE_MB, DEFAULT_REGISTRATIONS_PER_MINUTE};
pub use store::{Store, StoreConfig, StoreError};
