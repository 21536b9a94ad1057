//! `tutti inspect`: prints each UDP datagram of a pcap capture as Jamulus sees it — a protocol frame
//! decoded to its typed message (or the reason it is invalid), or an audio packet with its size.
//! Reads a file; sends nothing.

use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use tutti_proto::{pcap, Datagram, Message};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Capture file in classic pcap format (e.g. from `tcpdump -w`).
    pub capture: PathBuf,
    /// Print protocol frames only, not audio packets.
    #[arg(long)]
    pub proto_only: bool,
    /// Only datagrams from or to this UDP port.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.capture).with_context(|| format!("cannot read the capture {}", args.capture.display()))?;
    let records = pcap::udp_records(&bytes).with_context(|| format!("{} is not usable", args.capture.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut first, mut frames, mut audio) = (None, 0usize, 0usize);
    for (n, record) in records.enumerate() {
        let record = record.with_context(|| format!("{} is damaged", args.capture.display()))?;
        if args.port.is_some_and(|p| record.source.port() != p && record.destination.port() != p) {
            continue;
        }
        let t0 = *first.get_or_insert(record.micros);
        let t = (record.micros - t0) as f64 / 1e6;
        let head = format!("#{:<5} t={t:9.4} {} -> {}", n + 1, record.source, record.destination);
        let line = match Datagram::classify(record.payload) {
            Datagram::Protocol(frame) => {
                frames += 1;
                let decoded = match Message::decode(frame.id, frame.data) {
                    Ok(message) => format!("{message:?}"),
                    Err(error) => format!("invalid: {error}"),
                };
                format!("{head} {} (id {}) cnt={} {decoded}", Message::name(frame.id), frame.id, frame.cnt)
            }
            Datagram::Audio(bytes) => {
                audio += 1;
                if args.proto_only {
                    continue;
                }
                format!("{head} audio {} bytes", bytes.len())
            }
        };
        if writeln!(out, "{line}").is_err() {
            return Ok(()); // stdout closed (e.g. piped into `head`)
        }
    }
    let _ = writeln!(out, "{frames} protocol frames, {audio} audio packets");
    Ok(())
}
