//! Test support: real Jamulus 3.9.1 peers (Debian package `jamulus`, `/usr/bin/Jamulus`) for
//! interoperability tests, headless on 127.0.0.1.
//!
//! * [`JamulusServer`]: `Jamulus --nogui --server` bound to 127.0.0.1, optional JSON-RPC.
//! * [`JamulusClient`]: a headless client on its own `jackd -d dummy` (from `jackd2`), driven and
//!   observed over JSON-RPC, optionally fed a `jack_metro` click.
//! * [`JsonRpc`]: newline-delimited JSON-RPC 2.0 with a notification queue; `wait_notification`
//!   reads each method's notifications as a stream (a returned one is not returned again).
//!
//! A client's incoming UDP is held by a tiny LD_PRELOAD library (built once with `cc`, see
//! `gate.rs`) until the harness has authenticated on its JSON-RPC port, so that the notifications
//! of the connection itself (`connected`, first client list, welcome chat) are never missed.
//! Note that `jamulusclient/getClientInfo` reports `connected: true` only once server audio flows,
//! up to ~0.5 s after the `jamulusclient/connected` notification (also without the gate).
//!
//! Every process is started by this module, signalled only by its PID (after checking
//! `/proc/PID/cmdline`), and stopped (SIGTERM, 5 s, SIGKILL) when its owner is dropped, also when a
//! test panics; they are also signalled (PR_SET_PDEATHSIG) if the test binary dies without unwinding.
#![allow(dead_code)]

mod client;
pub mod flood;
mod gate;
pub mod impair;
mod jsonrpc;
mod process;
mod server;

// Not every test uses every item.
#[allow(unused_imports)]
pub use client::{ClientOptions, JamulusClient};
#[allow(unused_imports)]
pub use jsonrpc::{shape, JsonRpc};
#[allow(unused_imports)]
pub use process::base64;
#[allow(unused_imports)]
pub use process::StateDir;
#[allow(unused_imports)]
pub use server::{JamulusServer, ServerOptions};

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

pub const JAMULUS: &str = "/usr/bin/Jamulus";
pub const JACKD: &str = "/usr/bin/jackd";
pub const JACK_WAIT: &str = "/usr/bin/jack_wait";
pub const JACK_METRO: &str = "/usr/bin/jack_metro";
pub const JACK_CONNECT: &str = "/usr/bin/jack_connect";

/// Panics unless the real Jamulus and the JACK tools are installed. Interop tests must not
/// silently pass without their peer.
pub fn require_jamulus() {
    let missing: Vec<&str> =
        [JAMULUS, JACKD, JACK_WAIT, JACK_METRO, JACK_CONNECT].into_iter().filter(|p| !Path::new(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "real Jamulus 3.9.1 is needed: run ./scripts/test.sh, which installs jamulus and jackd2 (missing: {})",
        missing.join(", ")
    );
}

/// A UDP port that was free on 127.0.0.1 a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("bind a UDP socket on 127.0.0.1").port()
}

/// A TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("bind a TCP socket on 127.0.0.1").port()
}

/// Polls `f` every 50 ms until it returns true (→ true) or `timeout` has passed (→ false).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
