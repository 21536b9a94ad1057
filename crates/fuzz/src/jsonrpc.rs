//! The JSON-RPC line handler (tutti-net) as `tutti server` and `tutti client` run it: lines of one connection,
//! authentication carried from line to line, the server's or the client's methods (the first byte chooses).
//! The server's methods talk to a server thread that has stopped, so every call that needs it is refused quietly.

use serde_json::Value;
use std::sync::mpsc::channel;
use tutti_net::jsonrpc::{handle_line, Api, ClientApi, Notifier, ServerApi};
use tutti_proto::message::Profile;

const SECRET: &str = "fuzz-secret-0123456789";

pub fn lines(input: &[u8]) {
    let (client_commands, _keep) = channel();
    let (server_commands, stopped) = channel();
    drop(stopped);
    let api: Box<dyn Api> = if input.first().is_some_and(|b| b & 1 == 1) {
        Box::new(ClientApi::new(Profile::default(), client_commands, Notifier::default()))
    } else {
        Box::new(ServerApi { commands: server_commands, city: String::new(), country: 0, directory: String::new() })
    };
    let mut authenticated = false;
    for line in input.get(1..).unwrap_or(&[]).split(|&b| b == b'\n') {
        let was = authenticated;
        let (reply, open) = handle_line(line, SECRET, &mut authenticated, api.as_ref());
        if let Some(reply) = &reply {
            assert!(reply.is_object() || reply.is_array(), "a reply that is neither an object nor a batch");
            if let Value::Object(map) = reply {
                assert_eq!(map.get("jsonrpc").and_then(Value::as_str), Some("2.0"), "a reply without jsonrpc 2.0");
            }
        }
        assert!(was <= authenticated, "authentication was lost without a new connection");
        if !open {
            return;
        }
    }
}
