//! `GET /metrics`: the lobby's counters in the Prometheus text format. Counts only: nothing about any
//! socket, address or message. The gauges are this process's; the counters run from its start.

use crate::{Counts, Refusals};
use socketioxide::socket::DisconnectReason;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why sockets left, in the order of [`Counters::disconnects`] (the label of each).
const REASONS: [&str; 8] = [
    "transport_close",
    "multiple_polling",
    "parse_error",
    "transport_error",
    "heartbeat_timeout",
    "client_disconnect",
    "server_disconnect",
    "closing_server",
];

fn reason_index(reason: DisconnectReason) -> usize {
    match reason {
        DisconnectReason::TransportClose => 0,
        DisconnectReason::MultipleHttpPollingError => 1,
        DisconnectReason::PacketParsingError => 2,
        DisconnectReason::TransportError => 3,
        DisconnectReason::HeartbeatTimeout => 4,
        DisconnectReason::ClientNSDisconnect => 5,
        DisconnectReason::ServerNSDisconnect => 6,
        DisconnectReason::ClosingServer => 7,
    }
}

/// The shell's counters (the core's own are [`Counts`] and [`Refusals`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Sockets that completed the Socket.IO connect.
    pub(crate) connected: AtomicU64,
    /// Sockets gone, by [`REASONS`].
    disconnects: [AtomicU64; REASONS.len()],
    /// Connections refused at once because the process had no file descriptor left.
    pub(crate) refused_no_fd: AtomicU64,
    /// Sockets forgotten because their connection closed before they finished connecting.
    pub(crate) orphans: AtomicU64,
    /// Connections whose accept waited for the accept rate.
    pub(crate) paced: AtomicU64,
    /// Connections held back for their address's pace.
    pub(crate) held: AtomicU64,
    /// Connections refused because their address's turn was too far ahead.
    pub(crate) refused_address: AtomicU64,
    /// Other accept errors (each followed by a short pause).
    pub(crate) accept_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn disconnected(&self, reason: DisconnectReason) {
        self.disconnects[reason_index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the core's gauges and refusals.
    pub(crate) fn render(&self, counts: Counts, refusals: Refusals) -> String {
        let mut out = String::new();
        let mut one = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        one("lobby_sockets", "gauge", "Sockets connected now.", counts.sockets as u64);
        one("lobby_waiting", "gauge", "Sockets waiting for a partner now.", counts.waiting as u64);
        one("lobby_pairs", "gauge", "Pairs now.", counts.pairs as u64);
        let counters = [
            ("lobby_sockets_connected_total", "Sockets connected.", load(&self.connected)),
            (
                "lobby_strikes_total",
                "Events refused for a limit (rate, size, malformed payload, bad proof).",
                refusals.strikes,
            ),
            (
                "lobby_sockets_cut_total",
                "Sockets disconnected for too many refused events within the strike window.",
                refusals.cut,
            ),
            (
                "lobby_connections_refused_total",
                "Connections closed at once because the process was at its open-files limit.",
                load(&self.refused_no_fd),
            ),
            (
                "lobby_sockets_orphaned_total",
                "Sockets whose connection closed while they were connecting, forgotten by the periodic sweep.",
                load(&self.orphans),
            ),
            (
                "lobby_accepts_paced_total",
                "Connections accepted only after waiting for the accept rate (--accept-rate).",
                load(&self.paced),
            ),
            (
                "lobby_accepts_held_total",
                "Connections held back for their address's pace (--accept-rate-per-address) before being served.",
                load(&self.held),
            ),
            (
                "lobby_connections_refused_address_total",
                "Connections refused because their address opened too many too fast (--accept-rate-per-address).",
                load(&self.refused_address),
            ),
            ("lobby_accept_errors_total", "Other errors accepting a connection.", load(&self.accept_errors)),
        ];
        for (name, help, value) in counters {
            one(name, "counter", help, value);
        }
        let name = "lobby_sockets_disconnected_total";
        let _ = writeln!(out, "# HELP {name} Sockets gone, by reason.\n# TYPE {name} counter");
        for (reason, count) in REASONS.iter().zip(&self.disconnects) {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", load(count));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let counters = Counters::default();
        counters.disconnected(DisconnectReason::ServerNSDisconnect);
        counters.refused_no_fd.fetch_add(2, Ordering::Relaxed);
        counters.held.fetch_add(5, Ordering::Relaxed);
        let text = counters.render(Counts { sockets: 3, waiting: 1, pairs: 1 }, Refusals { strikes: 40, cut: 1 });
        for line in [
            "lobby_sockets 3",
            "lobby_strikes_total 40",
            "lobby_sockets_cut_total 1",
            "lobby_connections_refused_total 2",
            "lobby_accepts_held_total 5",
            "lobby_connections_refused_address_total 0",
            "lobby_sockets_disconnected_total{reason=\"server_disconnect\"} 1",
            "lobby_sockets_disconnected_total{reason=\"transport_close\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
