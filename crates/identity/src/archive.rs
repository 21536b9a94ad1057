//! The password-encrypted identity archive: a small JSON file whose header says how it was sealed
//! (format, version, the ID, the label, the key derivation and its parameters, the cipher and nonce) and
//! whose ciphertext is the private key. The CLI seals with Argon2id; pages seal with PBKDF2-SHA256
//! (the only password hash WebCrypto has); both open either. AES-256-GCM, because WebCrypto has it
//! and has no ChaCha20-Poly1305. No IO.

use crate::identity::Identity;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The `format` field.
pub const FORMAT: &str = "tutti-identity-archive";
/// The additional authenticated data is this prefix and the ID, so a header naming another ID fails.
pub const AAD_PREFIX: &str = "tutti-identity-archive-v1:";

/// Bounds on the parameters an archive may ask for when opened (a crafted archive must not make
/// `import` allocate gigabytes or spin for hours).
const MAX_ARGON2_M_KIB: u32 = 1024 * 1024;
const MAX_ARGON2_T: u32 = 64;
const MAX_ARGON2_P: u32 = 16;
const MAX_PBKDF2_ITERATIONS: u32 = 20_000_000;

/// How the key is derived from the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name")]
pub enum Kdf {
    /// Argon2id (RFC 9106) with memory in KiB, passes and lanes.
    #[serde(rename = "argon2id")]
    Argon2id {
        /// Memory, KiB.
        m_kib: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
    },
    /// PBKDF2 with HMAC-SHA-256.
    #[serde(rename = "pbkdf2-sha256")]
    Pbkdf2Sha256 {
        /// Iterations.
        iterations: u32,
    },
}

impl Kdf {
    /// What `tutti id export` uses: RFC 9106's second recommended setting (64 MiB, 3 passes, 4 lanes).
    pub const DEFAULT: Kdf = Kdf::Argon2id { m_kib: 64 * 1024, t: 3, p: 4 };
    /// What pages use: PBKDF2-SHA256 with 600,000 iterations (OWASP's 2023 figure).
    pub const PAGE: Kdf = Kdf::Pbkdf2Sha256 { iterations: 600_000 };
}

#[derive(Debug, Serialize, Deserialize)]
struct KdfField {
    #[serde(flatten)]
    kdf: Kdf,
    salt: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CipherField {
    name: String,
    nonce: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Archive {
    format: String,
    version: u32,
    id: String,
    #[serde(default)]
    label: String,
    kdf: KdfField,
    cipher: CipherField,
    ciphertext: String,
}

/// Why an archive could not be made or opened. Nothing is imported when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not JSON, or not this format.
    #[error("not a tutti identity archive")]
    NotAnArchive,
    /// A later version.
    #[error("archive version {0} is newer than this tutti understands (1): upgrade tutti")]
    Version(u32),
    /// A key derivation or cipher this version does not know, or parameters out of bounds.
    #[error("the archive asks for {0}, which this tutti does not accept")]
    Unsupported(String),
    /// A field is malformed (bad base64, wrong length) or the key inside is not the ID in the header.
    #[error("the archive is damaged: {0}")]
    Damaged(&'static str),
    /// The password is wrong, or the archive was altered (the two cannot be told apart).
    #[error("wrong password, or the archive was altered")]
    WrongPassword,
    /// The random source or the key derivation failed.
    #[error("{0}")]
    Crypto(String),
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str, field: &'static str) -> Result<Vec<u8>, ArchiveError> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| ArchiveError::Damaged(field))
}

fn derive(kdf: &Kdf, password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, ArchiveError> {
    let mut key = Zeroizing::new([0u8; 32]);
    match *kdf {
        Kdf::Argon2id { m_kib, t, p } => {
            if m_kib > MAX_ARGON2_M_KIB || t > MAX_ARGON2_T || p > MAX_ARGON2_P {
                return Err(ArchiveError::Unsupported(format!("Argon2id with m={m_kib} KiB, t={t}, p={p}")));
            }
            let params = argon2::Params::new(m_kib, t, p, Some(32))
                .map_err(|e| ArchiveError::Unsupported(format!("Argon2id parameters ({e})")))?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(password, salt, key.as_mut())
                .map_err(|e| ArchiveError::Crypto(format!("Argon2id failed: {e}")))?;
        }
        Kdf::Pbkdf2Sha256 { iterations } => {
            if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
                return Err(ArchiveError::Unsupported(format!("PBKDF2 with {iterations} iterations")));
            }
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, key.as_mut());
        }
    }
    Ok(key)
}

/// Seals `identity` with `password`: the archive's JSON text.
pub fn seal(identity: &Identity, password: &[u8], kdf: Kdf) -> Result<String, ArchiveError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut salt).map_err(|e| ArchiveError::Crypto(e.to_string()))?;
    getrandom::fill(&mut nonce).map_err(|e| ArchiveError::Crypto(e.to_string()))?;
    let key = derive(&kdf, password, &salt)?;
    let id = identity.id().hex();
    let aad = format!("{AAD_PREFIX}{id}");
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| ArchiveError::Crypto(e.to_string()))?;
    let pkcs8 = identity.pkcs8();
    let ciphertext = cipher
        .encrypt(&nonce.into(), Payload { msg: &pkcs8, aad: aad.as_bytes() })
        .map_err(|_| ArchiveError::Crypto("encryption failed".into()))?;
    let archive = Archive {
        format: FORMAT.into(),
        version: 1,
        id,
        label: identity.label().to_owned(),
        kdf: KdfField { kdf, salt: b64(&salt) },
        cipher: CipherField { name: "aes-256-gcm".into(), nonce: b64(&nonce) },
        ciphertext: b64(&ciphertext),
    };
    let mut text = serde_json::to_string_pretty(&archive).map_err(|e| ArchiveError::Crypto(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// The ID an archive's header names, without the password (to say which identity a file holds).
pub fn peek_id(text: &[u8]) -> Result<String, ArchiveError> {
    parse(text).map(|a| a.id)
}

fn parse(text: &[u8]) -> Result<Archive, ArchiveError> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|_| ArchiveError::NotAnArchive)?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(ArchiveError::NotAnArchive);
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(1) => {}
        Some(v) => return Err(ArchiveError::Version(u32::try_from(v).unwrap_or(u32::MAX))),
        None => return Err(ArchiveError::Damaged("version")),
    }
    let kdf_name = value.pointer("/kdf/name").and_then(|n| n.as_str()).unwrap_or("");
    if !matches!(kdf_name, "argon2id" | "pbkdf2-sha256") {
        return Err(ArchiveError::Unsupported(format!("the key derivation {kdf_name:?}")));
    }
    let archive: Archive = serde_json::from_value(value).map_err(|_| ArchiveError::Damaged("header"))?;
    if archive.cipher.name != "aes-256-gcm" {
        return Err(ArchiveError::Unsupported(format!("the cipher {:?}", archive.cipher.name)));
    }
    if archive.id.len() != 40 || !archive.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ArchiveError::Damaged("id"));
    }
    Ok(archive)
}

/// Opens an archive with `password`. Either the whole identity comes back, checked against the ID in
/// the header, or an error.
pub fn open(text: &[u8], password: &[u8]) -> Result<Identity, ArchiveError> {
    let archive = parse(text)?;
    let salt = unb64(&archive.kdf.salt, "salt")?;
    if salt.len() < 8 {
        return Err(ArchiveError::Damaged("salt"));
    }
    let nonce: [u8; 12] =
        unb64(&archive.cipher.nonce, "nonce")?.try_into().map_err(|_| ArchiveError::Damaged("nonce"))?;
    let ciphertext = unb64(&archive.ciphertext, "ciphertext")?;
    let key = derive(&archive.kdf.kdf, password, &salt)?;
    let id = archive.id.to_ascii_lowercase();
    let aad = format!("{AAD_PREFIX}{id}");
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| ArchiveError::Crypto(e.to_string()))?;
    let pkcs8 = Zeroizing::new(
        cipher
            .decrypt(&nonce.into(), Payload { msg: &ciphertext, aad: aad.as_bytes() })
            .map_err(|_| ArchiveError::WrongPassword)?,
    );
    let identity = Identity::from_pkcs8(&pkcs8, &archive.label).map_err(|_| ArchiveError::Damaged("private key"))?;
    if identity.id().hex() != id {
        return Err(ArchiveError::Damaged("the key inside is not the ID in the header"));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Kdf = Kdf::Argon2id { m_kib: 64, t: 1, p: 1 };

    #[test]
    fn seal_and_open_round_trip_with_the_default_parameters() {
        let identity = Identity::generate("laptop").unwrap();
        let text = seal(&identity, b"correct horse", Kdf::DEFAULT).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["kdf"]["name"], "argon2id");
        assert_eq!(value["kdf"]["m_kib"], 65536);
        assert_eq!(value["cipher"]["name"], "aes-256-gcm");
        assert_eq!(value["id"], identity.id().hex());
        assert!(!text.contains(&b64(&identity.pkcs8())), "the key is not in clear");
        let opened = open(text.as_bytes(), b"correct horse").unwrap();
        assert_eq!((opened.id(), opened.label()), (identity.id(), "laptop"));
        assert_eq!(peek_id(text.as_bytes()).unwrap(), identity.id().hex());
    }

    #[test]
    fn a_page_archive_opens() {
        let identity = Identity::generate("").unwrap();
        let text = seal(&identity, b"pw", Kdf::PAGE).unwrap();
        assert!(text.contains("\"pbkdf2-sha256\""));
        assert_eq!(open(text.as_bytes(), b"pw").unwrap().id(), identity.id());
    }

    #[test]
    fn a_wrong_password_is_said_so() {
        let text = seal(&Identity::generate("").unwrap(), b"right", FAST).unwrap();
        assert!(matches!(open(text.as_bytes(), b"wrong"), Err(ArchiveError::WrongPassword)));
    }

    #[test]
    fn damage_anywhere_is_refused_never_half_imported() {
        let identity = Identity::generate("x").unwrap();
        let text = seal(&identity, b"pw", FAST).unwrap();
        // truncated at every length: an error, never a panic or an identity
        for cut in 0..text.trim_end().len() {
            assert!(open(&text.as_bytes()[..cut], b"pw").is_err(), "cut at {cut}");
        }
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = value.clone();
            f(&mut v);
            serde_json::to_vec(&v).unwrap()
        };
        let flip = |s: &str| {
            let mut bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
            bytes[0] ^= 1;
            b64(&bytes)
        };
        let other_id = Identity::generate("").unwrap().id().hex();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("ciphertext bit", edit(&|v| v["ciphertext"] = flip(v["ciphertext"].as_str().unwrap()).into())),
            ("nonce bit", edit(&|v| v["cipher"]["nonce"] = flip(v["cipher"]["nonce"].as_str().unwrap()).into())),
            ("salt bit", edit(&|v| v["kdf"]["salt"] = flip(v["kdf"]["salt"].as_str().unwrap()).into())),
            ("another id", edit(&|v| v["id"] = other_id.clone().into())),
            ("kdf cost", edit(&|v| v["kdf"]["t"] = 2.into())),
            ("huge memory", edit(&|v| v["kdf"]["m_kib"] = (u32::MAX).into())),
            ("unknown kdf", edit(&|v| v["kdf"]["name"] = "scrypt".into())),
            ("unknown cipher", edit(&|v| v["cipher"]["name"] = "rot13".into())),
            ("newer version", edit(&|v| v["version"] = 2.into())),
            ("not base64", edit(&|v| v["ciphertext"] = "***".into())),
            ("short nonce", edit(&|v| v["cipher"]["nonce"] = "AAAA".into())),
            ("another format", edit(&|v| v["format"] = "jami".into())),
            ("extra field", edit(&|v| v["private_key"] = "x".into())),
        ];
        for (what, bytes) in cases {
            assert!(open(&bytes, b"pw").is_err(), "{what}");
        }
        assert!(matches!(open(b"\x00\xff", b"pw"), Err(ArchiveError::NotAnArchive)));
        value["label"] = "renamed".into();
        assert_eq!(open(&serde_json::to_vec(&value).unwrap(), b"pw").unwrap().id(), identity.id());
    }
}
