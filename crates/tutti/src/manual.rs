//! `tutti man DIR` and `tutti completions SHELL`: the man pages and shell completions, generated from the
//! same clap definitions as `--help` (the Debian package ships both; `cargo install` users run these).

use anyhow::Context;
use std::path::PathBuf;

/// Flags of `tutti man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Folder to write tutti.1 and one page per command (tutti-server.1, …) into; created if missing.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Flags of `tutti completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Writes the man pages of `command` and its subcommands into the folder.
pub fn man(args: &ManArgs, command: clap::Command) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    clap_mangen::generate_to(command, &args.dir)
        .with_context(|| format!("cannot write the man pages into {}", args.dir.display()))?;
    Ok(())
}

/// Prints the completion script of `command` for the shell to stdout.
pub fn completions(args: &CompletionsArgs, mut command: clap::Command) -> anyhow::Result<()> {
    clap_complete::generate(args.shell, &mut command, "tutti", &mut std::io::stdout());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        <crate::Cli as clap::CommandFactory>::command()
    }

    #[test]
    fn a_page_per_command() {
        let dir = std::env::temp_dir().join(format!("tutti-man-{}", std::process::id()));
        man(&ManArgs { dir: dir.clone() }, command()).unwrap();
        let all = std::fs::read_to_string(dir.join("tutti-all.1")).unwrap();
        assert!(all.contains(".TH tutti-all 1") && all.contains("no\\-turn"), "{all}");
        for page in ["tutti.1", "tutti-server.1", "tutti-lobby.1", "tutti-registry.1", "tutti-turn.1"] {
            assert!(dir.join(page).is_file(), "{page}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
