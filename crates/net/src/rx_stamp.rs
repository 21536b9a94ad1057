//! Kernel receive time stamps (`SO_TIMESTAMPNS`) for the load generator's latency mode: the time a
//! datagram reached the socket, independent of when the (busy, single-threaded) load generator got
//! round to reading it. `CLOCK_REALTIME`, in nanoseconds, like [`wall_ns`].
//!
//! Unsafe code for `recvmsg` and its control messages only, wrapped so that callers see a slice,
//! an address and a time.
#![allow(unsafe_code)]

use socket2::SockAddr;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, on the clock the kernel stamps received datagrams with (`CLOCK_REALTIME`), in nanoseconds.
pub fn wall_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Asks the kernel to stamp every datagram `socket` receives.
pub fn enable(socket: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: SO_TIMESTAMPNS takes an int; the pointer and length describe `on`, alive for the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One datagram without blocking: its length, sender and kernel receive time (`wall_ns` if the
/// kernel gave none); `None` when nothing is waiting or the sender is not an IP address.
pub fn receive(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr, i64)>> {
    // SAFETY: sockaddr_storage and msghdr are plain old data; all-zero is valid for both.
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut control = [0u64; 16]; // 128 bytes, aligned for cmsghdr
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_name = (&mut address as *mut libc::sockaddr_storage).cast();
    header.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: the header points at `buf` (through `iov`), `address` and `control`, all alive for the
    // call; the kernel writes at most their stated lengths.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Ok(None),
            _ => Err(e),
        };
    }
    let stamp = stamp_in(&header);
    // SAFETY: the kernel filled `address` with msg_namelen valid bytes.
    let from = unsafe { SockAddr::new(address, header.msg_namelen) }.as_socket();
    Ok(from.map(|from| (n as usize, from, stamp.unwrap_or_else(wall_ns))))
}

/// The receive stamp among the control messages of a header `recvmsg`/`recvmmsg` just filled.
pub(crate) fn stamp_in(header: &libc::msghdr) -> Option<i64> {
    let mut stamp = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within msg_controllen
    // (or yield nothing when the header has none); the stamp is read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                stamp = Some(ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    stamp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_lie_between_send_and_read() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&b).unwrap();
        let mut buf = [0u8; 64];
        assert!(receive(&b, &mut buf).unwrap().is_none(), "nothing waiting, no blocking");
        // The kernel switches its stamping on a moment after the first socket asks for it.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = wall_ns();
        a.send_to(b"hello", b.local_addr().unwrap()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (n, from, stamp) = receive(&b, &mut buf).unwrap().unwrap();
        let read = wall_ns();
        assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr().unwrap()));
        assert!(before <= stamp && stamp <= read, "{before} {stamp} {read}");
        assert!(read - stamp >= 15_000_000, "the kernel's time, not the reader's: {}", read - stamp);
    }
}
