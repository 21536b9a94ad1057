//! The load generator: many emulated Jamulus clients in one thread, each with its own UDP socket, the
//! real handshake (the `tutti-jam` client state machine) and real OPUS frames with sequence counters.
//! One encode per frame period is shared by all emulated clients, and the server's mixes are taken out
//! of each client's jitter buffer without decoding, so that one core drives hundreds of clients.
//!
//! It measures what the benchmark needs: per client the packets sent and received and the frames that
//! were missing when a real client would have played them; its own CPU; and, when given the server's
//! PID, the server's CPU and memory over the same measurement window.

use crate::latency::{self, Capture, ClientLatency, LatencyOptions, Probe};
use crate::process::ProcessSample;
use crate::rx_stamp;
use crate::tone::Tone;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tutti_codec::{Channels, Encoder, FrameSize};
use tutti_jam::{Client, ClientConfig, ClientEvent, Reception, MAX_CHANNELS};
use tutti_proto::audio::SAMPLE_RATE;
use tutti_proto::frame::MAX_DATAGRAM;
use tutti_proto::Datagram;

/// What to emulate and for how long.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Servers to load; client `i` joins `servers[i % servers.len()]`.
    pub servers: Vec<SocketAddr>,
    pub clients: usize,
    /// Client sockets bind to this address (port chosen by the system).
    pub bind_ip: IpAddr,
    /// Audio format and profile (name gets a number appended per client).
    pub config: ClientConfig,
    /// Every listener sets its own gain for every channel, so that no two mixes are alike.
    pub distinct_gains: bool,
    /// Time to connect everybody and let jitter buffers settle before measuring.
    pub warmup: Duration,
    /// The measurement window.
    pub duration: Duration,
    /// The servers' processes, whose CPU and memory are sampled over the window (Linux `/proc`).
    pub server_pids: Vec<u32>,
    /// Latency mode: markers in quiet audio, timed in every client's mix.
    pub latency: Option<LatencyOptions>,
}

/// One emulated client's view of the measurement window.
#[derive(Debug, Clone, Default)]
pub struct ClientReport {
    pub channel: Option<u8>,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Frames a real client would have concealed (missing when their turn came).
    pub frames_missing: u64,
    /// Frames that arrived after their turn.
    pub frames_late: u64,
}

/// A wake-up this much after the deadline counts in [`LoadReport::own_late_wakeups`].
pub const LATE_WAKEUP: Duration = Duration::from_micros(250);

/// The whole run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub window: Duration,
    /// Datagrams per second one client sends (and should receive).
    pub packet_rate: f64,
    pub clients: Vec<ClientReport>,
    /// The load generator's own CPU over the window.
    pub own_cpu: Duration,
    /// Frame periods in which the load generator itself fell behind by more than one period.
    pub own_late_periods: u64,
    /// Frame periods in which the load generator woke more than [`LATE_WAKEUP`] after its deadline: enough for
    /// its frames to miss a server tick placed just after their usual arrival (a hiccup of the instrument).
    pub own_late_wakeups: u64,
    pub periods: u64,
    /// The servers' CPU over the window and their peak resident memory (summed), when PIDs were given.
    pub server_cpu: Option<Duration>,
    pub server_rss_kib: Option<u64>,
    /// Latency mode: per client, in client order.
    pub latency: Option<Vec<ClientLatency>>,
}

impl LoadOptions {
    /// Markers stop this long before the window ends, so that every one can arrive in it.
    fn latency_margin(&self) -> Duration {
        Duration::from_millis(100)
    }
}

impl LoadReport {
    /// Clients that received their mix at full rate: at least 99 % of the packets, and at most 0.5 %
    /// of the frames missing at play-out (what a Jamulus user hears as clean audio).
    pub fn clients_at_full_rate(&self) -> usize {
        let expected = self.packet_rate * self.window.as_secs_f64();
        self.clients
            .iter()
            .filter(|c| {
                let frames = c.packets_received.max(1) as f64;
                c.packets_received as f64 >= 0.99 * expected && (c.frames_missing as f64) <= 0.005 * frames
            })
            .count()
    }

    /// Server CPU per client-second, in milliseconds.
    pub fn server_ms_per_client_second(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        Some(cpu.as_secs_f64() * 1e3 / (self.clients.len() as f64 * self.window.as_secs_f64()))
    }
}

struct Emulated {
    socket: UdpSocket,
    client: Client,
    /// Channels whose gain this listener has set (distinct-gains mode).
    gains_set: [bool; MAX_CHANNELS],
    index: usize,
    at_start: (u64, Reception),
    sent: u64,
    /// Latency mode: the server's audio in the window, with kernel receive times.
    capture: Option<Capture>,
}

/// Runs the load until the window ends or `stop` is set; errors only if sockets cannot be opened.
pub fn run_load(options: &LoadOptions, stop: &AtomicBool) -> io::Result<LoadReport> {
    let Some(&first) = options.servers.first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no server to load"));
    };
    let format = Client::new(first, options.config.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .format();
    let frame = FrameSize::from_samples(format.frame_samples()).map_err(io::Error::other)?;
    let channels = Channels::from_count(usize::from(format.channels)).map_err(io::Error::other)?;
    let mut encoder = Encoder::with_coded_bytes(frame, channels, format.coded_bytes).map_err(io::Error::other)?;
    let mut clients = Vec::with_capacity(options.clients);
    for index in 0..options.clients {
        let socket = UdpSocket::bind(SocketAddr::new(options.bind_ip, 0)).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open UDP socket {} of the load generator: {e}", index + 1))
        })?;
        socket.set_nonblocking(true)?;
        if options.latency.is_some() {
            rx_stamp::enable(&socket)?;
        }
        let mut config = options.config.clone();
        config.profile.name = format!("{}{}", config.profile.name, index + 1);
        let server = options.servers[index % options.servers.len()];
        let client = Client::new(server, config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        clients.push(Emulated {
            socket,
            client,
            gains_set: [false; MAX_CHANNELS],
            index,
            at_start: (0, Reception::default()),
            sent: 0,
            capture: None,
        });
    }

    let period = Duration::from_nanos(format.frame_samples() as u64 * 1_000_000_000 / u64::from(SAMPLE_RATE));
    let frames_per_packet = format.frames_per_packet as f64;
    let mut tone = Tone::new(440.0, usize::from(format.channels));
    let mut probe = match &options.latency {
        Some(latency) => Some(Probe::new(latency.clone(), options.clients, format)?),
        None => None,
    };
    let mut pcm = vec![0.0f32; format.frame_samples() * usize::from(format.channels)];
    let mut coded = vec![0u8; format.coded_bytes];
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];

    let start = Instant::now();
    let window_start = start + options.warmup;
    let window_end = window_start + options.duration;
    let mut measuring = false;
    let mut own_at_start = ProcessSample::default();
    let mut server_at_start = None;
    let mut server_rss = 0u64;
    let mut own_late_periods = 0;
    let mut own_late_wakeups = 0;
    let mut periods = 0;
    let mut next = start;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        let now = Instant::now();
        if now >= window_end {
            break;
        }
        if !measuring && now >= window_start {
            measuring = true;
            own_at_start = ProcessSample::of_self()?;
            server_at_start = Some(servers_sample(&options.server_pids)?);
            for c in &mut clients {
                c.at_start = (c.sent, c.client.reception());
                c.capture = probe.is_some().then(Capture::default);
            }
        }
        if measuring {
            periods += 1;
            if now.duration_since(next) > period {
                own_late_periods += 1;
            }
            if now.duration_since(next) > LATE_WAKEUP {
                own_late_wakeups += 1;
            }
            if periods % 375 == 0 && !options.server_pids.is_empty() {
                server_rss = server_rss.max(servers_sample(&options.server_pids)?.rss_kib);
            }
        }
        next += period;
        if now.duration_since(next) > 20 * period {
            next = now + period;
        }

        match probe.as_mut() {
            Some(probe) => {
                encoder.encode_float(probe.background(), &mut coded).map_err(io::Error::other)?;
                let fpp = format.frames_per_packet as u64;
                probe.encode(now, measuring && now + options.latency_margin() < window_end, |i| {
                    clients[i].sent % fpp == fpp - 1
                })?;
                for c in &mut clients {
                    let frame = probe.frame_of(c.index).unwrap_or(&coded);
                    if c.exchange(now, frame, &mut buf, options.distinct_gains) {
                        probe.sent(c.index, rx_stamp::wall_ns());
                    }
                }
            }
            None => {
                tone.fill(&mut pcm);
                encoder.encode_float(&pcm, &mut coded).map_err(io::Error::other)?;
                for c in &mut clients {
                    c.exchange(now, &coded, &mut buf, options.distinct_gains);
                }
            }
        }
    }
    // The window ends here, before the latency analysis below (decoding every client's capture takes a
    // noticeable time at 150 clients, and counted in the window it made every client look short of packets).
    let window = if measuring { Instant::now().duration_since(window_start) } else { Duration::ZERO };
    let own_cpu = ProcessSample::of_self()?.cpu.saturating_sub(own_at_start.cpu);
    let server_cpu = match (options.server_pids.is_empty(), server_at_start) {
        (false, Some(at_start)) => {
            let end = servers_sample(&options.server_pids)?;
            server_rss = server_rss.max(end.rss_kib);
            Some(end.cpu.saturating_sub(at_start.cpu))
        }
        _ => None,
    };
    let latency = probe.map(|probe| {
        let step = (128 / (format.frame_samples() * format.frames_per_packet)).max(1);
        clients
            .iter()
            .map(|c| match &c.capture {
                Some(capture) => latency::analyse(capture, &probe.markers, c.client.format(), step),
                None => ClientLatency { missed: probe.markers.len(), ..ClientLatency::default() },
            })
            .collect()
    });
    let reports = clients
        .iter_mut()
        .map(|c| {
            let now = c.client.reception();
            let (sent, at) = c.at_start;
            let report = ClientReport {
                channel: c.client.channel(),
                packets_sent: c.sent - sent,
                packets_received: now.audio_packets - at.audio_packets,
                frames_missing: now.lost_frames - at.lost_frames,
                frames_late: now.late_frames - at.late_frames,
            };
            c.client.disconnect();
            c.flush();
            report
        })
        .collect();
    Ok(LoadReport {
        window,
        packet_rate: 1.0 / (period.as_secs_f64() * frames_per_packet),
        clients: reports,
        own_cpu,
        own_late_periods,
        own_late_wakeups,
        periods,
        server_cpu,
        server_rss_kib: (!options.server_pids.is_empty()).then_some(server_rss),
        latency,
    })
}

/// CPU and memory of several processes, summed.
fn servers_sample(pids: &[u32]) -> io::Result<ProcessSample> {
    let mut total = ProcessSample::default();
    for &pid in pids {
        let s = ProcessSample::of(pid)?;
        total.cpu += s.cpu;
        total.rss_kib += s.rss_kib;
    }
    Ok(total)
}

impl Emulated {
    /// One frame period: take what arrived, send our frame and whatever the protocol wants to send,
    /// and play out one frame of the server's mix. True if an audio datagram went out.
    fn exchange(&mut self, now: Instant, coded: &[u8], buf: &mut [u8], distinct_gains: bool) -> bool {
        self.receive(now, buf);
        while let Some(event) = self.client.poll_event() {
            if let (ClientEvent::ClientList(list), true) = (event, distinct_gains) {
                for entry in list {
                    let channel = usize::from(entry.channel);
                    if channel < MAX_CHANNELS && !std::mem::replace(&mut self.gains_set[channel], true) {
                        let gain = distinct_gain(self.index, channel);
                        self.client.set_gain(now, entry.channel, gain);
                    }
                }
            }
        }
        let before = self.sent;
        let queued = self.client.pending_transmits();
        if self.client.send_coded(now, coded).is_ok() {
            self.sent += 1;
        }
        let datagram_out = self.client.pending_transmits() > queued;
        self.client.handle_timeout(now);
        self.flush();
        self.client.skip_audio();
        datagram_out && self.sent > before
    }

    /// Everything waiting on the socket; in latency mode the server's audio is kept, with its
    /// kernel receive time, while measuring.
    fn receive(&mut self, now: Instant, buf: &mut [u8]) {
        loop {
            let received = match &self.capture {
                Some(_) => rx_stamp::receive(&self.socket, buf),
                None => match self.socket.recv_from(buf) {
                    Ok((n, from)) => Ok(Some((n, from, 0))),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                },
            };
            // Nothing more, or an ICMP error (server not up yet) or interruption: next period.
            let Ok(Some((n, from, stamp))) = received else { break };
            let bytes = &buf[..n];
            if let (Some(capture), Datagram::Audio(audio), true) =
                (self.capture.as_mut(), Datagram::classify(bytes), from == self.client.server())
            {
                capture.push(stamp, audio);
            }
            self.client.handle_datagram(now, from, bytes);
        }
    }

    fn flush(&mut self) {
        let server = self.client.server();
        while let Some(datagram) = self.client.poll_transmit() {
            let _ = self.socket.send_to(&datagram, server);
        }
    }
}

/// A gain in 0.5…1.0 that differs between listeners for the same channel and between channels.
fn distinct_gain(listener: usize, channel: usize) -> f32 {
    let h = (listener * 7919 + channel * 104_729 + 13) % 1009;
    0.5 + 0.5 * h as f32 / 1009.0
}

#[cfg(test)]
mod tests {
    use super::distinct_gain;

    #[test]
    fn gains_differ_between_listeners() {
        let a: Vec<f32> = (0..150).map(|c| distinct_gain(1, c)).collect();
        let b: Vec<f32> = (0..150).map(|c| distinct_gain(2, c)).collect();
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        assert!(a.iter().all(|g| (0.5..=1.0).contains(g)));
    }
}
