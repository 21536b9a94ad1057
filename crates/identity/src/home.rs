//! Where the identity lives on the device: `identity.json` (mode 0600) in the identity directory
//! (mode 0700; the CLI puts it in `$TUTTI_HOME/identity`, else `$XDG_DATA_HOME/tutti/identity`, else
//! `~/.local/share/tutti/identity`). Written atomically (temporary file, fsync, rename, fsync of the
//! directory); [`Home::delete`] removes every file and directory this code writes.

use crate::identity::Identity;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The identity file's name.
pub const FILE: &str = "identity.json";
const TEMPORARY: &str = "identity.json.tmp";

/// Why the identity could not be read, written or deleted.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// There is already one.
    #[error("an identity already exists (ID {0}): export it if you want to keep it, then `tutti id delete`")]
    Exists(String),
    /// The file is readable by others.
    #[error("{0} is readable by other users: run `chmod 600 {0}`")]
    Permissions(String),
    /// The file does not parse.
    #[error("{0} is damaged: {1}")]
    Damaged(String, String),
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    label: String,
    created: u64,
    /// Base64 of the PKCS#8 DER private key.
    pkcs8: String,
}

/// The identity directory.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
    /// Directories above `dir` that this code may create (and removes again when empty).
    owned_parents: Vec<PathBuf>,
}

impl Home {
    /// The identity directory `dir`; `owned_parent` is a directory above it that this code creates if
    /// missing and removes again on delete when it is empty (the `tutti` data directory).
    pub fn new(dir: PathBuf, owned_parent: Option<PathBuf>) -> Home {
        Home { dir, owned_parents: owned_parent.into_iter().collect() }
    }

    /// A given directory (for tests and `--home`-style use).
    pub fn at(dir: &Path) -> Home {
        Home { dir: dir.to_owned(), owned_parents: Vec::new() }
    }

    /// The identity directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The identity file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The identity, if there is one.
    pub fn load(&self) -> Result<Option<(Identity, u64)>, HomeError> {
        let path = self.file();
        let shown = path.display().to_string();
        let metadata = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(HomeError::Io(shown, e)),
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(HomeError::Permissions(shown));
        }
        let text = Zeroizing::new(std::fs::read(&path).map_err(|e| HomeError::Io(shown.clone(), e))?);
        let file: File = serde_json::from_slice(&text).map_err(|e| HomeError::Damaged(shown.clone(), e.to_string()))?;
        let pkcs8 = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(&file.pkcs8)
                .map_err(|_| HomeError::Damaged(shown.clone(), "the key is not base64".into()))?,
        );
        let identity =
            Identity::from_pkcs8(&pkcs8, &file.label).map_err(|e| HomeError::Damaged(shown, e.to_string()))?;
        Ok(Some((identity, file.created)))
    }

    /// Stores `identity` made at `created` (Unix seconds); refuses to replace an existing one.
    pub fn create(&self, identity: &Identity, created: u64) -> Result<PathBuf, HomeError> {
        if let Some((existing, _)) = self.load().ok().flatten() {
            return Err(HomeError::Exists(existing.id().hex()));
        }
        if self.file().exists() {
            return Err(HomeError::Exists("unreadable".into()));
        }
        let io = |path: &Path| {
            let shown = path.display().to_string();
            move |e| HomeError::Io(shown, e)
        };
        for dir in self.owned_parents.iter().chain(std::iter::once(&self.dir)) {
            if !dir.is_dir() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
            }
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&self.dir))?;
        let file = File {
            version: 1,
            label: identity.label().to_owned(),
            created,
            pkcs8: base64::engine::general_purpose::STANDARD.encode(identity.pkcs8().as_slice()),
        };
        let text = Zeroizing::new(
            serde_json::to_vec_pretty(&file).map_err(|e| HomeError::Damaged(FILE.into(), e.to_string()))?,
        );
        let temporary = self.dir.join(TEMPORARY);
        let _ = std::fs::remove_file(&temporary);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io(&temporary))?;
        out.write_all(&text).and_then(|()| out.sync_all()).map_err(io(&temporary))?;
        drop(out);
        let path = self.file();
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io(&self.dir))?;
        Ok(path)
    }

    /// Removes the identity file, any temporary file, the identity directory and the parent
    /// directories this code created if they are empty. Returns what was removed.
    pub fn delete(&self) -> Result<Vec<PathBuf>, HomeError> {
        let mut removed = Vec::new();
        for name in [FILE, TEMPORARY] {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(HomeError::Io(path.display().to_string(), e)),
            }
        }
        for dir in std::iter::once(&self.dir).chain(self.owned_parents.iter().rev()) {
            // only if empty: whatever else is there is not ours
            if std::fs::remove_dir(dir).is_ok() {
                removed.push(dir.clone());
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tutti-identity-home-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
                if path.is_dir() {
                    stack.push(path);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn create_load_delete_leaves_the_directory_as_it_was() {
        let base = temp("cycle");
        std::fs::write(base.join("unrelated"), "x").unwrap();
        let before = listing(&base);
        let home = Home { dir: base.join("tutti/identity"), owned_parents: vec![base.join("tutti")] };
        let identity = Identity::generate("phone").unwrap();
        home.create(&identity, 1_700_000_000).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(home.dir()), 0o700);
        assert_eq!(mode(&base.join("tutti")), 0o700);
        assert_eq!(mode(&home.file()), 0o600);
        let (loaded, created) = home.load().unwrap().unwrap();
        assert_eq!((loaded.id(), loaded.label(), created), (identity.id(), "phone", 1_700_000_000));
        assert!(matches!(home.create(&Identity::generate("").unwrap(), 0), Err(HomeError::Exists(_))));
        let removed = home.delete().unwrap();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert_eq!(listing(&base), before);
        assert!(home.load().unwrap().is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_readable_or_damaged_file_is_refused_with_a_reason() {
        let base = temp("bad");
        let home = Home::at(&base.join("identity"));
        home.create(&Identity::generate("").unwrap(), 0).unwrap();
        std::fs::set_permissions(home.file(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(home.load(), Err(HomeError::Permissions(_))));
        std::fs::set_permissions(home.file(), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(home.file(), "{\"version\": 1").unwrap();
        assert!(matches!(home.load(), Err(HomeError::Damaged(..))));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
