//! Account public keys as the name server receives them (base64 of a PEM `PUBLIC KEY`): Jami's RSA keys
//! and tutti's Ed25519 keys, told apart by the key's own algorithm identifier. Owns the two checks a
//! registration needs — the key's fingerprint (SHA-1 of its DER SubjectPublicKeyInfo, the Jami ID) and
//! the signature over the name. No IO.

use crate::name::Addr;
use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use sha1::Digest;

/// The smallest RSA modulus accepted (Jami makes 4096-bit keys; below 2048 bits is breakable).
pub const RSA_MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted: larger keys cost the server too much to verify.
pub const RSA_MAX_BITS: usize = 8192;
/// The longest base64 public key accepted (an 8192-bit RSA key is about 1.5 KiB of PEM).
pub const MAX_KEY_BASE64: usize = 4096;

/// Why a public key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The `publickey` field is not base64.
    #[error("publickey is not base64")]
    Base64,
    /// The decoded key is not a PEM block.
    #[error("publickey is not a PEM public key: {0}")]
    Pem(String),
    /// A PEM block of another kind (a certificate, a private key).
    #[error("publickey is a PEM {0:?} block: send the PUBLIC KEY")]
    Label(String),
    /// Neither RSA nor Ed25519, or the DER inside does not parse.
    #[error("publickey is neither an RSA nor an Ed25519 public key")]
    Unsupported,
    /// An RSA key outside [`RSA_MIN_BITS`]..=[`RSA_MAX_BITS`].
    #[error("RSA key of {0} bits: use 2048 to 8192 bits")]
    RsaSize(usize),
    /// Larger than [`MAX_KEY_BASE64`].
    #[error("publickey is too large")]
    TooLarge,
    /// The `signature` field is not base64 of a signature of the key's kind.
    #[error("signature is not base64 of a signature for this key")]
    SignatureEncoding,
    /// The signature does not verify over the name with this key.
    #[error("signature verification failed")]
    BadSignature,
}

/// The kind of an account key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A Jami account key: RSA, PKCS#1 v1.5 signatures with SHA-512.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// A tutti identity key: Ed25519 (RFC 8032, strict verification).
    Ed25519,
}

#[derive(Debug, Clone)]
enum Verify {
    Rsa(rsa::pkcs1v15::VerifyingKey<rsa::sha2::Sha512>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A parsed account public key with its DER SubjectPublicKeyInfo.
#[derive(Debug, Clone)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    kind: KeyKind,
    verify: Verify,
}

impl PublicKey {
    /// From the registration's `publickey` field: base64 of a PEM `PUBLIC KEY` (or PKCS#1
    /// `RSA PUBLIC KEY`) block.
    pub fn from_base64_pem(field: &str) -> Result<PublicKey, KeyError> {
        if field.len() > MAX_KEY_BASE64 {
            return Err(KeyError::TooLarge);
        }
        let pem = base64::engine::general_purpose::STANDARD.decode(field.trim()).map_err(|_| KeyError::Base64)?;
        PublicKey::from_pem(&pem)
    }

    /// From PEM text. Trailing NUL bytes and white space are ignored: the Jami daemon sends its PEM
    /// with the C string's terminating NUL.
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, KeyError> {
        let end = pem.iter().rposition(|b| *b != 0 && !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
        let mut trimmed = pem[..end].to_vec();
        trimmed.push(b'\n');
        let (label, der) = pem_rfc7468::decode_vec(&trimmed).map_err(|e| KeyError::Pem(e.to_string()))?;
        match label {
            "PUBLIC KEY" => PublicKey::from_spki_der(&der),
            "RSA PUBLIC KEY" => {
                use rsa::pkcs1::DecodeRsaPublicKey;
                use rsa::pkcs8::EncodePublicKey;
                let key = rsa::PublicKey::from_pkcs1_der(&der).map_err(|_| rsa_refusal(&der))?;
                let spki = key.to_public_key_der().map_err(|_| KeyError::Unsupported)?;
                PublicKey::from_spki_der(spki.as_bytes())
            }
            other => Err(KeyError::Label(other.to_owned())),
        }
    }

    /// From a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey { spki_der: der.to_vec(), kind: KeyKind::Ed25519, verify: Verify::Ed25519(key) });
        }
        let key = rsa::PublicKey::from_public_key_der(der).map_err(|_| rsa_refusal(der))?;
        let bits = rsa::traits::PublicKeyParts::n_bits_precision(&key) as usize;
        if bits < RSA_MIN_BITS {
            return Err(KeyError::RsaSize(bits));
        }
        Ok(PublicKey {
            spki_der: der.to_vec(),
            kind: KeyKind::Rsa { bits },
            verify: Verify::Rsa(rsa::pkcs1v15::VerifyingKey::new(key)),
        })
    }

    /// RSA or Ed25519.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The Jami ID: SHA-1 of the DER SubjectPublicKeyInfo.
    pub fn addr(&self) -> Addr {
        Addr::from_bytes(sha1::Sha1::digest(&self.spki_der).into())
    }

    /// Checks `signature` (base64, as in a registration) over `message` with this key.
    pub fn verify_base64(&self, message: &[u8], signature: &str) -> Result<(), KeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| KeyError::SignatureEncoding)?;
        self.verify(message, &bytes)
    }

    /// Checks a raw signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        match &self.verify {
            Verify::Rsa(key) => {
                let KeyKind::Rsa { bits } = self.kind else { return Err(KeyError::Unsupported) };
                if signature.len() != bits.div_ceil(8) {
                    return Err(KeyError::SignatureEncoding);
                }
                let signature =
                    rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| KeyError::SignatureEncoding)?;
                key.verify(message, &signature).map_err(|_| KeyError::BadSignature)
            }
            Verify::Ed25519(key) => {
                let signature =
                    ed25519_dalek::Signature::from_slice(signature).map_err(|_| KeyError::SignatureEncoding)?;
                key.verify_strict(message, &signature).map_err(|_| KeyError::BadSignature)
            }
        }
    }
}

/// What to say about DER that did not parse as an acceptable key: an RSA key of the wrong size gets
/// its size named; anything else is unsupported.
fn rsa_refusal(der: &[u8]) -> KeyError {
    rsa_modulus_bits(der)
        .filter(|bits| !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(bits))
        .map_or(KeyError::Unsupported, KeyError::RsaSize)
}

/// The modulus size of an RSA key in SPKI or PKCS#1 DER, read without size limits.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    use rsa::pkcs1::der::Decode;
    let pkcs1 = match rsa::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(der) {
        Ok(spki) => spki.subject_public_key.as_bytes()?.to_vec(),
        Err(_) => der.to_vec(),
    };
    let key = rsa::pkcs1::RsaPublicKey::<rsa::pkcs1::UintRef<'_>>::from_der(&pkcs1).ok()?;
    let modulus = key.modulus.as_bytes();
    let leading = modulus.iter().take_while(|b| **b == 0).count();
    let significant = &modulus[leading..];
    let first = *significant.first()?;
    Some(significant.len() * 8 - first.leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys;

    #[test]
    fn a_jami_rsa_key_gives_its_jami_id_and_verifies_its_name() {
        let key = PublicKey::from_base64_pem(&test_keys::rsa_publickey_field(0)).unwrap();
        assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 });
        // the fixture's ID was computed with `openssl pkey -pubin -outform DER | sha1sum`
        assert_eq!(key.addr().to_string(), test_keys::RSA_ADDRS[0]);
        let signature = test_keys::rsa_sign(0, b"alice");
        key.verify_base64(b"alice", &signature).unwrap();
        assert_eq!(key.verify_base64(b"alicf", &signature), Err(KeyError::BadSignature));
    }

    #[test]
    fn an_ed25519_key_is_told_apart_by_its_algorithm() {
        let (signing, field) = test_keys::ed25519(7);
        let key = PublicKey::from_base64_pem(&field).unwrap();
        assert_eq!(key.kind(), KeyKind::Ed25519);
        let signature = test_keys::ed25519_sign(&signing, b"bob");
        key.verify_base64(b"bob", &signature).unwrap();
        assert_eq!(key.verify_base64(b"bob2", &signature), Err(KeyError::BadSignature));
        assert_eq!(key.verify_base64(b"bob", "AAAA"), Err(KeyError::SignatureEncoding));
    }

    #[test]
    fn the_pkcs1_form_of_a_key_has_the_same_id() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let key = PublicKey::from_base64_pem(&test_keys::rsa_publickey_field(0)).unwrap();
        let rsa = rsa::PublicKey::from_public_key_der(key.spki_der()).unwrap();
        let pem = rsa.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
        assert_eq!(PublicKey::from_pem(pem.as_bytes()).unwrap().addr(), key.addr());
    }

    #[test]
    fn bad_keys_get_a_reason() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(PublicKey::from_base64_pem("not base64!").unwrap_err(), KeyError::Base64);
        assert!(matches!(PublicKey::from_base64_pem(&b64("hello")).unwrap_err(), KeyError::Pem(_)));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(PublicKey::from_base64_pem(&b64(cert)).unwrap_err(), KeyError::Label("CERTIFICATE".into()));
        let junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert_eq!(PublicKey::from_base64_pem(&b64(junk)).unwrap_err(), KeyError::Unsupported);
        assert_eq!(PublicKey::from_base64_pem(&"A".repeat(MAX_KEY_BASE64 + 4)).unwrap_err(), KeyError::TooLarge);
        assert_eq!(PublicKey::from_pem(test_keys::RSA_1024_PEM.as_bytes()).unwrap_err(), KeyError::RsaSize(1024));
    }

    #[test]
    fn an_rsa_key_over_8192_bits_is_refused_by_size() {
        // a syntactically valid 8200-bit modulus, odd, e = 65537
        use rsa::pkcs1::der::Encode;
        let mut modulus = vec![0xffu8; 1025];
        modulus[0] = 0x00; // positive INTEGER
        modulus[1] = 0xff;
        let mut n = vec![0x00u8];
        n.extend(std::iter::repeat_n(0xff, 1025));
        let key = rsa::pkcs1::RsaPublicKey {
            modulus: rsa::pkcs1::UintRef::new(&n).unwrap(),
            public_exponent: rsa::pkcs1::UintRef::new(&[1, 0, 1]).unwrap(),
        };
        let der = key.to_der().unwrap();
        assert_eq!(rsa_modulus_bits(&der), Some(8200));
        let pem = pem_rfc7468::encode_string("RSA PUBLIC KEY", pem_rfc7468::LineEnding::LF, &der).unwrap();
        assert_eq!(PublicKey::from_pem(pem.as_bytes()).unwrap_err(), KeyError::RsaSize(8200));
        let _ = modulus;
    }
}
