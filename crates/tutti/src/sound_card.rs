//! The sound card as the client's audio source and sink (`--input device`, `--output device`), through
//! cpal, behind the cargo feature `device` (off by default and in tests: it needs ALSA's development
//! files, `libasound2-dev`, to build). Samples cross between the sound card's callback threads and the
//! client's frame clock through short queues (at most 100 ms; older samples are dropped).

use tutti_net::{AudioSink, AudioSource};

/// Keeps a sound card stream running while it is alive.
pub type Running = Box<dyn std::any::Any>;

#[cfg(feature = "device")]
mod card {
    use super::Running;
    use anyhow::Context;
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use tutti_net::{AudioSink, AudioSource};

    /// 100 ms of samples per channel.
    const MAX_QUEUED_FRAMES: usize = 4_800;

    fn config(channels: usize) -> cpal::StreamConfig {
        cpal::StreamConfig {
            channels: channels as u16,
            sample_rate: cpal::SampleRate(48_000),
            buffer_size: cpal::BufferSize::Default,
        }
    }

    fn push(queue: &Mutex<VecDeque<f32>>, samples: &[f32], channels: usize) {
        if let Ok(mut q) = queue.lock() {
            q.extend(samples.iter().copied());
            let excess = q.len().saturating_sub(MAX_QUEUED_FRAMES * channels);
            q.drain(..excess);
        }
    }

    fn pop(queue: &Mutex<VecDeque<f32>>, out: &mut [f32]) {
        let mut q = queue.lock().ok();
        for s in out {
            *s = q.as_mut().and_then(|q| q.pop_front()).unwrap_or(0.0);
        }
    }

    pub fn input(channels: usize) -> anyhow::Result<(AudioSource, Running)> {
        let device = cpal::default_host().default_input_device().context("no sound card input (microphone) found")?;
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let writer = queue.clone();
        let stream = device
            .build_input_stream(
                &config(channels),
                move |data: &[f32], _: &cpal::InputCallbackInfo| push(&writer, data, channels),
                |e| eprintln!("tutti client: sound card input: {e}"),
                None,
            )
            .context("cannot open the sound card input as 48 kHz float")?;
        stream.play().context("cannot start the sound card input")?;
        Ok((Box::new(move |pcm: &mut [f32]| pop(&queue, pcm)), Box::new(stream)))
    }

    pub fn output(channels: usize) -> anyhow::Result<(AudioSink, Running)> {
        let device = cpal::default_host().default_output_device().context("no sound card output found")?;
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let reader = queue.clone();
        let stream = device
            .build_output_stream(
                &config(channels),
                move |data: &mut [f32], _: &cpal::OutputCallbackInfo| pop(&reader, data),
                |e| eprintln!("tutti client: sound card output: {e}"),
                None,
            )
            .context("cannot open the sound card output as 48 kHz float")?;
        stream.play().context("cannot start the sound card output")?;
        Ok((Box::new(move |pcm: &[f32]| push(&queue, pcm, channels)), Box::new(stream)))
    }
}

#[cfg(not(feature = "device"))]
mod card {
    use super::Running;
    use tutti_net::{AudioSink, AudioSource};

    const WITHOUT: &str = "this tutti was built without sound card support: rebuild with \
        `cargo build --release --features device` (needs the libasound2-dev package), or use a WAV file or a tone";

    pub fn input(_channels: usize) -> anyhow::Result<(AudioSource, Running)> {
        anyhow::bail!("--input device: {WITHOUT}")
    }

    pub fn output(_channels: usize) -> anyhow::Result<(AudioSink, Running)> {
        anyhow::bail!("--output device: {WITHOUT}")
    }
}

/// The default capture device as a source of `channels`-channel 48 kHz frames.
pub fn input(channels: usize) -> anyhow::Result<(AudioSource, Running)> {
    card::input(channels)
}

/// The default playback device as a sink for the received mix.
pub fn output(channels: usize) -> anyhow::Result<(AudioSink, Running)> {
    card::output(channels)
}
