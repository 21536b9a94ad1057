//! `--log FILE` of `tutti server` next to the real Jamulus 3.9.1 server's: the same events (two
//! clients connect, both leave) give the same lines in both files, byte for byte apart from the
//! local time stamp.

mod support;
mod tutti_process;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::{free_udp_port, require_jamulus, wait_until, JamulusServer, ServerOptions, StateDir};
use tutti_process::{listening_client, Tutti};

/// The log's lines with the leading `YYYY-MM-DD HH:MM:SS` replaced by `<time>` (checked to be one).
fn lines_of(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let stamp = line.get(..19).unwrap_or_default();
            let digits = stamp.char_indices().all(|(i, c)| match i {
                4 | 7 => c == '-',
                10 => c == ' ',
                13 | 16 => c == ':',
                _ => c.is_ascii_digit(),
            });
            assert!(digits && stamp.len() == 19, "{}: no time stamp in {line:?}", path.display());
            format!("<time>{}", &line[19..])
        })
        .collect()
}

/// Two tutti clients join `server` one after the other, then both leave; returns once `log` has
/// the idle line.
fn connect_two_and_leave(server: SocketAddr, log: &Path) {
    let (a, _) = listening_client(server, "A", 1);
    assert!(wait_until(Duration::from_secs(5), || lines_of(log).len() == 1), "first connection logged");
    let (b, _) = listening_client(server, "B", 1);
    assert!(wait_until(Duration::from_secs(5), || lines_of(log).len() == 2), "second connection logged");
    a.stop().unwrap();
    b.stop().unwrap();
    assert!(wait_until(Duration::from_secs(5), || lines_of(log).len() == 3), "idle logged: {:?}", lines_of(log));
}

#[test]
fn connection_log_lines_are_the_real_jamulus_servers() {
    require_jamulus();
    let dir = StateDir::new("tutti-connlog");
    let (theirs, mine) = (dir.file("jamulus.log"), dir.file("tutti.log"));

    let mut options = ServerOptions::new(free_udp_port());
    options.jsonrpc = false;
    options.extra_args = vec!["--log".into(), theirs.to_str().unwrap().into()];
    let jamulus = JamulusServer::start(options);
    connect_two_and_leave(jamulus.address(), &theirs);

    let port = free_udp_port();
    let port_text = port.to_string();
    let tutti =
        Tutti::start(&["server", "--port", &port_text, "--serverbindip", "127.0.0.1", "--log", mine.to_str().unwrap()]);
    assert!(tutti.wait_for_log("jam server listening on UDP", Duration::from_secs(10)), "{}", tutti.log());
    connect_two_and_leave(SocketAddr::from(([127, 0, 0, 1], port)), &mine);

    let expected = [
        "<time>, 127.0.0.1, connected (1)",
        "<time>, 127.0.0.1, connected (2)",
        "<time>,, server idling -------------------------------------",
    ];
    assert_eq!(lines_of(&theirs), expected, "what Jamulus 3.9.1 writes");
    assert_eq!(lines_of(&mine), lines_of(&theirs), "tutti writes the same");
    // Both stamp local time: the first lines were written seconds apart.
    let seconds = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap();
        let clock: Vec<i64> = text[11..19].split(':').map(|f| f.parse().unwrap()).collect();
        clock[0] * 3600 + clock[1] * 60 + clock[2]
    };
    let apart = (seconds(&mine) - seconds(&theirs)).rem_euclid(86_400);
    assert!(apart < 60, "tutti's time stamp is {apart} s after Jamulus' (local time both)");
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(bytes(&mine).len(), bytes(&theirs).len(), "same line endings and no extra bytes");
    drop(jamulus);
}
