//! The jam server's tap into the listen-in stream: each new musician is sent the stream notice, their
//! decoded input joins the audience's mix only once the notice was acknowledged on the reliable link,
//! changed listener counts are announced at most once a minute, and one tick of the mix is handed to
//! the `StreamTap`. Nothing here encodes or blocks.

use super::Server;
use crate::stream::{add_to_stream, count_line, finish, notice_line, CountAnnouncer, StreamConfig, StreamTap};
use std::time::Instant;
use tutti_proto::Message;

/// How often (in ticks) the list of streamed musicians is compared with the one the tap has.
const ROSTER_EVERY_TICKS: u64 = 128;

/// The stream's state inside the server.
pub(crate) struct Listen {
    tap: Box<dyn StreamTap>,
    config: StreamConfig,
    announcer: CountAnnouncer,
    /// One tick of the stereo mix.
    mix: Vec<f32>,
    /// Channel and name of each musician the tap was last told about.
    roster: Vec<(u8, String)>,
}

impl Server {
    /// Starts (or stops, with `None`) the listen-in stream. Every connected musician is sent the
    /// notice now; none is heard in the stream before acknowledging it.
    pub fn set_stream(&mut self, now: Instant, stream: Option<(Box<dyn StreamTap>, StreamConfig)>) {
        for channel in self.channels.iter_mut().flatten() {
            channel.stream_notice = None;
            channel.streamed = false;
        }
        self.listen = stream.map(|(tap, config)| Listen {
            tap,
            config,
            announcer: CountAnnouncer::default(),
            mix: vec![0.0; 2 * self.tick_samples()],
            roster: Vec::new(),
        });
        for index in self.connected_indices() {
            self.send_stream_notice(now, index);
        }
    }

    /// Whether the musician on `channel` is heard in the stream now.
    pub fn is_streamed(&self, channel: u8) -> bool {
        self.channels.get(usize::from(channel)).and_then(Option::as_ref).is_some_and(|c| c.streamed)
    }

    /// Sends the stream notice to channel `index`, when a stream is on.
    pub(super) fn send_stream_notice(&mut self, now: Instant, index: usize) {
        let Some(listen) = self.listen.as_ref() else { return };
        let line = notice_line(listen.tap.listeners());
        self.send(now, index, &Message::ChatText(line));
        if let Some(channel) = self.channels[index].as_mut() {
            channel.stream_notice = Some(channel.link.last_queued());
        }
    }

    /// Tick step 1c: announces a changed count, admits musicians whose notice was acknowledged, mixes
    /// the admitted ones and hands the tick to the tap.
    pub(super) fn stream(&mut self, now: Instant, tick: usize) {
        let Some(listen) = self.listen.as_mut() else { return };
        if let Some(count) = listen.announcer.poll(now, listen.tap.listeners()) {
            let line = Message::ChatText(count_line(count));
            for index in self.connected_indices() {
                if self.channels[index].as_ref().is_some_and(|c| c.stream_notice.is_some()) {
                    self.send(now, index, &line);
                }
            }
        }
        let Some(listen) = self.listen.as_mut() else { return };
        for channel in self.channels.iter_mut().flatten() {
            if !channel.streamed {
                channel.streamed = channel.stream_notice.is_some_and(|at| channel.link.acknowledged_through(at));
            }
        }
        let engineer = listen.config.mix_of.as_deref().and_then(|name| {
            self.channels.iter().flatten().find(|c| c.profile.as_ref().is_some_and(|p| p.name == name))
        });
        let span = tick * 2;
        listen.mix.fill(0.0);
        for (slot, channel) in self.channels.iter().enumerate() {
            let n = usize::from(self.sources[slot].channels);
            if n == 0 || !channel.as_ref().is_some_and(|c| c.streamed) {
                continue;
            }
            let fade = self.sources[slot].fade;
            let faders = match engineer {
                Some(e) => (e.gains[slot] * fade, e.pans[slot]),
                None => (fade, crate::mix::CENTRE_PAN),
            };
            let source = &self.inputs[slot * span..slot * span + tick * n];
            add_to_stream(&mut listen.mix, source, n, Some(faders));
        }
        finish(&mut listen.mix);
        listen.tap.tick(&listen.mix);
        if self.tick_count.is_multiple_of(ROSTER_EVERY_TICKS) {
            self.update_roster();
        }
    }

    /// Tells the tap who is heard, when that changed.
    fn update_roster(&mut self) {
        let Some(listen) = self.listen.as_mut() else { return };
        let streamed = self.channels.iter().flatten().filter(|c| c.streamed);
        let same = streamed.clone().count() == listen.roster.len()
            && streamed.clone().zip(&listen.roster).all(|(c, (id, name))| c.id == *id && c.name() == name);
        if same {
            return;
        }
        listen.roster = streamed.map(|c| (c.id, c.name().to_string())).collect();
        let names: Vec<String> = listen.roster.iter().map(|(_, name)| name.clone()).collect();
        listen.tap.musicians(&names);
    }
}
