//! IO shells that drive the `tutti-jam` state machines over real UDP sockets, and the clocks they
//! read. Sockets and wall-clock time live here and nowhere else; protocol logic does not.
#![deny(unsafe_code)] // allowed in batch.rs and rx_stamp.rs only

mod batch;
pub mod client;
pub mod clock;
pub mod connection_log;
pub mod directory;
pub mod jsonrpc;
pub mod latency;
pub mod loadgen;
pub mod process;
pub mod recorder;
pub mod rx_stamp;
pub mod server;
pub mod server_control;
pub mod server_list;
pub mod server_metrics;
mod socket;
pub mod stream_slot;
pub mod tone;

pub use client::{AudioSink, AudioSource, Command, RunningClient};
pub use directory::{DirectoryOptions, RunningDirectory};
pub use loadgen::{run_load, ClientReport, LoadOptions, LoadReport};
pub use process::ProcessSample;
pub use server::{RunningServer, ServerOptions};
pub use server_list::{fetch_server_list, ListedServer};
pub use stream_slot::StreamSlot;
pub use tone::Tone;
