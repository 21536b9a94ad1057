//! The jam server as a sans-IO state machine (§5): channels created by a new address's first audio,
//! the connect sequence, profiles and the client list, chat, gains/pans/mutes, connection-less
//! requests, and the audio tick that decodes every client once and encodes a personal mix for each.
//!
//! The caller owns the socket and the clock: `handle_datagram` / `handle_timeout` take the current
//! `Instant`; `poll_transmit`, `poll_timeout` and `poll_event` say what to do next.

use crate::channel::{Channel, Source, MAX_CHANNELS};
use crate::chat::{chat_line, welcome_line, TimeOfDay};
use crate::directory::{Directory, DirectoryConfig};
use crate::level;
use crate::mix::{gain_from_wire, pan_from_wire};
use crate::outbox::Outbox;
use crate::personal_mix::{fill_key, key_hash, MixFormat, SharedMix, TickInput};
use crate::recording::{RecordedFrame, RecordingTap};
use crate::registration::{Registrar, RegistrationConfig};
use crate::stats::{DropReason, Stats};
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tutti_proto::frame::{MAX_DATAGRAM, OVERHEAD};
use tutti_proto::message::{ClientListEntry, Licence, OsType, Profile, RecorderState, VersionAndOs};
use tutti_proto::{crc16, AudioCodec, AudioFormat, Datagram, Frame, LinkError, Message, Quality, JAMULUS_VERSION};

mod directory_roles;

/// A channel is freed after this long without an audio datagram.
pub const CHANNEL_TIMEOUT: Duration = Duration::from_secs(30);
/// Connection-less replies one source IP may get per second (ping, version, client list, server full).
const REPLIES_PER_SECOND: u32 = 20;

/// What a server is told at start; everything has the Jamulus default.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Channels (clients) at most, 1…150 (`--numchannels`).
    pub max_channels: usize,
    /// Sent as chat to each new client (`--welcomemessage`), HTML allowed.
    pub welcome_message: Option<String>,
    /// Ask clients to accept a Creative Commons licence (`--licence`).
    pub licence_required: bool,
    /// 64-sample ticks instead of 128 (`--fastupdate`).
    pub fast_update: bool,
    /// What RECORDER_STATE tells clients.
    pub recorder_state: RecorderState,
    /// The server's wall clock, for chat time stamps.
    pub time_of_day: fn() -> TimeOfDay,
    /// Threads that decode, mix and encode (`--multithreading`); 1 = the tick's own thread only.
    pub threads: usize,
    /// Register with this directory (`--directoryserver`); none by default.
    pub registration: Option<RegistrationConfig>,
    /// Also be a directory (Jamulus `--directoryserver localhost`); none by default.
    pub directory: Option<DirectoryConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_channels: 10,
            welcome_message: None,
            licence_required: false,
            fast_update: false,
            recorder_state: RecorderState::NotInitialised,
            time_of_day: || TimeOfDay::default(),
            threads: 1,
            registration: None,
            directory: None,
        }
    }
}

/// Something the operator's side may want to know (logs, metrics). Carries no chat and no profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ClientConnected {
        channel: u8,
        address: SocketAddr,
    },
    ClientDisconnected {
        channel: u8,
        address: SocketAddr,
        timed_out: bool,
    },
    /// The last client left; the tick stops.
    Idle,
}

/// A connected client as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSummary {
    pub channel: u8,
    pub address: SocketAddr,
    pub name: String,
    pub jitter_buffer_size: u16,
    pub audio_channels: u8,
}

/// The jam server state machine.
pub struct Server {
    config: ServerConfig,
    channels: Vec<Option<Channel>>,
    by_address: HashMap<SocketAddr, usize>,
    outbox: Outbox,
    events: VecDeque<Event>,
    stats: Stats,
    next_tick: Option<Instant>,
    tick_count: u64,
    budgets: HashMap<IpAddr, (Instant, u32)>,
    registrar: Option<Registrar>,
    directory: Option<Directory>,
    audio_sizes: Vec<usize>,
    /// Workers for `--multithreading`.
    pool: Option<rayon::ThreadPool>,
    /// Every distinct personal mix (and its encoder), reused from tick to tick.
    mixes: Vec<SharedMix>,
    // Tick scratch space, sized once.
    inputs: Vec<f32>,
    sources: Vec<Source>,
    source_channels: Vec<u8>,
    fades: Vec<f32>,
    active: Vec<usize>,
    listeners: Vec<usize>,
    keys: Vec<(f32, f32)>,
    hashes: Vec<u64>,
    placed: Vec<bool>,
    datagram: Vec<u8>,
    levels: Vec<u8>,
    /// Receives the recorded input while the recorder state is `Recording`.
    tap: Option<Box<dyn RecordingTap>>,
}

impl Server {
    pub fn new(mut config: ServerConfig) -> Self {
        config.max_channels = config.max_channels.clamp(1, MAX_CHANNELS);
        let tick = if config.fast_update { 64 } else { 128 };
        let threads = config.threads;
        Server {
            channels: (0..config.max_channels).map(|_| None).collect(),
            config,
            by_address: HashMap::new(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            stats: Stats::default(),
            next_tick: None,
            tick_count: 0,
            budgets: HashMap::new(),
            registrar: None,
            directory: None,
            audio_sizes: jamulus_audio_sizes(),
            pool: (threads > 1)
                .then(|| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .thread_name(|i| format!("jam-mix-{i}"))
                        .build()
                        .ok()
                })
                .flatten(),
            mixes: Vec::with_capacity(2 * MAX_CHANNELS),
            inputs: vec![0.0; MAX_CHANNELS * tick * 2],
            sources: vec![Source::default(); MAX_CHANNELS],
            source_channels: vec![0; MAX_CHANNELS],
            fades: vec![0.0; MAX_CHANNELS],
            active: Vec::with_capacity(MAX_CHANNELS),
            listeners: Vec::with_capacity(MAX_CHANNELS),
            keys: vec![(0.0, 0.0); MAX_CHANNELS * MAX_CHANNELS],
            hashes: vec![0; MAX_CHANNELS],
            placed: vec![false; MAX_CHANNELS],
            datagram: Vec::with_capacity(MAX_DATAGRAM),
            levels: Vec::with_capacity(MAX_CHANNELS),
            tap: None,
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Samples per tick (64 with `--fastupdate`, else 128).
    pub fn tick_samples(&self) -> usize {
        if self.config.fast_update {
            64
        } else {
            128
        }
    }

    fn tick_period(&self) -> Duration {
        Duration::from_nanos(self.tick_samples() as u64 * 1_000_000_000 / 48_000)
    }

    /// Audio frames since the start, over all clients: (arrived too late, missing and concealed).
    pub fn frames_late_and_lost(&self) -> (u64, u64) {
        let live = self.channels.iter().flatten().map(|c| (c.jitter.late, c.jitter.lost));
        live.fold((self.stats.departed_frames_late, self.stats.departed_frames_lost), |(a, b), (l, m)| (a + l, b + m))
    }

    pub fn connected_clients(&self) -> usize {
        self.by_address.len()
    }

    /// The connected clients, in channel order (for the operator: includes addresses).
    pub fn clients(&self) -> Vec<ClientSummary> {
        self.channels
            .iter()
            .flatten()
            .map(|c| ClientSummary {
                channel: c.id,
                address: c.address,
                name: c.name().to_string(),
                jitter_buffer_size: c.jitter.size(),
                audio_channels: c.stream.as_ref().map_or(0, |s| s.format.channels),
            })
            .collect()
    }

    /// Changes the welcome message for future connections.
    pub fn set_welcome_message(&mut self, message: Option<String>) {
        self.config.welcome_message = message;
    }

    /// Changes the recorder state and tells every client. While the state is `Recording`, each
    /// channel's input goes to the recording tap from the first tick after its notice was sent.
    pub fn set_recorder_state(&mut self, now: Instant, state: RecorderState) {
        if state == self.config.recorder_state {
            return;
        }
        self.config.recorder_state = state;
        for i in self.connected_indices() {
            self.send(now, i, &Message::RecorderState(state));
        }
    }

    pub fn recorder_state(&self) -> RecorderState {
        self.config.recorder_state
    }

    /// Installs (or removes) the recorder that receives every notified channel's input.
    pub fn set_recording_tap(&mut self, tap: Option<Box<dyn RecordingTap>>) {
        self.tap = tap;
    }

    /// Takes the recorder back out.
    pub fn take_recording_tap(&mut self) -> Option<Box<dyn RecordingTap>> {
        self.tap.take()
    }

    // ----------------------------------------------------------------------------------------------
    // Input

    /// Takes one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.stats.datagrams_in += 1;
        if bytes.len() > MAX_DATAGRAM {
            self.stats.drop(DropReason::Oversized);
            return;
        }
        let known = self.by_address.get(&from).copied();
        match Datagram::classify(bytes) {
            Datagram::Protocol(frame) => self.handle_frame(now, from, known, &frame),
            Datagram::Audio(bytes) if looks_like_damaged_frame(bytes) => self.stats.drop(DropReason::BadCrc),
            Datagram::Audio(bytes) => match known {
                Some(index) => self.handle_audio(now, index, bytes),
                None => self.handle_new_address(now, from, bytes),
            },
        }
    }

    fn handle_new_address(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if !self.audio_sizes.contains(&bytes.len()) {
            self.stats.drop(DropReason::NotAudio);
            return;
        }
        let Some(index) = self.channels.iter().position(Option::is_none) else {
            self.stats.drop(DropReason::ServerFull);
            self.reply(now, from, &Message::ClmServerFull);
            return;
        };
        let id = index as u8;
        // Faders toward a (re)allocated channel start at unity/centre for everybody.
        for other in self.channels.iter_mut().flatten() {
            other.gains[index] = crate::mix::UNITY_GAIN;
            other.pans[index] = crate::mix::CENTRE_PAN;
        }
        self.channels[index] = Some(Channel::new(id, from, now));
        self.by_address.insert(from, index);
        self.events.push_back(Event::ClientConnected { channel: id, address: from });
        if self.next_tick.is_none() {
            self.next_tick = Some(now + self.tick_period());
        }
        self.send(now, index, &Message::ClientId(id));
        self.send(now, index, &Message::ConnClientsList(Vec::new()));
        self.send(now, index, &Message::ReqSplitMessSupport);
        self.send(now, index, &Message::ReqTransportProps);
        self.send(now, index, &Message::ReqJitterBufferSize);
        self.send(now, index, &Message::ReqChannelInfos);
        if let Some(welcome) = self.config.welcome_message.as_deref().filter(|w| !w.is_empty()) {
            self.send(now, index, &Message::ChatText(welcome_line(welcome)));
        }
        if self.config.licence_required {
            self.send(now, index, &Message::LicenceRequired(Licence::CreativeCommons));
        }
        self.send(now, index, &Message::VersionAndOs(own_version()));
        self.send(now, index, &Message::RecorderState(self.config.recorder_state));
        self.handle_audio(now, index, bytes);
    }

    fn handle_audio(&mut self, now: Instant, index: usize, bytes: &[u8]) {
        let Some(channel) = self.channels[index].as_mut() else { return };
        channel.last_audio = now;
        self.stats.audio_packets_in += 1;
        let Some(stream) = channel.stream.as_ref() else {
            self.stats.drop(DropReason::AudioBeforeFormat);
            return;
        };
        let Ok(frames) = stream.format.frames(bytes) else {
            self.stats.drop(DropReason::AudioWrongSize);
            return;
        };
        for frame in frames {
            channel.jitter.put(frame.sequence, frame.coded);
        }
        if channel.profile.is_some() && channel.fade_packets < stream.fade_length {
            channel.fade_packets += 1;
        }
    }

    fn handle_frame(&mut self, now: Instant, from: SocketAddr, known: Option<usize>, frame: &Frame<'_>) {
        if frame.is_connection_less() {
            match Message::decode(frame.id, frame.data) {
                Ok(message) => self.handle_clm(now, from, known, message),
                Err(_) => self.stats.drop(DropReason::InvalidMessage),
            }
            return;
        }
        let Some(index) = known else {
            self.stats.drop(DropReason::UnknownSource);
            return;
        };
        let Some(channel) = self.channels[index].as_mut() else { return };
        let delivered = channel.link.handle_frame(now, frame);
        self.flush_link(index);
        let Some(delivered) = delivered else { return };
        match delivered.decode() {
            Ok(message) => self.handle_message(now, index, message),
            Err(_) => self.stats.drop(DropReason::InvalidMessage),
        }
    }

    fn handle_message(&mut self, now: Instant, index: usize, message: Message) {
        let tick = self.tick_samples();
        let Some(channel) = self.channels[index].as_mut() else { return };
        match message {
            Message::TransportProps(props) => {
                if props.codec == AudioCodec::Celt {
                    self.stats.drop(DropReason::UnsupportedFormat);
                    self.send(now, index, &Message::OpusSupported);
                    return;
                }
                let started = AudioFormat::from_props(&props).map(|format| channel.start_stream(format, tick));
                if !matches!(started, Some(Ok(()))) {
                    self.stats.drop(DropReason::UnsupportedFormat);
                }
            }
            Message::JitterBufferSize(blocks) => channel.jitter.set_size(blocks),
            Message::ChannelGain { channel: source, gain } => {
                let source = usize::from(source);
                if source >= MAX_CHANNELS {
                    return;
                }
                let gain = gain_from_wire(gain);
                let was_muted = channel.gains[source] == 0.0;
                channel.gains[source] = gain;
                let listener = channel.id;
                let now_muted = gain == 0.0;
                if was_muted != now_muted && self.channels.get(source).is_some_and(Option::is_some) {
                    self.send(now, source, &Message::MuteStateChanged { channel: listener, muted: now_muted });
                }
            }
            Message::ChannelPan { channel: source, pan } => {
                if let Some(p) = channel.pans.get_mut(usize::from(source)) {
                    *p = pan_from_wire(pan);
                }
            }
            Message::ChannelInfos(profile) if channel.profile.as_ref() != Some(&profile) => {
                channel.profile = Some(profile);
                self.broadcast_client_list(now);
            }
            Message::ChatText(text) => {
                let line = chat_line(channel.id, channel.name(), &text, (self.config.time_of_day)());
                let chat = Message::ChatText(line);
                for i in self.connected_indices() {
                    self.send(now, i, &chat);
                }
            }
            Message::ReqConnClientsList => {
                let list = Message::ConnClientsList(self.client_list());
                self.send(now, index, &list);
            }
            Message::ReqSplitMessSupport => {
                channel.link.set_peer_supports_split(true);
                self.send(now, index, &Message::SplitMessSupported);
            }
            Message::SplitMessSupported => channel.link.set_peer_supports_split(true),
            Message::ReqTransportProps => {
                if let Some(props) = channel.stream.as_ref().map(|s| s.format.to_props()) {
                    self.send(now, index, &Message::TransportProps(props));
                }
            }
            // Requests a server does not answer, messages for clients, legacy and obsolete IDs:
            // acknowledged by the link, otherwise ignored (as 3.9.1 does).
            _ => {}
        }
    }

    fn handle_clm(&mut self, now: Instant, from: SocketAddr, known: Option<usize>, message: Message) {
        if self.handle_directory_roles(now, from, &message) {
            return;
        }
        let reply = match message {
            Message::ClmPingMs(time) => Message::ClmPingMs(time),
            Message::ClmPingMsWithNumClients { time, .. } => {
                Message::ClmPingMsWithNumClients { time, clients: self.connected_clients() as u8 }
            }
            Message::ClmReqVersionAndOs => Message::ClmVersionAndOs(own_version()),
            Message::ClmReqConnClientsList => Message::ClmConnClientsList(self.client_list()),
            Message::ClmDisconnection => {
                if let Some(channel) = known.and_then(|i| self.channels[i].as_mut()) {
                    channel.leaving = true;
                }
                return;
            }
            _ => return,
        };
        self.reply(now, from, &reply);
    }

    /// Sends a connection-less reply, within the source's reply budget.
    fn reply(&mut self, now: Instant, to: SocketAddr, message: &Message) {
        if self.budgets.len() > 4096 {
            self.budgets.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(1));
            if self.budgets.len() > 4096 {
                self.budgets.clear();
            }
        }
        let (since, count) = self.budgets.entry(to.ip()).or_insert((now, 0));
        if now.duration_since(*since) >= Duration::from_secs(1) {
            *since = now;
            *count = 0;
        }
        *count += 1;
        if *count > REPLIES_PER_SECOND {
            self.stats.drop(DropReason::RateLimited);
            return;
        }
        self.push(to, &message.to_datagram(0));
    }

    // ----------------------------------------------------------------------------------------------
    // Timers and the audio tick

    /// Runs whatever is due at `now`: the audio ticks, protocol resends, timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
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
                self.next_tick = Some(now + period);
            } else {
                self.next_tick = Some(due + period);
            }
            self.tick(now);
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

    fn tick(&mut self, now: Instant) {
        self.stats.ticks += 1;
        self.tick_count += 1;
        self.free_departed(now);
        if self.by_address.is_empty() {
            self.next_tick = None;
            return;
        }
        let tick = self.tick_samples();
        let level_tick = self.tick_count.is_multiple_of(level::update_interval_ticks(tick));
        if level_tick {
            self.levels.clear();
        }
        self.decode(tick, level_tick);
        self.record(tick);
        self.place_listeners(tick);
        self.render(tick);
        self.send_mixes();
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
            Some(pool) => pool.install(|| {
                channels.par_iter_mut().zip(inputs.par_chunks_mut(span).zip(sources.par_iter_mut())).for_each(decode)
            }),
            None => channels.iter_mut().zip(inputs.chunks_mut(span).zip(sources.iter_mut())).for_each(decode),
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

    /// Tick step 3: mixes and encodes every shared mix that has listeners (in parallel with
    /// `--multithreading`).
    fn render(&mut self, tick: usize) {
        let input = TickInput { samples: &self.inputs, channels: &self.source_channels, tick };
        let active = &self.active;
        let render = |mix: &mut SharedMix| {
            if mix.members > 0 {
                mix.render(&input, active);
            }
        };
        let mixes = &mut self.mixes;
        match &self.pool {
            Some(pool) => pool.install(|| mixes.par_iter_mut().for_each(render)),
            None => mixes.iter_mut().for_each(render),
        }
        self.stats.mixes_rendered += self.mixes.iter().filter(|m| m.members > 0).count() as u64;
    }

    /// Tick step 4: packs each listener's mix into its datagrams, with its own sequence counter.
    fn send_mixes(&mut self) {
        for &index in &self.listeners {
            let Some(listener) = self.channels[index].as_mut() else { continue };
            let (Some(stream), Some(mix)) = (listener.stream.as_mut(), listener.mix.and_then(|g| self.mixes.get(g)))
            else {
                continue;
            };
            let address = listener.address;
            for coded in mix.coded() {
                let outbox = &mut self.outbox;
                let sent = &mut self.stats.audio_packets_out;
                stream.push_coded(coded, &mut listener.out_counter, &mut self.datagram, |datagram| {
                    outbox.push(address, datagram);
                    *sent += 1;
                });
            }
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
            self.broadcast_client_list(now);
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

    // ----------------------------------------------------------------------------------------------
    // Output

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, &[u8])> {
        if self.outbox.len() == 0 {
            self.notices_sent();
        }
        let next = self.outbox.pop();
        if next.is_some() {
            self.stats.datagrams_out += 1;
        }
        next
    }

    /// Every datagram waiting to be sent, in order, for shells that send in batches; call
    /// `clear_transmits` once they are sent. Equivalent to draining `poll_transmit`.
    pub fn transmits(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        self.outbox.iter()
    }

    /// Forgets the datagrams `transmits` showed.
    pub fn clear_transmits(&mut self) {
        self.stats.datagrams_out += self.outbox.len() as u64;
        self.outbox.clear();
        self.notices_sent();
    }

    /// The outbox was handed out entirely: every RECORDER_STATE queued so far has been sent.
    fn notices_sent(&mut self) {
        for channel in self.channels.iter_mut().flatten() {
            channel.notice_sent = channel.notice_queued;
        }
    }

    /// Datagrams waiting in `poll_transmit`.
    pub fn pending_transmits(&self) -> usize {
        self.outbox.len()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----------------------------------------------------------------------------------------------
    // Helpers

    fn connected_indices(&self) -> Vec<usize> {
        self.channels.iter().enumerate().filter(|(_, c)| c.is_some()).map(|(i, _)| i).collect()
    }

    /// Every connected channel in channel order, including ones without a profile yet. No addresses.
    fn client_list(&self) -> Vec<ClientListEntry> {
        self.channels
            .iter()
            .flatten()
            .map(|c| ClientListEntry { channel: c.id, profile: c.profile.clone().unwrap_or_else(Profile::default) })
            .collect()
    }

    /// Sends the client list to everybody; a list still waiting in a link is replaced, not followed.
    fn broadcast_client_list(&mut self, now: Instant) {
        let list = Message::ConnClientsList(self.client_list());
        for index in self.connected_indices() {
            let Some(channel) = self.channels[index].as_mut() else { continue };
            if let Err(LinkError::QueueFull(_)) = channel.link.send_latest(now, &list) {
                self.stats.drop(DropReason::LinkQueueFull);
            }
            self.flush_link(index);
        }
    }

    /// Queues a connection message to channel `index`.
    fn send(&mut self, now: Instant, index: usize, message: &Message) {
        let Some(channel) = self.channels[index].as_mut() else { return };
        if let Err(LinkError::QueueFull(_)) = channel.link.send(now, message) {
            self.stats.drop(DropReason::LinkQueueFull);
        }
        self.flush_link(index);
    }

    fn flush_link(&mut self, index: usize) {
        let Some(channel) = self.channels[index].as_mut() else { return };
        while let Some(datagram) = channel.link.poll_transmit() {
            if let Some(frame) = Frame::parse(&datagram).filter(|f| f.id == tutti_proto::message::id::RECORDER_STATE) {
                if let Ok(Message::RecorderState(state)) = Message::decode(frame.id, frame.data) {
                    channel.notice_queued = Some(state);
                }
            }
            self.outbox.push(channel.address, &datagram);
        }
    }

    fn push(&mut self, to: SocketAddr, datagram: &[u8]) {
        self.outbox.push(to, datagram);
    }
}

fn own_version() -> VersionAndOs {
    VersionAndOs { os: OsType::Linux, version: JAMULUS_VERSION.to_string() }
}

/// Every size a Jamulus 3.9.1 client's audio datagram can have: the coded sizes of the quality table,
/// with or without the sequence byte, one, two or four frames per datagram.
fn jamulus_audio_sizes() -> Vec<usize> {
    let mut sizes = Vec::new();
    for codec in [AudioCodec::Opus, AudioCodec::Opus64] {
        for channels in [1, 2] {
            for quality in [Quality::Low, Quality::Normal, Quality::High] {
                let coded = tutti_proto::audio::coded_bytes(codec, channels, quality).unwrap_or(0);
                for counter in [0, 1] {
                    for frames in [1, 2, 4] {
                        sizes.push((coded + counter) * frames);
                    }
                }
            }
        }
    }
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// A datagram with a protocol frame's tag and a consistent length field, whose CRC is wrong: a
/// damaged frame, not audio (Jamulus would take it as audio; we count and drop it).
fn looks_like_damaged_frame(bytes: &[u8]) -> bool {
    bytes.len() >= OVERHEAD
        && bytes[0] == 0
        && bytes[1] == 0
        && usize::from(u16::from_le_bytes([bytes[5], bytes[6]])) == bytes.len() - OVERHEAD
        && crc16(&bytes[..bytes.len() - 2]) != u16::from_le_bytes([bytes[bytes.len() - 2], bytes[bytes.len() - 1]])
}
