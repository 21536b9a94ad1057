//! Field types shared by several messages: profiles, client-list and server-list entries, server info,
//! transport properties and the small enumerations of §3.6. Encoding and decoding of each type sit
//! next to each other; limits are the receiver's (§1.3).

use crate::audio::AudioCodec;
use crate::wire::{Reader, Writer};
use crate::DecodeError;
use std::net::{IpAddr, Ipv4Addr};

/// Longest musician name a receiver accepts (UTF-16 units).
pub const MAX_NAME: usize = 16;
/// Longest city (musician or server).
pub const MAX_CITY: usize = 20;
/// Longest server name.
pub const MAX_SERVER_NAME: usize = 20;
/// Longest "internal address" string in a registration.
pub const MAX_INTERNAL_ADDRESS: usize = 15;
/// Longest version string.
pub const MAX_VERSION: usize = 30;
/// Longest chat text as received, server-added HTML included.
pub const MAX_CHAT: usize = 1800;

/// Defines a lossless u8 enumeration: named values plus `Other(u8)` for anything else a peer sends.
macro_rules! u8_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $value:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant,)* Other(u8) }
        impl From<u8> for $name {
            fn from(v: u8) -> Self { match v { $($value => Self::$variant,)* other => Self::Other(other) } }
        }
        impl From<$name> for u8 {
            fn from(v: $name) -> u8 { match v { $($name::$variant => $value,)* $name::Other(other) => other } }
        }
    };
}

u8_enum!(
    /// Operating system of a peer (VERSION_AND_OS, registrations).
    OsType { Windows = 0, MacOs = 1, Linux = 2, Android = 3, Ios = 4, Unix = 5 }
);

u8_enum!(
    /// A musician's self-declared skill level.
    #[derive(Default)]
    SkillLevel { #[default] NotSet = 0, Beginner = 1, Intermediate = 2, Expert = 3 }
);

/// Defines a strict u8 enumeration: values outside the list make the message invalid.
macro_rules! strict_u8_enum {
    ($(#[$m:meta])* $name:ident, $field:literal { $($(#[$vm:meta])* $variant:ident = $value:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant = $value,)* }
        impl $name {
            pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                match r.u8($field)? { $($value => Ok(Self::$variant),)* v => Err(r.invalid($field, u32::from(v))) }
            }
        }
    };
}

strict_u8_enum!(
    /// Licence a server asks its musicians to accept (LICENCE_REQUIRED).
    Licence, "licence" { None = 0, CreativeCommons = 1 }
);

strict_u8_enum!(
    /// What the server's recorder is doing (RECORDER_STATE).
    RecorderState, "state" {
        /// No recording directory, or it is unusable.
        NotInitialised = 1,
        /// Directory usable, recording switched off.
        NotEnabled = 2,
        /// Every musician's input is being written to disk.
        Recording = 3,
    }
);

strict_u8_enum!(
    /// A directory's answer to a registration (CLM_REGISTER_SERVER_RESP).
    RegistrationResult, "result" { Registered = 0, ListFull = 1, VersionTooOld = 2, RequirementsNotFulfilled = 3 }
);

/// A musician's profile as sent in CHANNEL_INFOS and listed in CONN_CLIENTS_LIST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Qt 5 `QLocale::Country` number; 0 = not set.
    pub country: u16,
    /// Index into the Jamulus instrument table; 0 = none.
    pub instrument: u32,
    pub skill: SkillLevel,
    pub name: String,
    pub city: String,
}

impl Profile {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Profile {
            country: r.u16("country")?,
            instrument: r.u32("instrument")?,
            skill: r.u8("skill")?.into(),
            name: r.str16("name", MAX_NAME)?,
            city: r.str16("city", MAX_CITY)?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.country).u32(self.instrument).u8(self.skill.into()).str16(&self.name).str16(&self.city);
    }
}

/// One connected channel in CONN_CLIENTS_LIST / CLM_CONN_CLIENTS_LIST.
///
/// The wire entry has a former IP-address field; this type has no place for an address, the decoder
/// ignores whatever a peer put there and the encoder always writes 0, so no client IP can leak to
/// another client through a list built from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientListEntry {
    pub channel: u8,
    pub profile: Profile,
}

impl ClientListEntry {
    pub(crate) fn read_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut list = Vec::new();
        while !r.is_empty() {
            let channel = r.u8("channel")?;
            let country = r.u16("country")?;
            let instrument = r.u32("instrument")?;
            let skill = r.u8("skill")?.into();
            let _former_ip = r.u32("ip")?;
            let name = r.str16("name", MAX_NAME)?;
            let city = r.str16("city", MAX_CITY)?;
            list.push(ClientListEntry { channel, profile: Profile { country, instrument, skill, name, city } });
        }
        Ok(list)
    }

    pub(crate) fn write_list(list: &[Self], w: &mut Writer<'_>) {
        for e in list {
            let p = &e.profile;
            w.u8(e.channel).u16(p.country).u32(p.instrument).u8(p.skill.into()).u32(0);
            w.str16(&p.name).str16(&p.city);
        }
    }
}

/// Properties of a client's audio stream (NETW_TRANSPORT_PROPS, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportProps {
    /// Bytes per coded frame, including the sequence byte when `flags` is [`TransportProps::WITH_COUNTER`].
    pub base_frame_size: u32,
    /// Frames per datagram: 1, 2 or 4.
    pub block_factor: u16,
    /// 1 (mono) or 2 (stereo).
    pub channels: u8,
    /// Always 48000 in practice; not validated by peers.
    pub sample_rate: u32,
    pub codec: AudioCodec,
    /// 0, or [`TransportProps::WITH_COUNTER`].
    pub flags: u16,
    /// Unused, 0.
    pub codec_arg: i32,
}

impl TransportProps {
    /// `flags` value meaning "a sequence byte follows every coded frame".
    pub const WITH_COUNTER: u16 = 1;

    pub fn with_counter(&self) -> bool {
        self.flags == Self::WITH_COUNTER
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let base_frame_size = r.u32("base_frame_size")?;
        if !(10..=20_000).contains(&base_frame_size) {
            return Err(r.invalid("base_frame_size", base_frame_size));
        }
        let block_factor = r.u16("block_factor")?;
        if ![1, 2, 4].contains(&block_factor) {
            return Err(r.invalid("block_factor", u32::from(block_factor)));
        }
        let channels = r.u8("channels")?;
        if ![1, 2].contains(&channels) {
            return Err(r.invalid("channels", u32::from(channels)));
        }
        let sample_rate = r.u32("sample_rate")?;
        let codec_id = r.u16("codec")?;
        let codec = AudioCodec::from_wire(codec_id).ok_or_else(|| r.invalid("codec", u32::from(codec_id)))?;
        Ok(TransportProps {
            base_frame_size,
            block_factor,
            channels,
            sample_rate,
            codec,
            flags: r.u16("flags")?,
            codec_arg: r.i32("codec_arg")?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.base_frame_size).u16(self.block_factor).u8(self.channels).u32(self.sample_rate);
        w.u16(self.codec.to_wire()).u16(self.flags).i32(self.codec_arg);
    }
}

/// A peer's version report (VERSION_AND_OS, CLM_VERSION_AND_OS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionAndOs {
    pub os: OsType,
    pub version: String,
}

impl VersionAndOs {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(VersionAndOs { os: r.u8("os")?.into(), version: r.str16("version", MAX_VERSION)? })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u8(self.os.into()).str16(&self.version);
    }
}

/// What a server tells a directory about itself (CLM_REGISTER_SERVER(_EX)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// The server's own listening port.
    pub port: u16,
    pub country: u16,
    pub max_clients: u8,
    /// Registered for at least 48 h (directories always say true).
    pub permanent: bool,
    pub name: String,
    /// Dotted address of the server host as it sees itself, or empty. Must parse as an IP literal.
    pub internal_address: String,
    pub city: String,
}

impl ServerInfo {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port = r.u16("port")?;
        let country = r.u16("country")?;
        let max_clients = r.u8("max_clients")?;
        let permanent = r.bool("permanent")?;
        let name = r.str16("name", MAX_SERVER_NAME)?;
        let internal_address = r.str16("internal_address", MAX_INTERNAL_ADDRESS)?;
        if !internal_address.is_empty() && internal_address.parse::<IpAddr>().is_err() {
            return Err(DecodeError::InvalidAddress { message: "server info", field: "internal_address" });
        }
        let city = r.str16("city", MAX_CITY)?;
        Ok(ServerInfo { port, country, max_clients, permanent, name, internal_address, city })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.port).u16(self.country).u8(self.max_clients).bool(self.permanent);
        w.str16(&self.name).str16(&self.internal_address).str16(&self.city);
    }
}

/// One server in a directory's full list (CLM_SERVER_LIST). Entry 0 is the directory itself with
/// address 0.0.0.0 and port 0. The wire's internal-address slot is always empty and has no field here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerListEntry {
    pub address: Ipv4Addr,
    pub port: u16,
    pub country: u16,
    pub max_clients: u8,
    pub permanent: bool,
    pub name: String,
    pub city: String,
}

impl ServerListEntry {
    pub(crate) fn read_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut list = Vec::new();
        while !r.is_empty() {
            let address = r.ipv4("address")?;
            let port = r.u16("port")?;
            let country = r.u16("country")?;
            let max_clients = r.u8("max_clients")?;
            let permanent = r.bool("permanent")?;
            let name = r.str16("name", MAX_SERVER_NAME)?;
            let _internal = r.str16("internal_address", MAX_INTERNAL_ADDRESS)?;
            let city = r.str16("city", MAX_CITY)?;
            list.push(ServerListEntry { address, port, country, max_clients, permanent, name, city });
        }
        Ok(list)
    }

    pub(crate) fn write_list(list: &[Self], w: &mut Writer<'_>) {
        for e in list {
            w.ipv4(e.address).u16(e.port).u16(e.country).u8(e.max_clients).bool(e.permanent);
            w.str16(&e.name).str16("").str16(&e.city);
        }
    }
}

/// One server in a directory's reduced list (CLM_RED_SERVER_LIST): address and name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedServerListEntry {
    pub address: Ipv4Addr,
    pub port: u16,
    pub name: String,
}

impl RedServerListEntry {
    pub(crate) fn read_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut list = Vec::new();
        while !r.is_empty() {
            let address = r.ipv4("address")?;
            let port = r.u16("port")?;
            let name = r.str8("name", MAX_SERVER_NAME)?;
            list.push(RedServerListEntry { address, port, name });
        }
        Ok(list)
    }

    pub(crate) fn write_list(list: &[Self], w: &mut Writer<'_>) {
        for e in list {
            w.ipv4(e.address).u16(e.port).str8(&e.name);
        }
    }
}
