//! What the operator's side (JSON-RPC, signals, metrics) may ask of a running server, and what it
//! can read back. Requests travel over a channel to the server thread, which handles them between
//! ticks; answers come back over a one-shot channel. Nothing here holds a lock the tick needs.

use crate::recorder::{prepare_directory, Recorder};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::Instant;
use tracing::{info, warn};
use tutti_jam::{ClientSummary, Server};
use tutti_proto::message::RecorderState;

/// A request to the server thread.
#[derive(Debug)]
pub enum ServerCommand {
    StartRecording,
    StopRecording,
    /// SIGUSR2: start when stopped, stop when started.
    ToggleRecording,
    /// SIGUSR1 / `restartRecording`: end the session and start a new folder (while recording).
    RestartRecording,
    SetRecordingDirectory(PathBuf),
    SetWelcomeMessage(String),
    SetServerName(String),
    /// Answer with a [`ServerSnapshot`].
    Snapshot(Sender<ServerSnapshot>),
}

/// The recorder as JSON-RPC `getRecorderStatus` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecorderStatus {
    pub initialised: bool,
    pub enabled: bool,
    pub error_message: String,
    pub directory: String,
}

/// The server's state for the operator.
#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    pub clients: Vec<ClientSummary>,
    pub recorder: RecorderStatus,
    pub welcome_message: String,
    pub server_name: String,
    /// Jamulus `registrationStatus` names; `None` when not registering.
    pub registration: Option<&'static str>,
}

/// The recorder's on/off state, directory and writer, driven from the server thread.
pub struct RecordingControl {
    dir: Option<PathBuf>,
    enabled: bool,
    recorder: Option<Recorder>,
    error: String,
}

impl RecordingControl {
    /// No recording (no `--recording`).
    pub fn off() -> Self {
        RecordingControl { dir: None, enabled: false, recorder: None, error: String::new() }
    }

    /// `--recording DIR` (checked by the caller), enabled unless `--norecord`.
    pub fn new(server: &mut Server, now: Instant, dir: Option<PathBuf>, enabled: bool) -> Self {
        let mut control = RecordingControl { dir: None, enabled, recorder: None, error: String::new() };
        if let Some(dir) = dir {
            control.set_directory(server, now, dir);
        }
        control
    }

    pub fn status(&self) -> RecorderStatus {
        RecorderStatus {
            initialised: self.recorder.is_some(),
            enabled: self.recorder.is_some() && self.enabled,
            error_message: self.error.clone(),
            directory: self.dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
        }
    }

    pub fn state(&self) -> RecorderState {
        match (&self.recorder, self.enabled) {
            (None, _) => RecorderState::NotInitialised,
            (Some(_), false) => RecorderState::NotEnabled,
            (Some(_), true) => RecorderState::Recording,
        }
    }

    /// Handles a recording command; `false` if `command` is not about recording.
    pub fn handle(&mut self, server: &mut Server, now: Instant, command: &ServerCommand) -> bool {
        match command {
            ServerCommand::StartRecording => self.set_enabled(server, now, true),
            ServerCommand::StopRecording => self.set_enabled(server, now, false),
            ServerCommand::ToggleRecording => self.set_enabled(server, now, !self.enabled),
            ServerCommand::RestartRecording => {
                if let (Some(recorder), true) = (&self.recorder, self.enabled) {
                    recorder.end_session();
                    info!("new recording session");
                }
            }
            ServerCommand::SetRecordingDirectory(dir) => self.set_directory(server, now, dir.clone()),
            _ => return false,
        }
        true
    }

    /// Reacts to a writer failure (full or slow disk): stops recording and tells the clients.
    pub fn poll(&mut self, server: &mut Server, now: Instant) {
        if let Some(error) = self.recorder.as_ref().and_then(Recorder::take_failure) {
            self.error = error;
            self.enabled = false;
            server.set_recorder_state(now, self.state());
        }
    }

    fn set_enabled(&mut self, server: &mut Server, now: Instant, enabled: bool) {
        if enabled == self.enabled {
            return;
        }
        self.enabled = enabled;
        if let Some(recorder) = &self.recorder {
            if enabled {
                self.error.clear();
                recorder.resume();
            } else {
                recorder.end_session();
            }
        }
        info!(enabled, "recording");
        server.set_recorder_state(now, self.state());
    }

    fn set_directory(&mut self, server: &mut Server, now: Instant, dir: PathBuf) {
        self.dir = Some(dir.clone());
        match prepare_directory(&dir) {
            Ok(()) => {
                self.error.clear();
                match &self.recorder {
                    Some(recorder) => {
                        recorder.end_session();
                        recorder.set_directory(dir);
                        recorder.resume();
                    }
                    None => match Recorder::start(dir) {
                        Ok((recorder, tap)) => {
                            server.set_recording_tap(Some(tap));
                            self.recorder = Some(recorder);
                        }
                        Err(e) => self.error = format!("cannot start the recorder thread: {e}"),
                    },
                }
            }
            Err(message) => {
                warn!("recording directory unusable: {message}");
                self.error = message;
                self.dir = None;
                self.stop_recorder(server);
            }
        }
        // Jamulus does not tell clients when the directory changes; tutti does whenever that changes
        // whether they are recorded, so that nobody is recorded without the notice.
        server.set_recorder_state(now, self.state());
    }

    fn stop_recorder(&mut self, server: &mut Server) {
        drop(server.take_recording_tap());
        if let Some(recorder) = self.recorder.take() {
            recorder.shutdown();
        }
    }

    /// On quit: every file closed, project files written.
    pub fn shutdown(mut self, server: &mut Server) {
        self.stop_recorder(server);
    }
}
