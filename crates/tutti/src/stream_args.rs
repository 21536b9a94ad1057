//! `tutti server --stream`: the listen-in stream's flags and `[server]` keys, merged into the settings
//! `tutti_stream::Stream::start` takes. Off unless `--stream` (or `stream = ...`) is given.

use anyhow::{bail, Context};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tutti_jam::StreamConfig;
use tutti_stream::IcecastTarget;

/// Command-line flags of the listen-in stream (also `[server]` keys, under their long names).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct StreamFlags {
    /// Stream the jam to an audience: serve a page, a live Ogg Opus stream (/stream.opus) and
    /// /status.json over HTTP on [ADDR:]PORT (all addresses if no ADDR). Musicians are told in the chat,
    /// and heard only after their client received that notice. Off by default.
    #[arg(long, value_name = "[ADDR:]PORT")]
    pub stream: Option<String>,
    /// The audience hears the personal mix of the connected musician with this name (a sound
    /// engineer's balance) instead of every channel at unity gain and centre pan.
    #[arg(long, value_name = "NAME", requires = "stream")]
    pub stream_mix_of: Option<String>,
    /// Opus bit rate of the stream in kbit/s, 16…510 [default: 128].
    #[arg(long, value_name = "KBPS", requires = "stream")]
    pub stream_bitrate: Option<u32>,
    /// Do not show the musicians' names on the stream's page.
    #[arg(long, requires = "stream")]
    pub stream_hide_names: bool,
    /// Also push the stream to an Icecast server as a source (HTTP PUT, Ogg Opus), reconnecting if it
    /// goes away.
    #[arg(long, value_name = "icecast://USER:PASS@HOST:PORT/MOUNT", requires = "stream")]
    pub stream_to: Option<String>,
    /// Listeners served at most; more get "503 Service Unavailable" [default: 2000].
    #[arg(long, value_name = "N", requires = "stream")]
    pub stream_max_listeners: Option<u32>,
    /// 20 ms pages written to each listener at once, 1…50: fewer writes per listener for 20 ms more
    /// delay each [default: 3].
    #[arg(long, value_name = "N", requires = "stream")]
    pub stream_pages_per_write: Option<usize>,
}

/// The same keys in the `[server]` table.
#[derive(Debug, Default)]
pub struct FileKeys {
    pub stream: Option<String>,
    pub stream_mix_of: Option<String>,
    pub stream_bitrate: Option<u32>,
    pub stream_hide_names: Option<bool>,
    pub stream_to: Option<String>,
    pub stream_max_listeners: Option<u32>,
    pub stream_pages_per_write: Option<usize>,
}

/// The stream as it will run.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub listen: SocketAddr,
    pub bitrate: u32,
    pub show_names: bool,
    pub icecast: Option<IcecastTarget>,
    pub max_listeners: u32,
    pub pages_per_write: usize,
    pub config: StreamConfig,
}

impl StreamFlags {
    /// Flags over file keys over defaults; `None` when the stream is off.
    pub fn merge(&self, file: FileKeys) -> anyhow::Result<Option<StreamSettings>> {
        let Some(address) = self.stream.clone().or(file.stream) else {
            if file.stream_to.is_some() || file.stream_mix_of.is_some() {
                bail!("stream_to and stream_mix_of need stream = \"[ADDR:]PORT\" in the [server] table");
            }
            return Ok(None);
        };
        let listen = parse_listen(&address)?;
        let kbps = self.stream_bitrate.or(file.stream_bitrate).unwrap_or(tutti_codec::DEFAULT_STREAM_BITRATE / 1000);
        let bitrate = kbps.saturating_mul(1000);
        if !tutti_codec::STREAM_BITRATES.contains(&bitrate) {
            bail!("--stream-bitrate {kbps}: give 16 to 510 (kbit/s)");
        }
        let icecast = match self.stream_to.clone().or(file.stream_to) {
            Some(url) => Some(url.parse::<IcecastTarget>().map_err(|e| anyhow::anyhow!("--stream-to: {e}"))?),
            None => None,
        };
        let max_listeners =
            self.stream_max_listeners.or(file.stream_max_listeners).unwrap_or(tutti_stream::DEFAULT_MAX_LISTENERS);
        if max_listeners == 0 {
            bail!("--stream-max-listeners 0: give at least 1");
        }
        let pages_per_write = self
            .stream_pages_per_write
            .or(file.stream_pages_per_write)
            .unwrap_or(tutti_stream::DEFAULT_PAGES_PER_WRITE);
        if !(1..=50).contains(&pages_per_write) {
            bail!("--stream-pages-per-write {pages_per_write}: give 1 to 50 (20 ms pages)");
        }
        let mix_of = self.stream_mix_of.clone().or(file.stream_mix_of).filter(|n| !n.is_empty());
        Ok(Some(StreamSettings {
            listen,
            bitrate,
            show_names: !(self.stream_hide_names || file.stream_hide_names.unwrap_or(false)),
            icecast,
            max_listeners,
            pages_per_write,
            config: StreamConfig { mix_of },
        }))
    }
}

/// `PORT` (all addresses) or `ADDR:PORT`.
fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    text.parse()
        .with_context(|| format!("--stream {text:?}: give a port (e.g. 8000) or ADDR:PORT (e.g. 127.0.0.1:8000)"))
}

/// Starts the stream for one server: binds its HTTP listener and returns it with the tap to install.
pub fn start(
    settings: &StreamSettings,
    server_name: &str,
    privacy_html: String,
) -> anyhow::Result<(tutti_stream::Stream, tutti_net::StreamSlot)> {
    let options = tutti_stream::StreamOptions {
        listen: settings.listen,
        bitrate: settings.bitrate,
        show_names: settings.show_names,
        server_name: server_name.to_string(),
        privacy_html,
        max_listeners: settings.max_listeners,
        stall: tutti_stream::DEFAULT_STALL,
        pages_per_write: settings.pages_per_write,
        icecast: settings.icecast.clone(),
    };
    let (stream, feed) = tutti_stream::Stream::start(options)?;
    Ok((stream, tutti_net::StreamSlot::new(Box::new(feed), settings.config.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_flags_win_over_the_file() {
        assert!(StreamFlags::default().merge(FileKeys::default()).unwrap().is_none());
        let file = FileKeys { stream: Some("8000".into()), stream_bitrate: Some(96), ..FileKeys::default() };
        let s = StreamFlags { stream_bitrate: Some(64), ..StreamFlags::default() }.merge(file).unwrap().unwrap();
        assert_eq!(s.listen, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(s.bitrate, 64_000);
        assert!(s.show_names && s.icecast.is_none() && s.config.mix_of.is_none());
        assert_eq!(s.pages_per_write, tutti_stream::DEFAULT_PAGES_PER_WRITE);
        let file = FileKeys { stream: Some("8000".into()), stream_pages_per_write: Some(5), ..FileKeys::default() };
        assert_eq!(StreamFlags::default().merge(file).unwrap().unwrap().pages_per_write, 5);
    }

    #[test]
    fn bad_values_say_what_to_give() {
        let flags = |f: StreamFlags| f.merge(FileKeys::default()).unwrap_err().to_string();
        assert!(flags(StreamFlags { stream: Some("nope".into()), ..StreamFlags::default() }).contains("ADDR:PORT"));
        let bitrate = StreamFlags { stream: Some("8000".into()), stream_bitrate: Some(9), ..StreamFlags::default() };
        assert!(flags(bitrate).contains("16 to 510"));
        let to =
            StreamFlags { stream: Some("8000".into()), stream_to: Some("http://x".into()), ..StreamFlags::default() };
        assert!(flags(to).contains("icecast://"));
        let pages =
            StreamFlags { stream: Some("8000".into()), stream_pages_per_write: Some(0), ..StreamFlags::default() };
        assert!(flags(pages).contains("1 to 50"));
        let orphan = FileKeys { stream_to: Some("icecast://a:b@c:1/d".into()), ..FileKeys::default() };
        assert!(StreamFlags::default().merge(orphan).is_err());
    }
}
