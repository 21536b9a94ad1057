//! Jam state machines (server, client, directory), mixer and jitter buffer: no sockets, time injected.
//! The server state machine lands with the jam-server issue; this crate is the home it will live in.
#![forbid(unsafe_code)]
