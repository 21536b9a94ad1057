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
use tutti_net::latency::{quantile, LatencyOptions};
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
    /// Latency mode: a few clients put a short burst into otherwise quiet audio; every client times
    /// its arrival in its own mix (kernel receive time) and the round trips are reported.
    #[arg(long)]
    pub latency: bool,
    /// Latency mode: clients that send markers, spread over the client list.
    #[arg(long, default_value_t = 4, value_name = "K")]
    pub markers: usize,
    /// Latency mode: milliseconds between markers.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub marker_interval: u64,
    /// Jitter buffer size every client asks of the server, 1…20 blocks (default: auto).
    #[arg(long, value_name = "BLOCKS", value_parser = clap::value_parser!(u16).range(1..=20))]
    pub jitter_buffer: Option<u16>,
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
    config.server_jitter_buffer = args.jitter_buffer;
    if args.latency && (args.markers == 0 || args.marker_interval < 20) {
        bail!("--markers must be at least 1 and --marker-interval at least 20 ms");
    }
    let options = LoadOptions {
        servers: args.connect.iter().map(|c| resolve(c, crate::server::DEFAULT_PORT)).collect::<anyhow::Result<_>>()?,
        clients: args.clients,
        bind_ip: args.bind,
        config,
        distinct_gains: args.distinct_gains,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        server_pids: args.server_pid.clone(),
        latency: args
            .latency
            .then(|| LatencyOptions { senders: args.markers, interval: Duration::from_millis(args.marker_interval) }),
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

/// `key=value` pairs: clients, full_rate, window_s, server_ms_per_client_s, server_rss_kib, loadgen_cpu_pct,
/// loadgen_late_pct, loadgen_late_wakeups (periods it woke over 0.25 ms late), rx_pps, missing_pct; in latency mode also the round trip over all markers and
/// clients (rt_mean_ms, rt_p50_ms, rt_p99_ms, rt_max_ms), the spread of the per-client means
/// (rt_spread_ms, best to worst), markers timed and missed, and the mean per-client arrival jitter.
fn summary_line(r: &LoadReport) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let mut line = format!(
        "clients={} full_rate={} window_s={:.2} server_ms_per_client_s={} server_rss_kib={} loadgen_cpu_pct={:.1} loadgen_late_pct={:.2} loadgen_late_wakeups={} rx_pps={:.1} missing_pct={:.3}",
        r.clients.len(),
        r.clients_at_full_rate(),
        r.window.as_secs_f64(),
        opt(r.server_ms_per_client_second()),
        r.server_rss_kib.map_or("-".to_string(), |v| v.to_string()),
        own_cpu_percent(r),
        100.0 * r.own_late_periods as f64 / r.periods.max(1) as f64,
        r.own_late_wakeups,
        mean_rx_rate(r),
        missing_percent(r),
    );
    if let Some(l) = latency_summary(r) {
        line += &format!(
            " rt_mean_ms={} rt_p50_ms={} rt_p99_ms={} rt_max_ms={} rt_spread_ms={} rt_samples={} rt_missed={} jitter_ms={}",
            opt(l.mean),
            opt(l.p50),
            opt(l.p99),
            opt(l.max),
            opt(l.spread),
            l.samples,
            l.missed,
            opt(l.jitter)
        );
    }
    line
}

/// The latency mode's numbers over all clients.
struct LatencySummary {
    mean: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
    /// Worst per-client mean minus best.
    spread: Option<f64>,
    samples: usize,
    missed: usize,
    /// Mean over clients of their arrival jitter.
    jitter: Option<f64>,
}

fn latency_summary(r: &LoadReport) -> Option<LatencySummary> {
    let clients = r.latency.as_ref()?;
    let mut all: Vec<f64> = clients.iter().flat_map(|c| c.round_trips_ms.iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    let means: Vec<f64> = clients.iter().filter_map(|c| c.mean_ms()).collect();
    let jitters: Vec<f64> = clients.iter().filter_map(|c| c.jitter_ms).collect();
    let average = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    Some(LatencySummary {
        mean: average(&all),
        p50: quantile(&all, 0.5),
        p99: quantile(&all, 0.99),
        max: all.last().copied(),
        spread: means.iter().copied().reduce(f64::max).zip(means.iter().copied().reduce(f64::min)).map(|(a, b)| a - b),
        samples: all.len(),
        missed: clients.iter().map(|c| c.missed).sum(),
        jitter: average(&jitters),
    })
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
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let latency = r.latency.as_deref().unwrap_or_default();
    let heading = if latency.is_empty() { "" } else { "  rt mean ms  jitter ms" };
    writeln!(out, "client  channel   sent/s   recv/s  missing  late{heading}")?;
    for (i, c) in r.clients.iter().enumerate() {
        let timed =
            latency.get(i).map_or(String::new(), |l| format!("  {:>10}  {:>9}", ms(l.mean_ms()), ms(l.jitter_ms)));
        writeln!(
            out,
            "{:>6}  {:>7}  {:>7.1}  {:>7.1}  {:>7}  {:>4}{timed}",
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
    if let Some(l) = latency_summary(r) {
        writeln!(
            out,
            "round trip (marker sent to its onset in each mix), ms: mean {} p50 {} p99 {} max {}; best-to-worst client {}; {} timed, {} missed",
            ms(l.mean),
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            ms(l.spread),
            l.samples,
            l.missed
        )?;
    }
    writeln!(
        out,
        "load generator: {:.1} % of a core, fell behind in {} of {} frame periods, woke over 0.25 ms late in {}",
        own_cpu_percent(r),
        r.own_late_periods,
        r.periods,
        r.own_late_wakeups
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
