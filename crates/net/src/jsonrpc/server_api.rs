//! The `jamulusserver/*` methods of Jamulus 3.9.1 (and `jamulus/getMode`, `jamulus/getVersion`),
//! answered from snapshots the jam server thread sends back over its command channel.

use super::{string_param, Api, RpcError};
use crate::server_control::{ServerCommand, ServerSnapshot};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

/// How long a call waits for the server thread.
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);

pub struct ServerApi {
    pub commands: Sender<ServerCommand>,
    pub city: String,
    pub country: u16,
    /// `--directoryserver` as given ("" if none).
    pub directory: String,
}

impl ServerApi {
    fn send(&self, command: ServerCommand) -> Result<(), RpcError> {
        self.commands.send(command).map_err(|_| RpcError::new(-32603, "Internal error: the server has stopped"))
    }

    fn snapshot(&self) -> Result<ServerSnapshot, RpcError> {
        let (reply, answer) = channel();
        self.send(ServerCommand::Snapshot(reply))?;
        answer.recv_timeout(SERVER_TIMEOUT).map_err(|_| RpcError::new(-32603, "Internal error: the server is busy"))
    }
}

impl Api for ServerApi {
    fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Option<Value>, RpcError> {
        let result = match method {
            "jamulus/getMode" => json!({ "mode": "server" }),
            "jamulus/getVersion" => json!({ "version": tutti_proto::JAMULUS_VERSION }),
            "jamulusserver/getClients" => {
                let clients: Vec<Value> = self
                    .snapshot()?
                    .clients
                    .iter()
                    .map(|c| {
                        json!({
                            "address": c.address.to_string(),
                            "channels": c.audio_channels,
                            "id": c.channel,
                            "jitterBufferSize": c.jitter_buffer_size,
                            "name": c.name,
                        })
                    })
                    .collect();
                json!({ "clients": clients })
            }
            "jamulusserver/getRecorderStatus" => {
                let r = self.snapshot()?.recorder;
                json!({
                    "enabled": r.enabled,
                    "errorMessage": r.error_message,
                    "initialised": r.initialised,
                    "recordingDirectory": r.directory,
                })
            }
            "jamulusserver/getServerProfile" => {
                let s = self.snapshot()?;
                json!({
                    "city": self.city,
                    "countryId": self.country,
                    "directoryServer": self.directory,
                    "name": s.server_name,
                    "registrationStatus": s.registration.unwrap_or("not_registered"),
                    "welcomeMessage": s.welcome_message,
                })
            }
            "jamulusserver/setServerName" => {
                let name = string_param(params, "serverName")?;
                self.send(ServerCommand::SetServerName(name.to_string()))?;
                json!("ok")
            }
            "jamulusserver/setWelcomeMessage" => {
                let text = string_param(params, "welcomeMessage")?;
                self.send(ServerCommand::SetWelcomeMessage(text.to_string()))?;
                json!("ok")
            }
            "jamulusserver/setRecordingDirectory" => {
                let dir = string_param(params, "recordingDirectory")?;
                self.send(ServerCommand::SetRecordingDirectory(PathBuf::from(dir)))?;
                json!("acknowledged")
            }
            "jamulusserver/startRecording" => {
                self.send(ServerCommand::StartRecording)?;
                json!("acknowledged")
            }
            "jamulusserver/stopRecording" => {
                self.send(ServerCommand::StopRecording)?;
                json!("acknowledged")
            }
            "jamulusserver/restartRecording" => {
                self.send(ServerCommand::RestartRecording)?;
                json!("acknowledged")
            }
            _ => return Ok(None),
        };
        Ok(Some(result))
    }
}
