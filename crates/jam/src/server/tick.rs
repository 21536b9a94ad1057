//! The jam server's clock-driven side: protocol resends, the audio tick (decode every client once,
//! record, place listeners on shared mixes, then `sending.rs`) and freeing departed channels.

use super::sending::{HandOver, PARALLEL_DECODES_FROM};
use super::{Event, Server, CHANNEL_TIMEOUT};
use crate::channel::{Channel, Source, MAX_CHANNELS};
use crate::level;
use crate::personal_mix::{fill_key, key_hash, MixFormat, SharedMix};
use crate::recording::RecordedFrame;
use rayon::prelude::*;
use std::time::Instant;
use tutti_proto::message::RecorderState;
use tutti_proto::Message;

impl Server {
    /// Runs whatever is due at `now`: the audio ticks, protocol resends, timeouts. Everything to send
    /// waits in the outbox (see also `handle_timeout_handing_over`).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_timeout(now, None);
    }

    pub(super) fn run_timeout(&mut self, now: Instant, mut hand_over: Option<&mut HandOver<'_>>) {
        self.handle_directory_timers(now);
        for index in 0..self.channels.len() {
            if let Some(channel) = self.channels[index].as_mut() {
                channel.link.handle_timeout(now);
                self.flush_link(index);
            }
        }
        let period = self.tick_period();
        while let Some(due) = self.next_tick.filter(|&t| t <= now) {
            if now.duration_since(due) > 50 * period {
                // Far behind (the process was stalled): skip the backlog rather than burst.
                self.stats.late_ticks += 1;
                self.phase.restart();
                self.next_tick = Some(now + period);
            } else {
                self.next_tick = Some(self.phase.next_tick(due, now, period));
            }
            self.tick(now, hand_over.as_deref_mut());
        }
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let resend = self.channels.iter().flatten().filter_map(|c| c.link.poll_timeout()).min();
        match (self.next_tick, resend) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tick(&mut self, now: Instant, hand_over: Option<&mut HandOver<'_>>) {
        self.stats.ticks += 1;
        self.tick_count += 1;
        self.free_departed(now);
        if self.by_address.is_empty() {
            self.next_tick = None;
            self.phase.restart();
            return;
        }
        let tick = self.tick_samples();
        let level_tick = self.tick_count.is_multiple_of(level::update_interval_ticks(tick));
        if level_tick {
            self.levels.clear();
        }
        self.decode(tick, level_tick);
        self.record(tick);
        self.stream(now, tick);
        self.place_listeners(tick);
        self.render_and_send(tick, hand_over);
        self.send_due_lists(now);
        // 3. Jitter buffer reports and level meters.
        for index in self.connected_indices() {
            let Some(channel) = self.channels[index].as_mut() else { continue };
            let size = channel.jitter.size();
            if channel.jitter.is_auto() && size != channel.jitter_reported {
                channel.jitter_reported = size;
                self.send(now, index, &Message::JitterBufferSize(size));
            }
        }
        if level_tick {
            let list = Message::ClmChannelLevelList(self.levels.clone()).to_datagram(0);
            for index in self.connected_indices() {
                if let Some(address) = self.channels[index].as_ref().map(|c| c.address) {
                    self.push(address, &list);
                }
            }
        }
    }

    /// Tick step 1: decodes every client's input once (in parallel with `--multithreading`).
    fn decode(&mut self, tick: usize, level_tick: bool) {
        let span = tick * 2;
        let decode = |(slot, (out, source)): (&mut Option<Channel>, (&mut [f32], &mut Source))| {
            *source = slot.as_mut().map_or(Source::default(), |c| c.decode_tick(tick, out, level_tick));
        };
        let (channels, inputs, sources) = (&mut self.channels, &mut self.inputs, &mut self.sources);
        match &self.pool {
            Some(pool) if self.by_address.len() >= PARALLEL_DECODES_FROM => {
                self.stats.parallel_passes += 1;
                pool.install(|| {
                    channels
                        .par_iter_mut()
                        .zip(inputs.par_chunks_mut(span).zip(sources.par_iter_mut()))
                        .for_each(decode)
                })
            }
            _ => channels.iter_mut().zip(inputs.chunks_mut(span).zip(sources.iter_mut())).for_each(decode),
        }
        self.active.clear();
        for (slot, source) in self.sources[..self.channels.len()].iter().enumerate() {
            self.source_channels[slot] = source.channels;
            self.fades[slot] = source.fade;
            if source.channels > 0 {
                self.active.push(slot);
            }
            if let (true, Some(level)) = (self.channels[slot].is_some(), source.level) {
                self.levels.push(level);
            }
        }
    }

    /// Tick step 1b: hands the decoded input of every channel that was told it is being recorded to
    /// the recording tap.
    fn record(&mut self, tick: usize) {
        if self.config.recorder_state != RecorderState::Recording {
            return;
        }
        let Some(tap) = self.tap.as_mut() else { return };
        let span = tick * 2;
        let mut any = false;
        for (slot, channel) in self.channels.iter().enumerate() {
            let Some(c) = channel.as_ref().filter(|c| c.notice_sent == Some(RecorderState::Recording)) else {
                continue;
            };
            let n = usize::from(self.sources[slot].channels);
            if n == 0 {
                continue;
            }
            let samples = &self.inputs[slot * span..slot * span + tick * n];
            let frame =
                RecordedFrame { channel: c.id, address: c.address, name: c.name(), audio_channels: n as u8, samples };
            tap.frame(self.tick_count, frame);
            any = true;
        }
        if any {
            tap.end_tick(self.tick_count);
        }
    }

    /// Tick step 2: finds each identified listener's shared mix: the one it heard last tick while its
    /// settings hold, else one whose settings equal its own, else a free or new one.
    fn place_listeners(&mut self, tick: usize) {
        self.listeners.clear();
        for (index, slot) in self.channels.iter().enumerate() {
            if slot.as_ref().is_some_and(|c| c.profile.is_some() && c.stream.is_some()) {
                self.listeners.push(index);
            }
        }
        let k = self.active.len();
        for (li, &index) in self.listeners.iter().enumerate() {
            let Some(c) = self.channels[index].as_ref() else { continue };
            let Some(format) = c.stream.as_ref().map(|s| MixFormat::of(&s.format)) else { continue };
            let key = &mut self.keys[li * k..(li + 1) * k];
            fill_key(key, &self.active, &c.gains[..], &c.pans[..], &self.fades, index, format.channels == 2);
            self.hashes[li] = key_hash(format, key);
            self.placed[li] = false;
        }
        for mix in &mut self.mixes {
            mix.last_members = std::mem::take(&mut mix.members);
        }
        // Pass 1: stay where the settings are unchanged.
        for (li, &index) in self.listeners.iter().enumerate() {
            let Some(c) = self.channels[index].as_ref() else { continue };
            let Some(format) = c.stream.as_ref().map(|s| MixFormat::of(&s.format)) else { continue };
            let key = &self.keys[li * k..(li + 1) * k];
            if let Some(mix) = c.mix.and_then(|g| self.mixes.get_mut(g)) {
                if mix.matches(format, self.hashes[li], key) {
                    mix.members += 1;
                    self.placed[li] = true;
                }
            }
        }
        // Pass 2: everybody whose settings changed (or who is new).
        for (li, &index) in self.listeners.iter().enumerate() {
            if self.placed[li] {
                continue;
            }
            let Some(c) = self.channels[index].as_mut() else { continue };
            let Some(format) = c.stream.as_ref().map(|s| MixFormat::of(&s.format)) else { continue };
            let (key, hash) = (&self.keys[li * k..(li + 1) * k], self.hashes[li]);
            let mixes = &mut self.mixes;
            let joined = mixes.iter().position(|m| m.members > 0 && m.matches(format, hash, key));
            let own = c.mix.filter(|&g| mixes.get(g).is_some_and(|m| m.members == 0 && m.format == format));
            let g = match joined.or(own) {
                Some(g) => g,
                None => match mixes.iter().position(|m| m.members == 0 && m.last_members == 0 && m.format == format) {
                    Some(g) => {
                        mixes[g].restart();
                        g
                    }
                    None => match SharedMix::new(format, tick, MAX_CHANNELS) {
                        Ok(mix) => {
                            mixes.push(mix);
                            mixes.len() - 1
                        }
                        Err(_) => continue,
                    },
                },
            };
            if joined.is_some() {
                mixes[g].members += 1;
            } else {
                mixes[g].claim(hash, key);
            }
            c.mix = Some(g);
        }
    }

    /// Frees channels that said goodbye or went silent for too long.
    fn free_departed(&mut self, now: Instant) {
        let mut changed = false;
        for index in 0..self.channels.len() {
            let gone = self.channels[index].as_ref().and_then(|c| {
                let timed_out = now.duration_since(c.last_audio) > CHANNEL_TIMEOUT;
                (c.leaving || timed_out).then_some(timed_out)
            });
            if let Some(timed_out) = gone {
                if let Some(channel) = self.channels[index].take() {
                    self.by_address.remove(&channel.address);
                    self.stats.departed_frames_late += channel.jitter.late;
                    self.stats.departed_frames_lost += channel.jitter.lost;
                    self.events.push_back(Event::ClientDisconnected {
                        channel: channel.id,
                        address: channel.address,
                        timed_out,
                    });
                    changed = true;
                }
            }
        }
        if changed {
            self.broadcast_client_list(now, None);
            if self.by_address.is_empty() {
                self.events.push_back(Event::Idle);
                if let Some(tap) = self.tap.as_mut() {
                    tap.idle();
                }
            }
        }
    }

    /// Tells every client goodbye (CLM_DISCONNECTION), as Jamulus does on quit with `--discononquit`.
    pub fn disconnect_all(&mut self) {
        let goodbye = Message::ClmDisconnection.to_datagram(0);
        let addresses: Vec<_> = self.channels.iter().flatten().map(|c| c.address).collect();
        for address in addresses {
            self.push(address, &goodbye);
        }
    }
}
