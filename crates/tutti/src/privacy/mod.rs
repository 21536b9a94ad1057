//! The privacy policy, generated from the configuration the services run with (`tutti privacy-policy`, and
//! `/privacy` on the lobby and the registry): [`facts`] says what the policy depends on, [`render`] words it.

pub mod facts;
pub mod render;
pub mod settings;

pub use facts::{Facts, LobbyFacts, TurnFacts};

use std::path::PathBuf;

/// `tutti privacy-policy`: the policy of what `tutti all --config FILE` runs (every part on its defaults
/// without a file; a part whose table says `enabled = false` is left out).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file the services run with ([server], [lobby], [registry], [turn], [directory]).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Markdown, or a standalone HTML page.
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
    /// Who runs the service, as the policy's title names them.
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Html,
}

/// Prints the policy.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut facts = crate::all::Args { config: args.config.clone(), ..Default::default() }.privacy_facts()?;
    facts.operator = args.operator.clone();
    print!("{}", if args.format == Format::Html { html(&facts) } else { markdown(&facts) });
    Ok(())
}

/// The policy for `facts` as Markdown.
pub fn markdown(facts: &Facts) -> String {
    render::markdown(&render::policy(facts))
}

/// The policy for `facts` as a standalone HTML page.
pub fn html(facts: &Facts) -> String {
    render::html(&render::policy(facts))
}

#[cfg(test)]
mod tests {
    use super::facts::{JamFacts, RegistryFacts};
    use super::*;

    fn everything_default() -> Facts {
        Facts {
            operator: None,
            jam: Some(JamFacts::default()),
            lobby: Some(LobbyFacts::default()),
            registry: Some(RegistryFacts {
                store: "memory".into(),
                durable: false,
                log_requests: false,
                registrations_per_minute: 10,
            }),
            turn: Some(TurnFacts { realm: "tutti".into(), metrics: None, max_bps: 0 }),
        }
    }

    #[test]
    fn the_default_policy_says_no_logging_no_recording_no_third_party() {
        let text = markdown(&everything_default());
        for promise in [
            "No logging: nothing about you is written to a log.",
            "No recording: audio is mixed and sent on, never stored.",
            "No third party is contacted",
            "Never your IP address",
            "Text messages and video are never stored or logged.",
            "The page sets no cookie",
            "No record of any address is kept or logged.",
            "Requests are not logged.",
        ] {
            assert!(text.contains(promise), "missing {promise:?} in:\n{text}");
        }
        assert!(!text.contains("Third parties contacted"), "{text}");
    }

    /// One row per setting: the change, a sentence it must bring, a sentence it must remove.
    #[test]
    fn each_setting_changes_the_text_where_it_should() {
        type Change = fn(&mut Facts);
        let rows: &[(&str, Change, &str, &str)] = &[
            (
                "--log",
                |f| f.jam.as_mut().unwrap().connection_log = Some(PathBuf::from("/var/log/tutti.log")),
                "connection log is appended to /var/log/tutti.log",
                "No connection log is written.",
            ),
            (
                "--recording",
                |f| f.jam.as_mut().unwrap().recording = Some((PathBuf::from("/srv/rec"), true)),
                "Recordings go into /srv/rec",
                "Nothing is recorded.",
            ),
            (
                "--recording --norecord",
                |f| f.jam.as_mut().unwrap().recording = Some((PathBuf::from("/srv/rec"), false)),
                "Recording is off now.",
                "No recording:",
            ),
            (
                "--directoryserver",
                |f| f.jam.as_mut().unwrap().registers_with = Some("anygenre1.jamulus.io:22124".into()),
                "the Jamulus directory anygenre1.jamulus.io:22124",
                "Nobody: the server only answers the clients that contact it.",
            ),
            (
                "--serverpublicip",
                |f| {
                    let jam = f.jam.as_mut().unwrap();
                    jam.registers_with = Some("dir.example:22124".into());
                    jam.public_ip = Some("203.0.113.7".into());
                },
                "(203.0.113.7, as configured)",
                "No third party is contacted",
            ),
            (
                "directory with --directoryfile",
                |f| {
                    let jam = f.jam.as_mut().unwrap();
                    jam.is_directory = true;
                    jam.directory_file = Some(PathBuf::from("/var/lib/tutti/list"));
                },
                "saves that list (and nothing else) to /var/lib/tutti/list",
                "for their listing only, in memory",
            ),
            (
                "--metrics",
                |f| f.jam.as_mut().unwrap().metrics = Some("127.0.0.1:9100".into()),
                "metrics at 127.0.0.1:9100: counts only",
                "@@never@@",
            ),
            (
                "--jsonrpcport",
                |f| f.jam.as_mut().unwrap().json_rpc = Some("127.0.0.1:8765".into()),
                "JSON-RPC interface at 127.0.0.1:8765",
                "@@never@@",
            ),
            (
                "lobby ICE server",
                |f| f.lobby.as_mut().unwrap().ice_servers = vec!["stun:stun.example.org:3478".into()],
                "the ICE server stun:stun.example.org:3478",
                "No third party is contacted",
            ),
            (
                "lobby --turn-url",
                |f| f.lobby.as_mut().unwrap().turn_urls = vec!["turn:relay.example.org:3478".into()],
                "switch on \"Hide my IP\"",
                "as every WebRTC call does",
            ),
            (
                "lobby --relay-only",
                |f| {
                    let lobby = f.lobby.as_mut().unwrap();
                    lobby.turn_urls = vec!["turn:relay.example.org:3478".into()];
                    lobby.relay_only = true;
                },
                "your partner sees the relay's address, never yours",
                "shows your IP address to your partner",
            ),
            (
                "lobby --redis",
                |f| f.lobby.as_mut().unwrap().redis = Some("redis://10.0.0.5:6379/".into()),
                "through Redis (redis://10.0.0.5:6379/, also in memory)",
                "held in memory only and deleted",
            ),
            (
                "registry --log-requests",
                |f| f.registry.as_mut().unwrap().log_requests = true,
                "logged with its method, route and status only",
                "No logging:",
            ),
            (
                "registry on SQLite",
                |f| {
                    let registry = f.registry.as_mut().unwrap();
                    registry.store = "the SQLite database /var/lib/tutti/names.db".into();
                    registry.durable = true;
                },
                "kept in the SQLite database /var/lib/tutti/names.db, on disk",
                "in memory only and lost when the registry restarts",
            ),
            (
                "turn --max-bps",
                |f| f.turn.as_mut().unwrap().max_bps = 64_000,
                "limited to 64000 bytes a second",
                "@@never@@",
            ),
            (
                "registry elsewhere",
                |f| {
                    f.registry = None;
                    f.lobby.as_mut().unwrap().registry = Some("https://names.example.org".into());
                },
                "the name registry https://names.example.org, which the lobby asks",
                "No third party is contacted",
            ),
            (
                "no lobby",
                |f| f.lobby = None,
                "It covers: the jam server, the name registry, the TURN relay.",
                "The page sets no cookie",
            ),
        ];
        let base = markdown(&everything_default());
        for (setting, change, brings, removes) in rows {
            let mut facts = everything_default();
            change(&mut facts);
            let text = markdown(&facts);
            assert!(text.contains(brings), "{setting}: missing {brings:?} in:\n{text}");
            assert!(!base.contains(brings), "{setting}: {brings:?} is already in the default policy");
            assert!(!text.contains(removes), "{setting}: still says {removes:?} in:\n{text}");
        }
    }

    #[test]
    fn the_html_is_a_whole_page_without_external_resources() {
        let mut facts = everything_default();
        facts.operator = Some("Jam <Café> & \"friends\"".into());
        let page = html(&facts);
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">"), "{page}");
        assert!(page.contains("<title>Privacy policy of Jam &lt;Café&gt; &amp; &quot;friends&quot;</title>"), "{page}");
        for external in ["http://", "https://", "src=", "href=", "<script", "<link", "@import", "url("] {
            assert!(!page.contains(external), "external resource or script {external:?} in:\n{page}");
        }
        assert_balanced(&page);
    }

    /// Every opened element is closed, in order (the page uses only nesting elements besides meta).
    fn assert_balanced(page: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = page;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("a tag ends") + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') || tag.starts_with("meta") {
                continue;
            }
            let name: String = tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            if tag.starts_with('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "unbalanced </{name}>");
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    }
}
