//! Every message of the Jamulus 3.9.1 protocol (§3) as one typed enum, with the data-part encoding and
//! decoding of each next to each other. Frame headers, counters and acknowledgement live elsewhere
//! ([`crate::frame`], [`crate::link`]); this module only maps (ID, data) ⇄ [`Message`].

mod types;

pub use types::*;

use crate::frame::write_frame;
use crate::split::SplitPart;
use crate::wire::{Reader, Writer};
use crate::DecodeError;
use std::net::Ipv4Addr;

/// Message IDs as they appear on the wire (u16 LE after the tag).
pub mod id {
    pub const ACKN: u16 = 1;
    pub const JITT_BUF_SIZE: u16 = 10;
    pub const REQ_JITT_BUF_SIZE: u16 = 11;
    pub const NET_BLSI_FACTOR: u16 = 12;
    pub const CHANNEL_GAIN: u16 = 13;
    pub const CONN_CLIENTS_LIST_NAME: u16 = 14;
    pub const SERVER_FULL: u16 = 15;
    pub const REQ_CONN_CLIENTS_LIST: u16 = 16;
    pub const CHANNEL_NAME: u16 = 17;
    pub const CHAT_TEXT: u16 = 18;
    pub const PING_MS: u16 = 19;
    pub const NETW_TRANSPORT_PROPS: u16 = 20;
    pub const REQ_NETW_TRANSPORT_PROPS: u16 = 21;
    pub const DISCONNECTION: u16 = 22;
    pub const REQ_CHANNEL_INFOS: u16 = 23;
    pub const CONN_CLIENTS_LIST: u16 = 24;
    pub const CHANNEL_INFOS: u16 = 25;
    pub const OPUS_SUPPORTED: u16 = 26;
    pub const LICENCE_REQUIRED: u16 = 27;
    pub const REQ_CHANNEL_LEVEL_LIST: u16 = 28;
    pub const VERSION_AND_OS: u16 = 29;
    pub const CHANNEL_PAN: u16 = 30;
    pub const MUTE_STATE_CHANGED: u16 = 31;
    pub const CLIENT_ID: u16 = 32;
    pub const RECORDER_STATE: u16 = 33;
    pub const REQ_SPLIT_MESS_SUPPORT: u16 = 34;
    pub const SPLIT_MESS_SUPPORTED: u16 = 35;
    pub const CLM_PING_MS: u16 = 1001;
    pub const CLM_PING_MS_WITHNUMCLIENTS: u16 = 1002;
    pub const CLM_SERVER_FULL: u16 = 1003;
    pub const CLM_REGISTER_SERVER: u16 = 1004;
    pub const CLM_UNREGISTER_SERVER: u16 = 1005;
    pub const CLM_SERVER_LIST: u16 = 1006;
    pub const CLM_REQ_SERVER_LIST: u16 = 1007;
    pub const CLM_SEND_EMPTY_MESSAGE: u16 = 1008;
    pub const CLM_EMPTY_MESSAGE: u16 = 1009;
    pub const CLM_DISCONNECTION: u16 = 1010;
    pub const CLM_VERSION_AND_OS: u16 = 1011;
    pub const CLM_REQ_VERSION_AND_OS: u16 = 1012;
    pub const CLM_CONN_CLIENTS_LIST: u16 = 1013;
    pub const CLM_REQ_CONN_CLIENTS_LIST: u16 = 1014;
    pub const CLM_CHANNEL_LEVEL_LIST: u16 = 1015;
    pub const CLM_REGISTER_SERVER_RESP: u16 = 1016;
    pub const CLM_REGISTER_SERVER_EX: u16 = 1017;
    pub const CLM_RED_SERVER_LIST: u16 = 1018;
    pub const SPECIAL_SPLIT_MESSAGE: u16 = 2001;

    /// IDs that 3.9.1 defines but neither sends nor acts on (they are still acknowledged).
    pub const OBSOLETE: [u16; 6] =
        [NET_BLSI_FACTOR, CONN_CLIENTS_LIST_NAME, SERVER_FULL, CHANNEL_NAME, PING_MS, DISCONNECTION];
}

/// True for IDs 1000…1999: connection-less, never acknowledged, counter always 0.
pub fn is_connection_less(id: u16) -> bool {
    (1000..2000).contains(&id)
}

/// The `JITT_BUF_SIZE` value that means "automatic".
pub const JITTER_BUFFER_AUTO: u16 = 21;

/// One protocol message. Variant names follow the Jamulus message names; `Clm*` are connection-less.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Acknowledges the connection message with this ID (the frame's counter is the acked counter).
    Ack {
        id: u16,
    },
    /// Jitter buffer size in blocks: 1…20, or [`JITTER_BUFFER_AUTO`].
    JitterBufferSize(u16),
    ReqJitterBufferSize,
    /// "In my mix, play `channel` at `gain` / 32768."
    ChannelGain {
        channel: u8,
        gain: u16,
    },
    ReqConnClientsList,
    ChatText(String),
    TransportProps(TransportProps),
    ReqTransportProps,
    ReqChannelInfos,
    ConnClientsList(Vec<ClientListEntry>),
    ChannelInfos(Profile),
    OpusSupported,
    LicenceRequired(Licence),
    /// Legacy level-list opt-in (3.9.1 clients still send 1; 3.9.1 servers only acknowledge it).
    ReqChannelLevelList(u8),
    VersionAndOs(VersionAndOs),
    /// "In my mix, pan `channel` to `pan` / 32768" (0 left, 0x4000 centre, 0x8000 right).
    ChannelPan {
        channel: u8,
        pan: u16,
    },
    /// "The client on `channel` has (un)muted you in their mix."
    MuteStateChanged {
        channel: u8,
        muted: bool,
    },
    ClientId(u8),
    RecorderState(RecorderState),
    ReqSplitMessSupport,
    SplitMessSupported,
    /// One of the IDs in [`id::OBSOLETE`], carried unread.
    Obsolete {
        id: u16,
        data: Vec<u8>,
    },
    /// A part of a split connection message (§1.5).
    Split(SplitPart),
    ClmPingMs(u32),
    ClmPingMsWithNumClients {
        time: u32,
        clients: u8,
    },
    ClmServerFull,
    /// Legacy registration without OS and version (not sent by 3.9.1).
    ClmRegisterServer(ServerInfo),
    ClmUnregisterServer,
    ClmServerList(Vec<ServerListEntry>),
    ClmReqServerList,
    /// Directory → registered server: "send an empty message to this address" (hole punching).
    ClmSendEmptyMessage {
        address: Ipv4Addr,
        port: u16,
    },
    ClmEmptyMessage,
    ClmDisconnection,
    ClmVersionAndOs(VersionAndOs),
    ClmReqVersionAndOs,
    ClmConnClientsList(Vec<ClientListEntry>),
    ClmReqConnClientsList,
    /// One level (0…9) per connected channel, in channel order.
    ClmChannelLevelList(Vec<u8>),
    ClmRegisterServerResp(RegistrationResult),
    ClmRegisterServerEx {
        info: ServerInfo,
        os: OsType,
        version: String,
    },
    ClmRedServerList(Vec<RedServerListEntry>),
}

/// Most levels a CLM_CHANNEL_LEVEL_LIST may carry (the protocol's channel maximum).
pub const MAX_LEVELS: usize = 150;

impl Message {
    /// The wire ID of this message.
    pub fn id(&self) -> u16 {
        use Message::*;
        match self {
            Ack { .. } => id::ACKN,
            JitterBufferSize(_) => id::JITT_BUF_SIZE,
            ReqJitterBufferSize => id::REQ_JITT_BUF_SIZE,
            ChannelGain { .. } => id::CHANNEL_GAIN,
            ReqConnClientsList => id::REQ_CONN_CLIENTS_LIST,
            ChatText(_) => id::CHAT_TEXT,
            TransportProps(_) => id::NETW_TRANSPORT_PROPS,
            ReqTransportProps => id::REQ_NETW_TRANSPORT_PROPS,
            ReqChannelInfos => id::REQ_CHANNEL_INFOS,
            ConnClientsList(_) => id::CONN_CLIENTS_LIST,
            ChannelInfos(_) => id::CHANNEL_INFOS,
            OpusSupported => id::OPUS_SUPPORTED,
            LicenceRequired(_) => id::LICENCE_REQUIRED,
            ReqChannelLevelList(_) => id::REQ_CHANNEL_LEVEL_LIST,
            VersionAndOs(_) => id::VERSION_AND_OS,
            ChannelPan { .. } => id::CHANNEL_PAN,
            MuteStateChanged { .. } => id::MUTE_STATE_CHANGED,
            ClientId(_) => id::CLIENT_ID,
            RecorderState(_) => id::RECORDER_STATE,
            ReqSplitMessSupport => id::REQ_SPLIT_MESS_SUPPORT,
            SplitMessSupported => id::SPLIT_MESS_SUPPORTED,
            Obsolete { id, .. } => *id,
            Split(_) => id::SPECIAL_SPLIT_MESSAGE,
            ClmPingMs(_) => id::CLM_PING_MS,
            ClmPingMsWithNumClients { .. } => id::CLM_PING_MS_WITHNUMCLIENTS,
            ClmServerFull => id::CLM_SERVER_FULL,
            ClmRegisterServer(_) => id::CLM_REGISTER_SERVER,
            ClmUnregisterServer => id::CLM_UNREGISTER_SERVER,
            ClmServerList(_) => id::CLM_SERVER_LIST,
            ClmReqServerList => id::CLM_REQ_SERVER_LIST,
            ClmSendEmptyMessage { .. } => id::CLM_SEND_EMPTY_MESSAGE,
            ClmEmptyMessage => id::CLM_EMPTY_MESSAGE,
            ClmDisconnection => id::CLM_DISCONNECTION,
            ClmVersionAndOs(_) => id::CLM_VERSION_AND_OS,
            ClmReqVersionAndOs => id::CLM_REQ_VERSION_AND_OS,
            ClmConnClientsList(_) => id::CLM_CONN_CLIENTS_LIST,
            ClmReqConnClientsList => id::CLM_REQ_CONN_CLIENTS_LIST,
            ClmChannelLevelList(_) => id::CLM_CHANNEL_LEVEL_LIST,
            ClmRegisterServerResp(_) => id::CLM_REGISTER_SERVER_RESP,
            ClmRegisterServerEx { .. } => id::CLM_REGISTER_SERVER_EX,
            ClmRedServerList(_) => id::CLM_RED_SERVER_LIST,
        }
    }

    /// True for connection-less (CLM) messages.
    pub fn is_connection_less(&self) -> bool {
        is_connection_less(self.id())
    }

    /// The Jamulus name of a message ID, for logs and errors.
    pub fn name(id: u16) -> &'static str {
        name_of(id)
    }

    /// Decodes the data part of a message with the given ID. Any malformed input is an error, never a panic.
    pub fn decode(id: u16, data: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader::new(name_of(id), data);
        let message = decode_fields(id, &mut r)?;
        r.finish()?;
        Ok(message)
    }

    /// Appends this message's data part to `out`.
    pub fn encode_data(&self, out: &mut Vec<u8>) {
        encode_fields(self, &mut Writer::new(out));
    }

    /// This message's data part.
    pub fn data(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_data(&mut out);
        out
    }

    /// The complete datagram for this message with counter `cnt` (0 for CLM messages).
    pub fn to_datagram(&self, cnt: u8) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, self.id(), cnt, &self.data());
        out
    }
}

fn decode_fields(message_id: u16, r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    use Message as M;
    Ok(match message_id {
        id::ACKN => M::Ack { id: r.u16("id")? },
        id::JITT_BUF_SIZE => {
            let blocks = r.u16("blocks")?;
            if !(1..=JITTER_BUFFER_AUTO).contains(&blocks) {
                return Err(r.invalid("blocks", u32::from(blocks)));
            }
            M::JitterBufferSize(blocks)
        }
        id::REQ_JITT_BUF_SIZE => M::ReqJitterBufferSize,
        id::CHANNEL_GAIN => M::ChannelGain { channel: r.u8("channel")?, gain: r.u16("gain")? },
        id::REQ_CONN_CLIENTS_LIST => M::ReqConnClientsList,
        id::CHAT_TEXT => M::ChatText(r.str16("text", MAX_CHAT)?),
        id::NETW_TRANSPORT_PROPS => M::TransportProps(TransportProps::read(r)?),
        id::REQ_NETW_TRANSPORT_PROPS => M::ReqTransportProps,
        id::REQ_CHANNEL_INFOS => M::ReqChannelInfos,
        id::CONN_CLIENTS_LIST => M::ConnClientsList(ClientListEntry::read_list(r)?),
        id::CHANNEL_INFOS => M::ChannelInfos(Profile::read(r)?),
        id::OPUS_SUPPORTED => M::OpusSupported,
        id::LICENCE_REQUIRED => M::LicenceRequired(Licence::read(r)?),
        id::REQ_CHANNEL_LEVEL_LIST => M::ReqChannelLevelList(r.u8("enable")?),
        id::VERSION_AND_OS => M::VersionAndOs(VersionAndOs::read(r)?),
        id::CHANNEL_PAN => M::ChannelPan { channel: r.u8("channel")?, pan: r.u16("pan")? },
        id::MUTE_STATE_CHANGED => M::MuteStateChanged { channel: r.u8("channel")?, muted: r.bool("muted")? },
        id::CLIENT_ID => M::ClientId(r.u8("channel")?),
        id::RECORDER_STATE => M::RecorderState(RecorderState::read(r)?),
        id::REQ_SPLIT_MESS_SUPPORT => M::ReqSplitMessSupport,
        id::SPLIT_MESS_SUPPORTED => M::SplitMessSupported,
        obsolete if id::OBSOLETE.contains(&obsolete) => {
            M::Obsolete { id: obsolete, data: r.take(r.remaining(), "data")?.to_vec() }
        }
        id::SPECIAL_SPLIT_MESSAGE => M::Split(SplitPart::read(r)?),
        id::CLM_PING_MS => M::ClmPingMs(r.u32("time")?),
        id::CLM_PING_MS_WITHNUMCLIENTS => {
            M::ClmPingMsWithNumClients { time: r.u32("time")?, clients: r.u8("clients")? }
        }
        id::CLM_SERVER_FULL => M::ClmServerFull,
        id::CLM_REGISTER_SERVER => M::ClmRegisterServer(ServerInfo::read(r)?),
        id::CLM_UNREGISTER_SERVER => M::ClmUnregisterServer,
        id::CLM_SERVER_LIST => M::ClmServerList(ServerListEntry::read_list(r)?),
        id::CLM_REQ_SERVER_LIST => M::ClmReqServerList,
        id::CLM_SEND_EMPTY_MESSAGE => M::ClmSendEmptyMessage { address: r.ipv4("address")?, port: r.u16("port")? },
        id::CLM_EMPTY_MESSAGE => M::ClmEmptyMessage,
        id::CLM_DISCONNECTION => M::ClmDisconnection,
        id::CLM_VERSION_AND_OS => M::ClmVersionAndOs(VersionAndOs::read(r)?),
        id::CLM_REQ_VERSION_AND_OS => M::ClmReqVersionAndOs,
        id::CLM_CONN_CLIENTS_LIST => M::ClmConnClientsList(ClientListEntry::read_list(r)?),
        id::CLM_REQ_CONN_CLIENTS_LIST => M::ClmReqConnClientsList,
        id::CLM_CHANNEL_LEVEL_LIST => M::ClmChannelLevelList(read_levels(r)?),
        id::CLM_REGISTER_SERVER_RESP => M::ClmRegisterServerResp(RegistrationResult::read(r)?),
        id::CLM_REGISTER_SERVER_EX => M::ClmRegisterServerEx {
            info: ServerInfo::read(r)?,
            os: r.u8("os")?.into(),
            version: r.str16("version", MAX_VERSION)?,
        },
        id::CLM_RED_SERVER_LIST => M::ClmRedServerList(RedServerListEntry::read_list(r)?),
        unknown => return Err(DecodeError::UnknownId(unknown)),
    })
}

fn encode_fields(message: &Message, w: &mut Writer<'_>) {
    use Message as M;
    match message {
        M::Ack { id } => {
            w.u16(*id);
        }
        M::JitterBufferSize(blocks) => {
            w.u16(*blocks);
        }
        M::ChannelGain { channel, gain } => {
            w.u8(*channel).u16(*gain);
        }
        M::ChannelPan { channel, pan } => {
            w.u8(*channel).u16(*pan);
        }
        M::ChatText(text) => {
            w.str16(text);
        }
        M::TransportProps(props) => props.write(w),
        M::ConnClientsList(list) | M::ClmConnClientsList(list) => ClientListEntry::write_list(list, w),
        M::ChannelInfos(profile) => profile.write(w),
        M::LicenceRequired(licence) => {
            w.u8(*licence as u8);
        }
        M::ReqChannelLevelList(enable) => {
            w.u8(*enable);
        }
        M::VersionAndOs(v) | M::ClmVersionAndOs(v) => v.write(w),
        M::MuteStateChanged { channel, muted } => {
            w.u8(*channel).bool(*muted);
        }
        M::ClientId(channel) => {
            w.u8(*channel);
        }
        M::RecorderState(state) => {
            w.u8(*state as u8);
        }
        M::Obsolete { data, .. } => {
            for b in data {
                w.u8(*b);
            }
        }
        M::Split(part) => part.write(w),
        M::ClmPingMs(time) => {
            w.u32(*time);
        }
        M::ClmPingMsWithNumClients { time, clients } => {
            w.u32(*time).u8(*clients);
        }
        M::ClmRegisterServer(info) => info.write(w),
        M::ClmServerList(list) => ServerListEntry::write_list(list, w),
        M::ClmSendEmptyMessage { address, port } => {
            w.ipv4(*address).u16(*port);
        }
        M::ClmChannelLevelList(levels) => write_levels(levels, w),
        M::ClmRegisterServerResp(result) => {
            w.u8(*result as u8);
        }
        M::ClmRegisterServerEx { info, os, version } => {
            info.write(w);
            w.u8((*os).into()).str16(version);
        }
        M::ClmRedServerList(list) => RedServerListEntry::write_list(list, w),
        M::ReqJitterBufferSize
        | M::ReqConnClientsList
        | M::ReqTransportProps
        | M::ReqChannelInfos
        | M::OpusSupported
        | M::ReqSplitMessSupport
        | M::SplitMessSupported
        | M::ClmServerFull
        | M::ClmUnregisterServer
        | M::ClmReqServerList
        | M::ClmEmptyMessage
        | M::ClmDisconnection
        | M::ClmReqVersionAndOs
        | M::ClmReqConnClientsList => {}
    }
}

/// Level nibbles: channel 2k low, 2k+1 high; a high nibble of 0xF pads an odd count and ends the list.
fn read_levels(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let n = r.remaining();
    if 2 * n > MAX_LEVELS {
        return Err(r.invalid("levels", n as u32));
    }
    let bytes = r.take(n, "levels")?;
    let mut levels = Vec::with_capacity(2 * n);
    for &b in bytes {
        levels.push(b & 0x0F);
        if b >> 4 == 0x0F {
            break;
        }
        levels.push(b >> 4);
    }
    Ok(levels)
}

fn write_levels(levels: &[u8], w: &mut Writer<'_>) {
    for pair in levels.chunks(2) {
        let low = pair[0] & 0x0F;
        let high = pair.get(1).map_or(0x0F, |h| h & 0x0F);
        w.u8(low | high << 4);
    }
}

fn name_of(message_id: u16) -> &'static str {
    match message_id {
        id::ACKN => "ACKN",
        id::JITT_BUF_SIZE => "JITT_BUF_SIZE",
        id::REQ_JITT_BUF_SIZE => "REQ_JITT_BUF_SIZE",
        id::NET_BLSI_FACTOR => "NET_BLSI_FACTOR",
        id::CHANNEL_GAIN => "CHANNEL_GAIN",
        id::CONN_CLIENTS_LIST_NAME => "CONN_CLIENTS_LIST_NAME",
        id::SERVER_FULL => "SERVER_FULL",
        id::REQ_CONN_CLIENTS_LIST => "REQ_CONN_CLIENTS_LIST",
        id::CHANNEL_NAME => "CHANNEL_NAME",
        id::CHAT_TEXT => "CHAT_TEXT",
        id::PING_MS => "PING_MS",
        id::NETW_TRANSPORT_PROPS => "NETW_TRANSPORT_PROPS",
        id::REQ_NETW_TRANSPORT_PROPS => "REQ_NETW_TRANSPORT_PROPS",
        id::DISCONNECTION => "DISCONNECTION",
        id::REQ_CHANNEL_INFOS => "REQ_CHANNEL_INFOS",
        id::CONN_CLIENTS_LIST => "CONN_CLIENTS_LIST",
        id::CHANNEL_INFOS => "CHANNEL_INFOS",
        id::OPUS_SUPPORTED => "OPUS_SUPPORTED",
        id::LICENCE_REQUIRED => "LICENCE_REQUIRED",
        id::REQ_CHANNEL_LEVEL_LIST => "REQ_CHANNEL_LEVEL_LIST",
        id::VERSION_AND_OS => "VERSION_AND_OS",
        id::CHANNEL_PAN => "CHANNEL_PAN",
        id::MUTE_STATE_CHANGED => "MUTE_STATE_CHANGED",
        id::CLIENT_ID => "CLIENT_ID",
        id::RECORDER_STATE => "RECORDER_STATE",
        id::REQ_SPLIT_MESS_SUPPORT => "REQ_SPLIT_MESS_SUPPORT",
        id::SPLIT_MESS_SUPPORTED => "SPLIT_MESS_SUPPORTED",
        id::CLM_PING_MS => "CLM_PING_MS",
        id::CLM_PING_MS_WITHNUMCLIENTS => "CLM_PING_MS_WITHNUMCLIENTS",
        id::CLM_SERVER_FULL => "CLM_SERVER_FULL",
        id::CLM_REGISTER_SERVER => "CLM_REGISTER_SERVER",
        id::CLM_UNREGISTER_SERVER => "CLM_UNREGISTER_SERVER",
        id::CLM_SERVER_LIST => "CLM_SERVER_LIST",
        id::CLM_REQ_SERVER_LIST => "CLM_REQ_SERVER_LIST",
        id::CLM_SEND_EMPTY_MESSAGE => "CLM_SEND_EMPTY_MESSAGE",
        id::CLM_EMPTY_MESSAGE => "CLM_EMPTY_MESSAGE",
        id::CLM_DISCONNECTION => "CLM_DISCONNECTION",
        id::CLM_VERSION_AND_OS => "CLM_VERSION_AND_OS",
        id::CLM_REQ_VERSION_AND_OS => "CLM_REQ_VERSION_AND_OS",
        id::CLM_CONN_CLIENTS_LIST => "CLM_CONN_CLIENTS_LIST",
        id::CLM_REQ_CONN_CLIENTS_LIST => "CLM_REQ_CONN_CLIENTS_LIST",
        id::CLM_CHANNEL_LEVEL_LIST => "CLM_CHANNEL_LEVEL_LIST",
        id::CLM_REGISTER_SERVER_RESP => "CLM_REGISTER_SERVER_RESP",
        id::CLM_REGISTER_SERVER_EX => "CLM_REGISTER_SERVER_EX",
        id::CLM_RED_SERVER_LIST => "CLM_RED_SERVER_LIST",
        id::SPECIAL_SPLIT_MESSAGE => "SPECIAL_SPLIT_MESSAGE",
        _ => "unknown message",
    }
}
