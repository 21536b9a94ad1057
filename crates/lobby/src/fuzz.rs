//! The fuzz target of client events (crates/fuzz): event payloads as the Socket.IO handlers parse them, carried
//! out on the sans-IO [`Lobby`] by up to ten sockets, with time advancing. Not part of the API.
//!
//! Input: lines `SOCKET MILLISECONDS EVENT JSON`, e.g. `3 20 find {"interests":["jazz"]}`; SOCKET is a digit,
//! MILLISECONDS how far the clock moves first, EVENT a client event or `disconnect`/`tick`, JSON its payload
//! (absent, or anything: what is not JSON is a missing payload, as for the handlers). After every line the
//! pairs must be symmetric: if a socket's partner is another socket, that socket's partner is the first.

use crate::handlers::job_of;
use crate::hub::Job;
use crate::{Limits, Lobby};
use std::time::{Duration, Instant};

/// Runs one input; panics only if an invariant breaks.
pub fn events(input: &[u8]) {
    let limits = Limits::default();
    let mut lobby: Lobby<u8> = Lobby::new(limits.clone(), Duration::from_secs(5));
    let mut now = Instant::now();
    let mut connected = [false; 10];
    for line in input.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let mut fields = text.splitn(4, ' ');
        let Some(id) = fields.next().and_then(|s| s.parse::<u8>().ok()).filter(|&id| id < 10) else { continue };
        let advance = fields.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0).min(600_000);
        now += Duration::from_millis(advance);
        let event = fields.next().unwrap_or("");
        let data = fields.next().and_then(|json| serde_json::from_str(json).ok());
        if !connected[usize::from(id)] {
            lobby.connect(id, now);
            connected[usize::from(id)] = true;
        }
        match event {
            "disconnect" => {
                lobby.disconnect(id);
                connected[usize::from(id)] = false;
            }
            "tick" => {
                lobby.tick(now);
            }
            _ => {
                if lobby.admit(id, now).is_ok() {
                    if let Some(Ok(job)) = job_of(event, data, &limits) {
                        run(&mut lobby, id, job, now);
                    }
                }
            }
        }
        for a in 0..10u8 {
            if let Some(b) = lobby.partner(a) {
                assert_ne!(a, b, "a socket is its own partner");
                assert_eq!(lobby.partner(b), Some(a), "pairs are not symmetric");
            }
        }
    }
}

/// What the hub does with a job, on the core alone (relayed events need no state; an identity is taken as
/// proved, since checking a signature is the registry's target).
fn run(lobby: &mut Lobby<u8>, id: u8, job: Job, now: Instant) {
    let _ = match job {
        Job::Find(interests) => lobby.find(id, interests, now).map(drop),
        Job::Next => lobby.next(id, now).map(drop),
        Job::Stop => lobby.stop(id).map(drop),
        Job::Signal(_) | Job::Message(_) | Job::Typing(_) => Ok(()),
        Job::Challenge => lobby.set_challenge(id, format!("challenge-{id}"), now),
        Job::Identify(proof) => {
            let _ = lobby.take_challenge(id, now);
            lobby.identify(id, format!("{id:040x}"), serde_json::json!({ "publickey": proof.publickey }))
        }
        Job::Reachable(on) => lobby.set_reachable(id, on),
        Job::Call(to) => lobby.call(id, &to, now).map(drop),
        Job::Answer(accept) => lobby.answer(id, accept).map(drop),
        Job::Cancel => lobby.cancel_call(id).map(drop),
    };
}
