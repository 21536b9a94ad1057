//! The one `tutti` binary: parses the command line and hands each subcommand to its module.
//! Errors a person reads go to stderr as one sentence with what to do, and the exit code is non-zero.

mod all;
mod audio_args;
mod client;
mod config_file;
mod directory;
mod id;
mod inspect;
mod jsonrpc;
#[allow(dead_code)] // `list::run` is for `tutti client --list HOST[:PORT]`
mod list;
mod loadgen;
mod lobby;
mod manual;
mod metrics;
mod privacy;
mod registry;
mod server;
mod sound_card;
mod stream_args;
mod turn;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The allocator is jemalloc: after a crowd leaves (the lobby's abusers cut, a jam server's clients gone)
/// it hands the freed memory back to the system, where glibc's kept the process at about its high-water
/// mark (pages held by a few live chunks; docs/reliability.md has the measurements).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts: freed pages go back to the system over about a second
/// (`dirty_decay_ms`, 10 s by default) and at once from there (`muzzy_decay_ms`), by a thread of its own
/// (`background_thread`: without it an arena that went idle after a crowd left kept its pages). The
/// environment's `_RJEM_MALLOC_CONF` is read after these, so an operator can override them.
#[cfg(target_os = "linux")]
#[export_name = "_rjem_malloc_conf"]
#[used]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// tutti: a privacy-first real-time communication server. Speaks the Jamulus 3.9.1 protocol.
#[derive(Debug, Parser)]
#[command(name = "tutti", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process: jam server, lobby page, name registry and TURN relay.
    All(all::Args),
    /// Run a jam server that Jamulus 3.9.1 clients connect to (UDP 22124 by default).
    Server(server::Args),
    /// Run a directory (server list) that Jamulus 3.9.1 servers register with and clients read.
    Directory(directory::Args),
    /// Join a jam server as a headless client: send a WAV file or a tone, record the mix, chat.
    Client(client::Args),
    /// Emulate many jam clients against a server and report what they received and what it cost.
    Loadgen(loadgen::Args),
    /// Decode a capture (classic pcap) of Jamulus traffic and print every datagram as a typed message.
    Inspect(inspect::Args),
    /// Run the anonymous random video-chat lobby: a web page and Socket.IO v5 matching and relay.
    Lobby(lobby::Args),
    /// Your identity on this device: a key pair, its ID, a password-encrypted export, a public name.
    Id(id::Args),
    /// Run a name registry that Jami clients and tutti identities register public names with.
    Registry(registry::Args),
    /// Run a TURN relay (RFC 8656, coturn's flags and REST credentials) that refuses internal peers.
    Turn(turn::Args),
    /// Print the privacy policy of what a configuration runs, generated from it (Markdown or HTML).
    PrivacyPolicy(privacy::Args),
    /// Write tutti's man pages (one per command) into a folder.
    Man(manual::ManArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(manual::CompletionsArgs),
}

/// Diagnostics on stderr, filtered by `RUST_LOG` (default: warnings and tutti's own info lines).
/// They never carry chat text or client addresses; the connection log (`--log`) is separate.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tutti_net=info,tutti_registry::access=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::All(args) => all::run(&args),
        Command::Server(args) => server::run(&args),
        Command::Directory(args) => directory::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Loadgen(args) => loadgen::run(&args),
        Command::Lobby(args) => lobby::run(&args),
        Command::Registry(args) => registry::run(&args),
        Command::Id(args) => id::run(&args),
        Command::Client(args) => client::run(&args),
        Command::Turn(args) => turn::run(&args),
        Command::PrivacyPolicy(args) => privacy::run(&args),
        Command::Man(args) => manual::man(&args, <Cli as clap::CommandFactory>::command()),
        Command::Completions(args) => manual::completions(&args, <Cli as clap::CommandFactory>::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tutti: {error:#}");
            ExitCode::FAILURE
        }
    }
}
