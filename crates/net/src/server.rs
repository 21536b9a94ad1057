//! The UDP shell of the jam server: one thread that owns the socket, sleeps precisely until the
//! state machine's next deadline (the 2.67 ms / 1.33 ms audio tick), drains every datagram that
//! arrived meanwhile, runs the tick and sends what it produced. While no client is connected it
//! blocks on the socket instead, so an idle server uses no CPU.
//!
//! A thread rather than an async task: tokio's timer has millisecond resolution, coarser than the
//! tick; `thread::sleep` (nanosleep) is precise to tens of microseconds.

use crate::batch::{RecvBatch, SendBatch, BATCH};
use crate::connection_log::ConnectionLog;
use crate::rx_stamp;
use crate::server_control::{RecordingControl, ServerCommand, ServerSnapshot};
use crate::server_metrics::ServerMetrics;
use crate::socket::bind_udp;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use tutti_jam::{Event, Server, ServerConfig, Stats};
use tutti_proto::frame::MAX_DATAGRAM;
use tutti_proto::Datagram;

/// How often an idle server looks at its stop flag and its commands.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often the counters are copied for `--metrics`.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Everything needed to run a server on a socket.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub bind: SocketAddr,
    pub config: ServerConfig,
    /// Connection log file (`--log`); none by default.
    pub log_file: Option<PathBuf>,
    /// IP TOS byte (`--qos`, Jamulus default 128).
    pub qos: u8,
    /// Send CLM_DISCONNECTION to every client on quit (`--discononquit`).
    pub disconnect_on_quit: bool,
    /// Recording folder (`--recording`), checked to be usable before the server starts; none by default.
    pub recording: Option<PathBuf>,
    /// Record from the start (false with `--norecord`).
    pub record: bool,
    /// The server name for JSON-RPC `getServerProfile` (`--serverinfo`).
    pub server_name: String,
    /// The listen-in stream's tap (`--stream`); none by default.
    pub stream: Option<crate::StreamSlot>,
}

impl ServerOptions {
    pub fn new(bind: SocketAddr, config: ServerConfig) -> Self {
        ServerOptions {
            bind,
            config,
            log_file: None,
            qos: 128,
            disconnect_on_quit: false,
            recording: None,
            record: true,
            server_name: String::new(),
            stream: None,
        }
    }
}

/// A server running on its own thread.
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    commands: Sender<ServerCommand>,
    metrics: Arc<ServerMetrics>,
    thread: JoinHandle<io::Result<Stats>>,
}

impl RunningServer {
    /// Binds the socket (errors surface here, with what to do) and starts serving.
    pub fn start(options: ServerOptions) -> io::Result<Self> {
        let socket = bind_udp(options.bind, options.qos)?;
        let local_addr = socket.local_addr()?;
        let log =
            match &options.log_file {
                Some(path) => Some(ConnectionLog::open(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot open the log file {}: {e}", path.display()))
                })?),
                None => None,
            };
        let stop = Arc::new(AtomicBool::new(false));
        let (commands, inbox) = channel();
        let metrics = Arc::new(ServerMetrics::default());
        let shell = Shell {
            stop: stop.clone(),
            log,
            inbox,
            metrics: metrics.clone(),
            disconnect_on_quit: options.disconnect_on_quit,
            server_name: options.server_name,
        };
        let (recording, record) = (options.recording, options.record);
        let config = options.config;
        let stream = options.stream.and_then(|slot| slot.take());
        let thread =
            std::thread::Builder::new().name(format!("jam-server-{}", local_addr.port())).spawn(move || {
                let mut server = Server::new(config);
                if let Some(stream) = stream {
                    server.set_stream(Instant::now(), Some(stream));
                }
                let recording = RecordingControl::new(&mut server, Instant::now(), recording, record);
                serve(socket, server, recording, shell)
            })?;
        info!(%local_addr, "jam server listening");
        Ok(RunningServer { local_addr, stop, commands, metrics, thread })
    }

    /// Where to send requests for the server thread (JSON-RPC, signals).
    pub fn commands(&self) -> Sender<ServerCommand> {
        self.commands.clone()
    }

    /// The numbers the server publishes for `--metrics`.
    pub fn metrics(&self) -> Arc<ServerMetrics> {
        self.metrics.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The flag that stops the server when set (for signal handlers).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Asks the server to stop and waits for it; returns its traffic counters.
    pub fn stop(self) -> io::Result<Stats> {
        self.stop.store(true, Ordering::Relaxed);
        self.wait()
    }

    /// Waits until the server stops (its stop flag was set, or the socket failed).
    pub fn wait(self) -> io::Result<Stats> {
        self.thread.join().map_err(|_| io::Error::other("the server thread panicked"))?
    }
}

/// The server thread's own state besides the jam server.
struct Shell {
    stop: Arc<AtomicBool>,
    log: Option<ConnectionLog>,
    inbox: Receiver<ServerCommand>,
    metrics: Arc<ServerMetrics>,
    disconnect_on_quit: bool,
    server_name: String,
}

fn serve(socket: UdpSocket, mut server: Server, mut recording: RecordingControl, shell: Shell) -> io::Result<Stats> {
    let Shell { stop, mut log, inbox, metrics, disconnect_on_quit, mut server_name } = shell;
    let mut published = Instant::now();
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut batch = RecvBatch::new(MAX_DATAGRAM + 1);
    let mut sending = SendBatch::new();
    let mut nonblocking = false;
    socket.set_read_timeout(Some(IDLE_WAIT))?;
    // Arrival times place the tick just after the clients' audio (tutti_jam::tick_phase).
    if let Err(e) = rx_stamp::enable(&socket) {
        warn!("no kernel receive time stamps ({e}): the tick is not placed after the arrivals");
    }
    while !stop.load(Ordering::Relaxed) {
        match server.poll_timeout() {
            None => {
                if nonblocking {
                    socket.set_nonblocking(false)?;
                    nonblocking = false;
                }
                if let Some((n, from)) = receive(&socket, &mut buf)? {
                    server.handle_datagram(Instant::now(), from, &buf[..n]);
                }
            }
            Some(deadline) => {
                if !nonblocking {
                    socket.set_nonblocking(true)?;
                    nonblocking = true;
                }
                let now = Instant::now();
                if deadline > now {
                    std::thread::sleep(deadline - now);
                }
            }
        }
        if nonblocking {
            loop {
                let n = batch.receive(&socket)?;
                let (now, wall) = (Instant::now(), rx_stamp::wall_ns());
                for i in 0..n {
                    if let Some((from, bytes)) = batch.get(i) {
                        let ago = batch.stamp(i).map_or(0, |stamp| (wall - stamp).clamp(0, 1_000_000_000));
                        let arrived = now.checked_sub(Duration::from_nanos(ago as u64)).unwrap_or(now);
                        server.handle_datagram(arrived, from, bytes);
                    }
                }
                if n < BATCH {
                    break;
                }
            }
        }
        let ticks = server.stats().ticks;
        let started = Instant::now();
        // The tick's audio leaves in small batches as it is encoded.
        server.handle_timeout_handing_over(started, &mut |datagrams| {
            send_observed(&socket, &mut sending, datagrams, started, &metrics)
        });
        let ran = server.stats().ticks - ticks;
        if ran > 0 && server.connected_clients() > 0 {
            metrics.observe_tick(started.elapsed() / ran as u32);
        }
        while let Ok(command) = inbox.try_recv() {
            let now = Instant::now();
            if !recording.handle(&mut server, now, &command) {
                handle_command(&mut server, &recording, &mut server_name, command);
            }
        }
        recording.poll(&mut server, Instant::now());
        transmit(&socket, &mut server, &mut sending);
        report(&mut server, &mut log);
        if published.elapsed() >= PUBLISH_EVERY {
            published = Instant::now();
            let (late, lost) = server.frames_late_and_lost();
            let state = recording.state() as u8;
            metrics.publish(server.stats(), server.connected_clients(), state, late, lost);
        }
        if let Some(status) = server.poll_registration_change() {
            info!(status = status.as_str(), "directory registration");
        }
    }
    server.unregister();
    transmit(&socket, &mut server, &mut sending);
    if disconnect_on_quit {
        server.disconnect_all();
        transmit(&socket, &mut server, &mut sending);
    }
    recording.shutdown(&mut server);
    info!("jam server stopped");
    Ok(server.stats().clone())
}

/// Requests that are not about recording.
fn handle_command(server: &mut Server, recording: &RecordingControl, name: &mut String, command: ServerCommand) {
    match command {
        ServerCommand::SetWelcomeMessage(text) => server.set_welcome_message(Some(text).filter(|t| !t.is_empty())),
        ServerCommand::SetServerName(new) => {
            server.set_server_name(new.clone());
            *name = new;
        }
        ServerCommand::Snapshot(reply) => {
            let _ = reply.send(ServerSnapshot {
                clients: server.clients(),
                recorder: recording.status(),
                welcome_message: server.config().welcome_message.clone().unwrap_or_default(),
                server_name: name.clone(),
                registration: server.registration_status().map(|s| s.as_str()),
            });
        }
        _ => {}
    }
}

/// One datagram, or `None` when nothing is waiting (or the wait timed out).
fn receive(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
    match socket.recv_from(buf) {
        Ok(received) => Ok(Some(received)),
        Err(e) => match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => Ok(None),
            // An ICMP "port unreachable" for something we sent earlier: not our socket's fault.
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Ok(None),
            _ => Err(e),
        },
    }
}

fn transmit(socket: &UdpSocket, server: &mut Server, sending: &mut SendBatch) {
    // A full send buffer or an unreachable peer loses that datagram only; audio moves on.
    sending.send_all(socket, server.transmits());
    server.clear_transmits();
}

/// Sends datagrams the tick handed over; the delay from the tick's start to each batch's hand-over
/// to the kernel is counted for every audio datagram in the batch.
fn send_observed(
    socket: &UdpSocket,
    sending: &mut SendBatch,
    datagrams: &mut dyn Iterator<Item = (SocketAddr, &[u8])>,
    tick_started: Instant,
    metrics: &ServerMetrics,
) {
    // A full send buffer or an unreachable peer loses that datagram only; audio moves on.
    let audio = std::cell::Cell::new(0u64);
    let datagrams = datagrams.inspect(|(_, bytes)| {
        if matches!(Datagram::classify(bytes), Datagram::Audio(_)) {
            audio.set(audio.get() + 1);
        }
    });
    sending.send_all_observed(socket, datagrams, || {
        metrics.observe_sends(tick_started.elapsed(), audio.replace(0));
    });
}

fn report(server: &mut Server, log: &mut Option<ConnectionLog>) {
    while let Some(event) = server.poll_event() {
        let written = match event {
            Event::ClientConnected { channel, address } => {
                info!(channel, clients = server.connected_clients(), "client connected");
                log.as_mut().map(|l| l.connected(address, server.connected_clients()))
            }
            Event::ClientDisconnected { channel, timed_out, .. } => {
                info!(channel, timed_out, "client left");
                None
            }
            Event::Idle => {
                info!("server idle");
                log.as_mut().map(ConnectionLog::idle)
            }
        };
        if let Some(Err(e)) = written {
            warn!("cannot write the connection log: {e}");
        }
    }
}
