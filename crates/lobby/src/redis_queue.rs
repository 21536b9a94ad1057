//! Scale-out: the waiting queue and the pairs kept in Redis, so that lobby processes sharing one Redis
//! match users across processes. Every operation is one Lua script run (`queue.lua`), hence atomic;
//! the matching rules are the same as [`Lobby`](crate::Lobby)'s. Also each process's liveness (a
//! heartbeat key with a TTL: the sockets of a process that stopped renewing it are purged by the others)
//! and the online count of every process.

use crate::{CallEnd, Error, Interests, LobbyConfig, Notice};
use redis::aio::MultiplexedConnection;
use socketioxide::socket::Sid;
use std::str::FromStr;
use std::time::Duration;

/// A connection to the shared queue, as one process ("node").
pub(crate) struct RedisQueue {
    connection: MultiplexedConnection,
    script: redis::Script,
    /// This process's random id: its heartbeat key, its field in `lobby:online`, its sockets' set.
    node: String,
    /// How long the heartbeat outlives its last renewal.
    ttl: Duration,
}

/// What a socket's operation decided.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) notices: Vec<Notice<Sid>>,
    /// The socket waits with interests: its random fallback is due after this long.
    pub(crate) fallback_in: Option<Duration>,
    /// The socket's call rings: it times out after this long.
    pub(crate) ring_in: Option<Duration>,
}

/// What a heartbeat learned.
#[derive(Debug)]
pub(crate) struct Beat {
    /// Sockets online over every live process.
    pub(crate) total: usize,
    /// Partners of sockets on dead processes, now alone.
    pub(crate) notices: Vec<Notice<Sid>>,
    /// This process's own heartbeat had expired: the others took it for dead and its sockets are gone
    /// from Redis (it is registered again now).
    pub(crate) lapsed: bool,
}

fn wait_ms(config: &LobbyConfig) -> u64 {
    config.fallback_wait.as_millis() as u64
}

fn redis_error(e: redis::RedisError) -> Error {
    Error::Redis(e.to_string())
}

/// One row of the script's answer (see the header of `queue.lua`).
enum Row {
    Notice(Notice<Sid>),
    FallbackIn(Duration),
    RingIn(Duration),
    Online(usize),
    Lapsed,
}

fn parse(row: Vec<String>) -> Result<Row, Error> {
    let sid =
        |s: &str| Sid::from_str(s).map_err(|_| Error::Redis(format!("a malformed socket id in the queue: {s:?}")));
    let number =
        |s: &str| s.parse::<u64>().map_err(|_| Error::Redis(format!("a malformed number from the queue: {s:?}")));
    Ok(match row.first().map(String::as_str) {
        Some("M") if row.len() >= 4 => Row::Notice(Notice::Matched {
            to: sid(&row[1])?,
            partner: sid(&row[2])?,
            initiator: row[3] == "1",
            common: row[4..].to_vec(),
        }),
        Some("L") if row.len() == 2 => Row::Notice(Notice::PartnerLeft { to: sid(&row[1])? }),
        Some("W") if row.len() == 2 => Row::FallbackIn(Duration::from_millis(number(&row[1])?)),
        Some("T") if row.len() == 2 => Row::RingIn(Duration::from_millis(number(&row[1])?)),
        Some("R") if row.len() == 3 => Row::Notice(Notice::Ring { to: sid(&row[1])?, from: sid(&row[2])? }),
        Some("K") if row.len() == 3 => Row::Notice(Notice::CallEnded {
            to: sid(&row[1])?,
            reason: CallEnd::parse(&row[2])
                .ok_or_else(|| Error::Redis(format!("an unknown call end from the queue: {:?}", row[2])))?,
        }),
        Some("C") if row.len() == 2 => Row::Online(number(&row[1])? as usize),
        Some("X") => Row::Lapsed,
        Some("E") if row.get(1).map(String::as_str) == Some("already_matched") => return Err(Error::AlreadyMatched),
        Some("E") if row.get(1).map(String::as_str) == Some("call_pending") => return Err(Error::CallPending),
        Some("E") if row.get(1).map(String::as_str) == Some("unreachable") => return Err(Error::Unreachable),
        Some("E") if row.get(1).map(String::as_str) == Some("busy") => return Err(Error::Busy),
        Some("E") if row.get(1).map(String::as_str) == Some("no_call") => return Err(Error::NoCall),
        Some("E") if row.get(1).map(String::as_str) == Some("lapsed") => {
            return Err(Error::Redis("this process missed its Redis heartbeat; its sockets are being dropped".into()))
        }
        _ => return Err(Error::Redis(format!("unexpected answer from the queue script: {row:?}"))),
    })
}

impl RedisQueue {
    /// Connects and registers this process (its heartbeat and an online count of 0).
    pub(crate) async fn connect(client: &redis::Client, ttl: Duration) -> Result<Self, Error> {
        let connection = client.get_multiplexed_async_connection().await.map_err(redis_error)?;
        let node = Sid::new().to_string();
        let queue = RedisQueue { connection, script: redis::Script::new(include_str!("queue.lua")), node, ttl };
        queue.heartbeat("join", 0).await?;
        Ok(queue)
    }

    async fn run(&self, op: &str, id: &str, wait_ms: u64, extra: &[String]) -> Result<Vec<Row>, Error> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(op).arg(&self.node).arg(id).arg(wait_ms);
        for arg in extra {
            invocation.arg(arg);
        }
        let rows: Vec<Vec<String>> =
            invocation.invoke_async(&mut self.connection.clone()).await.map_err(redis_error)?;
        rows.into_iter().map(parse).collect()
    }

    async fn socket_op(&self, op: &str, id: Sid, wait_ms: u64, extra: &[String]) -> Result<Outcome, Error> {
        let mut outcome = Outcome::default();
        for row in self.run(op, id.as_str(), wait_ms, extra).await? {
            match row {
                Row::Notice(notice) => outcome.notices.push(notice),
                Row::FallbackIn(after) => outcome.fallback_in = Some(after),
                Row::RingIn(after) => outcome.ring_in = Some(after),
                Row::Online(_) | Row::Lapsed => {
                    return Err(Error::Redis(format!("unexpected answer from the queue script to {op}")))
                }
            }
        }
        Ok(outcome)
    }

    pub(crate) async fn find(&self, id: Sid, interests: &Interests, config: &LobbyConfig) -> Result<Outcome, Error> {
        let tags = serde_json::to_string(interests.tags()).expect("strings serialize");
        self.socket_op("find", id, wait_ms(config), &[tags]).await
    }

    pub(crate) async fn next(&self, id: Sid, config: &LobbyConfig) -> Result<Outcome, Error> {
        self.socket_op("next", id, wait_ms(config), &[]).await
    }

    pub(crate) async fn stop(&self, id: Sid) -> Result<Outcome, Error> {
        self.socket_op("stop", id, 0, &[]).await
    }

    pub(crate) async fn disconnect(&self, id: Sid) -> Result<Outcome, Error> {
        self.socket_op("disconnect", id, 0, &[]).await
    }

    /// The socket's wait ran out: a random partner is tried once (or, if early, the time left).
    pub(crate) async fn fallback(&self, id: Sid, config: &LobbyConfig) -> Result<Outcome, Error> {
        self.socket_op("fallback", id, wait_ms(config), &[]).await
    }

    /// Makes `identity` (40 hex digits) reach this socket, or (off) no longer.
    pub(crate) async fn reach(&self, id: Sid, identity: &str, on: bool) -> Result<Outcome, Error> {
        self.socket_op("reach", id, 0, &[identity.to_string(), if on { "1" } else { "0" }.to_string()]).await
    }

    /// Rings the socket that made `identity` reachable, wherever it is.
    pub(crate) async fn call(&self, id: Sid, identity: &str, config: &LobbyConfig) -> Result<Outcome, Error> {
        let ring = (config.ring_timeout.as_millis() as u64).to_string();
        self.socket_op("call", id, 0, &[identity.to_string(), ring]).await
    }

    /// The callee's answer: paired with the caller, or the caller is told.
    pub(crate) async fn answer(&self, id: Sid, accept: bool) -> Result<Outcome, Error> {
        self.socket_op("answer", id, 0, &[if accept { "1" } else { "0" }.to_string()]).await
    }

    /// The caller hangs up before an answer.
    pub(crate) async fn cancel(&self, id: Sid) -> Result<Outcome, Error> {
        self.socket_op("cancel", id, 0, &[]).await
    }

    /// The caller's ring ran out: the call ends (or, if early, the time left).
    pub(crate) async fn ring_timeout(&self, id: Sid) -> Result<Outcome, Error> {
        self.socket_op("ring", id, 0, &[]).await
    }

    pub(crate) async fn partner(&self, id: Sid) -> Result<Option<Sid>, Error> {
        let partner: Option<String> = redis::cmd("HGET")
            .arg(format!("lobby:s:{id}"))
            .arg("partner")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        Ok(partner.and_then(|p| Sid::from_str(&p).ok()))
    }

    /// Renews this process's heartbeat, publishes its count, purges dead processes, and sums the counts.
    pub(crate) async fn beat(&self, local: usize) -> Result<Beat, Error> {
        self.heartbeat("beat", local).await
    }

    async fn heartbeat(&self, op: &str, local: usize) -> Result<Beat, Error> {
        let ttl = (self.ttl.as_millis() as u64).max(1).to_string();
        let mut beat = Beat { total: 0, notices: Vec::new(), lapsed: false };
        for row in self.run(op, "", 0, &[ttl, local.to_string()]).await? {
            match row {
                Row::Notice(notice) => beat.notices.push(notice),
                Row::Online(total) => beat.total = total,
                Row::Lapsed => beat.lapsed = true,
                Row::FallbackIn(_) | Row::RingIn(_) => {
                    return Err(Error::Redis("unexpected answer from the queue script".into()))
                }
            }
        }
        Ok(beat)
    }

    /// Removes this process and its sockets (at shutdown); their partners elsewhere are to be told.
    pub(crate) async fn leave(&self) -> Vec<Notice<Sid>> {
        let rows = self.run("leave", "", 0, &[]).await.unwrap_or_default();
        rows.into_iter().filter_map(|row| if let Row::Notice(n) = row { Some(n) } else { None }).collect()
    }
}

/// The Lua port against the Rust original, and liveness, on a real `redis-server` (started here on a
/// free loopback port).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Lobby};
    use std::collections::HashMap;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    struct RedisServer(std::process::Child);

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn start_redis() -> (RedisServer, redis::Client) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed: run ./scripts/test.sh, which installs it");
        let server = RedisServer(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        (server, redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap())
    }

    const FOREVER: Duration = Duration::from_secs(3600);

    async fn query<T: redis::FromRedisValue>(queue: &RedisQueue, cmd: &mut redis::Cmd) -> T {
        cmd.query_async(&mut queue.connection.clone()).await.unwrap()
    }

    async fn keys(queue: &RedisQueue, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = query(queue, redis::cmd("KEYS").arg(pattern)).await;
        keys.sort();
        keys
    }

    /// What a process crash looks like to the others: its heartbeat expired.
    async fn expire(node: &RedisQueue) {
        let _: () = query(node, redis::cmd("DEL").arg(format!("lobby:alive:{}", node.node))).await;
    }

    /// What a purge told whom (`partner_left`, `call_ended`), in a comparable order.
    fn partners_left(notices: &[Notice<Sid>]) -> Vec<String> {
        let mut told: Vec<String> = notices
            .iter()
            .map(|n| match n {
                Notice::PartnerLeft { .. } | Notice::CallEnded { .. } => format!("{n:?}"),
                _ => panic!("a purge matched or rang someone: {n:?}"),
            })
            .collect();
        told.sort();
        told
    }

    fn to(notice: &Notice<Sid>) -> Sid {
        match notice {
            Notice::Matched { to, .. }
            | Notice::PartnerLeft { to }
            | Notice::Ring { to, .. }
            | Notice::CallEnded { to, .. } => *to,
        }
    }

    fn interests(tags: &[&str]) -> Interests {
        Interests::parse(&tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(), &Limits::default()).unwrap()
    }

    /// The same pseudo-random sequence of find/next/stop/disconnect and of calls (reachable on/off,
    /// call, accept/decline, cancel), from sockets on three processes sharing a few identities, and now
    /// and then a process that dies, runs on one [`Lobby`] and on Redis: every operation must give the
    /// same answer and notices in the same order, and a dead process's purge the same `partner_left`s
    /// and `call_ended`s as its sockets' disconnects (less those to its own sockets).
    #[tokio::test]
    async fn lua_queue_decides_exactly_like_the_lobby() {
        let (_server, client) = start_redis();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(RedisQueue::connect(&client, FOREVER).await.unwrap());
        }
        let mut config = LobbyConfig::new(([127, 0, 0, 1], 0).into());
        config.fallback_wait = FOREVER; // no time-dependent fallback in this test
        let limits = Limits::default();
        let mut lobby: Lobby<Sid> = Lobby::new(limits.clone(), config.fallback_wait);
        let mut seed = 0x9E3779B97F4A7C15u64;
        let mut rnd = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let pool = ["a", "b", "c", "d"];
        let identities = [
            "1111111111111111111111111111111111111111",
            "2222222222222222222222222222222222222222",
            "3333333333333333333333333333333333333333",
        ];
        let (mut calls, mut answers) = (0, 0);
        let mut connected: Vec<Sid> = Vec::new();
        let mut home: HashMap<Sid, usize> = HashMap::new();
        let (mut deaths, mut purged_notices) = (0, 0);
        let now = Instant::now();
        for step in 0..3000 {
            if rnd(150) == 0 {
                let dead = rnd(nodes.len());
                let victims: Vec<Sid> = connected.iter().copied().filter(|id| home[id] == dead).collect();
                let rust: Vec<Notice<Sid>> =
                    victims.iter().flat_map(|id| lobby.disconnect(*id)).filter(|n| !victims.contains(&to(n))).collect();
                connected.retain(|id| home[id] != dead);
                expire(&nodes[dead]).await;
                let gone = std::mem::replace(&mut nodes[dead], RedisQueue::connect(&client, FOREVER).await.unwrap());
                let beat = nodes[(dead + 1) % 3].beat(0).await.unwrap();
                assert!(!beat.lapsed);
                assert_eq!(partners_left(&rust), partners_left(&beat.notices), "step {step}: purge");
                for id in &victims {
                    assert!(keys(&nodes[0], &format!("lobby:s:{id}")).await.is_empty(), "step {step}: {id} stays");
                }
                let queued: Vec<String> =
                    query(&nodes[0], redis::cmd("ZRANGE").arg("lobby:queue").arg(0).arg(-1)).await;
                assert!(victims.iter().all(|v| !queued.contains(&v.to_string())), "step {step}: dead in the queue");
                assert!(keys(&gone, &format!("lobby:*{}", gone.node)).await.is_empty(), "step {step}: node stays");
                let on: bool = query(&gone, redis::cmd("HEXISTS").arg("lobby:online").arg(&gone.node)).await;
                assert!(!on, "step {step}: its online count stays");
                deaths += 1;
                purged_notices += rust.len();
                continue;
            }
            let op = rnd(15);
            if op < 2 || connected.len() < 2 {
                let id = Sid::new();
                lobby.connect(id, now);
                lobby.identify(id, identities[rnd(identities.len())].to_string(), serde_json::Value::Null).unwrap();
                connected.push(id);
                home.insert(id, rnd(nodes.len()));
                continue;
            }
            let id = connected[rnd(connected.len())];
            let queue = &nodes[home[&id]];
            let notices = |o: Result<Outcome, Error>| o.map(|o| o.notices).map_err(|e| e.code());
            let (rust, lua) = match op {
                2..=4 => {
                    let tags: Vec<String> = (0..rnd(3)).map(|_| pool[rnd(pool.len())].to_string()).collect();
                    let interests = crate::Interests::parse(&tags, &limits).unwrap();
                    let rust = lobby.find(id, interests.clone(), now).map_err(|e| e.code());
                    (rust, notices(queue.find(id, &interests, &config).await))
                }
                5 | 6 => (lobby.next(id, now).map_err(|e| e.code()), notices(queue.next(id, &config).await)),
                7 => (lobby.stop(id).map_err(|e| e.code()), notices(queue.stop(id).await)),
                10 => {
                    let on = rnd(3) > 0;
                    lobby.set_reachable(id, on).unwrap();
                    let identity = lobby.identity(id).unwrap().to_string();
                    (Ok(Vec::new()), notices(queue.reach(id, &identity, on).await))
                }
                11 | 12 => {
                    let callee = identities[rnd(identities.len())];
                    let rust = lobby.call(id, callee, now).map_err(|e| e.code());
                    let lua = queue.call(id, callee, &config).await;
                    calls += usize::from(rust.is_ok());
                    (rust, notices(lua))
                }
                13 => {
                    let accept = rnd(2) == 0;
                    let rust = lobby.answer(id, accept).map_err(|e| e.code());
                    answers += usize::from(rust.is_ok());
                    (rust, notices(queue.answer(id, accept).await))
                }
                14 => (lobby.cancel_call(id).map_err(|e| e.code()), notices(queue.cancel(id).await)),
                _ => {
                    connected.retain(|c| *c != id);
                    (Ok(lobby.disconnect(id)), notices(queue.disconnect(id).await))
                }
            };
            assert_eq!(rust, lua, "step {step}: op {op} on {id}");
        }
        assert!(lobby.counts().pairs > 0, "the walk made pairs");
        assert!(calls > 20 && answers > 5, "the walk rang ({calls}) and answered ({answers})");
        assert!(
            deaths >= 5 && purged_notices > 0,
            "processes died ({deaths}) and partners were told ({purged_notices})"
        );
        for id in connected {
            assert_eq!(
                Ok(lobby.disconnect(id)),
                nodes[home[&id]].disconnect(id).await.map(|o| o.notices).map_err(|e| e.code())
            );
        }
        for node in &nodes {
            assert!(node.leave().await.is_empty());
        }
        assert_eq!(keys(&nodes[0], "lobby:*").await, ["lobby:seq"], "Redis forgot everyone and every process");
    }

    /// A process whose heartbeat expired: its waiter is never matched, the next heartbeat of another
    /// process purges its sockets and count and tells their partners, and the process itself is refused
    /// until its own heartbeat finds out.
    #[tokio::test]
    async fn a_dead_process_is_never_matched_then_purged() {
        let (_server, client) = start_redis();
        let (a, b) = (
            RedisQueue::connect(&client, FOREVER).await.unwrap(),
            RedisQueue::connect(&client, FOREVER).await.unwrap(),
        );
        let config = LobbyConfig::new(([127, 0, 0, 1], 0).into());
        let (x, y, z, w) = (Sid::new(), Sid::new(), Sid::new(), Sid::new());
        assert!(a.find(x, &interests(&[]), &config).await.unwrap().notices.is_empty());
        assert!(a.find(y, &interests(&["go"]), &config).await.unwrap().notices.is_empty());
        assert_eq!(b.find(z, &interests(&["go"]), &config).await.unwrap().notices.len(), 2, "y and z (across) match");
        assert_eq!(a.beat(2).await.unwrap().total, 2);
        assert_eq!(b.beat(2).await.unwrap().total, 4);

        expire(&a).await;
        let found = b.find(w, &interests(&[]), &config).await.unwrap();
        assert!(found.notices.is_empty(), "w is not given the dead x: {:?}", found.notices);
        let refused = a.find(Sid::new(), &interests(&[]), &config).await;
        assert!(matches!(&refused, Err(Error::Redis(m)) if m.contains("heartbeat")), "{refused:?}");
        let beat = b.beat(2).await.unwrap();
        assert_eq!((beat.total, beat.lapsed), (2, false), "a's count is gone");
        assert_eq!(beat.notices, [Notice::PartnerLeft { to: z }], "y's partner z is told");
        assert!(
            keys(&b, &format!("lobby:s:{x}")).await.is_empty() && keys(&b, &format!("lobby:s:{y}")).await.is_empty()
        );
        assert!(keys(&b, &format!("lobby:*{}", a.node)).await.is_empty());
        let z_fields: Vec<String> = query(&b, redis::cmd("HKEYS").arg(format!("lobby:s:{z}"))).await;
        assert_eq!(z_fields.len(), 2, "z keeps its interests and node, no partner, nobody to skip: {z_fields:?}");
        assert!(b.beat(2).await.unwrap().notices.is_empty(), "a purge happens once");

        let back = a.beat(0).await.unwrap();
        assert!(back.lapsed && back.notices.is_empty(), "a learns it had lapsed");
        let u = Sid::new();
        let found = a.find(u, &interests(&[]), &config).await.unwrap();
        assert_eq!(found.notices.len(), 2, "registered again, a matches its new socket with w");
    }

    /// The heartbeat's TTL is real: a process that stops beating is purged once it ran out.
    #[tokio::test]
    async fn a_heartbeat_runs_out_after_its_ttl() {
        let (_server, client) = start_redis();
        let short = RedisQueue::connect(&client, Duration::from_millis(300)).await.unwrap();
        let other = RedisQueue::connect(&client, FOREVER).await.unwrap();
        let config = LobbyConfig::new(([127, 0, 0, 1], 0).into());
        let x = Sid::new();
        short.find(x, &interests(&[]), &config).await.unwrap();
        other.beat(0).await.unwrap();
        assert_eq!(keys(&other, "lobby:s:*").await, [format!("lobby:s:{x}")], "alive within its TTL");
        tokio::time::sleep(Duration::from_millis(500)).await;
        other.beat(0).await.unwrap();
        assert!(keys(&other, "lobby:s:*").await.is_empty(), "purged after its TTL");
    }

    /// Interests that find nobody: each waiter's fallback is due after the wait, not before; the first
    /// one due finds nobody who accepts a random partner yet, the second one takes it.
    #[tokio::test]
    async fn the_fallback_is_due_after_the_wait() {
        let (_server, client) = start_redis();
        let node = RedisQueue::connect(&client, FOREVER).await.unwrap();
        let mut config = LobbyConfig::new(([127, 0, 0, 1], 0).into());
        config.fallback_wait = Duration::from_millis(400);
        let (x, y) = (Sid::new(), Sid::new());
        let fx = node.find(x, &interests(&["chess"]), &config).await.unwrap().fallback_in.unwrap();
        assert!(fx <= config.fallback_wait && fx > Duration::from_millis(300), "{fx:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fy = node.find(y, &interests(&["jazz"]), &config).await.unwrap().fallback_in.unwrap();
        assert!(fy > Duration::from_millis(300), "{fy:?}");
        let early = node.fallback(x, &config).await.unwrap();
        assert!(early.notices.is_empty() && early.fallback_in.unwrap() <= fx - Duration::from_millis(150));
        tokio::time::sleep(fx.saturating_sub(Duration::from_millis(200))).await;
        let tried = node.fallback(x, &config).await.unwrap();
        assert!(tried.notices.is_empty() && tried.fallback_in.is_none(), "y does not accept a random partner yet");
        tokio::time::sleep(fy).await;
        let matched = node.fallback(y, &config).await.unwrap();
        assert_eq!(
            matched.notices,
            [
                Notice::Matched { to: x, partner: y, initiator: false, common: vec![] },
                Notice::Matched { to: y, partner: x, initiator: true, common: vec![] }
            ]
        );
        assert!(node.fallback(y, &config).await.unwrap().notices.is_empty(), "matched: nothing more to try");
    }

    /// Calls across two processes in Redis: reachability, ring, accept (paired, caller initiating),
    /// decline, cancel, timeout, busy; a dead process's reachable IDs are purged with its sockets.
    #[tokio::test]
    async fn calls_reach_across_processes_and_die_with_them() {
        let (_server, client) = start_redis();
        let (a, b) = (
            RedisQueue::connect(&client, FOREVER).await.unwrap(),
            RedisQueue::connect(&client, FOREVER).await.unwrap(),
        );
        let mut config = LobbyConfig::new(([127, 0, 0, 1], 0).into());
        let (caller, callee, other) = (Sid::new(), Sid::new(), Sid::new());
        let bob = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let code = |o: Result<Outcome, Error>| o.map(|o| o.notices).map_err(|e| e.code());
        assert_eq!(code(a.call(caller, bob, &config).await), Err("unreachable"));
        b.reach(callee, bob, true).await.unwrap();
        let rung = a.call(caller, bob, &config).await.unwrap();
        assert_eq!(rung.notices, [Notice::Ring { to: callee, from: caller }]);
        assert_eq!(rung.ring_in, Some(config.ring_timeout));
        assert_eq!(code(a.call(caller, bob, &config).await), Err("call_pending"));
        assert_eq!(code(b.call(other, bob, &config).await), Err("busy"));
        assert_eq!(
            code(b.answer(callee, false).await),
            Ok(vec![Notice::CallEnded { to: caller, reason: CallEnd::Declined }])
        );
        a.call(caller, bob, &config).await.unwrap();
        assert_eq!(code(a.cancel(caller).await), Ok(vec![Notice::CallEnded { to: callee, reason: CallEnd::Canceled }]));
        b.find(callee, &interests(&[]), &config).await.unwrap();
        a.call(caller, bob, &config).await.unwrap();
        assert_eq!(
            code(b.answer(callee, true).await),
            Ok(vec![
                Notice::Matched { to: callee, partner: caller, initiator: false, common: vec![] },
                Notice::Matched { to: caller, partner: callee, initiator: true, common: vec![] }
            ])
        );
        assert!(keys(&a, "lobby:queue").await.is_empty(), "the callee left the queue");
        assert_eq!(a.partner(caller).await.unwrap(), Some(callee));
        a.stop(caller).await.unwrap();

        config.ring_timeout = Duration::from_millis(200);
        a.call(caller, bob, &config).await.unwrap();
        let early = a.ring_timeout(caller).await.unwrap();
        assert!(early.notices.is_empty() && early.ring_in.is_some());
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut ended = a.ring_timeout(caller).await.unwrap().notices;
        ended.sort_by_key(|n| if let Notice::CallEnded { to, .. } = n { to.to_string() } else { String::new() });
        let mut want = vec![
            Notice::CallEnded { to: caller, reason: CallEnd::Timeout },
            Notice::CallEnded { to: callee, reason: CallEnd::Timeout },
        ];
        want.sort_by_key(|n| if let Notice::CallEnded { to, .. } = n { to.to_string() } else { String::new() });
        assert_eq!(ended, want);

        a.call(caller, bob, &config).await.unwrap();
        expire(&b).await;
        assert_eq!(a.beat(1).await.unwrap().notices, [Notice::CallEnded { to: caller, reason: CallEnd::Gone }]);
        assert!(keys(&a, "lobby:id:*").await.is_empty(), "the dead process's reachable ID is gone");
        assert_eq!(code(a.call(caller, bob, &config).await), Err("unreachable"));
        a.disconnect(caller).await.unwrap();
        a.leave().await;
        assert_eq!(keys(&a, "lobby:*").await, ["lobby:seq"]);
    }
}
