//! The jam server's input side: datagrams from clients (audio into jitter buffers, protocol frames
//! through each channel's reliable link), the messages they carry, and connection-less requests
//! within each source's reply budget.

use super::{own_version, Event, Server, REPLIES_PER_SECOND};
use crate::channel::{Channel, MAX_CHANNELS};
use crate::chat::{chat_line, welcome_line};
use crate::mix::{gain_from_wire, pan_from_wire};
use crate::stats::DropReason;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tutti_proto::frame::{MAX_DATAGRAM, OVERHEAD};
use tutti_proto::message::Licence;
use tutti_proto::{crc16, AudioCodec, AudioFormat, Datagram, Frame, Message, Quality};

impl Server {
    /// Takes one datagram received from `from` at `now` (when it reached the host: the tick is
    /// placed after the arrivals of audio).
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
        self.send_stream_notice(now, index);
        self.handle_audio(now, index, bytes);
    }

    fn handle_audio(&mut self, now: Instant, index: usize, bytes: &[u8]) {
        let period = self.tick_period();
        let Some(channel) = self.channels[index].as_mut() else { return };
        channel.last_audio = now;
        self.stats.audio_packets_in += 1;
        if let Some(next) = self.next_tick {
            self.phase.arrival(now, next, period);
        }
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
                self.broadcast_client_list(now, Some(index));
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
}

/// Every size a Jamulus 3.9.1 client's audio datagram can have: the coded sizes of the quality table,
/// with or without the sequence byte, one, two or four frames per datagram.
pub(super) fn jamulus_audio_sizes() -> Vec<usize> {
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
