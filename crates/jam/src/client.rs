//! The jam client as a sans-IO state machine (§5.3): sends audio first (so the server creates the
//! channel), answers the server's requests, switches sequence counters on for servers ≥ 3.6.0,
//! decodes the server's mix through a jitter buffer, and carries chat, faders and the profile.
//!
//! The caller owns the socket, the clock and the sound: `send_audio` takes one frame of PCM,
//! `receive_audio` gives one frame of the mix back, datagrams go through `handle_datagram` /
//! `poll_transmit`, time through `handle_timeout` / `poll_timeout`.

use crate::jitter::{JitterBuffer, Pull};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tutti_codec::{Channels, CodecError, Decoder, Encoder, FrameSize};
use tutti_proto::message::{ClientListEntry, Profile, RecorderState, JITTER_BUFFER_AUTO};
use tutti_proto::{AudioCodec, AudioFormat, Datagram, Link, Message, Quality};

/// The client is disconnected after this long without audio from the server.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(30);

/// How the client sends its audio; defaults are the Jamulus client's.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub profile: Profile,
    /// OPUS (128-sample frames, the default) or OPUS64 ("small network buffers").
    pub codec: AudioCodec,
    /// 1 mono (default) or 2 stereo.
    pub channels: u8,
    pub quality: Quality,
    /// Frames per datagram: 1, 2 or 4.
    pub frames_per_packet: usize,
    /// Jitter buffer size asked of the server: 1…20, or `None` for auto (default).
    pub server_jitter_buffer: Option<u16>,
    /// Ask the server for level meters (REQ_CHANNEL_LEVEL_LIST, as the 3.9.1 client always does);
    /// off by default: only a client that shows them (JSON-RPC) needs them.
    pub channel_levels: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            profile: Profile::default(),
            codec: AudioCodec::Opus,
            channels: 1,
            quality: Quality::Normal,
            frames_per_packet: 1,
            server_jitter_buffer: None,
            channel_levels: false,
        }
    }
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server gave us a channel (CLIENT_ID).
    Connected {
        channel: u8,
    },
    /// The first audio from the server arrived: the connection is complete (Jamulus' client side
    /// "new connection").
    AudioStarted,
    /// The list of musicians on the server changed.
    ClientList(Vec<ClientListEntry>),
    /// Level meters of the channels in client-list order, 0…9 (CLM_CHANNEL_LEVEL_LIST).
    ChannelLevels(Vec<u8>),
    /// A chat line (HTML, as the server formatted it).
    Chat(String),
    /// Another musician muted (true) or unmuted us in their mix.
    MutedBy {
        channel: u8,
        muted: bool,
    },
    RecorderState(RecorderState),
    /// The server asks us to accept a licence.
    LicenceRequired,
    /// The server said goodbye or went silent for 30 s.
    Disconnected,
}

/// Counters of the server's audio as this client received it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reception {
    /// Audio datagrams from the server.
    pub audio_packets: u64,
    /// Frames that were not there when their turn came (concealed).
    pub lost_frames: u64,
    /// Frames that arrived after their turn (dropped).
    pub late_frames: u64,
}

/// A Jamulus-protocol client talking to one server.
pub struct Client {
    server: SocketAddr,
    config: ClientConfig,
    format: AudioFormat,
    frame: usize,
    link: Link,
    encoder: Encoder,
    decoder: Decoder,
    jitter: JitterBuffer,
    channel: Option<u8>,
    /// First non-protocol datagram from the server seen ("new connection" on the client side).
    audio_started: bool,
    audio_packets_in: u64,
    last_server_audio: Option<Instant>,
    connected: bool,
    out_counter: u8,
    props_sent: bool,
    packet: Vec<u8>,
    packet_frames: usize,
    datagram: Vec<u8>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
}

impl Client {
    pub fn new(server: SocketAddr, config: ClientConfig) -> Result<Self, CodecError> {
        let format = AudioFormat::new(config.codec, config.channels, config.quality, config.frames_per_packet, false)
            .ok_or(CodecError::UnsupportedChannels(usize::from(config.channels)))?;
        let frame = FrameSize::from_samples(format.frame_samples())?;
        let channels = Channels::from_count(usize::from(config.channels))?;
        Ok(Client {
            server,
            format,
            frame: frame.samples(),
            link: Link::default(),
            encoder: Encoder::with_coded_bytes(frame, channels, format.coded_bytes)?,
            decoder: Decoder::new(frame, channels)?,
            jitter: JitterBuffer::new(format.coded_bytes),
            channel: None,
            audio_started: false,
            audio_packets_in: 0,
            last_server_audio: None,
            connected: true,
            out_counter: 0,
            props_sent: false,
            packet: vec![0; format.coded_bytes * format.frames_per_packet],
            packet_frames: 0,
            datagram: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
        })
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Our channel on the server, once it told us.
    pub fn channel(&self) -> Option<u8> {
        self.channel
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The format we send (and ask the server to send back).
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Interleaved samples per frame for `send_audio` / `receive_audio`.
    pub fn frame_len(&self) -> usize {
        self.frame * usize::from(self.format.channels)
    }

    /// Encodes one frame of PCM (full scale 1.0, interleaved) and sends a datagram when complete.
    /// The first datagram is what makes the server create our channel.
    pub fn send_audio(&mut self, now: Instant, pcm: &[f32]) -> Result<(), CodecError> {
        if !self.connected {
            return Ok(());
        }
        let coded = self.format.coded_bytes;
        let slot = &mut self.packet[self.packet_frames * coded..(self.packet_frames + 1) * coded];
        self.encoder.encode_float(pcm, slot)?;
        self.frame_ready(now);
        Ok(())
    }

    /// Sends one frame that is already encoded in our format (`format().coded_bytes` long), e.g. one
    /// encode shared by many emulated clients of a load generator.
    pub fn send_coded(&mut self, now: Instant, coded: &[u8]) -> Result<(), CodecError> {
        let len = self.format.coded_bytes;
        if coded.len() != len {
            return Err(CodecError::PacketBufferLength { expected: len, actual: coded.len() });
        }
        if !self.connected {
            return Ok(());
        }
        self.packet[self.packet_frames * len..(self.packet_frames + 1) * len].copy_from_slice(coded);
        self.frame_ready(now);
        Ok(())
    }

    /// One more coded frame is in `packet`: sends the datagram once it holds all its frames.
    fn frame_ready(&mut self, now: Instant) {
        if !self.props_sent {
            // Our transport properties follow the first audio datagram, which creates the channel.
            self.props_sent = true;
            self.queue(now, &Message::TransportProps(self.format.to_props()));
        }
        self.packet_frames += 1;
        if self.packet_frames == self.format.frames_per_packet {
            self.packet_frames = 0;
            let first = self.out_counter == 0 && !self.audio_started;
            if self.format.assemble(&self.packet, &mut self.out_counter, &mut self.datagram).is_ok() {
                if first {
                    // Ahead of the queued protocol: the server only creates our channel from audio.
                    self.transmits.push_front(self.datagram.clone());
                } else {
                    self.transmits.push_back(self.datagram.clone());
                }
            }
        }
    }

    /// Decodes the next frame of the server's mix into `pcm` (concealed or silent when missing).
    pub fn receive_audio(&mut self, pcm: &mut [f32]) -> Result<(), CodecError> {
        match self.jitter.pull() {
            Pull::Frame(coded) => self.decoder.decode_float(Some(coded), pcm)?,
            Pull::Lost => self.decoder.decode_float(None, pcm)?,
            Pull::Filling => {
                pcm.fill(0.0);
                0
            }
        };
        Ok(())
    }

    /// Takes the next frame of the server's mix out of the jitter buffer without decoding it (a load
    /// generator's listener): true if it was there in time, false if it was missing or late.
    pub fn skip_audio(&mut self) -> bool {
        matches!(self.jitter.pull(), Pull::Frame(_) | Pull::Filling)
    }

    /// What arrived from the server so far.
    pub fn reception(&self) -> Reception {
        Reception { audio_packets: self.audio_packets_in, lost_frames: self.jitter.lost, late_frames: self.jitter.late }
    }

    /// Takes a datagram from `from` (anything not from our server is ignored).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if from != self.server || !self.connected {
            return;
        }
        match Datagram::classify(bytes) {
            Datagram::Protocol(frame) if frame.is_connection_less() => match Message::decode(frame.id, frame.data) {
                Ok(Message::ClmDisconnection) => self.disconnected(),
                Ok(Message::ClmChannelLevelList(levels)) => self.events.push_back(ClientEvent::ChannelLevels(levels)),
                _ => {}
            },
            Datagram::Protocol(frame) => {
                if let Some(message) = self.link.handle_frame(now, &frame).and_then(|d| d.decode().ok()) {
                    self.handle_message(now, message);
                }
                self.flush_link();
            }
            Datagram::Audio(bytes) => self.handle_audio(now, bytes),
        }
    }

    fn handle_audio(&mut self, now: Instant, bytes: &[u8]) {
        self.last_server_audio = Some(now);
        self.audio_packets_in += 1;
        if !self.audio_started {
            self.audio_started = true;
            // A 3.9.1 client's burst on its first server audio.
            self.queue(now, &Message::ChannelInfos(self.config.profile.clone()));
            self.queue(now, &Message::ReqConnClientsList);
            self.queue(now, &Message::JitterBufferSize(self.jitter_request()));
            if self.config.channel_levels {
                self.queue(now, &Message::ReqChannelLevelList(1));
            }
            self.events.push_back(ClientEvent::AudioStarted);
        }
        // While the server has not yet switched to counters (or back), accept either layout.
        let mut format = self.format;
        if bytes.len() != format.packet_len() {
            format.with_counter = !format.with_counter;
        }
        let Ok(frames) = format.frames(bytes) else { return };
        for frame in frames {
            self.jitter.put(frame.sequence, frame.coded);
        }
    }

    fn handle_message(&mut self, now: Instant, message: Message) {
        match message {
            Message::ClientId(channel) => {
                self.channel = Some(channel);
                self.events.push_back(ClientEvent::Connected { channel });
            }
            Message::ConnClientsList(list) => self.events.push_back(ClientEvent::ClientList(list)),
            Message::ChatText(text) => self.events.push_back(ClientEvent::Chat(text)),
            Message::MuteStateChanged { channel, muted } => {
                self.events.push_back(ClientEvent::MutedBy { channel, muted })
            }
            Message::RecorderState(state) => self.events.push_back(ClientEvent::RecorderState(state)),
            Message::LicenceRequired(_) => self.events.push_back(ClientEvent::LicenceRequired),
            Message::ReqSplitMessSupport => {
                self.link.set_peer_supports_split(true);
                self.queue(now, &Message::SplitMessSupported);
            }
            Message::ReqTransportProps => self.queue(now, &Message::TransportProps(self.format.to_props())),
            Message::ReqJitterBufferSize => self.queue(now, &Message::JitterBufferSize(self.jitter_request())),
            Message::ReqChannelInfos => self.queue(now, &Message::ChannelInfos(self.config.profile.clone())),
            Message::VersionAndOs(v) if version_at_least(&v.version, (3, 6, 0)) && !self.format.with_counter => {
                self.format.with_counter = true;
                self.queue(now, &Message::TransportProps(self.format.to_props()));
            }
            _ => {}
        }
    }

    fn jitter_request(&self) -> u16 {
        self.config.server_jitter_buffer.unwrap_or(JITTER_BUFFER_AUTO)
    }

    /// Sets `gain` (0…≈2, 1 = unchanged) for `channel` in our mix.
    pub fn set_gain(&mut self, now: Instant, channel: u8, gain: f32) {
        let wire = (gain.max(0.0) * 32768.0).min(65535.0) as u16;
        self.queue(now, &Message::ChannelGain { channel, gain: wire });
    }

    /// Sets `pan` (0 left, 0.5 centre, 1 right) for `channel` in our mix.
    pub fn set_pan(&mut self, now: Instant, channel: u8, pan: f32) {
        let wire = (pan.clamp(0.0, 1.0) * 32768.0) as u16;
        self.queue(now, &Message::ChannelPan { channel, pan: wire });
    }

    pub fn send_chat(&mut self, now: Instant, text: &str) {
        self.queue(now, &Message::ChatText(text.to_string()));
    }

    pub fn set_profile(&mut self, now: Instant, profile: Profile) {
        self.config.profile = profile.clone();
        self.queue(now, &Message::ChannelInfos(profile));
    }

    /// Says goodbye (CLM_DISCONNECTION) and stops.
    pub fn disconnect(&mut self) {
        if self.connected {
            self.transmits.push_back(Message::ClmDisconnection.to_datagram(0));
            self.connected = false;
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
        self.flush_link();
        if self.last_server_audio.is_some_and(|t| now.duration_since(t) > SERVER_TIMEOUT) {
            self.disconnected();
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }

    /// Datagrams waiting in `poll_transmit`.
    pub fn pending_transmits(&self) -> usize {
        self.transmits.len()
    }

    /// The next datagram for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn disconnected(&mut self) {
        if self.connected {
            self.connected = false;
            self.link.reset();
            self.events.push_back(ClientEvent::Disconnected);
        }
    }

    fn queue(&mut self, now: Instant, message: &Message) {
        let _ = self.link.send(now, message);
        self.flush_link();
    }

    fn flush_link(&mut self) {
        while let Some(d) = self.link.poll_transmit() {
            self.transmits.push_back(d);
        }
    }
}

/// `version` ("3.9.1", "3.6.0rc2", …) is at least `min`.
fn version_at_least(version: &str, min: (u32, u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>());
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    (next(), next(), next()) >= min
}

#[cfg(test)]
mod tests {
    use super::version_at_least;

    #[test]
    fn versions() {
        assert!(version_at_least("3.9.1", (3, 6, 0)));
        assert!(version_at_least("3.6.0", (3, 6, 0)));
        assert!(version_at_least("3.10.0", (3, 6, 0)));
        assert!(!version_at_least("3.5.12", (3, 6, 0)));
        assert!(!version_at_least("", (3, 6, 0)));
    }
}
