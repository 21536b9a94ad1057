//! The `--config FILE` of every subcommand: one TOML file whose tables are the subcommands' tables
//! (`[server]`, `[directory]`, `[lobby]`, `[registry]`, …), so one file can configure them all. Each
//! subcommand reads its own table, whose struct refuses unknown keys; other tables are left alone.

use anyhow::Context;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The table `name` of the TOML file at `path`, or the defaults if the file has no such table.
pub fn table<T: DeserializeOwned + Default>(path: &Path, name: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let mut file: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not a valid tutti configuration", path.display()))?;
    match file.remove(name) {
        None => Ok(T::default()),
        Some(value) => {
            T::deserialize(value).with_context(|| format!("{}: the [{name}] table is not valid", path.display()))
        }
    }
}

/// Whether `tutti all` runs the part whose table is `name`: the table's `enabled` key (for an array of
/// tables such as `[[server]]`, the part runs if any of them is enabled), `default` without one.
pub fn enabled(path: &Path, name: &str, default: bool) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let file: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not a valid tutti configuration", path.display()))?;
    let one = |table: &toml::Value| match table.get("enabled") {
        None => Ok(default),
        Some(toml::Value::Boolean(on)) => Ok(*on),
        Some(other) => {
            anyhow::bail!("{}: in the [{name}] table, enabled = {other} is not true or false", path.display())
        }
    };
    match file.get(name) {
        None => Ok(default),
        Some(toml::Value::Array(tables)) if !tables.is_empty() => {
            let on = tables.iter().map(one).collect::<anyhow::Result<Vec<bool>>>()?;
            Ok(on.into_iter().any(|on| on))
        }
        Some(table) => one(table),
    }
}

/// Where a part of tutti keeps its data: `$TUTTI_HOME/PART`, else `$XDG_DATA_HOME/tutti/PART`, else
/// `~/.local/share/tutti/PART`. Also gives the `tutti` directory above it when tutti may have to
/// create it (not under `TUTTI_HOME`, which the person chose).
pub fn data_dir(part: &str) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var("TUTTI_HOME") {
        return Ok((home.join(part), None));
    }
    let data = var("XDG_DATA_HOME")
        .or_else(|| var("HOME").map(|home| home.join(".local/share")))
        .ok_or_else(|| anyhow::anyhow!("no HOME, XDG_DATA_HOME or TUTTI_HOME to keep tutti's data in"))?;
    let tutti = data.join("tutti");
    Ok((tutti.join(part), Some(tutti)))
}

/// Parses `argv` as one subcommand's flags (`A`), as `tutti NAME ARGV…` would (for the subcommands' tests).
#[cfg(test)]
pub fn parse_args<A: clap::Args + clap::FromArgMatches>(name: &'static str, argv: &[&str]) -> clap::error::Result<A> {
    let matches = A::augment_args(clap::Command::new(name))
        .try_get_matches_from(std::iter::once(name).chain(argv.iter().copied()))?;
    A::from_arg_matches(&matches)
}
