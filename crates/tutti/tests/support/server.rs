//! A real headless Jamulus 3.9.1 server on 127.0.0.1 (no JACK needed).

use super::jsonrpc::{JsonRpc, CONNECT_TIMEOUT};
use super::process::{tail_file, udp_ports_of, write_secret, Proc, StateDir};
use super::{free_tcp_port, JAMULUS};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

/// How a [`JamulusServer`] is started. `ServerOptions::new(port)` gives the defaults.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// UDP port (`--port`); the server binds exactly this port on 127.0.0.1.
    pub port: u16,
    /// `--numchannels` (1…150).
    pub numchannels: u8,
    /// `--welcomemessage` (HTML).
    pub welcome: Option<String>,
    /// `--serverinfo "name;city;country"`.
    pub serverinfo: Option<String>,
    /// Appended to the command line as they are (e.g. `--fastupdate`, `--multithreading`).
    pub extra_args: Vec<String>,
    /// Enable JSON-RPC (`--jsonrpcport` on a free TCP port, with a generated secret file).
    pub jsonrpc: bool,
}

impl ServerOptions {
    /// 10 channels, no welcome message or server info, JSON-RPC on.
    pub fn new(port: u16) -> ServerOptions {
        ServerOptions { port, numchannels: 10, welcome: None, serverinfo: None, extra_args: Vec::new(), jsonrpc: true }
    }
}

/// A running real Jamulus server, stopped (SIGTERM, up to 5 s, SIGKILL) on drop.
pub struct JamulusServer {
    options: ServerOptions,
    rpc: Option<JsonRpc>,
    /// The JSON-RPC secret (empty without JSON-RPC).
    secret: String,
    jamulus: Option<Proc>,
    state: StateDir,
}

impl JamulusServer {
    /// Starts the server and returns once its UDP port is bound (and its JSON-RPC authenticated,
    /// when enabled). Panics with the log tail on failure.
    pub fn start(options: ServerOptions) -> JamulusServer {
        let mut server = JamulusServer {
            options,
            rpc: None,
            secret: String::new(),
            jamulus: None,
            state: StateDir::new("tutti-jamulus-server"),
        };
        if let Err(e) = server.launch() {
            let logs = server.log_tail();
            server.shutdown();
            panic!("starting a real Jamulus server on UDP {} failed: {e}\n{logs}", server.options.port);
        }
        server
    }

    fn launch(&mut self) -> Result<(), String> {
        let o = &self.options;
        let mut args: Vec<String> =
            ["--nogui", "--server", "--port", &o.port.to_string(), "--serverbindip", "127.0.0.1"]
                .into_iter()
                .map(String::from)
                .collect();
        args.extend(["--numchannels".into(), o.numchannels.to_string()]);
        if let Some(welcome) = &o.welcome {
            args.extend(["--welcomemessage".into(), welcome.clone()]);
        }
        if let Some(info) = &o.serverinfo {
            args.extend(["--serverinfo".into(), info.clone()]);
        }
        let mut rpc = None;
        if o.jsonrpc {
            let secret_file = self.state.file("secret.txt");
            let secret = write_secret(&secret_file);
            let port = free_tcp_port();
            args.extend(["--jsonrpcport".into(), port.to_string()]);
            args.extend(["--jsonrpcsecretfile".into(), secret_file.to_string_lossy().into_owned()]);
            rpc = Some((port, secret));
        }
        args.extend(o.extra_args.iter().cloned());
        let port = o.port;

        let jamulus =
            self.jamulus.insert(Proc::spawn("Jamulus server", JAMULUS, &args, &[], &self.state.file("server.log")));
        let pid = jamulus.pid();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !udp_ports_of(pid).contains(&port) {
            if !jamulus.is_running() {
                return Err(format!("the server exited ({:?})", jamulus.exit_status()));
            }
            if Instant::now() >= deadline {
                return Err(format!("UDP port {port} not bound after 10 s"));
            }
            thread::sleep(Duration::from_millis(20));
        }
        if let Some((rpc_port, secret)) = rpc {
            let rpc = JsonRpc::open(rpc_port, Instant::now() + CONNECT_TIMEOUT, &mut || {
                if jamulus.is_running() {
                    Ok(())
                } else {
                    Err(format!("the server exited ({:?})", jamulus.exit_status()))
                }
            })?;
            rpc.authenticate(&secret);
            self.rpc = Some(rpc);
            self.secret = secret;
        }
        Ok(())
    }

    /// The server's JSON-RPC connection (authenticated). Panics if started with `jsonrpc: false`.
    pub fn rpc(&self) -> &JsonRpc {
        self.rpc.as_ref().expect("the server was started with JSON-RPC (ServerOptions::jsonrpc)")
    }

    /// The JSON-RPC secret (for raw connections).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn pid(&self) -> u32 {
        self.jamulus.as_ref().map_or(0, Proc::pid)
    }

    pub fn port(&self) -> u16 {
        self.options.port
    }

    /// 127.0.0.1:port.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.options.port))
    }

    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        tail_file("Jamulus server", &self.state.file("server.log"), 40)
    }

    /// SIGTERM, up to 5 s, then SIGKILL. Returns the exit code (`None` if killed by a signal).
    pub fn stop(mut self) -> Option<i32> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Option<i32> {
        let mut proc = self.jamulus.take()?;
        if std::thread::panicking() {
            eprintln!("harness: real Jamulus server log at the time of the panic:\n{}", self.log_tail());
        }
        let status = proc.stop();
        self.rpc = None;
        status.and_then(|s| s.code())
    }
}

impl Drop for JamulusServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
