//! The registry's rules, without IO or clock: what a `POST /name/{name}` must prove before anything is
//! written (the key's fingerprint is the address, the signature over the name verifies), what a new
//! record does next to the records already there (one name per address, one address per name, names
//! final), and the same checks on the client side for an answer read back from any name server.

use crate::key::{KeyError, PublicKey};
use crate::name::{Addr, Name, NameError};
use serde::{Deserialize, Serialize};

/// The JSON body of `POST /name/{name}`, as Jami clients send it. Unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationBody {
    /// The account's Jami ID, `0x` + 40 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Who owns the name, as the client says (Jami sends an address); kept as given once it parses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Base64 of the signature over the name's UTF-8 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Base64 of the PEM public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publickey: Option<String>,
}

/// A registered name: what the registry stores, and all it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The name.
    pub name: Name,
    /// The Jami ID it points to.
    pub addr: Addr,
    /// The owner field as registered (the address when the client sent none).
    pub owner: String,
    /// The `publickey` field as registered (base64 of the PEM).
    pub publickey: String,
    /// The `signature` field as registered (base64).
    pub signature: String,
    /// When it was registered, seconds since the Unix epoch.
    pub registered_at: u64,
}

/// Why a registration was refused before the store was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The name or address is malformed.
    #[error(transparent)]
    Name(#[from] NameError),
    /// No `addr` field.
    #[error("addr is missing")]
    MissingAddr,
    /// No key or no signature: this registry stores only names whose owner can be verified.
    #[error("publickey and signature are required: this registry stores only verifiable names")]
    Unsigned,
    /// The owner field is not an address.
    #[error("owner is not an address")]
    BadOwner,
    /// The key is malformed or of an unsupported kind or size.
    #[error(transparent)]
    Key(KeyError),
    /// The key's fingerprint is not the address.
    #[error("publickey does not match addr (addr must be the SHA-1 of the key's SubjectPublicKeyInfo)")]
    KeyNotAddr,
    /// The signature over the name does not verify.
    #[error("signature verification failed")]
    BadSignature,
}

impl Refusal {
    /// Whether the request was well formed but failed authentication (HTTP 401) rather than malformed
    /// (HTTP 400).
    pub fn is_authentication(&self) -> bool {
        matches!(self, Refusal::KeyNotAddr | Refusal::BadSignature)
    }
}

/// Checks a registration of `name` and makes the record to store, stamped `now_unix`.
pub fn verify(name: &Name, body: &RegistrationBody, now_unix: u64) -> Result<Record, Refusal> {
    let addr = Addr::parse(body.addr.as_deref().ok_or(Refusal::MissingAddr)?)?;
    let (Some(publickey), Some(signature)) = (body.publickey.as_deref(), body.signature.as_deref()) else {
        return Err(Refusal::Unsigned);
    };
    let owner = match body.owner.as_deref().map(str::trim) {
        None | Some("") => addr.to_string(),
        Some(owner) => Addr::parse(owner).map_err(|_| Refusal::BadOwner)?.to_string(),
    };
    let key = PublicKey::from_base64_pem(publickey).map_err(Refusal::Key)?;
    if key.addr() != addr {
        return Err(Refusal::KeyNotAddr);
    }
    key.verify_base64(name.as_str().as_bytes(), signature).map_err(|e| match e {
        KeyError::BadSignature => Refusal::BadSignature,
        other => Refusal::Key(other),
    })?;
    Ok(Record {
        name: name.clone(),
        addr,
        owner,
        publickey: publickey.trim().to_owned(),
        signature: signature.trim().to_owned(),
        registered_at: now_unix,
    })
}

/// What a verified registration does, given the record already holding its name (if any) and the name
/// already held by its address (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// New: store it.
    Insert,
    /// The same name for the same address is already there: nothing to write, answer success.
    AlreadyRegistered,
    /// The name belongs to another address.
    NameTaken,
    /// The address already owns another name.
    AddrHasName(Name),
}

/// The rule: names are final and one-to-one with addresses.
pub fn decide(new: &Record, holder_of_name: Option<Addr>, name_of_addr: Option<&Name>) -> Decision {
    match (holder_of_name, name_of_addr) {
        (Some(holder), _) if holder == new.addr => Decision::AlreadyRegistered,
        (Some(_), _) => Decision::NameTaken,
        (None, Some(other)) => Decision::AddrHasName(other.clone()),
        (None, None) => Decision::Insert,
    }
}

/// A registration of `name` by a tutti identity (Ed25519): `addr` is the SHA-1 of the key's DER
/// SubjectPublicKeyInfo, `publickey` base64 of its PEM, `signature` base64 of the 64-byte Ed25519
/// signature over the name's UTF-8 bytes — the same encoding as a Jami (RSA) registration.
pub fn sign_ed25519(key: &ed25519_dalek::SigningKey, name: &str) -> RegistrationBody {
    use base64::Engine;
    use ed25519_dalek::pkcs8::EncodePublicKey;
    use ed25519_dalek::Signer;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let verifying = key.verifying_key();
    let der = verifying.to_public_key_der().expect("an Ed25519 key always encodes");
    let pem = verifying.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).expect("encodes");
    let addr = PublicKey::from_spki_der(der.as_bytes()).expect("our own key parses").addr().to_string();
    RegistrationBody {
        addr: Some(addr.clone()),
        owner: Some(addr),
        signature: Some(b64(&key.sign(name.as_bytes()).to_bytes())),
        publickey: Some(b64(pem.as_bytes())),
    }
}

/// A name server's answer to `GET /name/{name}`, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameAnswer {
    /// The name.
    pub name: String,
    /// The address, `0x` + 40 hex.
    pub addr: String,
    /// Base64 of the PEM public key (older Jami records lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publickey: Option<String>,
    /// Base64 of the signature over the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl From<&Record> for NameAnswer {
    fn from(record: &Record) -> Self {
        NameAnswer {
            name: record.name.to_string(),
            addr: record.addr.to_string(),
            publickey: Some(record.publickey.clone()),
            signature: Some(record.signature.clone()),
        }
    }
}

/// Why a client refuses a name server's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The answer is about another name.
    #[error("the server answered for {0:?}, not the name asked")]
    OtherName(String),
    /// The answer's name, address, key or signature is malformed, missing or does not verify.
    #[error("the answer does not verify: {0}")]
    Unverified(Refusal),
}

/// Client-side check of an answer for `asked`: the name is the one asked, the key's fingerprint is the
/// address, and the signature over the name verifies with that key. A server that lies about a name
/// cannot pass this without the owner's private key.
pub fn verify_answer(asked: &Name, answer: &NameAnswer) -> Result<Addr, AnswerError> {
    if answer.name != asked.as_str() {
        return Err(AnswerError::OtherName(answer.name.clone()));
    }
    let body = RegistrationBody {
        addr: Some(answer.addr.clone()),
        owner: None,
        signature: answer.signature.clone(),
        publickey: answer.publickey.clone(),
    };
    verify(asked, &body, 0).map(|record| record.addr).map_err(AnswerError::Unverified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn a_signed_jami_registration_becomes_a_record() {
        let body = test_keys::rsa_registration(0, "alice");
        let record = verify(&name("alice"), &body, 1_700_000_000).unwrap();
        assert_eq!(record.addr.to_string(), test_keys::RSA_ADDRS[0]);
        assert_eq!(record.owner, test_keys::RSA_ADDRS[0]);
        assert_eq!(record.publickey, body.publickey.unwrap());
        assert_eq!(record.registered_at, 1_700_000_000);
    }

    #[test]
    fn a_signature_made_by_openssl_verifies() {
        let mut body = test_keys::rsa_registration(0, "alice");
        body.signature = Some(test_keys::RSA_0_ALICE_OPENSSL.trim().to_owned());
        verify(&name("alice"), &body, 0).unwrap();
    }

    #[test]
    fn the_real_jami_daemons_request_verifies() {
        let body: RegistrationBody = serde_json::from_str(test_keys::JAMI_DAEMON_POST).unwrap();
        let record = verify(&name("jam-cafe01"), &body, 0).unwrap();
        assert_eq!(record.addr.to_string(), "0x6b62ec4ea98bcb4c40199af87d30119f297e910d");
        // the owner is the account's Ethereum address, not the Jami ID: kept
        assert_eq!(record.owner, "0x6fbb00e2716b1dd3cd61aea6f30d09f5feb376b7");
        assert_eq!(record.publickey, body.publickey.unwrap());
        assert_eq!(
            verify(&name("jam-cafe02"), &serde_json::from_str(test_keys::JAMI_DAEMON_POST).unwrap(), 0),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn each_way_of_lying_is_refused() {
        let good = test_keys::rsa_registration(0, "alice");
        // a signature over another name
        let other = test_keys::rsa_registration(0, "mallory");
        let replayed = RegistrationBody { signature: other.signature.clone(), ..good.clone() };
        assert_eq!(verify(&name("alice"), &replayed, 0), Err(Refusal::BadSignature));
        // somebody else's address with this key
        let stolen = RegistrationBody { addr: Some(test_keys::RSA_ADDRS[1].into()), ..good.clone() };
        assert_eq!(verify(&name("alice"), &stolen, 0), Err(Refusal::KeyNotAddr));
        // another key with this address
        let key1 = test_keys::rsa_registration(1, "alice");
        let swapped = RegistrationBody { publickey: key1.publickey, signature: key1.signature, ..good.clone() };
        assert_eq!(verify(&name("alice"), &swapped, 0), Err(Refusal::KeyNotAddr));
        // unsigned, as the Jami reference server still accepts
        let unsigned = RegistrationBody { publickey: None, signature: None, ..good.clone() };
        assert_eq!(verify(&name("alice"), &unsigned, 0), Err(Refusal::Unsigned));
        assert_eq!(
            verify(&name("alice"), &RegistrationBody { addr: None, ..good.clone() }, 0),
            Err(Refusal::MissingAddr)
        );
        assert_eq!(
            verify(&name("alice"), &RegistrationBody { owner: Some("bob".into()), ..good.clone() }, 0),
            Err(Refusal::BadOwner)
        );
        assert!(verify(&name("alice"), &good, 0).is_ok());
    }

    #[test]
    fn ed25519_identities_register_through_the_same_rule() {
        let (signing, _) = test_keys::ed25519(1);
        let body = test_keys::ed25519_registration(&signing, "carol");
        let record = verify(&name("carol"), &body, 0).unwrap();
        assert_eq!(record.addr.to_string(), body.addr.unwrap());
    }

    #[test]
    fn names_are_final_and_one_to_one() {
        let (a, _) = test_keys::ed25519(1);
        let (b, _) = test_keys::ed25519(2);
        let rec = |key, n: &str| verify(&name(n), &test_keys::ed25519_registration(key, n), 0).unwrap();
        let alice_a = rec(&a, "alice");
        assert_eq!(decide(&alice_a, None, None), Decision::Insert);
        assert_eq!(decide(&alice_a, Some(alice_a.addr), Some(&name("alice"))), Decision::AlreadyRegistered);
        let alice_b = rec(&b, "alice");
        assert_eq!(decide(&alice_b, Some(alice_a.addr), None), Decision::NameTaken);
        let bob_a = rec(&a, "bob");
        assert_eq!(decide(&bob_a, None, Some(&name("alice"))), Decision::AddrHasName(name("alice")));
    }

    #[test]
    fn a_client_rejects_a_tampered_answer() {
        let (a, _) = test_keys::ed25519(1);
        let record = verify(&name("alice"), &test_keys::ed25519_registration(&a, "alice"), 0).unwrap();
        let honest = NameAnswer::from(&record);
        assert_eq!(verify_answer(&name("alice"), &honest), Ok(record.addr));
        // the server points the name at another address
        let redirected = NameAnswer { addr: test_keys::RSA_ADDRS[2].into(), ..honest.clone() };
        assert!(matches!(
            verify_answer(&name("alice"), &redirected),
            Err(AnswerError::Unverified(Refusal::KeyNotAddr))
        ));
        // ... with a key of its own, signing the name itself: the fingerprint gives it away unless
        // the address changes too, and then it is simply another person's record
        let (m, _) = test_keys::ed25519(9);
        let forged =
            NameAnswer::from(&verify(&name("alice"), &test_keys::ed25519_registration(&m, "alice"), 0).unwrap());
        let mixed = NameAnswer { addr: honest.addr.clone(), ..forged.clone() };
        assert!(verify_answer(&name("alice"), &mixed).is_err());
        // the answer for another name
        let bob = verify(&name("bob"), &test_keys::ed25519_registration(&a, "bob"), 0).unwrap();
        assert_eq!(verify_answer(&name("alice"), &NameAnswer::from(&bob)), Err(AnswerError::OtherName("bob".into())));
        // no key or signature: unverifiable
        let bare = NameAnswer { publickey: None, signature: None, ..honest };
        assert!(verify_answer(&name("alice"), &bare).is_err());
    }
}
