//! Datagrams in and out in batches: `recvmmsg(2)` reads up to [`BATCH`] datagrams in one system call and tells
//! when a socket is drained (fewer than asked for, so an edge-triggered poll needs no extra call that ends in
//! EAGAIN), and `sendmmsg(2)` sends every datagram queued for one socket in one call. Linux only; the only
//! `unsafe` of the crate, each call with its reasoning.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams read by one call at most.
pub const BATCH: usize = 16;
/// Bytes of one datagram at most (a larger one is cut, and then refused by the parsers).
pub const SLOT: usize = 65536;

/// Buffers of one batch of received datagrams.
pub struct RecvBatch {
    data: Vec<u8>,
    lens: [usize; BATCH],
    addrs: [Option<SocketAddr>; BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch { data: vec![0; BATCH * SLOT], lens: [0; BATCH], addrs: [None; BATCH], count: 0 }
    }
}

impl RecvBatch {
    /// Reads what `fd` (a non-blocking UDP socket) holds, up to [`BATCH`] datagrams; the count read.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.count = 0;
        // SAFETY: all-zero bytes are valid values of these plain C structs (null pointers, zero lengths).
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, chunk) in self.data.chunks_exact_mut(SLOT).enumerate().take(BATCH) {
            iovecs[i] = libc::iovec { iov_base: chunk.as_mut_ptr().cast(), iov_len: SLOT };
        }
        for ((header, iovec), name) in headers.iter_mut().zip(iovecs.iter_mut()).zip(names.iter_mut()) {
            header.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live iovec over its own SLOT bytes of `self.data` and at its own
        // sockaddr_storage with its true size; all of them outlive the call, and the kernel writes no more than
        // those lengths. BATCH headers are passed, as many as the array holds.
        let n = unsafe {
            libc::recvmmsg(fd, headers.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (n as usize).min(BATCH);
        for i in 0..n {
            self.lens[i] = (headers[i].msg_len as usize).min(SLOT);
            self.addrs[i] = socket_addr(&names[i]);
        }
        self.count = n;
        Ok(n)
    }

    /// The `i`-th datagram of the last [`RecvBatch::recv`] and who sent it.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let from = (*self.addrs.get(i)?)?;
        let start = i * SLOT;
        Some((self.data.get(start..start + *self.lens.get(i)?)?, from))
    }
}

/// Datagrams queued for one socket, sent together by [`SendQueue::flush`].
#[derive(Default)]
pub struct SendQueue {
    items: Vec<(SocketAddr, Vec<u8>)>,
}

impl SendQueue {
    pub fn push(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.items.push((to, bytes));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends everything queued on `fd`; what the socket cannot take now is dropped (it is UDP). Returns the
    /// buffers for reuse.
    pub fn flush(&mut self, fd: RawFd, mut recycle: impl FnMut(Vec<u8>)) {
        let mut at = 0;
        while at < self.items.len() {
            let chunk = self.items.get(at..).unwrap_or(&[]);
            let chunk = chunk.get(..chunk.len().min(64)).unwrap_or(&[]);
            // SAFETY: see `recv`: zeroed C structs are valid.
            let mut names: [libc::sockaddr_storage; 64] = unsafe { zeroed() };
            let mut iovecs: [libc::iovec; 64] = unsafe { zeroed() };
            let mut headers: [libc::mmsghdr; 64] = unsafe { zeroed() };
            for (i, (to, bytes)) in chunk.iter().enumerate() {
                let len = write_sockaddr(*to, &mut names[i]);
                iovecs[i] = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
                headers[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                headers[i].msg_hdr.msg_namelen = len;
                headers[i].msg_hdr.msg_iov = &mut iovecs[i];
                headers[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the first `chunk.len()` headers point at live iovecs over the queued byte vectors (which the
            // kernel only reads) and at initialised socket addresses with their lengths; all outlive the call.
            let sent =
                unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), chunk.len() as libc::c_uint, libc::MSG_DONTWAIT) };
            if sent <= 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                at += 1; // this datagram cannot go (full buffer, unreachable…): drop it and go on
            } else {
                at += sent as usize;
            }
        }
        for (_, bytes) in self.items.drain(..) {
            recycle(bytes);
        }
    }
}

fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller than sockaddr_storage and
            // has no stricter alignment.
            let sin = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id)))
        }
        _ => None,
    }
}

fn write_sockaddr(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_in fits in sockaddr_storage with no stricter alignment; every field is written.
            let sin = unsafe { &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            sin6.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_with_addresses() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let mut queue = SendQueue::default();
        for i in 0..20u8 {
            queue.push(b.local_addr().unwrap(), vec![i; usize::from(i) + 1]);
        }
        let mut recycled = 0;
        queue.flush(a.as_raw_fd(), |_| recycled += 1);
        assert_eq!(recycled, 20);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut batch = RecvBatch::default();
        assert_eq!(batch.recv(b.as_raw_fd()).unwrap(), BATCH);
        assert_eq!(batch.get(3), Some((&[3u8; 4][..], a.local_addr().unwrap())));
        assert_eq!(batch.recv(b.as_raw_fd()).unwrap(), 4, "fewer than a batch: drained");
        assert_eq!(batch.get(0).unwrap().0, &[16u8; 17][..]);
        assert!(batch.get(4).is_none());
        assert_eq!(batch.recv(b.as_raw_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }
}
