//! `tutti client --jsonrpcport` side by side with a real headless Jamulus 3.9.1 client (the same
//! profile), both joining one real Jamulus server: every `jamulusclient/*` method gets the same
//! answer (shape, and value where both must agree) before and while connected, and the
//! notifications (`connected`, `clientListReceived`, `chatTextReceived`, `channelLevelListReceived`,
//! `disconnected`) arrive with the same shapes and contents. Both clients start before the server, so
//! that the JSON-RPC controllers are authenticated before anything happens.

mod support;
mod tutti_process;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::{
    free_tcp_port, free_udp_port, require_jamulus, shape, wait_until, ClientOptions, JamulusClient, JamulusServer,
    JsonRpc, ServerOptions, StateDir,
};
use tutti_process::Tutti;

const SECRET: &str = "tutti-client-secret-0123456789";
const WAIT: Duration = Duration::from_secs(10);

/// Calls `method` on both and asserts the same reply: the whole reply's shape, and `result` and
/// `error` themselves when `same_value`. Returns tutti's reply.
fn compare(ours: &JsonRpc, theirs: &JsonRpc, method: &str, params: Value, same_value: bool) -> Value {
    let (mine, real) = (ours.call(method, params.clone()), theirs.call(method, params.clone()));
    assert_eq!(shape(&mine), shape(&real), "{method} {params}: tutti {mine} vs Jamulus {real}");
    if same_value || real.get("error").is_some() {
        assert_eq!((&mine["result"], &mine["error"]), (&real["result"], &real["error"]), "{method} {params}");
    }
    mine
}

fn names(list: &Value) -> Vec<&str> {
    list["clients"].as_array().map_or(vec![], |c| c.iter().filter_map(|e| e["name"].as_str()).collect())
}

#[test]
fn tutti_client_json_rpc_answers_like_the_real_jamulus_client() {
    require_jamulus();
    let state = StateDir::new("tutti-client-rpc");
    let secret = state.file("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let port = free_udp_port();
    let server_address = SocketAddr::from(([127, 0, 0, 1], port));
    let (address, tcp) = (server_address.to_string(), free_tcp_port().to_string());
    // The real client's default profile (support::ClientOptions::new): RealClient, Loopback, 82 = DE.
    let mut tutti = Tutti::start(&[
        "client",
        "-c",
        &address,
        "--name",
        "RealClient",
        "--city",
        "Loopback",
        "--country",
        "DE",
        "--skill",
        "intermediate",
        "--jsonrpcport",
        &tcp,
        "--jsonrpcsecretfile",
        secret.to_str().unwrap(),
    ]);
    let real = JamulusClient::start(ClientOptions::new(server_address));
    let theirs = real.rpc();
    let ours = JsonRpc::connect(tcp.parse().unwrap(), SECRET);

    // Nothing before authentication.
    let mut raw = TcpStream::connect(("127.0.0.1", tcp.parse::<u16>().unwrap())).unwrap();
    raw.write_all(b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"jamulusclient/getClientList\",\"params\":{}}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(&raw).read_line(&mut line).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&line).unwrap()["error"]["code"], 401, "{line}");

    // Not connected yet: the server is not running.
    for (method, params) in [
        ("jamulus/getMode", json!({})),
        ("jamulus/getVersion", json!({})),
        ("jamulusclient/getClientInfo", json!({})),
        ("jamulusclient/getChannelInfo", json!({})),
        ("jamulusclient/getClientList", json!({})),
        ("jamulusclient/sendChatText", json!({ "chatText": "too early" })),
    ] {
        compare(&ours, theirs, method, params, true);
    }

    let mut options = ServerOptions::new(port);
    options.extra_args = vec!["--discononquit".into()];
    let server = JamulusServer::start(options);
    let connected = ours.wait_notification("jamulusclient/connected", WAIT, |_| true).expect("tutti: connected");
    let their_connected = theirs.wait_notification("jamulusclient/connected", WAIT, |_| true).expect("real: connected");
    assert_eq!(shape(&connected), shape(&their_connected), "{connected} vs {their_connected}");
    for rpc in [&ours, theirs] {
        let flowing = || rpc.call("jamulusclient/getClientInfo", json!({}))["result"]["connected"] == true;
        assert!(wait_until(WAIT, flowing), "connected once server audio flows");
    }
    let both = |p: &Value| names(p) == ["RealClient", "RealClient"];
    let list = ours.wait_notification("jamulusclient/clientListReceived", WAIT, both).expect("tutti: both listed");
    let their_list = theirs.wait_notification("jamulusclient/clientListReceived", WAIT, both).expect("real: both");
    assert_eq!(list, their_list, "the same server's list, as both report it");
    assert_eq!(list["clients"][0]["countryId"], 82, "{list}");

    // Methods while connected, in the same order on both.
    let calls = [
        ("jamulus/getMode", json!({}), true),
        ("jamulusclient/getClientInfo", json!({}), true),
        ("jamulusclient/getChannelInfo", json!({}), true),
        ("jamulusclient/getClientList", json!({}), true),
        ("jamulusclient/setName", json!({ "name": "ÄÖÜ a very long name indeed" }), true),
        ("jamulusclient/setName", json!({}), true),
        ("jamulusclient/setName", json!({ "name": 5 }), true),
        ("jamulusclient/getChannelInfo", json!({}), true),
        ("jamulusclient/setSkillLevel", json!({ "skillLevel": "expert" }), true),
        ("jamulusclient/setSkillLevel", json!({ "skillLevel": "bogus" }), true),
        ("jamulusclient/setSkillLevel", json!({}), true),
        ("jamulusclient/setSkillLevel", json!({ "skillLevel": 3 }), true),
        ("jamulusclient/getChannelInfo", json!({}), true),
        ("jamulusclient/setSkillLevel", json!({ "skillLevel": null }), true),
        ("jamulusclient/getChannelInfo", json!({}), true),
        ("jamulusclient/sendChatText", json!({}), true),
        ("jamulusserver/getClients", json!({}), true),
        ("no/suchMethod", json!({}), true),
    ];
    for (method, params, same) in calls {
        compare(&ours, theirs, method, params, same);
    }
    let null_skill = ours.call("jamulusclient/setSkillLevel", json!({ "skillLevel": null }));
    assert!(null_skill.get("result").is_none() && null_skill.get("error").is_none(), "{null_skill}");

    // The server applied both profile changes; both clients see the same list again.
    let renamed = |p: &Value| {
        names(p) == ["ÄÖÜ a very long ", "ÄÖÜ a very long "]
            && p["clients"].as_array().unwrap().iter().all(|c| c["skillLevel"].is_null())
    };
    let list = ours.wait_notification("jamulusclient/clientListReceived", WAIT, renamed).expect("tutti: renamed");
    let their_list =
        theirs.wait_notification("jamulusclient/clientListReceived", WAIT, renamed).expect("real: renamed");
    assert_eq!(list, their_list);

    // Chat both ways through the server.
    assert_eq!(ours.call("jamulusclient/sendChatText", json!({ "chatText": "hi from tutti" }))["result"], "ok");
    assert_eq!(theirs.call("jamulusclient/sendChatText", json!({ "chatText": "hi from Jamulus" }))["result"], "ok");
    let has = |text: &'static str| move |p: &Value| p["chatText"].as_str().is_some_and(|t| t.ends_with(text));
    let chat = ours.wait_notification("jamulusclient/chatTextReceived", WAIT, has("hi from Jamulus")).expect("chat in");
    let their_chat =
        theirs.wait_notification("jamulusclient/chatTextReceived", WAIT, has("hi from tutti")).expect("chat out");
    assert_eq!(shape(&chat), shape(&their_chat));
    assert!(their_chat["chatText"].as_str().unwrap().contains("<b>ÄÖÜ a very long </b>"), "{their_chat}");

    // Level meters (3.9.1 servers send them unasked; tutti asks as the 3.9.1 client does, for older ones).
    let two = |p: &Value| p["channelLevelList"].as_array().is_some_and(|l| l.len() == 2);
    let levels = ours.wait_notification("jamulusclient/channelLevelListReceived", WAIT, two).expect("tutti: levels");
    let their_levels = theirs.wait_notification("jamulusclient/channelLevelListReceived", WAIT, two).expect("levels");
    assert_eq!(shape(&levels), shape(&their_levels), "{levels} vs {their_levels}");

    // The server quits saying goodbye (--discononquit): both are told.
    server.stop();
    let gone = ours.wait_notification("jamulusclient/disconnected", WAIT, |_| true).expect("tutti: disconnected");
    let their_gone =
        theirs.wait_notification("jamulusclient/disconnected", WAIT, |_| true).expect("real: disconnected");
    assert_eq!(gone, their_gone);
    // tutti stays up for its controller and says it is not connected (Jamulus 3.9.1 still says true).
    assert_eq!(ours.call("jamulusclient/getClientInfo", json!({}))["result"], json!({ "connected": false }));
    let error = ours.call("jamulusclient/sendChatText", json!({ "chatText": "anyone?" }))["error"].clone();
    assert_eq!(error, json!({ "code": 1, "message": "Client is not connected" }));
    assert_eq!(tutti.wait_exit(Duration::from_millis(300)), None, "still running:\n{}", tutti.log());
    assert_eq!(tutti.stop(), Some(0), "clean exit on SIGTERM:\n{}", tutti.log());
}
