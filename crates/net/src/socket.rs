//! Opening the server's UDP socket with the options a jam server wants: large buffers for bursts of
//! 150 clients, the IP TOS byte Jamulus sets (`--qos`), and clear errors for the usual mistakes.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Binds `address`; `tos` is the IP TOS byte (0 leaves the default).
pub(crate) fn bind_udp(address: SocketAddr, tos: u8) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, it only drops sooner under a burst.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    if tos != 0 && address.is_ipv4() {
        let _ = socket.set_tos(u32::from(tos));
    }
    socket.bind(&address.into()).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => io::Error::new(
            e.kind(),
            format!("UDP port {} is in use: another server is running there, or pass --port", address.port()),
        ),
        io::ErrorKind::AddrNotAvailable => io::Error::new(
            e.kind(),
            format!("{} is not an address of this machine (check --serverbindip)", address.ip()),
        ),
        io::ErrorKind::PermissionDenied => {
            io::Error::new(e.kind(), format!("not allowed to bind UDP {address} (ports below 1024 need privileges)"))
        }
        _ => e,
    })?;
    Ok(socket.into())
}
