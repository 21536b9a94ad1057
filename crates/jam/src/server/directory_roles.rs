//! The jam server's directory roles, kept out of the audio path: registering with a directory
//! ([`Registrar`], `--directoryserver HOST`) and being a directory itself ([`Directory`], Jamulus'
//! `--directoryserver localhost`). Both send from the server's own socket through its outbox.
//!
//! Their timers (500 ms at the finest) are not in `Server::poll_timeout`, whose deadlines the shell
//! sleeps on blindly; the shell calls `handle_timeout` at least every 200 ms anyway.

use super::Server;
use crate::directory::Directory;
use crate::registration::{Registrar, RegistrationStatus};
use std::net::SocketAddr;
use std::time::Instant;
use tutti_proto::frame::OVERHEAD;
use tutti_proto::Message;

impl Server {
    /// Offers a connection-less message to the directory roles; true if one of them took it.
    pub(super) fn handle_directory_roles(&mut self, now: Instant, from: SocketAddr, message: &Message) -> bool {
        self.start_directory_roles(now);
        let mut taken = false;
        if let Some(registrar) = self.registrar.as_mut() {
            taken = registrar.handle_message(now, from, message);
        }
        if !taken {
            if let Some(directory) = self.directory.as_mut() {
                let wire_len = match message {
                    Message::ClmReqServerList | Message::ClmUnregisterServer => OVERHEAD,
                    Message::ClmPingMs(_) => OVERHEAD + 4,
                    other => OVERHEAD + other.data().len(),
                };
                taken = directory.handle_message(now, from, message, wire_len);
            }
        }
        self.flush_directory_roles();
        taken
    }

    /// Registration retries, refreshes and keep-alives; the directory's expiry and keep-alives.
    pub(super) fn handle_directory_timers(&mut self, now: Instant) {
        self.start_directory_roles(now);
        if let Some(registrar) = self.registrar.as_mut() {
            registrar.handle_timeout(now);
        }
        if let Some(directory) = self.directory.as_mut() {
            if now >= directory.poll_timeout() {
                directory.handle_timeout(now);
            }
        }
        self.flush_directory_roles();
    }

    /// Where the registration with `--directoryserver` stands (`None` without one).
    pub fn registration_status(&self) -> Option<RegistrationStatus> {
        self.registrar.as_ref().map(Registrar::status)
    }

    /// The registration status if it changed since the last call (for the operator's log).
    pub fn poll_registration_change(&mut self) -> Option<RegistrationStatus> {
        self.registrar.as_mut().and_then(Registrar::poll_status_change)
    }

    /// Changes the server name (JSON-RPC `setServerName`): re-registers when registered. Like
    /// Jamulus, the name is not cut to 20 characters here.
    pub fn set_server_name(&mut self, name: String) {
        if let Some(registrar) = self.registrar.as_mut() {
            let info = registrar.info().clone();
            registrar.set_info(name, info.city, info.country);
        }
    }

    /// The name registered with the directory (`None` when not registering).
    pub fn registered_name(&self) -> Option<&str> {
        self.registrar.as_ref().map(|r| r.info().name.as_str())
    }

    /// The directory role, when the server is its own directory.
    pub fn directory(&self) -> Option<&Directory> {
        self.directory.as_ref()
    }

    /// Unregisters from the directory (on shutdown). Send what `poll_transmit` then returns.
    pub fn unregister(&mut self) {
        if let Some(registrar) = self.registrar.as_mut() {
            registrar.unregister();
        }
        self.flush_directory_roles();
    }

    fn start_directory_roles(&mut self, now: Instant) {
        if self.registrar.is_none() {
            self.registrar = self.config.registration.clone().map(Registrar::new);
        }
        if self.directory.is_none() {
            if let Some(mut config) = self.config.directory.clone() {
                config.own.max_clients = self.config.max_channels as u8;
                self.directory = Some(Directory::new(config, now));
            }
        }
    }

    fn flush_directory_roles(&mut self) {
        if let Some(registrar) = self.registrar.as_mut() {
            while let Some((to, datagram)) = registrar.poll_transmit() {
                self.outbox.push(to, &datagram);
            }
        }
        if let Some(directory) = self.directory.as_mut() {
            while let Some((to, datagram)) = directory.poll_transmit() {
                self.outbox.push(to, datagram);
            }
        }
    }
}
