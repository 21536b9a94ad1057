//! The `jamulusclient/*` methods and notifications of Jamulus 3.9.1 for `tutti client`, with its
//! names, params, result shapes and error texts. The client's events come in through
//! [`ClientApi::observe`] (from the thread that reads them), which keeps what the methods answer
//! and sends the notifications; methods act through the running client's command channel.

use super::{string_param, Api, Notifier, RpcError};
use crate::Command;
use serde_json::{json, Map, Value};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, MutexGuard};
use tutti_jam::ClientEvent;
use tutti_proto::message::{ClientListEntry, Profile, SkillLevel};

/// Jamulus' limit for the name (MAX_LEN_FADER_TAG).
const MAX_NAME: usize = 16;

/// What the client knows about its connection, as the methods report it.
struct Known {
    profile: Profile,
    /// Server audio flows (Jamulus reports "connected" only from then on).
    audio: bool,
    /// The server said goodbye or went silent.
    gone: bool,
    clients: Vec<ClientListEntry>,
}

impl Known {
    fn connected(&self) -> bool {
        self.audio && !self.gone
    }
}

pub struct ClientApi {
    commands: Sender<Command>,
    notifier: Notifier,
    known: Mutex<Known>,
}

impl ClientApi {
    /// `profile`: the one the client starts with; `commands`: the running client's.
    pub fn new(profile: Profile, commands: Sender<Command>, notifier: Notifier) -> Self {
        let known = Known { profile, audio: false, gone: false, clients: Vec::new() };
        ClientApi { commands, notifier, known: Mutex::new(known) }
    }

    fn known(&self) -> MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The profile as last set (the command line's, or `setName` / `setSkillLevel`'s).
    pub fn profile(&self) -> Profile {
        self.known().profile.clone()
    }

    /// Takes one event of the running client: remembers what the methods report and notifies.
    pub fn observe(&self, event: &ClientEvent) {
        let (method, params) = match event {
            ClientEvent::Connected { channel } => ("jamulusclient/connected", json!({ "id": channel })),
            ClientEvent::AudioStarted => {
                self.known().audio = true;
                return;
            }
            ClientEvent::ClientList(list) => {
                self.known().clients = list.clone();
                ("jamulusclient/clientListReceived", clients_json(list))
            }
            ClientEvent::ChannelLevels(levels) => {
                ("jamulusclient/channelLevelListReceived", json!({ "channelLevelList": levels }))
            }
            ClientEvent::Chat(html) => ("jamulusclient/chatTextReceived", json!({ "chatText": html })),
            ClientEvent::Disconnected => {
                self.known().gone = true;
                ("jamulusclient/disconnected", json!({}))
            }
            ClientEvent::MutedBy { .. } | ClientEvent::RecorderState(_) | ClientEvent::LicenceRequired => return,
        };
        self.notifier.notify(method, params);
    }

    fn send(&self, command: Command) -> Result<(), RpcError> {
        self.commands.send(command).map_err(|_| not_connected())
    }

    /// Applies `change` to the profile and sends it to the server (CHANNEL_INFOS), as Jamulus does
    /// also while not connected.
    fn change_profile(&self, change: impl FnOnce(&mut Profile)) {
        let mut known = self.known();
        change(&mut known.profile);
        // A stopped client has nobody to tell; the profile is still answered by getChannelInfo.
        let _ = self.commands.send(Command::Profile(known.profile.clone()));
    }
}

fn not_connected() -> RpcError {
    RpcError::new(1, "Client is not connected")
}

fn skill_json(skill: SkillLevel) -> Value {
    match skill {
        SkillLevel::NotSet | SkillLevel::Other(_) => Value::Null,
        SkillLevel::Beginner => json!("beginner"),
        SkillLevel::Intermediate => json!("intermediate"),
        SkillLevel::Expert => json!("expert"),
    }
}

fn clients_json(list: &[ClientListEntry]) -> Value {
    let clients: Vec<Value> = list
        .iter()
        .map(|e| {
            json!({
                "city": e.profile.city,
                "countryId": e.profile.country,
                "id": e.channel,
                "instrumentId": e.profile.instrument,
                "name": e.profile.name,
                "skillLevel": skill_json(e.profile.skill),
            })
        })
        .collect();
    json!({ "clients": clients })
}

impl Api for ClientApi {
    fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Option<Value>, RpcError> {
        let result = match method {
            "jamulus/getMode" => json!({ "mode": "client" }),
            "jamulus/getVersion" => json!({ "version": tutti_proto::JAMULUS_VERSION }),
            "jamulusclient/getClientInfo" => json!({ "connected": self.known().connected() }),
            "jamulusclient/getChannelInfo" => {
                let p = self.profile();
                json!({
                    "city": p.city,
                    "countryId": p.country,
                    "instrumentId": p.instrument,
                    "name": p.name,
                    "skillLevel": skill_json(p.skill),
                })
            }
            "jamulusclient/getClientList" => {
                let known = self.known();
                if !known.connected() {
                    return Err(not_connected());
                }
                clients_json(&known.clients)
            }
            "jamulusclient/setName" => {
                let name = tutti_proto::truncate_utf16(string_param(params, "name")?, MAX_NAME).to_string();
                self.change_profile(|p| p.name = name);
                json!("ok")
            }
            "jamulusclient/setSkillLevel" => {
                let skill = match params.get("skillLevel") {
                    Some(Value::Null) => {
                        self.change_profile(|p| p.skill = SkillLevel::NotSet);
                        // Jamulus 3.9.1 answers this one with neither result nor error.
                        return Ok(Some(Value::Null));
                    }
                    Some(Value::String(s)) => match s.as_str() {
                        "beginner" => SkillLevel::Beginner,
                        "intermediate" => SkillLevel::Intermediate,
                        "expert" => SkillLevel::Expert,
                        _ => {
                            return Err(RpcError::invalid_params("skillLevel is not beginner, intermediate or expert"))
                        }
                    },
                    _ => return Err(RpcError::invalid_params("skillLevel is not a string")),
                };
                self.change_profile(|p| p.skill = skill);
                json!("ok")
            }
            "jamulusclient/sendChatText" => {
                let text = string_param(params, "chatText")?;
                if !self.known().connected() {
                    return Err(not_connected());
                }
                self.send(Command::Chat(text.to_string()))?;
                json!("ok")
            }
            _ => return Ok(None),
        };
        Ok(Some(result))
    }
}
