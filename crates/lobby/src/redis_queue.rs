//! Scale-out: the waiting queue and the pairs kept in Redis, so that lobby processes sharing one Redis
//! match users across processes. Every operation is one Lua script run (`queue.lua`), hence atomic;
//! the matching rules are the same as [`Lobby`](crate::Lobby)'s. Also the online count of every process.

use crate::{Error, Interests, LobbyConfig, Notice};
use redis::aio::MultiplexedConnection;
use socketioxide::socket::Sid;
use std::str::FromStr;

/// A connection to the shared queue.
pub(crate) struct RedisQueue {
    connection: MultiplexedConnection,
    script: redis::Script,
    /// This process's key in the `lobby:online` hash.
    node: String,
}

fn wait_ms(config: &LobbyConfig) -> u64 {
    config.fallback_wait.as_millis() as u64
}

fn redis_error(e: redis::RedisError) -> Error {
    Error::Redis(e.to_string())
}

impl RedisQueue {
    pub(crate) async fn connect(client: &redis::Client) -> Result<Self, Error> {
        let connection = client.get_multiplexed_async_connection().await.map_err(redis_error)?;
        let node = format!("{}-{}", std::process::id(), Sid::new());
        Ok(RedisQueue { connection, script: redis::Script::new(include_str!("queue.lua")), node })
    }

    async fn run(&self, op: &str, id: &str, wait_ms: u64, extra: Option<&str>) -> Result<Vec<Notice<Sid>>, Error> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(op).arg(id).arg(wait_ms);
        if let Some(extra) = extra {
            invocation.arg(extra);
        }
        let rows: Vec<Vec<String>> =
            invocation.invoke_async(&mut self.connection.clone()).await.map_err(redis_error)?;
        let sid =
            |s: &str| Sid::from_str(s).map_err(|_| Error::Redis(format!("a malformed socket id in the queue: {s:?}")));
        let mut notices = Vec::with_capacity(rows.len());
        for row in rows {
            match row.first().map(String::as_str) {
                Some("M") if row.len() >= 4 => notices.push(Notice::Matched {
                    to: sid(&row[1])?,
                    partner: sid(&row[2])?,
                    initiator: row[3] == "1",
                    common: row[4..].to_vec(),
                }),
                Some("L") if row.len() == 2 => notices.push(Notice::PartnerLeft { to: sid(&row[1])? }),
                Some("E") if row.get(1).map(String::as_str) == Some("already_matched") => {
                    return Err(Error::AlreadyMatched)
                }
                _ => return Err(Error::Redis(format!("unexpected answer from the queue script: {row:?}"))),
            }
        }
        Ok(notices)
    }

    pub(crate) async fn find(
        &self,
        id: Sid,
        interests: &Interests,
        config: &LobbyConfig,
    ) -> Result<Vec<Notice<Sid>>, Error> {
        let tags = serde_json::to_string(interests.tags()).expect("strings serialize");
        self.run("find", id.as_str(), wait_ms(config), Some(&tags)).await
    }

    pub(crate) async fn next(&self, id: Sid, config: &LobbyConfig) -> Result<Vec<Notice<Sid>>, Error> {
        self.run("next", id.as_str(), wait_ms(config), None).await
    }

    pub(crate) async fn stop(&self, id: Sid) -> Result<Vec<Notice<Sid>>, Error> {
        self.run("stop", id.as_str(), 0, None).await
    }

    pub(crate) async fn disconnect(&self, id: Sid) -> Result<Vec<Notice<Sid>>, Error> {
        self.run("disconnect", id.as_str(), 0, None).await
    }

    pub(crate) async fn tick(&self, config: &LobbyConfig) -> Result<Vec<Notice<Sid>>, Error> {
        self.run("tick", "", wait_ms(config), None).await
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

    /// Publishes this process's count and returns the sum over every process.
    pub(crate) async fn online(&self, local: usize) -> Result<usize, Error> {
        let mut c = self.connection.clone();
        let (_, counts): ((), Vec<usize>) = redis::pipe()
            .cmd("HSET")
            .arg("lobby:online")
            .arg(&self.node)
            .arg(local)
            .cmd("HVALS")
            .arg("lobby:online")
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(counts.iter().sum())
    }

    /// Removes this process's count (at shutdown).
    pub(crate) async fn leave(&self) {
        let _: Result<(), _> =
            redis::cmd("HDEL").arg("lobby:online").arg(&self.node).query_async(&mut self.connection.clone()).await;
    }
}

/// The Lua port against the Rust original: the same pseudo-random sequence of find/next/stop/disconnect
/// runs on a [`Lobby`](crate::Lobby) and on a real `redis-server` (started here on a free loopback port),
/// and every operation must give the same notices in the same order.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Lobby};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    struct RedisServer(std::process::Child);

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn start_redis() -> (RedisServer, u16) {
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
        (server, port)
    }

    #[tokio::test]
    async fn lua_queue_decides_exactly_like_the_lobby() {
        let (_server, port) = start_redis();
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let queue = RedisQueue::connect(&client).await.unwrap();
        let mut config = LobbyConfig::new(([127, 0, 0, 1], 0).into());
        config.fallback_wait = Duration::from_secs(3600); // no time-dependent fallback in this test
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
        let mut connected: Vec<Sid> = Vec::new();
        let now = Instant::now();
        for step in 0..3000 {
            let op = rnd(10);
            if op < 2 || connected.len() < 2 {
                let id = Sid::new();
                lobby.connect(id, now);
                connected.push(id);
                continue;
            }
            let id = connected[rnd(connected.len())];
            let (rust, lua) = match op {
                2..=4 => {
                    let tags: Vec<String> = (0..rnd(3)).map(|_| pool[rnd(pool.len())].to_string()).collect();
                    let interests = crate::Interests::parse(&tags, &limits).unwrap();
                    let rust = lobby.find(id, interests.clone(), now).map_err(|e| e.code());
                    let lua = queue.find(id, &interests, &config).await.map_err(|e| e.code());
                    (rust, lua)
                }
                5 | 6 => {
                    (lobby.next(id, now).map_err(|e| e.code()), queue.next(id, &config).await.map_err(|e| e.code()))
                }
                7 => (lobby.stop(id).map_err(|e| e.code()), queue.stop(id).await.map_err(|e| e.code())),
                _ => {
                    connected.retain(|c| *c != id);
                    (Ok(lobby.disconnect(id)), queue.disconnect(id).await.map_err(|e| e.code()))
                }
            };
            assert_eq!(rust, lua, "step {step}: op {op} on {id}");
        }
        assert!(lobby.counts().pairs > 0, "the walk made pairs");
        for id in connected {
            assert_eq!(Ok(lobby.disconnect(id)), queue.disconnect(id).await.map_err(|e| e.code()));
        }
        let mut c = queue.connection.clone();
        let keys: Vec<String> = redis::cmd("KEYS").arg("lobby:s:*").query_async(&mut c).await.unwrap();
        assert!(keys.is_empty(), "Redis forgot everyone: {keys:?}");
        let waiting: usize = redis::cmd("ZCARD").arg("lobby:queue").query_async(&mut c).await.unwrap();
        assert_eq!(waiting, 0);
    }
}
