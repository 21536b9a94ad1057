//! The page's Socket.IO client is the official one: the vendored `crates/lobby/page/vendor/socket.io.min.js`
//! is byte for byte `dist/socket.io.min.js` of the socket.io-client pinned in the test scripts' package.json
//! (installed from npm by `scripts/test.sh`), and `tutti lobby` serves it, and its licences, at stable paths.

mod lobby_support;

use lobby_support::{http_get, js_dir, Lobby};
use std::path::Path;

#[test]
fn the_vendored_client_is_the_pinned_npm_build_and_is_served_with_its_licence() {
    let vendor = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lobby/page/vendor");
    let vendored = std::fs::read_to_string(vendor.join("socket.io.min.js")).unwrap();
    let npm = js_dir().join("node_modules/socket.io-client");
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(npm.join("package.json")).unwrap()).unwrap();
    let version = package["version"].as_str().unwrap();
    assert!(vendored.starts_with(&format!("/*!\n * Socket.IO v{version}\n")), "the vendored build is not {version}");
    let official = std::fs::read_to_string(npm.join("dist/socket.io.min.js")).unwrap();
    assert!(vendored == official, "crates/lobby/page/vendor/socket.io.min.js differs from npm's {version} build");
    let readme = std::fs::read_to_string(vendor.join("README.md")).unwrap();
    assert!(readme.contains(&format!("socket.io-client {version}")), "vendor/README.md names another version");

    let lobby = Lobby::start(&[]);
    let (head, body) = http_get(lobby.addr, "/vendor/socket.io.min.js");
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/javascript"), "{head}");
    assert!(body == official, "the lobby serves another client");
    let (head, licence) = http_get(lobby.addr, "/vendor/socket.io-client.LICENSE.txt");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(licence.contains("socket.io-client") && licence.contains("Permission is hereby granted"), "{licence}");
    let page = lobby.get("/");
    assert!(page.contains("<script src=\"vendor/socket.io.min.js\"></script>"), "the page does not load it");
    assert!(page.contains("vendor/socket.io-client.LICENSE.txt"), "the page does not link the licence");
}
