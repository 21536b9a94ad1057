//! The listen-in stream as the jam server sees it: the tap that receives the audience's mix every
//! tick, the notice each musician must acknowledge before any of their audio reaches it, and the
//! once-a-minute rule for announcing a changed listener count. Encoding, Ogg, HTTP and Icecast live
//! in the `tutti-stream` crate; this module has no IO and reads no clock.

use crate::mix::{add_source, clip, CENTRE_PAN, UNITY_GAIN};
use std::time::{Duration, Instant};

/// The listener count is announced in the chat at most this often.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(60);

/// Receives the stream mix. Called on the audio tick: implementations must not block or allocate
/// per call (copy into a preallocated buffer and hand it to another thread).
pub trait StreamTap: Send {
    /// One tick of the audience's mix: `samples.len() / 2` frames, stereo interleaved, 48 kHz, in −1…1.
    fn tick(&mut self, samples: &[f32]);
    /// Listeners now (read every tick: make it an atomic load).
    fn listeners(&self) -> u32;
    /// The musicians heard in the stream changed: their names, in channel order (rare; may allocate).
    fn musicians(&mut self, names: &[String]);
}

/// What the audience hears.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamConfig {
    /// The personal mix of the connected musician with this name (`--stream-mix-of`); while nobody
    /// of that name is connected, and by default: every channel at unity gain and centre pan.
    pub mix_of: Option<String>,
}

/// The chat notice a musician must acknowledge before their audio is streamed.
pub fn notice_line(listeners: u32) -> String {
    format!(
        "<b>Server:</b> this session is streamed to an audience ({}). Everything you play from now on is heard \
         by the listeners; they are anonymous, the count is all the server knows of them.",
        listener_count(listeners)
    )
}

/// The chat line that announces a changed listener count.
pub fn count_line(listeners: u32) -> String {
    format!("<b>Server:</b> the stream now has {}.", listener_count(listeners))
}

fn listener_count(n: u32) -> String {
    match n {
        1 => "1 listener".to_string(),
        n => format!("{n} listeners"),
    }
}

/// Decides when a changed listener count is announced: at once if nothing was announced for a
/// minute, else when that minute is over (a count that went back meanwhile is not announced).
#[derive(Debug, Default)]
pub struct CountAnnouncer {
    announced: u32,
    last: Option<Instant>,
}

impl CountAnnouncer {
    /// The count to announce now, if any.
    pub fn poll(&mut self, now: Instant, listeners: u32) -> Option<u32> {
        if listeners == self.announced {
            return None;
        }
        if self.last.is_some_and(|last| now.duration_since(last) < ANNOUNCE_INTERVAL) {
            return None;
        }
        self.announced = listeners;
        self.last = Some(now);
        Some(listeners)
    }

    /// The count the musicians were last told in an announcement.
    pub fn announced(&self) -> u32 {
        self.announced
    }
}

/// Mixes one source into the stereo stream mix with a listener's fader (`gain`, `pan`), or with the
/// defaults (unity, centre) when `faders` is `None`.
pub(crate) fn add_to_stream(mix: &mut [f32], source: &[f32], source_channels: usize, faders: Option<(f32, f32)>) {
    let (gain, pan) = faders.unwrap_or((UNITY_GAIN, CENTRE_PAN));
    add_source(mix, 2, source, source_channels, gain, pan);
}

/// Finishes a tick of the stream mix (hard clip, as every personal mix).
pub(crate) fn finish(mix: &mut [f32]) {
    clip(mix);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_count_is_announced_at_most_once_a_minute() {
        let t0 = Instant::now();
        let mut a = CountAnnouncer::default();
        assert_eq!(a.poll(t0, 0), None, "nothing changed");
        assert_eq!(a.poll(t0, 3), Some(3), "first change: at once");
        assert_eq!(a.poll(t0 + Duration::from_secs(10), 7), None);
        assert_eq!(a.poll(t0 + Duration::from_secs(59), 8), None);
        assert_eq!(a.poll(t0 + Duration::from_secs(60), 8), Some(8), "the minute is over");
        assert_eq!(a.poll(t0 + Duration::from_secs(100), 9), None);
        assert_eq!(a.poll(t0 + Duration::from_secs(110), 8), None, "back to what was announced");
        assert_eq!(a.poll(t0 + Duration::from_secs(200), 8), None);
        assert_eq!(a.announced(), 8);
    }

    #[test]
    fn lines_name_the_count() {
        assert!(notice_line(1).contains("(1 listener)"));
        assert!(notice_line(0).contains("(0 listeners)"));
        assert!(count_line(12).ends_with("12 listeners."));
    }

    #[test]
    fn default_faders_are_unity_and_centre() {
        let mut mix = [0.0f32; 4];
        add_to_stream(&mut mix, &[0.5, -0.25], 1, None);
        assert_eq!(mix, [0.5, 0.5, -0.25, -0.25]);
        add_to_stream(&mut mix, &[0.5, 0.5, 0.5, 0.5], 2, Some((0.5, 0.0)));
        assert_eq!(mix, [0.75, 0.5, 0.0, -0.25]);
    }
}
