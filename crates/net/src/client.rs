//! The UDP shell of the jam client: one thread that owns the socket, paces one audio frame per frame
//! period from the caller's source, plays the server's mix into the caller's sink, and carries
//! commands (chat, faders, profile, disconnect) in and events out over channels.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tutti_jam::{Client, ClientConfig, ClientEvent, Reception};
use tutti_proto::frame::MAX_DATAGRAM;
use tutti_proto::message::Profile;

/// Produces one frame of PCM (interleaved, full scale 1.0) per call.
pub type AudioSource = Box<dyn FnMut(&mut [f32]) + Send>;
/// Takes one frame of the server's mix per call.
pub type AudioSink = Box<dyn FnMut(&[f32]) + Send>;

/// What the application can ask of a running client.
#[derive(Debug, Clone)]
pub enum Command {
    Chat(String),
    Gain {
        channel: u8,
        gain: f32,
    },
    Pan {
        channel: u8,
        pan: f32,
    },
    Profile(Profile),
    /// Say goodbye and stop.
    Disconnect,
}

/// A client running on its own thread.
pub struct RunningClient {
    local_addr: SocketAddr,
    commands: Sender<Command>,
    events: Receiver<ClientEvent>,
    thread: JoinHandle<io::Result<Reception>>,
}

impl RunningClient {
    /// Binds `bind` (port 0 for any), and starts talking to `server`.
    pub fn start(
        bind: SocketAddr,
        server: SocketAddr,
        config: ClientConfig,
        source: AudioSource,
        sink: AudioSink,
    ) -> io::Result<Self> {
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        let client = Client::new(server, config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (commands, command_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("jam-client".into())
            .spawn(move || run(socket, client, source, sink, command_rx, event_tx))?;
        Ok(RunningClient { local_addr, commands, events, thread })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A sender for commands from another thread (e.g. a JSON-RPC connection); sends fail once the
    /// client has stopped.
    pub fn commands(&self) -> Sender<Command> {
        self.commands.clone()
    }

    /// Sends a command; false if the client has stopped.
    pub fn command(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Waits up to `timeout` for the next event.
    pub fn next_event(&self, timeout: Duration) -> Option<ClientEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Disconnects (CLM_DISCONNECTION), waits for the thread to end, and says what was received: audio
    /// packets, frames lost (and concealed) and frames that came too late.
    pub fn stop(self) -> io::Result<Reception> {
        let _ = self.commands.send(Command::Disconnect);
        self.thread.join().map_err(|_| io::Error::other("the client thread panicked"))?
    }
}

fn run(
    socket: UdpSocket,
    mut client: Client,
    mut source: AudioSource,
    mut sink: AudioSink,
    commands: Receiver<Command>,
    events: Sender<ClientEvent>,
) -> io::Result<Reception> {
    let period = Duration::from_nanos(client.format().frame_samples() as u64 * 1_000_000_000 / 48_000);
    let mut pcm = vec![0.0f32; client.frame_len()];
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut next_frame = Instant::now();
    loop {
        let now = Instant::now();
        if now < next_frame {
            std::thread::sleep(next_frame - now);
        }
        let now = Instant::now();
        next_frame += period;
        if now.duration_since(next_frame) > 20 * period {
            next_frame = now + period; // stalled: don't burst to catch up
        }
        loop {
            match commands.try_recv() {
                Ok(Command::Chat(text)) => client.send_chat(now, &text),
                Ok(Command::Gain { channel, gain }) => client.set_gain(now, channel, gain),
                Ok(Command::Pan { channel, pan }) => client.set_pan(now, channel, pan),
                Ok(Command::Profile(p)) => client.set_profile(now, p),
                Ok(Command::Disconnect) | Err(TryRecvError::Disconnected) => {
                    client.disconnect();
                    flush(&socket, &mut client);
                    return Ok(client.reception());
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => client.handle_datagram(now, from, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        source(&mut pcm);
        client.send_audio(now, &pcm).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        client.receive_audio(&mut pcm).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        sink(&pcm);
        client.handle_timeout(now);
        flush(&socket, &mut client);
        while let Some(event) = client.poll_event() {
            let _ = events.send(event);
        }
        if !client.is_connected() {
            return Ok(client.reception());
        }
    }
}

fn flush(socket: &UdpSocket, client: &mut Client) {
    let server = client.server();
    while let Some(datagram) = client.poll_transmit() {
        let _ = socket.send_to(&datagram, server);
    }
}
