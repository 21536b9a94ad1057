//! The jam server as a sans-IO state machine (§5): channels created by a new address's first audio,
//! the connect sequence, profiles and the client list, chat, gains/pans/mutes, connection-less
//! requests, and the audio tick that decodes every client once and encodes a personal mix for each.
//!
//! The caller owns the socket and the clock: `handle_datagram` / `handle_timeout` take the current
//! `Instant`; `poll_transmit`, `poll_timeout` and `poll_event` say what to do next.

use crate::channel::{Channel, Source, MAX_CHANNELS};
use crate::chat::TimeOfDay;
use crate::directory::{Directory, DirectoryConfig};
use crate::outbox::Outbox;
use crate::personal_mix::SharedMix;
use crate::recording::RecordingTap;
use crate::registration::{Registrar, RegistrationConfig};
use crate::stats::{DropReason, Stats};
use crate::tick_phase::TickPhase;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tutti_proto::frame::MAX_DATAGRAM;
use tutti_proto::message::{ClientListEntry, OsType, Profile, RecorderState, VersionAndOs};
use tutti_proto::{Frame, LinkError, Message, JAMULUS_VERSION};

mod directory_roles;
mod input;
mod sending;
mod stream_tick;
mod tick;

pub use sending::{HandOver, ENCODES_PER_HAND_OVER, PARALLEL_DECODES_FROM, PARALLEL_ENCODES_FROM};

/// A channel is freed after this long without an audio datagram.
pub const CHANNEL_TIMEOUT: Duration = Duration::from_secs(30);

/// When the client list changes, this many clients a tick are sent the new one, after the tick's audio.
/// Sent to 149 clients at once, the list's parts left 149 at a time, and that sending held the next
/// tick's audio up for everybody (docs/perf.md, "A join no longer holds up a tick"); spread out, the
/// last client has the new list about 10 ticks later.
pub const LISTS_PER_TICK: usize = 16;

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
    /// Moves the tick to just after the clients' arrivals.
    phase: TickPhase,
    tick_count: u64,
    /// Where the next tick's sending of due client lists starts (`LISTS_PER_TICK`).
    list_cursor: usize,
    budgets: HashMap<IpAddr, (Instant, u32)>,
    registrar: Option<Registrar>,
    directory: Option<Directory>,
    audio_sizes: Vec<usize>,
    /// Workers for `--multithreading`.
    pool: Option<rayon::ThreadPool>,
    /// Every distinct personal mix (and its encoder), reused from tick to tick.
    mixes: Vec<SharedMix>,
    /// Where each mix stands in this tick's rendering (sending.rs).
    render_state: Vec<sending::Render>,
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
    /// The listen-in stream, when on (`server/stream_tick.rs`).
    listen: Option<stream_tick::Listen>,
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
            phase: TickPhase::default(),
            tick_count: 0,
            list_cursor: 0,
            budgets: HashMap::new(),
            registrar: None,
            directory: None,
            audio_sizes: input::jamulus_audio_sizes(),
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
            render_state: Vec::with_capacity(2 * MAX_CHANNELS),
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
            listen: None,
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

    /// The client list changed: channel `first` (the client that changed it) is sent the new list at
    /// once, everybody else over the next ticks (`send_due_lists`).
    fn broadcast_client_list(&mut self, now: Instant, first: Option<usize>) {
        for channel in self.channels.iter_mut().flatten() {
            channel.list_due = true;
        }
        if let Some(index) = first {
            let list = Message::ConnClientsList(self.client_list());
            self.send_list(now, index, &list);
        }
    }

    /// Sends the current client list to up to `LISTS_PER_TICK` clients whose list is out of date,
    /// taking turns; a list still waiting in a link is replaced, not followed.
    pub(crate) fn send_due_lists(&mut self, now: Instant) {
        let n = self.channels.len();
        let mut list = None;
        let mut sent = 0;
        for k in 0..n {
            let index = (self.list_cursor + k) % n;
            if !self.channels[index].as_ref().is_some_and(|c| c.list_due) {
                continue;
            }
            if sent == LISTS_PER_TICK {
                self.list_cursor = index;
                return;
            }
            let list = list.get_or_insert_with(|| Message::ConnClientsList(self.client_list()));
            self.send_list(now, index, list);
            sent += 1;
        }
    }

    fn send_list(&mut self, now: Instant, index: usize, list: &Message) {
        let Some(channel) = self.channels[index].as_mut() else { return };
        channel.list_due = false;
        if let Err(LinkError::QueueFull(_)) = channel.link.send_latest(now, list) {
            self.stats.drop(DropReason::LinkQueueFull);
        }
        self.flush_link(index);
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
