//! Real Jamulus 3.9.1 clients (Debian package, headless on `jackd -d dummy`) against `tutti server`:
//! they connect, see each other's profiles, get the welcome message and chat (escaped); a click fed
//! into a real client is in the personal mix that tutti's own client decodes, and follows that
//! listener's gain, pan and mute only; a full server answers CLM_SERVER_FULL.

mod support;
mod tutti_process;

use serde_json::{json, Value};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;
use support::{free_udp_port, require_jamulus, ClientOptions, JamulusClient};
use tutti_jam::ClientEvent;
use tutti_net::Command;
use tutti_process::{listening_client, Tutti};
use tutti_proto::{Datagram, Message};

const WAIT: Duration = Duration::from_secs(15);

fn start_server(extra: &[&str]) -> (Tutti, SocketAddr) {
    let port = free_udp_port();
    let port_text = port.to_string();
    let mut args = vec!["server", "--port", &port_text, "--serverbindip", "127.0.0.1"];
    args.extend_from_slice(extra);
    let server = Tutti::start(&args);
    assert!(server.wait_for_log("listening", Duration::from_secs(10)), "tutti did not start:\n{}", server.log());
    (server, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn real_client(server: SocketAddr, name: &str, city: &str, instrument: u32, metro: Option<u32>) -> JamulusClient {
    let mut options = ClientOptions::new(server);
    options.name = name.into();
    options.city = city.into();
    options.country = 82;
    options.instrument = instrument;
    options.skill = 3;
    options.metro_bpm = metro;
    JamulusClient::start(options)
}

fn names(list: &Value) -> Vec<String> {
    list["clients"]
        .as_array()
        .map_or(vec![], |c| c.iter().filter_map(|e| e["name"].as_str().map(String::from)).collect())
}

#[test]
fn real_clients_see_profiles_welcome_and_escaped_chat() {
    require_jamulus();
    let (mut server, address) = start_server(&["--welcomemessage", "Welcome to <b>tutti</b>", "--numchannels", "4"]);
    let alice = real_client(address, "Alice", "Berlin", 4, None);
    alice.rpc().wait_notification("jamulusclient/connected", WAIT, |_| true).expect("Alice connected");
    let welcome = alice
        .rpc()
        .wait_notification("jamulusclient/chatTextReceived", WAIT, |p| {
            p["chatText"].as_str().is_some_and(|t| t.contains("Welcome to <b>tutti</b>"))
        })
        .expect("welcome message");
    assert!(welcome["chatText"].as_str().unwrap().starts_with("<b>Server Welcome Message:</b>"));
    let own = alice
        .rpc()
        .wait_notification("jamulusclient/clientListReceived", WAIT, |p| names(p) == ["Alice"])
        .expect("Alice sees herself");
    let entry = &own["clients"][0];
    assert_eq!(
        (entry["city"].as_str(), entry["countryId"].as_u64(), entry["instrumentId"].as_u64()),
        (Some("Berlin"), Some(82), Some(4))
    );

    let bob = real_client(address, "Bob", "Hamburg", 5, None);
    bob.rpc().wait_notification("jamulusclient/connected", WAIT, |_| true).expect("Bob connected");
    alice
        .rpc()
        .wait_notification("jamulusclient/clientListReceived", WAIT, |p| names(p) == ["Alice", "Bob"])
        .expect("Alice sees Bob");
    bob.rpc()
        .wait_notification("jamulusclient/clientListReceived", WAIT, |p| names(p) == ["Alice", "Bob"])
        .expect("Bob sees Alice");

    let hostile = "<script>alert(1)</script> <a href=\"https://evil.invalid\">win</a> & more";
    let reply = alice.rpc().call("jamulusclient/sendChatText", json!({ "chatText": hostile }));
    assert_eq!(reply["result"], "ok", "{reply}");
    let seen = bob
        .rpc()
        .wait_notification("jamulusclient/chatTextReceived", WAIT, |p| {
            p["chatText"].as_str().is_some_and(|t| t.contains("alert(1)"))
        })
        .expect("Bob receives Alice's chat");
    let text = seen["chatText"].as_str().unwrap();
    assert!(text.contains("<b>Alice</b></font> &lt;script&gt;alert(1)&lt;/script&gt;"), "{text}");
    assert!(text.contains("&lt;a href=&quot;https://evil.invalid&quot;&gt;win&lt;/a&gt; &amp; more"), "{text}");
    assert!(!text.contains("<script") && !text.contains("<a "), "markup must arrive inert: {text}");

    bob.stop();
    alice
        .rpc()
        .wait_notification("jamulusclient/clientListReceived", WAIT, |p| names(p) == ["Alice"])
        .expect("Bob's departure is broadcast");
    alice.stop();
    assert_eq!(server.stop(), Some(0), "clean exit on SIGTERM:\n{}", server.log());
}

/// Peak of one channel over the last `seconds` of a recording.
fn peak(heard: &Mutex<Vec<f32>>, channels: usize, channel: usize, seconds: f32) -> f32 {
    let h = heard.lock().unwrap();
    let n = (seconds * 48_000.0) as usize * channels;
    h[h.len().saturating_sub(n)..].iter().skip(channel).step_by(channels).fold(0.0, |m, s| m.max(s.abs()))
}

#[test]
fn real_clients_click_follows_each_listeners_own_gain_pan_and_mute() {
    require_jamulus();
    let (mut server, address) = start_server(&[]);
    let metro = real_client(address, "Metro", "Loop", 1, Some(120));
    metro.rpc().wait_notification("jamulusclient/connected", WAIT, |_| true).expect("real client connected");
    let (b, b_heard) = listening_client(address, "Stereo", 2);
    let (c, c_heard) = listening_client(address, "Mono", 1);
    let mut metro_channel = None;
    while metro_channel.is_none() {
        match b.next_event(WAIT).expect("client list for the harness") {
            ClientEvent::ClientList(list) => {
                metro_channel = list.iter().find(|e| e.profile.name == "Metro").map(|e| e.channel);
            }
            _ => continue,
        }
    }
    let metro_channel = metro_channel.unwrap();
    // Each step waits (up to 15 s) until the last 1.5 s of the mixes show it: clicks every 0.5 s
    // after a 3 s fade-in; a gain or pan goes to the server and comes back in the mix.
    let peaks = || (peak(&b_heard, 2, 0, 1.5), peak(&b_heard, 2, 1, 1.5), peak(&c_heard, 1, 0, 1.5));
    let clicks = support::wait_until(WAIT, || {
        let (bl, br, c0) = peaks();
        bl > 0.1 && br > 0.1 && c0 > 0.1
    });
    assert!(clicks, "the real client's click reaches both mixes: {:?}", peaks());

    // B mutes the real client: gone from B's mix, still in C's.
    b.command(Command::Gain { channel: metro_channel, gain: 0.0 });
    let muted = support::wait_until(WAIT, || {
        let (bl, br, _) = peaks();
        bl < 0.01 && br < 0.01
    });
    let (bl, br, c1) = peaks();
    assert!(muted, "muted in B's mix: {bl} {br}");
    assert!(c1 > 0.1, "C unaffected: {c1}");

    // B brings it back at a quarter of the level, panned hard left.
    b.command(Command::Gain { channel: metro_channel, gain: 0.25 });
    b.command(Command::Pan { channel: metro_channel, pan: 0.0 });
    let quarter_left = support::wait_until(WAIT, || {
        let (bl, br, c2) = peaks();
        br < 0.01 && (0.15..0.4).contains(&(bl / c2))
    });
    let (bl, br, c2) = peaks();
    assert!(
        quarter_left,
        "left at a quarter of C's level, nothing on the right: {bl} / {c2} = {}, right {br}",
        bl / c2
    );

    b.stop().unwrap();
    c.stop().unwrap();
    metro.stop();
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn one_channel_server_answers_the_second_client_with_server_full() {
    require_jamulus();
    let (mut server, address) = start_server(&["--numchannels", "1"]);
    let first = real_client(address, "First", "Loop", 0, None);
    first.rpc().wait_notification("jamulusclient/connected", WAIT, |_| true).expect("first client connected");

    let second = UdpSocket::bind("127.0.0.1:0").unwrap();
    second.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut silence = vec![0x00, 0xff, 0xfe];
    silence.resize(23, 0); // an OPUS64 mono frame plus counter, as a real client's first packet
    let mut full = false;
    let mut buf = [0u8; 2048];
    for _ in 0..10 {
        second.send_to(&silence, address).unwrap();
        if let Ok((n, _)) = second.recv_from(&mut buf) {
            if let Datagram::Protocol(f) = Datagram::classify(&buf[..n]) {
                full |= Message::decode(f.id, f.data) == Ok(Message::ClmServerFull);
            }
        }
        if full {
            break;
        }
    }
    assert!(full, "the second client gets CLM_SERVER_FULL");
    let connected = support::wait_until(Duration::from_secs(5), || {
        first.rpc().call("jamulusclient/getClientInfo", json!({}))["result"]["connected"] == true
    });
    assert!(connected, "the first client stays connected");
    first.stop();
    assert_eq!(server.stop(), Some(0));
}
