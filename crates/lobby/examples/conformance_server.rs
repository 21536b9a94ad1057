//! The servers that the official Socket.IO conformance suites expect, on the lobby's engine (see
//! tests/conformance/server.rs), for running those suites by hand:
//!
//!   cargo run -p tutti-lobby --example conformance_server [PORT]      (default 3000, loopback)
//!
//! then `npm test` in a copy of socketio/engine.io-protocol's or socketio/socket.io-protocol's
//! `test-suite/` folder (both want `localhost:3000`).

#[path = "../tests/conformance/server.rs"]
mod server;

#[tokio::main]
async fn main() {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 3000,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("usage: conformance_server [PORT]");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap_or_else(|e| {
        eprintln!("conformance_server: cannot listen on 127.0.0.1:{port}: {e}");
        std::process::exit(1);
    });
    println!("conformance_server: listening on http://127.0.0.1:{port}/ (/engine.io/ and /socket.io/)");
    server::serve(listener).await;
}
