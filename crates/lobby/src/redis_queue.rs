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
