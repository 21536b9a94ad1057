//! `tutti loadgen`: emulates N Jamulus clients from one process against a jam server (tutti's or a
//! real Jamulus server) and reports, for a measurement window, what each received and what it cost —
//! the load generator's own CPU, and the server's CPU and memory when its PID is given.

use crate::audio_args::{resolve, AudioArgs};
use anyhow::{bail, Context};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tutti_net::{run_load, LoadOptions, LoadReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server, HOST[:PORT]; repeat to spread the clients over several servers (round robin).
    #[arg(short = 'c', long, value_name = "HOST[:PORT]", default_value = "127.0.0.1")]
    pub connect: Vec<String>,
    /// Number of emulated clients (each with its own UDP socket).
    #[arg(short = 'n', long, default_value_t = 10)]
    pub clients: usize,
    /// Seconds to connect and settle before measuring.
    #[arg(long, default_value_t = 3.0, value_name = "SECONDS")]
    pub warmup: f64,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub duration: f64,
    /// Every listener sets its own gain for every channel, so no two personal mixes are alike.
    #[arg(long)]
    pub distinct_gains: bool,
    /// The server's process ID: its CPU time and memory over the window are reported (repeatable;
    /// summed).
    #[arg(long, value_name = "PID")]
    pub server_pid: Vec<u32>,
    /// Local address for the clients' sockets.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Print one line of key=value pairs (for scripts) instead of the table.
    #[arg(long)]
    pub summary: bool,
    #[command(flatten)]
    pub audio: AudioArgs,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.clients == 0 || args.clients > 1000 {
        bail!("--clients must be 1…1000 (got {})", args.clients);
    }
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be positive and --warmup not negative");
    }
    let mut config = args.audio.client_config();
    config.profile.name = "load".into();
    let options = LoadOptions {
        servers: args.connect.iter().map(|c| resolve(c, crate::server::DEFAULT_PORT)).collect::<anyhow::Result<_>>()?,
        clients: args.clients,
        bind_ip: args.bind,
        config,
        distinct_gains: args.distinct_gains,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        server_pids: args.server_pid.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot install the signal handler")?;
    }
    let report = run_load(&options, &stop).context("the load generator failed")?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if args.summary {
        writeln!(out, "{}", summary_line(&report))?;
    } else {
        print_table(&mut out, &report)?;
    }
    Ok(())
}

/// `key=value` pairs: clients, full_rate, window_s, server_ms_per_client_s, server_rss_kib, loadgen_cpu_pct, loadgen_late_pct.
fn summary_line(r: &LoadReport) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    format!(
        "clients={} full_rate={} window_s={:.2} server_ms_per_client_s={} server_rss_kib={} loadgen_cpu_pct={:.1} loadgen_late_pct={:.2} rx_pps={:.1} missing_pct={:.3}",
        r.clients.len(),
        r.clients_at_full_rate(),
        r.window.as_secs_f64(),
        opt(r.server_ms_per_client_second()),
        r.server_rss_kib.map_or("-".to_string(), |v| v.to_string()),
        own_cpu_percent(r),
        100.0 * r.own_late_periods as f64 / r.periods.max(1) as f64,
        mean_rx_rate(r),
        missing_percent(r),
    )
}

fn own_cpu_percent(r: &LoadReport) -> f64 {
    100.0 * r.own_cpu.as_secs_f64() / r.window.as_secs_f64().max(1e-9)
}

fn mean_rx_rate(r: &LoadReport) -> f64 {
    let total: u64 = r.clients.iter().map(|c| c.packets_received).sum();
    total as f64 / r.clients.len().max(1) as f64 / r.window.as_secs_f64().max(1e-9)
}

fn missing_percent(r: &LoadReport) -> f64 {
    let missing: u64 = r.clients.iter().map(|c| c.frames_missing).sum();
    let received: u64 = r.clients.iter().map(|c| c.packets_received).sum();
    100.0 * missing as f64 / received.max(1) as f64
}

fn print_table(out: &mut impl Write, r: &LoadReport) -> std::io::Result<()> {
    let secs = r.window.as_secs_f64().max(1e-9);
    writeln!(out, "client  channel   sent/s   recv/s  missing  late")?;
    for (i, c) in r.clients.iter().enumerate() {
        writeln!(
            out,
            "{:>6}  {:>7}  {:>7.1}  {:>7.1}  {:>7}  {:>4}",
            i + 1,
            c.channel.map_or("-".to_string(), |c| c.to_string()),
            c.packets_sent as f64 / secs,
            c.packets_received as f64 / secs,
            c.frames_missing,
            c.frames_late
        )?;
    }
    writeln!(out)?;
    writeln!(out, "window {:.2} s, expected {:.1} packets/s per client", secs, r.packet_rate)?;
    writeln!(out, "clients at full rate: {} of {}", r.clients_at_full_rate(), r.clients.len())?;
    writeln!(
        out,
        "load generator: {:.1} % of a core, fell behind in {} of {} frame periods",
        own_cpu_percent(r),
        r.own_late_periods,
        r.periods
    )?;
    if let Some(ms) = r.server_ms_per_client_second() {
        writeln!(
            out,
            "server: {:.3} CPU-ms per client-second, {} KiB resident",
            ms,
            r.server_rss_kib.unwrap_or_default()
        )?;
    }
    Ok(())
}
