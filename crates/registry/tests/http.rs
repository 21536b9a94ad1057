//! The HTTP API on loopback over a real SQLite store: Jami's routes, status codes and bodies, and
//! hostile requests that must each get a 4xx with a JSON error and leave the store unchanged.

use serde_json::{json, Value};
use std::net::SocketAddr;
use tutti_registry::test_http::{get, post_json, request, Answer};
use tutti_registry::test_keys::{self, ed25519, ed25519_registration, rsa_registration};
use tutti_registry::{verify_answer, Name, NameAnswer, RegistryConfig, RegistryServer, StoreConfig};

struct Running {
    addr: SocketAddr,
    dir: std::path::PathBuf,
    _runtime: tokio::runtime::Runtime,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(tag: &str, per_minute: u32) -> Running {
    let dir = std::env::temp_dir().join(format!("tutti-registry-http-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = RegistryConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: StoreConfig::Sqlite(dir.clone()),
        log_requests: false,
        registrations_per_minute: per_minute,
        cache_bytes: 1 << 20,
        privacy: Some("<!doctype html><title>policy</title>".into()),
    };
    let server = runtime.block_on(RegistryServer::bind(&config)).unwrap();
    let addr = server.local_addr().unwrap();
    runtime.spawn(server.serve(std::future::pending()));
    Running { addr, dir, _runtime: runtime }
}

fn body(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

fn assert_error(answer: &Answer, status: u16, context: &str) {
    assert_eq!(answer.status, status, "{context}: {answer:?}");
    assert!(answer.json()["error"].is_string(), "{context}: a JSON error: {answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"), "{context}");
}

#[test]
fn jami_routes_status_codes_and_bodies() {
    let r = start("routes", 0);
    let alice = rsa_registration(0, "alice");
    let ok = post_json(r.addr, "/name/alice", &body(&alice)).unwrap();
    assert_eq!((ok.status, ok.json()), (200, json!({"success": true})));

    let answer = get(r.addr, "/name/alice").unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"name": "alice", "addr": test_keys::RSA_ADDRS[0], "publickey": alice.publickey, "signature": alice.signature})
    );
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    // a client re-verifies what it read
    let parsed: NameAnswer = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(verify_answer(&Name::parse("alice").unwrap(), &parsed).unwrap().to_string(), test_keys::RSA_ADDRS[0]);
    // lookups lowercase first
    assert_eq!(get(r.addr, "/name/ALICE").unwrap().body, answer.body);
    for (field, value) in [("owner", &alice.owner), ("publickey", &alice.publickey), ("signature", &alice.signature)] {
        let single = get(r.addr, &format!("/name/alice/{field}")).unwrap();
        assert_eq!((single.status, single.json()), (200, json!({"name": "alice", field: value})), "{field}");
    }
    let by_addr = get(r.addr, &format!("/addr/{}", test_keys::RSA_ADDRS[0])).unwrap();
    assert_eq!((by_addr.status, by_addr.json()), (200, json!({"name": "alice"})));
    let bare = test_keys::RSA_ADDRS[0].trim_start_matches("0x").to_ascii_uppercase();
    assert_eq!(get(r.addr, &format!("/addr/{bare}")).unwrap().json(), json!({"name": "alice"}));

    let unknown = get(r.addr, "/name/nobody").unwrap();
    assert_eq!((unknown.status, unknown.json()), (404, json!({"error": "name not registred"})));
    // a second read comes from the answer cache, byte for byte the same
    assert_eq!(get(r.addr, "/name/alice").unwrap().body, answer.body);
    assert_error(&get(r.addr, "/name/nobody/owner").unwrap(), 404, "unknown name's owner");
    let unknown_addr = get(r.addr, &format!("/addr/{}", test_keys::RSA_ADDRS[1])).unwrap();
    assert_eq!((unknown_addr.status, unknown_addr.json()), (404, json!({"error": "address not registered"})));
    assert_error(&get(r.addr, "/addr/0x1234").unwrap(), 400, "malformed address");

    // names are final
    assert_eq!(post_json(r.addr, "/name/alice", &body(&alice)).unwrap().status, 200, "identical again");
    assert_error(&post_json(r.addr, "/name/alice", &body(&rsa_registration(1, "alice"))).unwrap(), 403, "taken");
    assert_error(&post_json(r.addr, "/name/alice-2", &body(&rsa_registration(0, "alice-2"))).unwrap(), 403, "one each");

    // tutti identities (Ed25519) and Jami's own key size (RSA-4096) through the same route
    let (key, _) = ed25519(42);
    assert_eq!(post_json(r.addr, "/name/carol_1", &body(&ed25519_registration(&key, "carol_1"))).unwrap().status, 200);
    let big = json!({
        "addr": test_keys::RSA_4096_ADDR,
        "owner": test_keys::RSA_4096_ADDR,
        "publickey": test_keys::rsa_pem_publickey_field(test_keys::RSA_4096_PEM),
        "signature": test_keys::rsa_pem_sign(test_keys::RSA_4096_PEM, b"dave"),
    });
    assert_eq!(post_json(r.addr, "/name/dave", &big).unwrap().status, 200);
    assert_eq!(get(r.addr, "/name/dave").unwrap().json()["addr"], test_keys::RSA_4096_ADDR);
}

#[test]
fn hostile_requests_get_a_4xx_and_change_nothing() {
    let r = start("hostile", 0);
    let alice = rsa_registration(0, "alice");
    assert_eq!(post_json(r.addr, "/name/alice", &body(&alice)).unwrap().status, 200);
    let before = get(r.addr, "/name/alice").unwrap();

    let good = body(&rsa_registration(1, "bob"));
    let with = |key: &str, value: Value| {
        let mut b = good.clone();
        b[key] = value;
        b
    };
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let bob_addr = test_keys::RSA_ADDRS[1];
    let raw_cases: Vec<(&str, String, Vec<u8>, u16)> = vec![
        ("truncated JSON", "/name/bob".into(), br#"{"addr": "0x12", "publickey": "#.to_vec(), 400),
        ("not JSON", "/name/bob".into(), b"addr=0x12&name=bob".to_vec(), 400),
        ("a JSON array", "/name/bob".into(), b"[1,2,3]".to_vec(), 400),
        ("a huge number", "/name/bob".into(), br#"{"addr": 1e999999}"#.to_vec(), 400),
        ("a long integer", "/name/bob".into(), format!(r#"{{"addr": {}}}"#, "9".repeat(5000)).into_bytes(), 400),
        ("nested deeply", "/name/bob".into(), format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(), 400),
        (
            "a body over 16 KiB",
            "/name/bob".into(),
            format!(r#"{{"owner": "{}"}}"#, "a".repeat(17 * 1024)).into_bytes(),
            413,
        ),
        (
            "duplicate keys",
            "/name/bob".into(),
            format!(r#"{{"addr": "{bob_addr}", "addr": "{bob_addr}"}}"#).into_bytes(),
            400,
        ),
        ("invalid UTF-8", "/name/bob".into(), b"{\"addr\": \"\xff\xfe\"}".to_vec(), 400),
    ];
    for (what, path, raw, status) in raw_cases {
        assert_error(&request(r.addr, "POST", &path, Some(&raw)).unwrap(), status, what);
    }
    let too_long = format!("/name/{}", "b".repeat(33));
    let json_cases: Vec<(&str, &str, Value, u16)> = vec![
        ("Cyrillic a in the name", "/name/%D0%B0lice", good.clone(), 400),
        ("Kelvin sign in the name", "/name/%E2%84%AAate", good.clone(), 400),
        ("fullwidth letters", "/name/%EF%BD%82ob", good.clone(), 400),
        ("uppercase when registering", "/name/BOB", good.clone(), 400),
        ("a NUL byte", "/name/bob%00", good.clone(), 400),
        ("an encoded slash", "/name/..%2F..%2Fetc", good.clone(), 400),
        ("a dot name", "/name/..", good.clone(), 400),
        ("too short", "/name/bo", good.clone(), 400),
        ("too long", &too_long, good.clone(), 400),
        ("a space", "/name/b%20ob", good.clone(), 400),
        ("no addr", "/name/bob", with("addr", Value::Null), 400),
        ("addr a number", "/name/bob", with("addr", json!(12)), 400),
        ("malformed addr", "/name/bob", with("addr", json!("0xnothex")), 400),
        (
            "unsigned (the reference server's legacy form)",
            "/name/bob",
            json!({"addr": bob_addr, "owner": bob_addr}),
            400,
        ),
        ("publickey not base64", "/name/bob", with("publickey", json!("%%%not base64")), 400),
        ("publickey not PEM", "/name/bob", with("publickey", json!(b64("hello"))), 400),
        (
            "publickey a certificate",
            "/name/bob",
            with("publickey", json!(b64("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))),
            400,
        ),
        ("an EC key", "/name/bob", with("publickey", json!(b64(test_keys::EC_P256_PEM))), 400),
        ("an RSA-1024 key", "/name/bob", with("publickey", json!(b64(test_keys::RSA_1024_PEM))), 400),
        ("an oversized publickey", "/name/bob", with("publickey", json!("A".repeat(8000))), 400),
        ("signature not base64", "/name/bob", with("signature", json!("***")), 400),
        ("signature the wrong length", "/name/bob", with("signature", json!(b64("short"))), 400),
        ("owner not an address", "/name/bob", with("owner", json!("root")), 400),
        ("another account's address", "/name/bob", with("addr", json!(test_keys::RSA_ADDRS[2])), 401),
        ("a signature over another name", "/name/bob", with("signature", json!(test_keys::rsa_sign(1, b"bobby"))), 401),
        ("alice's key for bob's address", "/name/bob", with("publickey", alice.publickey.clone().into()), 401),
        ("alice's name, signed by bob", "/name/alice", with("signature", json!(test_keys::rsa_sign(1, b"alice"))), 403),
    ];
    for (what, path, value, status) in json_cases {
        assert_error(&post_json(r.addr, path, &value).unwrap(), status, what);
    }
    for (what, method, path, status) in [
        ("DELETE a name", "DELETE", "/name/alice", 405),
        ("PUT a name", "PUT", "/name/alice", 405),
        ("PATCH a name", "PATCH", "/name/alice", 405),
        ("an unknown route", "GET", "/admin", 404),
        ("an unknown field", "GET", "/name/alice/password", 404),
        ("a path trick", "GET", "/name/../../etc/passwd", 404),
        ("an encoded trick", "GET", "/name/..%2F..%2Fetc%2Fpasswd", 400),
        ("lookup of a look-alike", "GET", "/name/%D0%B0lice", 400),
    ] {
        assert_error(&request(r.addr, method, path, None).unwrap(), status, what);
    }
    assert_eq!(get(r.addr, "/name/alice").unwrap(), before, "alice is unchanged");
    assert_eq!(get(r.addr, "/name/bob").unwrap().status, 404, "nothing was written for bob");
    assert_eq!(get(r.addr, &format!("/addr/{bob_addr}")).unwrap().status, 404);
    // and bob can still register properly afterwards: his earlier 404s were not kept
    assert_eq!(post_json(r.addr, "/name/bob", &good).unwrap().status, 200);
    assert_eq!(get(r.addr, "/name/bob").unwrap().status, 200);
    assert_eq!(get(r.addr, &format!("/addr/{bob_addr}")).unwrap().json(), json!({"name": "bob"}));
}

#[test]
fn registrations_are_limited_per_source() {
    let r = start("limit", 3);
    for i in 0..3u64 {
        let (key, _) = ed25519(i);
        let n = format!("user-{i}");
        assert_eq!(
            post_json(r.addr, &format!("/name/{n}"), &body(&ed25519_registration(&key, &n))).unwrap().status,
            200
        );
    }
    let (key, _) = ed25519(3);
    let refused = post_json(r.addr, "/name/user-3", &body(&ed25519_registration(&key, "user-3"))).unwrap();
    assert_error(&refused, 429, "the fourth in a minute");
    assert_eq!(refused.header("retry-after"), Some("20"), "one registration every 20 s at 3 a minute");
    assert_eq!(get(r.addr, "/name/user-3").unwrap().status, 404);
    // lookups are not limited
    assert!((0..20).all(|_| get(r.addr, "/name/user-0").unwrap().status == 200));
}
