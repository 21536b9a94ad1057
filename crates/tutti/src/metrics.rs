//! `--metrics ADDR`: the server's numbers in the Prometheus text format over plain HTTP
//! (`GET /metrics`). Off by default; the address is loopback unless the operator names another.
//! Counts only — no addresses, names or chat. One request at a time, each with a short deadline, so
//! a stalled scraper delays only the next scrape, never the jam.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use tracing::info;
use tutti_jam::DropReason;
use tutti_net::server_metrics::{HistogramSnapshot, MetricsSnapshot, ServerMetrics};

/// Serves the metrics of every server (labelled by UDP port) on `bind`.
pub fn start(bind: SocketAddr, servers: Vec<(u16, Arc<ServerMetrics>)>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(bind)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("metrics-http".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &servers);
        }
    })?;
    info!(%local, "metrics listening");
    Ok(local)
}

fn answer(mut stream: TcpStream, servers: &[(u16, Arc<ServerMetrics>)]) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8_lossy(&head);
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if request.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
        let snapshots: Vec<(u16, MetricsSnapshot)> = servers.iter().map(|(p, m)| (*p, m.snapshot())).collect();
        ("200 OK", render(&snapshots))
    } else {
        ("404 Not Found", "only GET /metrics is served here\n".to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())
}

/// The Prometheus text exposition of every server's snapshot.
pub fn render(servers: &[(u16, MetricsSnapshot)]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(&MetricsSnapshot) -> u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (port, m) in servers {
            let _ = writeln!(out, "{name}{{port=\"{port}\"}} {}", value(m));
        }
    };
    family("tutti_clients_connected", "gauge", "Clients connected now.", &|m| m.clients);
    family("tutti_datagrams_received_total", "counter", "UDP datagrams received.", &|m| m.stats.datagrams_in);
    family("tutti_datagrams_sent_total", "counter", "UDP datagrams sent.", &|m| m.stats.datagrams_out);
    family("tutti_audio_packets_received_total", "counter", "Audio datagrams received.", &|m| m.stats.audio_packets_in);
    family("tutti_audio_packets_sent_total", "counter", "Audio datagrams sent.", &|m| m.stats.audio_packets_out);
    family("tutti_ticks_total", "counter", "Audio ticks run.", &|m| m.stats.ticks);
    family("tutti_late_ticks_total", "counter", "Ticks run far behind their time (backlog skipped).", &|m| {
        m.stats.late_ticks
    });
    family("tutti_audio_frames_late_total", "counter", "Client audio frames that arrived after their turn.", &|m| {
        m.frames_late
    });
    family("tutti_audio_frames_missing_total", "counter", "Client audio frames missing and concealed.", &|m| {
        m.frames_lost
    });
    family(
        "tutti_recorder_state",
        "gauge",
        "RECORDER_STATE told to clients: 1 no directory, 2 not recording, 3 recording.",
        &|m| u64::from(m.recorder_state),
    );
    let _ = writeln!(out, "# HELP tutti_datagrams_dropped_total Received datagrams not used, by reason.");
    let _ = writeln!(out, "# TYPE tutti_datagrams_dropped_total counter");
    for (port, m) in servers {
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "tutti_datagrams_dropped_total{{port=\"{port}\",reason=\"{}\"}} {}",
                reason.as_str(),
                m.stats.dropped(reason)
            );
        }
    }
    let mut histogram = |name: &str, help: &str, value: &dyn Fn(&MetricsSnapshot) -> &HistogramSnapshot| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (port, m) in servers {
            let h = value(m);
            for (bound, count) in &h.buckets {
                let _ = writeln!(out, "{name}_bucket{{port=\"{port}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_bucket{{port=\"{port}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{port=\"{port}\"}} {}", h.sum_seconds);
            let _ = writeln!(out, "{name}_count{{port=\"{port}\"}} {}", h.count);
        }
    };
    histogram(
        "tutti_tick_duration_seconds",
        "Time one audio tick took (decode, mix, encode, hand its audio to the kernel) while clients were connected.",
        &|m| &m.ticks,
    );
    histogram(
        "tutti_audio_send_delay_seconds",
        "Per audio datagram sent: time from the start of its tick to its hand-over to the kernel.",
        &|m| &m.sends,
    );
    out
}
