//! Tokio UDP shells that drive the `tutti-jam` state machines, and their metrics.
//! Sockets live here and nowhere else; protocol logic does not.
#![forbid(unsafe_code)]
