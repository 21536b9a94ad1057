//! Facts from the settings the services start with: the same structs `tutti server`, `lobby`, `registry`, `turn`
//! and `all` run from, so the policy cannot say something else than what runs.

use super::facts::{JamFacts, LobbyFacts, RegistryFacts, TurnFacts};
use crate::{server, turn};
use tutti_lobby::LobbyConfig;
use tutti_net::DirectoryOptions;
use tutti_registry::{RegistryConfig, StoreConfig};

/// The jam server's part.
pub fn jam(settings: &server::Settings) -> JamFacts {
    let options = &settings.options;
    JamFacts {
        connection_log: options.log_file.clone(),
        recording: options.recording.clone().map(|dir| (dir, options.record)),
        registers_with: options.config.registration.as_ref().map(|r| {
            if settings.directory.is_empty() {
                r.directory.to_string()
            } else {
                settings.directory.clone()
            }
        }),
        public_ip: settings.public_ip.map(|ip| ip.to_string()),
        is_directory: options.config.directory.is_some(),
        directory_file: None,
        metrics: settings.metrics.map(|m| m.to_string()),
        json_rpc: settings.jsonrpc.as_ref().map(|(addr, _)| addr.to_string()),
        stream: settings.stream.as_ref().map(|s| s.listen.to_string()),
        stream_icecast: settings
            .stream
            .as_ref()
            .and_then(|s| s.icecast.as_ref())
            .map(|t| format!("{}:{}{}", t.host, t.port, t.mount)),
    }
}

/// A standalone directory (`tutti directory`, or `[directory]` under `tutti all`), added to the jam part.
pub fn directory(jam: Option<JamFacts>, options: &DirectoryOptions) -> JamFacts {
    let mut facts = jam.unwrap_or_default();
    facts.is_directory = true;
    facts.directory_file = options.file.clone();
    facts
}

/// The lobby's part.
pub fn lobby(config: &LobbyConfig) -> LobbyFacts {
    LobbyFacts {
        ice_servers: config.ice_servers.iter().flat_map(|s| s.urls.iter().cloned()).collect(),
        turn_urls: config.turn.as_ref().map(|t| t.urls().to_vec()).unwrap_or_default(),
        relay_only: config.relay_only,
        redis: config.redis.as_deref().map(without_password),
        registry: config.registry.clone(),
        tls: config.tls.is_some(),
    }
}

/// The registry's part (a database URL is named by kind only: it may carry a password).
pub fn registry(config: &RegistryConfig) -> RegistryFacts {
    let (store, durable) = match &config.store {
        StoreConfig::Sqlite(dir) => (format!("an SQLite database in {}", dir.display()), true),
        StoreConfig::Postgres(_) => ("a PostgreSQL database".to_string(), true),
        StoreConfig::Memory => ("memory".to_string(), false),
    };
    RegistryFacts {
        store,
        durable,
        log_requests: config.log_requests,
        registrations_per_minute: config.registrations_per_minute,
    }
}

/// The TURN relay's part.
pub fn turn(settings: &turn::Settings) -> TurnFacts {
    TurnFacts {
        realm: settings.server.realm.clone(),
        metrics: settings.metrics.map(|m| m.to_string()),
        max_bps: settings.server.max_bps,
    }
}

/// `redis://user:password@host/` without the password.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}{}", &url[..scheme + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_password_never_reaches_the_policy() {
        assert_eq!(without_password("redis://:hunter2@10.0.0.5:6379/"), "redis://10.0.0.5:6379/");
        assert_eq!(without_password("redis://10.0.0.5:6379/"), "redis://10.0.0.5:6379/");
    }

    #[test]
    fn a_database_url_is_named_by_kind_only() {
        let config = RegistryConfig {
            listen: "127.0.0.1:8090".parse().unwrap(),
            store: StoreConfig::Postgres("postgres://names:hunter2@db/names".into()),
            log_requests: false,
            registrations_per_minute: 10,
            cache_bytes: 0,
            privacy: None,
        };
        let facts = registry(&config);
        assert_eq!((facts.store.as_str(), facts.durable), ("a PostgreSQL database", true));
    }
}
