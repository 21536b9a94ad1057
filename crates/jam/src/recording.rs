//! What the server hands to a recorder: each tick, the decoded input of every channel that has been
//! told it is being recorded. A channel's samples reach the recorder only after the RECORDER_STATE
//! "recording" message for it has left the server (was handed to the IO shell), so no musician is
//! recorded before the notice went out. The recorder itself (files, threads) lives in the IO shell.

use std::net::SocketAddr;

/// One channel's input for one tick, before any gain, pan or mix.
#[derive(Debug, Clone, Copy)]
pub struct RecordedFrame<'a> {
    /// The server's channel (slot) number.
    pub channel: u8,
    pub address: SocketAddr,
    /// The musician's name now (empty until the first CHANNEL_INFOS).
    pub name: &'a str,
    /// 1 (mono) or 2 (stereo, interleaved).
    pub audio_channels: u8,
    /// One tick of samples (64 or 128 per audio channel), interleaved, in −1…1.
    pub samples: &'a [f32],
}

/// Receives the recorded input. Called on the audio tick: implementations must not block or
/// allocate (copy into a preallocated buffer and hand it to another thread).
pub trait RecordingTap: Send {
    /// One channel's input of tick `tick` (ticks counted since the server started).
    fn frame(&mut self, tick: u64, frame: RecordedFrame<'_>);
    /// Every frame of tick `tick` has been given (called only for ticks that had frames).
    fn end_tick(&mut self, tick: u64);
    /// The last client left: the recording session ends.
    fn idle(&mut self);
}
