//! JSON-RPC 2.0 as Jamulus 3.9.1 speaks it: one compact JSON document per line over TCP. The first
//! call must be `jamulus/apiAuth` with the secret; errors and their texts are Jamulus'.
//!
//! This module is the transport both sides share: requests and their errors here ([`handle_line`], also a
//! fuzz target), connections and notifications in [`listener`]; the methods of `tutti server` in
//! [`server_api`], those of `tutti client` in [`client_api`]. The flags that switch it on are the binary's.

mod client_api;
mod listener;
mod server_api;

pub use client_api::ClientApi;
pub use listener::{start, Notifier};
pub use server_api::ServerApi;

use serde_json::{json, Map, Value};
use tracing::{info, warn};

/// A JSON-RPC error: code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into() }
    }

    pub fn invalid_params(what: &str) -> Self {
        RpcError::new(-32602, format!("Invalid params: {what}"))
    }
}

/// The string parameter `name`, or Jamulus' "Invalid params" error.
pub(crate) fn string_param<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, RpcError> {
    params.get(name).and_then(Value::as_str).ok_or_else(|| RpcError::invalid_params(&format!("{name} is not a string")))
}

/// The methods one side (server or client) offers besides `jamulus/apiAuth`.
pub trait Api: Send + Sync + 'static {
    /// `Ok(None)`: the method does not exist. `Ok(Some(result))`; `Err`: an error reply.
    /// `Ok(Some(Value::Null))` is a reply with neither `result` nor `error`, as Jamulus gives for
    /// `jamulusclient/setSkillLevel` with `null`.
    fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Option<Value>, RpcError>;
}

/// Answers one line: the reply (if any) and whether the connection stays open.
pub fn handle_line(line: &[u8], secret: &str, authenticated: &mut bool, api: &dyn Api) -> (Option<Value>, bool) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return (Some(error_reply(None, &RpcError::new(-32700, "Parse error: Blank line received"))), true);
    }
    let invalid_json =
        || (Some(error_reply(None, &RpcError::new(-32700, "Parse error: Invalid JSON received"))), false);
    let Ok(document) = serde_json::from_str::<Value>(text) else { return invalid_json() };
    match document {
        Value::Object(request) => (Some(handle_request(&request, secret, authenticated, api)), true),
        Value::Array(batch) if batch.is_empty() => {
            let error = RpcError::new(-32600, "Invalid request: Empty batch request encountered");
            (Some(error_reply(None, &error)), false)
        }
        Value::Array(batch) => {
            if !batch.iter().all(Value::is_object) {
                return (None, false);
            }
            let replies = batch
                .iter()
                .filter_map(Value::as_object)
                .map(|request| handle_request(request, secret, authenticated, api))
                .collect();
            (Some(Value::Array(replies)), true)
        }
        _ => invalid_json(),
    }
}

fn handle_request(request: &Map<String, Value>, secret: &str, authenticated: &mut bool, api: &dyn Api) -> Value {
    let id = Some(request.get("id").unwrap_or(&Value::Null));
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return error_reply(id, &RpcError::new(-32600, "Invalid request: The `method` member is not a string"));
    };
    let Some(params) = request.get("params").and_then(Value::as_object) else {
        return error_reply(id, &RpcError::invalid_params("The `params` member is not an object"));
    };
    if method == "jamulus/apiAuth" {
        let Some(given) = params.get("secret").and_then(Value::as_str) else {
            return error_reply(id, &RpcError::invalid_params("secret is not a string"));
        };
        if constant_time_eq(given.as_bytes(), secret.as_bytes()) {
            *authenticated = true;
            info!("JSON-RPC: accepted valid authentication secret");
            return result_reply(id, json!("ok"));
        }
        warn!("JSON-RPC: rejected invalid authentication secret");
        return error_reply(id, &RpcError::new(400, "Authentication failed."));
    }
    if !*authenticated {
        let error = RpcError::new(401, "Unauthenticated: Please authenticate using jamulus/apiAuth first");
        return error_reply(id, &error);
    }
    match api.call(method, params) {
        Ok(Some(Value::Null)) => bare_reply(id),
        Ok(Some(result)) => result_reply(id, result),
        Ok(None) => error_reply(id, &RpcError::new(-32601, "Method not found")),
        Err(error) => error_reply(id, &error),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Keys in alphabetical order, as Qt writes them.
fn result_reply(id: Option<&Value>, result: Value) -> Value {
    let mut reply = Map::new();
    if let Some(id) = id {
        reply.insert("id".into(), id.clone());
    }
    reply.insert("jsonrpc".into(), json!("2.0"));
    reply.insert("result".into(), result);
    Value::Object(reply)
}

/// A reply with neither `result` nor `error` (Jamulus' `setSkillLevel(null)`).
fn bare_reply(id: Option<&Value>) -> Value {
    let mut reply = Map::new();
    if let Some(id) = id {
        reply.insert("id".into(), id.clone());
    }
    reply.insert("jsonrpc".into(), json!("2.0"));
    Value::Object(reply)
}

fn error_reply(id: Option<&Value>, error: &RpcError) -> Value {
    let mut reply = Map::new();
    reply.insert("error".into(), json!({ "code": error.code, "message": error.message }));
    if let Some(id) = id {
        reply.insert("id".into(), id.clone());
    }
    reply.insert("jsonrpc".into(), json!("2.0"));
    Value::Object(reply)
}
