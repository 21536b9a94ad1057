//! The optional connection log (`--log FILE`), off unless the operator asks for it: one line per new
//! connection and one when the server goes idle, in the format Jamulus appends. It holds client IP
//! addresses, which is why nothing is written without the flag.

use crate::clock::local_timestamp;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;

pub struct ConnectionLog {
    file: File,
}

impl ConnectionLog {
    /// Opens `path` for appending (created with mode 0600 if missing).
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(ConnectionLog { file: options.open(path)? })
    }

    /// `YYYY-MM-DD HH:MM:SS, <ip>, connected (<n>)`: address without port, `n` clients now.
    pub fn connected(&mut self, address: SocketAddr, clients: usize) -> io::Result<()> {
        writeln!(self.file, "{}, {}, connected ({clients})", local_timestamp(), address.ip())
    }

    /// The line Jamulus writes when the last client has left.
    pub fn idle(&mut self) -> io::Result<()> {
        writeln!(self.file, "{},, server idling -------------------------------------", local_timestamp())
    }
}
