//! The server's recorder (`--recording DIR`): the audio tick copies each notified channel's input
//! into a preallocated buffer and hands it over a bounded queue to a writer thread, which writes
//! the WAV and project files. The tick never waits for the disk: when the queue is full (slow disk)
//! or a write fails (full disk), the recorder reports it and stops; the jam goes on, and the files
//! written so far are closed as valid WAVs.

mod naming;
mod project;
mod session;

pub use session::prepare_directory;

use session::Session;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tracing::{info, warn};
use tutti_jam::{RecordedFrame, RecordingTap};

/// Ticks the queue holds: about 1.4 s of 128-sample ticks.
pub const QUEUE_TICKS: usize = 512;
/// Buffers made when the recorder starts (more are made, up to `QUEUE_TICKS`, as the jam grows).
const PREALLOCATED: usize = 32;

/// One tick of recorded input: every frame's samples back to back.
#[derive(Default)]
struct TickBuffer {
    tick: u64,
    frames: Vec<FrameInfo>,
    used: usize,
    samples: Vec<i16>,
}

#[derive(Default)]
struct FrameInfo {
    slot: u8,
    address: Option<SocketAddr>,
    name: String,
    audio_channels: u8,
    start: usize,
    len: usize,
}

enum Job {
    Tick(Box<TickBuffer>),
    /// End the session (idle, stop, restart); the next tick starts a new one.
    EndSession,
    /// Record into this folder from the next session on.
    SetDirectory(PathBuf),
    /// Writing works again (after a failure the writer drops ticks until this).
    Resume,
}

/// What went wrong, shared between the writer and the server thread.
#[derive(Default)]
struct Shared {
    /// Set when the recorder had to stop; the server thread clears it after reacting.
    failed: AtomicBool,
    error: Mutex<String>,
    /// The session folder being written, if any.
    session: Mutex<Option<PathBuf>>,
}

/// The server thread's handle on the recorder.
pub struct Recorder {
    jobs: SyncSender<Job>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// The part that lives in the jam server and runs on the tick.
struct Tap {
    jobs: SyncSender<Job>,
    free: Receiver<Box<TickBuffer>>,
    made: usize,
    current: Option<Box<TickBuffer>>,
    shared: Arc<Shared>,
}

impl Recorder {
    /// Starts the writer thread for `dir`; returns the recorder and the tap to install in the server.
    pub fn start(dir: PathBuf) -> std::io::Result<(Recorder, Box<dyn RecordingTap>)> {
        let (jobs, queue) = sync_channel(QUEUE_TICKS + 8);
        let (recycle, free) = sync_channel(QUEUE_TICKS);
        for _ in 0..PREALLOCATED {
            let _ = recycle.try_send(Box::new(TickBuffer::with_capacity()));
        }
        let shared = Arc::new(Shared::default());
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("jam-recorder".into())
            .spawn(move || write_loop(dir, queue, recycle, &writer_shared))?;
        let tap = Tap { jobs: jobs.clone(), free, made: PREALLOCATED, current: None, shared: shared.clone() };
        Ok((Recorder { jobs, shared, writer: Some(writer) }, Box::new(tap)))
    }

    /// Ends the current session (its files are closed, project files written).
    pub fn end_session(&self) {
        self.control(Job::EndSession);
    }

    pub fn set_directory(&self, dir: PathBuf) {
        self.control(Job::SetDirectory(dir));
    }

    /// Clears a failure: recording may start again.
    pub fn resume(&self) {
        let mut error = self.shared.error.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.failed.store(false, Ordering::SeqCst);
        error.clear();
        drop(error);
        self.control(Job::Resume);
    }

    /// The failure that stopped the recorder since the last call, if one did.
    pub fn take_failure(&self) -> Option<String> {
        // The flag and its message change together, under the message's lock (see `fail`).
        let error = self.shared.error.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.failed.swap(false, Ordering::SeqCst).then(|| error.clone())
    }

    /// The session folder being written.
    pub fn session(&self) -> Option<PathBuf> {
        self.shared.session.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn control(&self, job: Job) {
        if let Err(TrySendError::Full(_)) = self.jobs.try_send(job) {
            fail(&self.shared, "the recording queue is full (the disk is too slow)".into());
        }
    }
}

impl Recorder {
    /// Ends the session and waits until the writer has closed every file. Take the tap out of the
    /// server and drop it first: the writer runs until every sender is gone.
    pub fn shutdown(mut self) {
        let _ = self.jobs.send(Job::EndSession);
        let writer = self.writer.take();
        drop(self);
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

/// Records the first failure. The message is stored under its lock together with the flag: set apart, the server
/// thread could take the flag before the message was there and report an empty error (it did, once, in the suite).
fn fail(shared: &Shared, message: String) {
    let mut error = shared.error.lock().unwrap_or_else(|e| e.into_inner());
    if !shared.failed.swap(true, Ordering::SeqCst) {
        warn!("recording stopped: {message}");
        *error = message;
    }
}

impl TickBuffer {
    fn with_capacity() -> Self {
        TickBuffer { tick: 0, frames: Vec::with_capacity(16), used: 0, samples: Vec::with_capacity(16 * 256) }
    }
}

impl RecordingTap for Tap {
    fn frame(&mut self, tick: u64, frame: RecordedFrame<'_>) {
        if self.current.is_none() {
            let buffer = match self.free.try_recv() {
                Ok(b) => Some(b),
                Err(_) if self.made < QUEUE_TICKS => {
                    self.made += 1;
                    Some(Box::new(TickBuffer::with_capacity()))
                }
                Err(_) => None,
            };
            let Some(mut buffer) = buffer else {
                fail(&self.shared, "the recording queue is full (the disk is too slow)".into());
                return;
            };
            buffer.tick = tick;
            buffer.used = 0;
            buffer.samples.clear();
            self.current = Some(buffer);
        }
        let Some(buffer) = self.current.as_mut() else { return };
        if buffer.frames.len() == buffer.used {
            buffer.frames.push(FrameInfo::default());
        }
        let info = &mut buffer.frames[buffer.used];
        buffer.used += 1;
        info.slot = frame.channel;
        info.address = Some(frame.address);
        info.name.clear();
        info.name.push_str(frame.name);
        info.audio_channels = frame.audio_channels;
        info.start = buffer.samples.len();
        info.len = frame.samples.len();
        buffer.samples.extend(frame.samples.iter().map(|&s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16));
    }

    fn end_tick(&mut self, _tick: u64) {
        if let Some(buffer) = self.current.take() {
            if let Err(TrySendError::Full(_)) = self.jobs.try_send(Job::Tick(buffer)) {
                fail(&self.shared, "the recording queue is full (the disk is too slow)".into());
            }
        }
    }

    fn idle(&mut self) {
        self.current = None;
        let _ = self.jobs.try_send(Job::EndSession);
    }
}

/// The writer thread: turns ticks into files until every sender is gone.
fn write_loop(mut dir: PathBuf, queue: Receiver<Job>, recycle: SyncSender<Box<TickBuffer>>, shared: &Shared) {
    let mut session: Option<Session> = None;
    let mut failed = false;
    let set_session = |s: Option<PathBuf>| *shared.session.lock().unwrap_or_else(|e| e.into_inner()) = s;
    while let Ok(job) = queue.recv() {
        match job {
            Job::Tick(buffer) => {
                if !failed {
                    if let Err(e) = write_tick(&dir, &mut session, &buffer) {
                        failed = true;
                        fail(shared, format!("cannot write the recording in {}: {e}", dir.display()));
                        if let Some(s) = session.take() {
                            s.abandon();
                        }
                        set_session(None);
                    } else if let Some(s) = &session {
                        if shared.session.lock().map(|p| p.is_none()).unwrap_or(false) {
                            set_session(Some(s.dir().to_path_buf()));
                        }
                    }
                }
                let _ = recycle.try_send(buffer);
            }
            Job::EndSession => {
                if let Some(s) = session.take() {
                    match s.finish() {
                        Ok(path) => info!(session = %path.display(), "recording session written"),
                        Err(e) => {
                            failed = true;
                            fail(shared, format!("cannot finish the recording in {}: {e}", dir.display()));
                        }
                    }
                }
                set_session(None);
            }
            Job::SetDirectory(new) => dir = new,
            Job::Resume => failed = false,
        }
    }
    if let Some(s) = session.take() {
        let _ = s.finish();
    }
    set_session(None);
}

fn write_tick(dir: &std::path::Path, session: &mut Option<Session>, buffer: &TickBuffer) -> std::io::Result<()> {
    if session.is_none() {
        *session = Some(Session::start(dir, buffer.tick)?);
    }
    let Some(s) = session.as_mut() else { return Ok(()) };
    for info in &buffer.frames[..buffer.used] {
        let Some(address) = info.address else { continue };
        let samples = &buffer.samples[info.start..info.start + info.len];
        s.write(buffer.tick, info.slot, address, &info.name, info.audio_channels, samples)?;
    }
    s.end_tick(buffer.tick)
}
