//! Fixed keys for tests (crates/registry/testdata, made with OpenSSL; see its README): RSA keys as
//! Jami makes them, signing as Jami's daemon does, and Ed25519 keys from a seed. Never for real use.

use crate::registration::{sign_ed25519, RegistrationBody};
use base64::Engine;
use ed25519_dalek::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::sha2::Digest;
use rsa::signature::hazmat::PrehashSigner;

/// The 2048-bit RSA test keys (PKCS#8 PEM).
pub const RSA_PEMS: [&str; 3] = [
    include_str!("../testdata/rsa-0.pem"),
    include_str!("../testdata/rsa-1.pem"),
    include_str!("../testdata/rsa-2.pem"),
];
/// Their Jami IDs, computed with `openssl pkey -pubout -outform DER | sha1sum`.
pub const RSA_ADDRS: [&str; 3] = [
    "0x8799e5cda0f89ffb68df5ae7973280cfa151dbf0",
    "0x20126786a2596a3e2a416060a9d0eb4cb06dfe8d",
    "0x0399f4ea594789f6afdf22c83e7e8b5bba68678f",
];
/// A 4096-bit key, the size Jami makes, and its ID.
pub const RSA_4096_PEM: &str = include_str!("../testdata/rsa-4096.pem");
/// The ID of [`RSA_4096_PEM`].
pub const RSA_4096_ADDR: &str = "0x54ae6058d2bffc46a8c91445d94f959d93304b84";
/// A 1024-bit public key: too small.
pub const RSA_1024_PEM: &str = include_str!("../testdata/rsa-1024.pub.pem");
/// An EC P-256 public key: a kind the registry refuses.
pub const EC_P256_PEM: &str = include_str!("../testdata/ec-p256.pub.pem");
/// `POST /name/jam-cafe01` as the real Jami daemon (Debian jami-daemon 20230206) sent it, captured on
/// loopback: `addr` and `owner` without `0x`, `owner` the account's Ethereum address, the PEM in
/// `publickey` ending in a NUL byte, an RSA-4096 key.
pub const JAMI_DAEMON_POST: &str = include_str!("../testdata/jami-daemon-post.json");
/// `printf alice | openssl dgst -sha512 -sign rsa-0.pem | base64 -w0`.
pub const RSA_0_ALICE_OPENSSL: &str = include_str!("../testdata/rsa-0.alice.sig.b64");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rsa_key(pem: &str) -> rsa::PrivateKey {
    rsa::PrivateKey::from_pkcs8_pem(pem).expect("test key parses")
}

/// The `publickey` field for a PKCS#8 RSA private key: base64 of its PEM public key.
pub fn rsa_pem_publickey_field(pem: &str) -> String {
    let public = rsa_key(pem).to_public_key();
    b64(public.to_public_key_pem(rsa::pkcs8::LineEnding::LF).expect("encodes").as_bytes())
}

/// The `publickey` field of test key `i`.
pub fn rsa_publickey_field(i: usize) -> String {
    rsa_pem_publickey_field(RSA_PEMS[i])
}

/// Base64 of an RSA PKCS#1 v1.5 SHA-512 signature over `message` with the PKCS#8 key `pem`.
pub fn rsa_pem_sign(pem: &str, message: &[u8]) -> String {
    let key = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha512>::new(rsa_key(pem));
    let signature = key.sign_prehash(&rsa::sha2::Sha512::digest(message)).expect("signs");
    b64(&rsa::signature::SignatureEncoding::to_vec(&signature))
}

/// Signature of test key `i` over `message`.
pub fn rsa_sign(i: usize, message: &[u8]) -> String {
    rsa_pem_sign(RSA_PEMS[i], message)
}

/// A Jami-style registration of `name` with test key `i`.
pub fn rsa_registration(i: usize, name: &str) -> RegistrationBody {
    RegistrationBody {
        addr: Some(RSA_ADDRS[i].into()),
        owner: Some(RSA_ADDRS[i].into()),
        signature: Some(rsa_sign(i, name.as_bytes())),
        publickey: Some(rsa_publickey_field(i)),
    }
}

/// An Ed25519 key made from `seed`, and its `publickey` field.
pub fn ed25519(seed: u64) -> (SigningKey, String) {
    let mut secret = [7u8; 32];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    let key = SigningKey::from_bytes(&secret);
    let field = sign_ed25519(&key, "abc").publickey.expect("set");
    (key, field)
}

/// Base64 of an Ed25519 signature over `message`.
pub fn ed25519_sign(key: &SigningKey, message: &[u8]) -> String {
    use ed25519_dalek::Signer;
    b64(&key.sign(message).to_bytes())
}

/// A registration of `name` by an Ed25519 key.
pub fn ed25519_registration(key: &SigningKey, name: &str) -> RegistrationBody {
    sign_ed25519(key, name)
}
