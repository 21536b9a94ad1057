//! `tutti id`: the person's identity on this device — make, show, export, import and delete it, and
//! register or look up its public name at a registry (re-verifying every answer). The key code is in
//! crates/identity; this module reads passwords, talks HTTP and prints for people.

use anyhow::{bail, Context};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tutti_identity::{grouped, Home, Identity, Kdf};
use tutti_registry::{verify_answer, Addr, Name, NameAnswer};

/// `tutti id …`.
#[derive(Debug, clap::Args)]
#[command(after_help = "The identity is an Ed25519 key pair kept in $TUTTI_HOME/identity, else \
$XDG_DATA_HOME/tutti/identity, else ~/.local/share/tutti/identity (directory 0700, file 0600). Its ID is the \
SHA-1 of the public key's DER SubjectPublicKeyInfo, as Jami's. Passwords come from --password-file FILE (first \
line), else the TUTTI_PASSWORD environment variable, else a prompt on the terminal. See docs/identity.md.")]
pub struct Args {
    #[command(subcommand)]
    command: IdCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IdCommand {
    /// Make a new identity on this device (refused if there is one).
    New {
        /// A label for yourself (never sent anywhere unless you export the identity).
        #[arg(long, value_name = "LABEL", default_value = "")]
        name: String,
    },
    /// Show the identity's ID (also grouped, to compare by eye or read aloud) and public key.
    Show,
    /// Write the identity to FILE, encrypted with a password (Argon2id + AES-256-GCM).
    Export {
        /// The archive to write (refused if it exists).
        file: PathBuf,
        /// Read the password from the first line of this file.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Read an identity from an archive made by `tutti id export` or the lobby page.
    Import {
        /// The archive.
        file: PathBuf,
        /// Read the password from the first line of this file.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Delete the identity: every file tutti wrote for it. Without an exported archive it is gone for good.
    Delete {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Register NAME for this identity at a registry (names are final).
    Register {
        /// 3 to 32 of a-z, 0-9, '-' and '_'.
        name: String,
        /// The registry's base URL.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8090")]
        registry: String,
    },
    /// Look up a name (its ID) or an ID (its name) at a registry, and verify the answer's signature.
    Lookup {
        /// A name, or an ID (40 hex digits, with or without 0x).
        name_or_id: String,
        /// The registry's base URL.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8090")]
        registry: String,
    },
}

/// Runs `tutti id …`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let (dir, parent) = crate::config_file::data_dir("identity")?;
    let home = Home::new(dir, parent);
    match &args.command {
        IdCommand::New { name } => {
            let identity = Identity::generate(name)?;
            let path = home.create(&identity, unix_now())?;
            println!("new identity, kept in {}", path.display());
            print_id(&identity.id());
        }
        IdCommand::Show => {
            let (identity, created) = load(&home)?;
            print_id(&identity.id());
            if !identity.label().is_empty() {
                println!("label    {}", identity.label());
            }
            println!("created  {}", date(created));
            println!("file     {}", home.file().display());
            print!("{}", identity.public_pem());
        }
        IdCommand::Export { file, password_file } => {
            let (identity, _) = load(&home)?;
            if file.exists() {
                bail!("{} exists: choose another file name (an archive is never overwritten)", file.display());
            }
            let password = password(password_file.as_deref(), true)?;
            let archive = tutti_identity::seal(&identity, password.as_bytes(), Kdf::DEFAULT)?;
            write_private(file, archive.as_bytes())?;
            println!("identity {} exported to {} (Argon2id + AES-256-GCM)", identity.id().hex(), file.display());
        }
        IdCommand::Import { file, password_file } => {
            if let Some((existing, _)) = home.load()? {
                bail!(
                    "an identity already exists (ID {}): export it if you want to keep it, then `tutti id delete`",
                    existing.id().hex()
                );
            }
            let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let id = tutti_identity::peek_id(&text).with_context(|| format!("{}", file.display()))?;
            let password = password(password_file.as_deref(), false)?;
            let identity = tutti_identity::open(&text, password.as_bytes())
                .with_context(|| format!("cannot open {} (identity {id})", file.display()))?;
            let path = home.create(&identity, unix_now())?;
            println!("identity imported, kept in {}", path.display());
            print_id(&identity.id());
        }
        IdCommand::Delete { yes } => {
            let Some((identity, _)) = home.load()? else {
                println!("no identity on this device");
                return Ok(());
            };
            if !yes {
                confirm_delete(&identity.id())?;
            }
            for path in home.delete()? {
                println!("removed {}", path.display());
            }
            println!("identity {} deleted", identity.id().hex());
        }
        IdCommand::Register { name, registry } => register(&home, name, registry)?,
        IdCommand::Lookup { name_or_id, registry } => lookup(name_or_id, registry)?,
    }
    Ok(())
}

fn load(home: &Home) -> anyhow::Result<(Identity, u64)> {
    home.load()?.ok_or_else(|| {
        anyhow::anyhow!("no identity on this device: make one with `tutti id new` or `tutti id import FILE`")
    })
}

fn print_id(id: &Addr) {
    println!("ID       {}", id.hex());
    println!("         {}", grouped(id));
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn date(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(|| unix.to_string(), |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// The password: --password-file's first line, else TUTTI_PASSWORD, else the terminal (twice when
/// `new`, to catch a typo in a password that nothing else could recover).
fn password(file: Option<&Path>, new: bool) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let password = if let Some(file) = file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the password file {}", file.display()))?,
        );
        zeroize::Zeroizing::new(text.lines().next().unwrap_or("").to_owned())
    } else if let Some(env) = std::env::var_os("TUTTI_PASSWORD") {
        zeroize::Zeroizing::new(env.into_string().map_err(|_| anyhow::anyhow!("TUTTI_PASSWORD is not UTF-8"))?)
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for the password: pass --password-file FILE or set TUTTI_PASSWORD");
        }
        let first =
            zeroize::Zeroizing::new(rpassword::prompt_password("password: ").context("cannot read the password")?);
        if new {
            let again = zeroize::Zeroizing::new(
                rpassword::prompt_password("password again: ").context("cannot read the password")?,
            );
            if *again != *first {
                bail!("the two passwords differ; nothing was written");
            }
        }
        first
    };
    if new && password.chars().count() < 8 {
        bail!("the password is shorter than 8 characters: the archive would be easy to open by guessing");
    }
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("cannot write {}", path.display()))
}

fn confirm_delete(id: &Addr) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("deleting cannot be undone: pass --yes to confirm (no terminal to ask)");
    }
    eprint!("delete identity {}? Without an exported archive it is gone for good. Type 'delete': ", id.hex());
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "delete" {
        bail!("not deleted");
    }
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .user_agent("tutti")
        .build()
        .into()
}

/// `GET`/`POST` `base` + `path`: the status and the JSON body.
fn call(base: &str, path: &str, body: Option<&serde_json::Value>) -> anyhow::Result<(u16, serde_json::Value)> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let agent = agent();
    let response = match body {
        Some(body) => agent.post(&url).header("Content-Type", "application/json").send(body.to_string()),
        None => agent.get(&url).call(),
    };
    let mut response = response.with_context(|| format!("cannot reach the registry at {base}"))?;
    let status = response.status().as_u16();
    let mut text = String::new();
    response
        .body_mut()
        .as_reader()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .context("cannot read the registry's answer")?;
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

fn error_text(json: &serde_json::Value) -> String {
    json.get("error").and_then(|e| e.as_str()).unwrap_or("no reason given").to_owned()
}

fn register(home: &Home, name: &str, registry: &str) -> anyhow::Result<()> {
    let (identity, _) = load(home)?;
    let name = Name::parse(name).map_err(|e| anyhow::anyhow!("{name:?}: {e}"))?;
    let body = serde_json::to_value(identity.registration(name.as_str()))?;
    let (status, answer) = call(registry, &format!("/name/{name}"), Some(&body))?;
    match status {
        200 => {}
        403 => bail!("the registry refused {name}: {} (names are final)", error_text(&answer)),
        429 => bail!("the registry refuses more registrations from this address for now: try again in a minute"),
        _ => bail!("the registry refused {name} ({status}): {}", error_text(&answer)),
    }
    // read it back and check it as any client would
    let id = resolve_name(registry, &name)?;
    if id != identity.id() {
        bail!("the registry says {name} is {}, not this identity: it is not trustworthy", id.hex());
    }
    println!("registered {name} for {}", id.hex());
    Ok(())
}

/// `GET /name/NAME`, verified: the ID whose key signed the name.
fn resolve_name(registry: &str, name: &Name) -> anyhow::Result<Addr> {
    let (status, json) = call(registry, &format!("/name/{name}"), None)?;
    match status {
        200 => {}
        404 => bail!("{name} is not registered"),
        _ => bail!("the registry answered {status} for {name}: {}", error_text(&json)),
    }
    let answer: NameAnswer = serde_json::from_value(json).context("the registry's answer is not a name record")?;
    verify_answer(name, &answer)
        .map_err(|e| anyhow::anyhow!("the registry's answer for {name} does not verify ({e}): refusing it"))
}

fn lookup(name_or_id: &str, registry: &str) -> anyhow::Result<()> {
    let looks_like_id = name_or_id.len() >= 40 && Addr::parse(name_or_id).is_ok();
    if looks_like_id {
        let id = Addr::parse(name_or_id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (status, json) = call(registry, &format!("/addr/{}", id.hex()), None)?;
        match status {
            200 => {}
            404 => bail!("no name is registered for {}", id.hex()),
            _ => bail!("the registry answered {status}: {}", error_text(&json)),
        }
        let text = json.get("name").and_then(|n| n.as_str()).unwrap_or("");
        let name = Name::parse(text).map_err(|_| anyhow::anyhow!("the registry answered a malformed name {text:?}"))?;
        // the name's own record must lead back here with a valid signature
        let back = resolve_name(registry, &name)?;
        if back != id {
            bail!(
                "the registry says {} is {name}, but {name}'s signed record is {}: refusing it",
                id.hex(),
                back.hex()
            );
        }
        println!("{name}  (verified)");
        print_id(&id);
    } else {
        let name = Name::lookup(name_or_id).map_err(|e| anyhow::anyhow!("{name_or_id:?}: {e}"))?;
        let id = resolve_name(registry, &name)?;
        println!("{name}  (verified)");
        print_id(&id);
    }
    Ok(())
}
