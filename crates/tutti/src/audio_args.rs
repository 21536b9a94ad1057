//! The audio format flags shared by `tutti client` and `tutti loadgen`, with the Jamulus client's
//! defaults (OPUS, 128-sample frames, mono, normal quality, one frame per datagram).

use tutti_jam::ClientConfig;
use tutti_proto::{AudioCodec, Quality};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    /// Opus custom mode, 128-sample frames (the Jamulus default).
    Opus,
    /// Opus custom mode, 64-sample frames (Jamulus "small network buffers").
    Opus64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AudioChannels {
    Mono,
    Stereo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AudioQuality {
    Low,
    Normal,
    High,
}

/// How the client encodes what it sends (and asks the server to send back).
#[derive(Debug, Clone, clap::Args)]
pub struct AudioArgs {
    /// Codec and frame size.
    #[arg(long, value_enum, default_value_t = Codec::Opus)]
    pub codec: Codec,
    /// Mono or stereo stream.
    #[arg(long, value_enum, default_value_t = AudioChannels::Mono)]
    pub audio: AudioChannels,
    /// Audio quality (bit rate).
    #[arg(long, value_enum, default_value_t = AudioQuality::Normal)]
    pub quality: AudioQuality,
    /// Codec frames per datagram: 1, 2 or 4.
    #[arg(long, default_value_t = 1, value_parser = frames_per_packet)]
    pub frames_per_packet: usize,
}

impl AudioArgs {
    /// The client configuration these flags describe (profile left empty).
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            codec: match self.codec {
                Codec::Opus => AudioCodec::Opus,
                Codec::Opus64 => AudioCodec::Opus64,
            },
            channels: match self.audio {
                AudioChannels::Mono => 1,
                AudioChannels::Stereo => 2,
            },
            quality: match self.quality {
                AudioQuality::Low => Quality::Low,
                AudioQuality::Normal => Quality::Normal,
                AudioQuality::High => Quality::High,
            },
            frames_per_packet: self.frames_per_packet,
            ..ClientConfig::default()
        }
    }
}

fn frames_per_packet(s: &str) -> Result<usize, String> {
    match s {
        "1" | "2" | "4" => Ok(s.parse().unwrap_or(1)),
        _ => Err("must be 1, 2 or 4".into()),
    }
}

/// `HOST[:PORT]` → a socket address, with the Jamulus port as default.
pub fn resolve(host: &str, default_port: u16) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context;
    use std::net::ToSocketAddrs;
    let with_port = if host.parse::<std::net::SocketAddr>().is_ok()
        || host.rsplit_once(':').is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{default_port}") // a bare IPv6 address
    } else {
        format!("{host}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host:?} (expected HOST or HOST:PORT)"))?
        .next()
        .with_context(|| format!("{host:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn addresses_with_and_without_port() {
        assert_eq!(resolve("127.0.0.1", 22124).unwrap().to_string(), "127.0.0.1:22124");
        assert_eq!(resolve("127.0.0.1:9", 22124).unwrap().to_string(), "127.0.0.1:9");
        assert_eq!(resolve("::1", 22124).unwrap().to_string(), "[::1]:22124");
        assert_eq!(resolve("[::1]:9", 22124).unwrap().to_string(), "[::1]:9");
        assert!(resolve("no such host.invalid", 22124).is_err());
    }
}
