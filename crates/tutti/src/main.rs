//! The one `tutti` binary: parses the command line and hands each subcommand to its module.
//! Errors a person reads go to stderr as one sentence with what to do, and the exit code is non-zero.

mod inspect;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// tutti: a privacy-first real-time communication server. Speaks the Jamulus 3.9.1 protocol.
#[derive(Debug, Parser)]
#[command(name = "tutti", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a capture (classic pcap) of Jamulus traffic and print every datagram as a typed message.
    Inspect(inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tutti: {error:#}");
            ExitCode::FAILURE
        }
    }
}
