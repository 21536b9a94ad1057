//! The UDP shell of the directory: one thread that owns the socket, feeds every datagram to the
//! [`Directory`] state machine, runs its timers, sends what it produced, and writes the persistence
//! file atomically (temporary file, fsync, rename, fsync of the folder) whenever the list changed,
//! at most every 2 s, and on stop. A kill at any moment leaves either the old or the new file.

use crate::socket::bind_udp;
use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use tutti_jam::directory::{Directory, DirectoryConfig, DirectoryEvent, DirectoryStats};
use tutti_proto::frame::MAX_DATAGRAM;

/// Longest the thread blocks on the socket before it looks at its timers and stop flag.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Everything needed to run a directory on a socket.
#[derive(Debug, Clone)]
pub struct DirectoryOptions {
    pub bind: SocketAddr,
    pub config: DirectoryConfig,
    /// Persistence file (`--directoryfile`): loaded at start if it exists, kept up to date.
    pub file: Option<PathBuf>,
}

/// A directory running on its own thread.
pub struct RunningDirectory {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<DirectoryStats>>,
}

impl RunningDirectory {
    /// Binds the socket, loads the persistence file (errors surface here, with what to do) and starts.
    pub fn start(mut options: DirectoryOptions) -> io::Result<Self> {
        let socket = bind_udp(options.bind, 0)?;
        let local_addr = socket.local_addr()?;
        if options.config.secret == 0 {
            options.config.secret = cookie_secret();
        }
        let now = Instant::now();
        let mut directory = Directory::new(options.config, now);
        if let Some(path) = &options.file {
            match fs::read_to_string(path) {
                Ok(text) => {
                    let (loaded, skipped) = directory.load(now, &text);
                    info!(loaded, skipped, "directory file loaded");
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "cannot read the directory file {}: {e} (fix its permissions or remove it)",
                            path.display()
                        ),
                    ))
                }
            }
            // Fail now, not at the first save, if the file cannot be written.
            write_atomically(path, &directory.snapshot()).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot write the directory file {}: {e}", path.display()))
            })?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let file = options.file.clone();
        let thread = std::thread::Builder::new()
            .name(format!("directory-{}", local_addr.port()))
            .spawn(move || serve(socket, directory, flag, file))?;
        info!(%local_addr, "directory listening");
        Ok(RunningDirectory { local_addr, stop, thread })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The flag that stops the directory when set (for signal handlers).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Stops the directory (writing its file) and returns its counters.
    pub fn stop(self) -> io::Result<DirectoryStats> {
        self.stop.store(true, Ordering::Relaxed);
        self.wait()
    }

    /// Waits until the directory stops.
    pub fn wait(self) -> io::Result<DirectoryStats> {
        self.thread.join().map_err(|_| io::Error::other("the directory thread panicked"))?
    }
}

fn serve(
    socket: UdpSocket,
    mut directory: Directory,
    stop: Arc<AtomicBool>,
    file: Option<PathBuf>,
) -> io::Result<DirectoryStats> {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut wait = IDLE_WAIT;
    socket.set_read_timeout(Some(wait))?;
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => directory.handle_datagram(Instant::now(), from, &buf[..n]),
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted
                | io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset => {}
                _ => return Err(e),
            },
        }
        let now = Instant::now();
        let deadline = directory.poll_timeout();
        if deadline <= now {
            directory.handle_timeout(now);
        }
        let next = directory.poll_timeout().saturating_duration_since(now).clamp(Duration::from_millis(1), IDLE_WAIT);
        if next != wait {
            wait = next;
            socket.set_read_timeout(Some(wait))?;
        }
        while let Some((to, bytes)) = directory.poll_transmit() {
            // A full send buffer or an unreachable peer loses this datagram only.
            let _ = socket.send_to(bytes, to);
        }
        report(&mut directory);
        if let (Some(path), Some(text)) = (&file, directory.take_snapshot(now)) {
            if let Err(e) = write_atomically(path, &text) {
                warn!("cannot write the directory file {}: {e}", path.display());
            }
        }
    }
    if let Some(path) = &file {
        write_atomically(path, &directory.snapshot())?;
    }
    info!("directory stopped");
    Ok(directory.stats().clone())
}

fn report(directory: &mut Directory) {
    while let Some(event) = directory.poll_event() {
        match event {
            DirectoryEvent::Listed { servers } => info!(servers, "server listed"),
            DirectoryEvent::Unlisted { servers } => info!(servers, "server unregistered"),
            DirectoryEvent::Expired { removed, servers } => info!(removed, servers, "servers expired"),
            DirectoryEvent::Refused(result) => info!(?result, "registration refused"),
        }
    }
}

/// Replaces `path` with `text` so that a crash at any moment leaves the old or the new content:
/// write a temporary file next to it, fsync it, rename it over `path`, fsync the folder.
pub fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::other("the file name is missing"))?;
    let temporary = folder.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = File::create(&temporary)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&temporary, path)?;
        File::open(&folder)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// A random key for the directory's address cookies (never 0, which means "pick one").
pub fn cookie_secret() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("tutti-dirfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("servers.txt");
        write_atomically(&path, "one\n").unwrap();
        write_atomically(&path, "two\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(write_atomically(&dir.join("missing/x"), "x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
