//! A tiny LD_PRELOAD library that holds a real Jamulus client's incoming UDP until the harness has
//! authenticated on its JSON-RPC port.
//!
//! Why: a 3.9.1 client started with `--connect` sends audio from inside its constructor, before its
//! Qt event loop runs. The server answers at once (CLIENT_ID, client list, welcome chat), and those
//! replies are often queued for the event loop before our JSON-RPC `apiAuth` is, so their
//! notifications (`jamulusclient/connected`, the first `clientListReceived`, the welcome
//! `chatTextReceived`) go to nobody: notifications reach only connections that are already
//! authenticated. Without this gate, 3 of 20 sequential starts on an idle machine lost `connected`.
//!
//! The library wraps `recvfrom`: on an IPv4/IPv6 datagram socket, while the file named by
//! `TUTTI_JAMULUS_GATE` exists (at most 60 s, and not once the socket is shut down), it waits
//! before receiving. Jamulus' network thread is the only caller; the server's replies wait in the
//! kernel buffer (protocol messages are retransmitted anyway) and are handled after the harness
//! removed the file, i.e. after authentication. Nothing is sent differently.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

typedef ssize_t (*recvfrom_fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *);

static int gate_open;

static int is_inet_datagram(int fd) {
    int type = 0;
    socklen_t type_len = sizeof type;
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0 || type != SOCK_DGRAM) return 0;
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) return 0;
    return local.ss_family == AF_INET || local.ss_family == AF_INET6;
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *from_len) {
    static recvfrom_fn real;
    if (!real) real = (recvfrom_fn)dlsym(RTLD_NEXT, "recvfrom");
    if (!__atomic_load_n(&gate_open, __ATOMIC_ACQUIRE) && is_inet_datagram(fd)) {
        const char *gate = getenv("TUTTI_JAMULUS_GATE");
        for (int i = 0; gate && i < 30000 && access(gate, F_OK) == 0; i++) {
            struct pollfd p = { fd, POLLIN, 0 };
            if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) break; /* shut down */
            usleep(2000);
        }
        __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    }
    return real(fd, buf, len, flags, from, from_len);
}
"#;

/// Path of the compiled library (built once with `cc`, cached under cargo's target tmp dir).
pub fn library() -> PathBuf {
    static LIBRARY: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    LIBRARY.get_or_init(build).clone().unwrap_or_else(|e| panic!("building the Jamulus receive gate failed: {e}"))
}

fn build() -> Result<PathBuf, String> {
    // LD_PRELOAD splits its value at spaces and colons.
    let dir = option_env!("CARGO_TARGET_TMPDIR")
        .filter(|d| !d.contains([' ', ':']))
        .map_or_else(std::env::temp_dir, PathBuf::from);
    // FNV-1a of the source: a changed shim gets a new file name.
    let hash = SOURCE.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let library = dir.join(format!("tutti-jamulus-gate-{hash:016x}.so"));
    if library.exists() {
        return Ok(library);
    }
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let unique = format!("{}-{}", std::process::id(), super::process::unique());
    let source = dir.join(format!("tutti-jamulus-gate-{unique}.c"));
    let partial = dir.join(format!("tutti-jamulus-gate-{unique}.so.partial"));
    fs::write(&source, SOURCE).map_err(|e| format!("write {}: {e}", source.display()))?;
    let output = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&partial)
        .arg(&source)
        .arg("-ldl")
        .output()
        .map_err(|e| format!("run cc (a C compiler is needed, as for linking Rust): {e}"));
    let _ = fs::remove_file(&source);
    let output = output?;
    if !output.status.success() {
        let _ = fs::remove_file(&partial);
        return Err(format!("cc failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    // Atomic publish: parallel test binaries may build it at the same time.
    fs::rename(&partial, &library).map_err(|e| format!("rename to {}: {e}", library.display()))?;
    Ok(library)
}
