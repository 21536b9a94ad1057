//! A throw-away PostgreSQL server for tests: Debian's `postgresql` binaries, a cluster in a temporary
//! directory, listening on 127.0.0.1 only (and a Unix socket in that directory), run as an unprivileged
//! user when the tests run as root, stopped by PID and deleted on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How one try to start postgres ended.
enum Started {
    Ready,
    PortTaken,
}

/// A running PostgreSQL server.
pub struct TempPostgres {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl TempPostgres {
    /// Starts one, or says why it cannot be started here.
    pub fn start() -> Result<TempPostgres, String> {
        let bin = find_bin()?;
        let dir = std::env::temp_dir().join(format!("tutti-pg-{}-{}", std::process::id(), unique()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let user = as_user()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let output = command(&user, &bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-A", "trust", "-U", "tutti", "--no-sync", "-E", "UTF8"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !output.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        // The port was free when picked; if another process takes it before postgres binds it,
        // postgres exits, and another port is tried.
        let mut server = TempPostgres { child: None, dir, port: 0 };
        for _ in 0..5 {
            server.port = free_port()?;
            match server.run(&user, &bin, &data)? {
                Started::Ready => return Ok(server),
                Started::PortTaken => continue,
            }
        }
        Err(format!("postgres found every one of 5 free ports taken: {}", server.log()))
    }

    /// Starts postgres on `self.port` and waits until it accepts connections.
    fn run(&mut self, user: &Option<Ids>, bin: &Path, data: &Path) -> Result<Started, String> {
        let log = std::fs::File::create(self.dir.join("server.log")).map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = *user {
            let _ = std::os::unix::fs::chown(self.dir.join("server.log"), Some(uid), Some(gid));
        }
        let child = command(user, &bin.join("postgres"))
            .arg("-D")
            .arg(data)
            .args(["-c", "listen_addresses=127.0.0.1", "-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "fsync=on", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.log().contains("ready to accept")
            {
                return Ok(Started::Ready);
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    if self.log().contains("Address already in use") {
                        return Ok(Started::PortTaken);
                    }
                    return Err(format!("postgres exited ({status}): {}", self.log()));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("postgres did not start within 20 s: {}", self.log()))
    }

    /// A connection string for the `postgres` database as the superuser `tutti`.
    pub fn url(&self) -> String {
        format!("postgres://tutti@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: PostgreSQL's fast shutdown
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_bin() -> Result<PathBuf, String> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "PostgreSQL is not installed (apt-get install postgresql)".to_string())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().ok_or_else(|| "no PostgreSQL server binaries under /usr/lib/postgresql".to_string())
}

/// A user and group ID.
type Ids = (u32, u32);

/// PostgreSQL refuses to run as root: as root, run as the `postgres` user (Debian's package makes it)
/// or `nobody`, through util-linux `setpriv` so that the PID is the server's own.
fn as_user() -> Result<Option<Ids>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        return Ok(None);
    }
    for user in ["postgres", "nobody"] {
        let out = Command::new("id").args(["-u", user]).output();
        let gid = Command::new("id").args(["-g", user]).output();
        if let (Ok(out), Ok(gid)) = (out, gid) {
            let parse = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok();
            if let (Some(uid), Some(gid)) = (parse(&out), parse(&gid)) {
                if Path::new("/usr/bin/setpriv").exists() {
                    return Ok(Some((uid, gid)));
                }
                return Err("util-linux setpriv is needed to run PostgreSQL as an unprivileged user".into());
            }
        }
    }
    Err("no unprivileged user (postgres or nobody) to run PostgreSQL as".into())
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn command(user: &Option<Ids>, program: &Path) -> Command {
    match user {
        None => Command::new(program),
        Some((uid, gid)) => {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into()]).arg(program);
            c
        }
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
