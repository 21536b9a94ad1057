//! An identity: an Ed25519 key pair made on the device. Its ID is the Jami rule applied to the public
//! key (SHA-1 of the DER SubjectPublicKeyInfo), so it is a registry address unchanged. Every signature
//! other than a name registration is bound to a context prefix that no name can contain.

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey};
use tutti_registry::{Addr, PublicKey, RegistrationBody};
use zeroize::Zeroizing;

/// The context of a signature over a WebRTC DTLS fingerprint (`a=fingerprint:` values of an SDP).
pub const DTLS_FINGERPRINT: &str = "tutti-dtls-fingerprint-v1:";
/// The context of a signature over a lobby server's reachability challenge.
pub const LOBBY_REACH: &str = "tutti-lobby-reach-v1:";

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("the system's random number source failed: {0}")]
    Random(String),
    /// The private key bytes are not an Ed25519 PKCS#8 key.
    #[error("not an Ed25519 private key (PKCS#8)")]
    NotEd25519,
    /// A context that could be mistaken for a name.
    #[error("a signature context must end with ':'")]
    Context,
}

/// An Ed25519 key pair with an optional label the person chose.
pub struct Identity {
    key: SigningKey,
    label: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("id", &self.id().hex()).field("label", &self.label).finish_non_exhaustive()
    }
}

impl Identity {
    /// A new key pair from the operating system's random source.
    pub fn generate(label: &str) -> Result<Identity, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Identity { key: SigningKey::from_bytes(&seed), label: label.to_owned() })
    }

    /// From a PKCS#8 DER private key (what `export_pkcs8` and WebCrypto's `exportKey('pkcs8')` give).
    pub fn from_pkcs8(der: &[u8], label: &str) -> Result<Identity, KeyError> {
        let key = SigningKey::from_pkcs8_der(der).map_err(|_| KeyError::NotEd25519)?;
        Ok(Identity { key, label: label.to_owned() })
    }

    /// The private key as PKCS#8 DER (zeroed when dropped).
    pub fn pkcs8(&self) -> Zeroizing<Vec<u8>> {
        let document = self.key.to_pkcs8_der().expect("an Ed25519 key always encodes");
        Zeroizing::new(document.as_bytes().to_vec())
    }

    /// The label (may be empty).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The public key's DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Vec<u8> {
        self.key.verifying_key().to_public_key_der().expect("an Ed25519 key always encodes").into_vec()
    }

    /// The public key as PEM.
    pub fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .expect("encodes")
    }

    /// The ID: SHA-1 of the DER SubjectPublicKeyInfo.
    pub fn id(&self) -> Addr {
        PublicKey::from_spki_der(&self.spki_der()).expect("our own key parses").addr()
    }

    /// A signature over `context` + `payload`. The context must end with `:` (no name contains one),
    /// so the signature can never pass for a name registration or for another context's statement.
    pub fn sign(&self, context: &str, payload: &[u8]) -> Result<[u8; 64], KeyError> {
        if !context.ends_with(':') {
            return Err(KeyError::Context);
        }
        let mut message = Vec::with_capacity(context.len() + payload.len());
        message.extend_from_slice(context.as_bytes());
        message.extend_from_slice(payload);
        Ok(self.key.sign(&message).to_bytes())
    }

    /// The registry request that gives this identity `name` (signed over the bare name, as Jami does).
    pub fn registration(&self, name: &str) -> RegistrationBody {
        tutti_registry::sign_ed25519(&self.key, name)
    }
}

/// Checks a context-bound signature made by [`Identity::sign`] with the key `spki_der`.
pub fn verify(spki_der: &[u8], context: &str, payload: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = PublicKey::from_spki_der(spki_der) else { return false };
    if !context.ends_with(':') || key.kind() != tutti_registry::KeyKind::Ed25519 {
        return false;
    }
    let mut message = context.as_bytes().to_vec();
    message.extend_from_slice(payload);
    key.verify(&message, signature).is_ok()
}

/// An ID as people compare it: the 40 hex digits in 10 groups of 4.
pub fn grouped(id: &Addr) -> String {
    let hex = id.hex();
    hex.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or("")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 section 7.1, test 1: the secret key, public key and signature of the empty message.
    const RFC8032_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC8032_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn rfc8032() -> Identity {
        let secret: [u8; 32] = unhex(RFC8032_SECRET).try_into().unwrap();
        Identity { key: SigningKey::from_bytes(&secret), label: String::new() }
    }

    #[test]
    fn the_rfc_8032_vector_signs_and_verifies() {
        let identity = rfc8032();
        assert_eq!(identity.key.verifying_key().to_bytes().to_vec(), unhex(RFC8032_PUBLIC));
        assert_eq!(identity.key.sign(b"").to_bytes().to_vec(), unhex(RFC8032_SIGNATURE));
        // its SPKI is the fixed 12-byte Ed25519 prefix and the key
        let spki = identity.spki_der();
        assert_eq!(spki[..12], unhex("302a300506032b6570032100")[..]);
        assert_eq!(spki[12..], unhex(RFC8032_PUBLIC)[..]);
    }

    #[test]
    fn the_id_is_sha1_of_the_spki() {
        // `printf '302a300506032b6570032100d75a…' | xxd -r -p | sha1sum`
        assert_eq!(rfc8032().id().hex(), "a566be19840173413a61048350eff23e8fe22266");
        assert_eq!(grouped(&rfc8032().id()), "a566 be19 8401 7341 3a61 0483 50ef f23e 8fe2 2266");
    }

    #[test]
    fn context_signatures_verify_only_in_their_context() {
        let identity = Identity::generate("me").unwrap();
        let spki = identity.spki_der();
        let fingerprint = b"sha-256 AB:CD";
        let signature = identity.sign(DTLS_FINGERPRINT, fingerprint).unwrap();
        assert!(verify(&spki, DTLS_FINGERPRINT, fingerprint, &signature));
        assert!(!verify(&spki, LOBBY_REACH, fingerprint, &signature));
        assert!(!verify(&spki, DTLS_FINGERPRINT, b"sha-256 AB:CE", &signature));
        assert!(!verify(&Identity::generate("").unwrap().spki_der(), DTLS_FINGERPRINT, fingerprint, &signature));
        assert!(identity.sign("no-colon", b"x").is_err());
    }

    #[test]
    fn a_registration_verifies_at_the_registry_and_no_context_signature_is_one() {
        let identity = Identity::generate("").unwrap();
        let body = identity.registration("alice");
        let name = tutti_registry::Name::parse("alice").unwrap();
        assert_eq!(tutti_registry::verify(&name, &body, 0).unwrap().addr, identity.id());
        // a context signature over "alice" is not a signature over "alice"
        use base64::Engine;
        let forged = base64::engine::general_purpose::STANDARD.encode(identity.sign(LOBBY_REACH, b"alice").unwrap());
        let body = RegistrationBody { signature: Some(forged), ..body };
        assert!(tutti_registry::verify(&name, &body, 0).is_err());
    }

    #[test]
    fn pkcs8_round_trips() {
        let identity = Identity::generate("x").unwrap();
        let again = Identity::from_pkcs8(&identity.pkcs8(), "x").unwrap();
        assert_eq!(again.id(), identity.id());
        assert!(Identity::from_pkcs8(b"junk", "").is_err());
    }
}
