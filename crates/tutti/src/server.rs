//! `tutti server`: starts the jam servers of the configuration (`settings.rs`) with their JSON-RPC, metrics
//! and listen-in endpoints, then runs until SIGINT/SIGTERM.

mod settings;

use anyhow::Context;
use std::net::SocketAddr;
use tutti_net::RunningServer;

pub use settings::{parse_server_info, Args, ServerInfo, Settings, DEFAULT_PORT};

/// One server's published numbers, by its UDP port.
type ServerMetricsOf = (u16, std::sync::Arc<tutti_net::server_metrics::ServerMetrics>);

/// Jam servers started by [`start`], each on its own thread.
pub struct Jam {
    servers: Vec<RunningServer>,
    /// Listen-in streams, stopped after their servers.
    streams: Vec<tutti_stream::Stream>,
}

impl Jam {
    /// The flags that stop each server cleanly when set (signals set them).
    pub fn stop_flags(&self) -> Vec<std::sync::Arc<std::sync::atomic::AtomicBool>> {
        self.servers.iter().map(RunningServer::stop_flag).collect()
    }

    /// The UDP addresses the servers listen on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(RunningServer::local_addr).collect()
    }

    /// Waits until every server has stopped; reports what each did on stderr.
    pub fn wait(self) -> anyhow::Result<()> {
        let mut failed = None;
        let _streams = self.streams;
        for server in self.servers {
            let address = server.local_addr();
            match server.wait() {
                Ok(stats) => eprintln!(
                    "tutti: jam server on UDP {address} stopped after {} datagrams in, {} out, {} dropped",
                    stats.datagrams_in,
                    stats.datagrams_out,
                    stats.dropped_total()
                ),
                Err(e) => {
                    failed = Some(anyhow::Error::new(e).context(format!("the jam server on UDP {address} failed")))
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// Starts every server of `settings` with its JSON-RPC and metrics endpoints, and the SIGUSR1/SIGUSR2
/// recording switches; says on stderr where each listens. SIGINT/SIGTERM are the caller's: see
/// [`Jam::stop_flags`].
pub fn start(all_settings: Vec<Settings>) -> anyhow::Result<Jam> {
    // A file size limit (`ulimit -f`, RLIMIT_FSIZE) would kill the whole server with SIGXFSZ when a
    // recording outgrows it; with the signal caught, the write fails (EFBIG) and the recorder
    // reports and stops like on a full disk, while the jam goes on.
    signal_hook::flag::register(signal_hook::consts::SIGXFSZ, std::sync::Arc::default())
        .context("cannot install the SIGXFSZ handler")?;
    let mut servers = Vec::new();
    let mut streams = Vec::new();
    let mut metrics: Vec<(SocketAddr, Vec<ServerMetricsOf>)> = Vec::new();
    for mut settings in all_settings {
        if let Some(stream) = &settings.stream {
            let facts = crate::privacy::Facts {
                jam: Some(crate::privacy::settings::jam(&settings)),
                ..crate::privacy::Facts::default()
            };
            let (running, slot) = crate::stream_args::start(stream, &settings.info.name, crate::privacy::html(&facts))
                .with_context(|| format!("cannot start the listen-in stream on TCP {}", stream.listen))?;
            eprintln!("tutti: listen-in stream at http://{}/", running.local_addr());
            settings.options.stream = Some(slot);
            streams.push(running);
        }
        let bind = settings.options.bind;
        let recording = settings.options.recording.clone();
        let server = RunningServer::start(settings.options)
            .with_context(|| format!("cannot start the jam server on UDP {bind}"))?;
        if let Some((address, secret)) = settings.jsonrpc {
            let api = crate::jsonrpc::ServerApi {
                commands: server.commands(),
                city: settings.info.city.clone(),
                country: settings.info.country,
                directory: settings.directory.clone(),
            };
            // The server sends no notifications.
            let notifier = crate::jsonrpc::Notifier::default();
            let local = crate::jsonrpc::start(address, secret, std::sync::Arc::new(api), notifier)
                .with_context(|| format!("cannot listen for JSON-RPC on TCP {address}"))?;
            eprintln!("tutti: JSON-RPC on TCP {local}");
        }
        if let Some(address) = settings.metrics {
            let port = server.local_addr().port();
            match metrics.iter_mut().find(|(a, _)| *a == address) {
                Some((_, list)) => list.push((port, server.metrics())),
                None => metrics.push((address, vec![(port, server.metrics())])),
            }
        }
        if let Some(dir) = recording {
            eprintln!("tutti: recording into {} (clients are told first)", dir.display());
        }
        if !settings.info.name.is_empty() {
            eprintln!(
                "tutti: server \"{}\" ({}, country {})",
                settings.info.name, settings.info.city, settings.info.country
            );
        }
        eprintln!("tutti: jam server listening on UDP {} (Ctrl-C to stop)", server.local_addr());
        servers.push(server);
    }
    for (address, list) in metrics {
        let local =
            crate::metrics::start(address, list).with_context(|| format!("cannot serve metrics on TCP {address}"))?;
        eprintln!("tutti: metrics at http://{local}/metrics");
    }
    let commands: Vec<_> = servers.iter().map(RunningServer::commands).collect();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1, signal_hook::consts::SIGUSR2])
        .context("cannot install the SIGUSR1/SIGUSR2 handlers")?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for signal in signals.forever() {
            for commands in &commands {
                let command = if signal == signal_hook::consts::SIGUSR1 {
                    tutti_net::server_control::ServerCommand::RestartRecording
                } else {
                    tutti_net::server_control::ServerCommand::ToggleRecording
                };
                let _ = commands.send(command);
            }
        }
    })?;
    Ok(Jam { servers, streams })
}

/// Makes SIGINT and SIGTERM set `flag`; a second one while stopping exits at once.
pub fn stop_on_signals(flag: &std::sync::Arc<std::sync::atomic::AtomicBool>) -> anyhow::Result<()> {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, flag.clone())
            .and_then(|_| signal_hook::flag::register(signal, flag.clone()))
            .context("cannot install the signal handler")?;
    }
    Ok(())
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let jam = start(args.all_settings()?)?;
    for flag in jam.stop_flags() {
        stop_on_signals(&flag)?;
    }
    jam.wait()
}
