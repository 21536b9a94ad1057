//! The official Node `socket.io-client` (npm) holds a scripted conversation with `tutti lobby`:
//! find with interests, matched, signal, typing, messages both ways, an error ack, next, stop — once over
//! WebSocket only, once with the client's default (long-polling first, then the upgrade).

mod lobby_support;

use lobby_support::{node, Lobby};
use std::time::Duration;

#[test]
fn official_socket_io_client_converses() {
    let lobby = Lobby::start(&[]);
    for transport in ["websocket", "polling"] {
        let (ok, output) = node("conversation.mjs", &[&lobby.url(), transport], Duration::from_secs(30));
        assert!(
            ok && output.contains("conversation ok"),
            "the socket.io-client conversation ({transport}) failed:\n{output}"
        );
    }
    lobby.wait_stats(serde_json::json!({ "sockets": 0, "waiting": 0, "pairs": 0 }), Duration::from_secs(5));
}
