//! Batched UDP on Linux: `recvmmsg` takes every waiting datagram in one system call and `sendmmsg`
//! sends a tick's datagrams (one per client, each to its own address) in one call per 64. At 150
//! clients this replaces ~112,000 system calls per second by a few thousand.
//!
//! The only unsafe code of the IO shells; each call is wrapped so that callers see slices and
//! `SocketAddr`s. Errors of one datagram (a full send buffer, an unreachable peer) drop that
//! datagram only.
#![allow(unsafe_code)]

use socket2::SockAddr;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 64;

/// Buffers for receiving up to `BATCH` datagrams at once.
pub struct RecvBatch {
    slot: usize,
    buffers: Vec<u8>,
    addresses: Vec<libc::sockaddr_storage>,
    lengths: [usize; BATCH],
    address_lengths: [libc::socklen_t; BATCH],
    /// Room for each datagram's control messages (a kernel receive stamp, when asked for).
    controls: Vec<[u64; 8]>,
    stamps: [Option<i64>; BATCH],
    count: usize,
}

impl RecvBatch {
    /// Room for `BATCH` datagrams of up to `slot` bytes (longer ones are truncated to `slot`).
    pub fn new(slot: usize) -> Self {
        RecvBatch {
            slot,
            buffers: vec![0; slot * BATCH],
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
            addresses: vec![unsafe { std::mem::zeroed() }; BATCH],
            lengths: [0; BATCH],
            address_lengths: [0; BATCH],
            controls: vec![[0; 8]; BATCH],
            stamps: [None; BATCH],
            count: 0,
        }
    }

    /// Takes whatever is waiting on `socket` without blocking (up to `BATCH`); returns how many.
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        let mut iovecs: [libc::iovec; BATCH] =
            std::array::from_fn(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 });
        // SAFETY: mmsghdr is plain old data; zero is a valid initial value for every field.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (iov, header)) in iovecs.iter_mut().zip(headers.iter_mut()).enumerate() {
            iov.iov_base = self.buffers[i * self.slot..].as_mut_ptr().cast();
            iov.iov_len = self.slot;
            header.msg_hdr.msg_name = (&mut self.addresses[i] as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = std::mem::size_of::<[u64; 8]>() as _;
        }
        // SAFETY: every header points at a live iovec over its own `slot`-byte region of `buffers`,
        // at its own sockaddr_storage and its own control buffer; all outlive the call. The kernel
        // writes at most their stated lengths.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                // An ICMP error for something sent earlier: not this socket's fault.
                io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (i, header) in headers[..n].iter().enumerate() {
            self.lengths[i] = (header.msg_len as usize).min(self.slot);
            self.address_lengths[i] = header.msg_hdr.msg_namelen;
            self.stamps[i] = crate::rx_stamp::stamp_in(&header.msg_hdr);
        }
        self.count = n;
        Ok(n)
    }

    /// The kernel's receive stamp of datagram `i` (`CLOCK_REALTIME` ns), on a socket that asked for
    /// them ([`crate::rx_stamp::enable`]).
    pub fn stamp(&self, i: usize) -> Option<i64> {
        self.stamps.get(i).copied().flatten().filter(|_| i < self.count)
    }

    /// Datagram `i` of the last `receive`: its sender (if a valid IP address) and its bytes.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        if i >= self.count {
            return None;
        }
        // SAFETY: the kernel filled addresses[i] with address_lengths[i] valid bytes.
        let address = unsafe { SockAddr::new(self.addresses[i], self.address_lengths[i]) }.as_socket()?;
        Some((address, &self.buffers[i * self.slot..i * self.slot + self.lengths[i]]))
    }
}

/// Buffers for sending up to `BATCH` datagrams per `sendmmsg`, kept from call to call so that the
/// tick's sending allocates nothing.
pub struct SendBatch {
    addresses: Vec<SockAddr>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl SendBatch {
    pub fn new() -> Self {
        SendBatch {
            addresses: Vec::with_capacity(BATCH),
            iovecs: Vec::with_capacity(BATCH),
            headers: Vec::with_capacity(BATCH),
        }
    }

    /// Sends every `(to, bytes)` of `datagrams` with as few `sendmmsg` calls as possible. Returns how
    /// many the kernel took; the others were dropped (full buffer, unreachable peer).
    pub fn send_all<'a>(
        &mut self,
        socket: &UdpSocket,
        datagrams: impl Iterator<Item = (SocketAddr, &'a [u8])>,
    ) -> usize {
        self.send_all_observed(socket, datagrams, || {})
    }

    /// `send_all`, calling `after_batch` when each `sendmmsg` batch has been handed to the kernel.
    pub fn send_all_observed<'a>(
        &mut self,
        socket: &UdpSocket,
        datagrams: impl Iterator<Item = (SocketAddr, &'a [u8])>,
        mut after_batch: impl FnMut(),
    ) -> usize {
        let mut sent = 0;
        let mut datagrams = datagrams.peekable();
        while datagrams.peek().is_some() {
            self.addresses.clear();
            self.iovecs.clear();
            for (to, bytes) in datagrams.by_ref().take(BATCH) {
                self.addresses.push(SockAddr::from(to));
                self.iovecs.push(libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() });
            }
            sent += self.send_batch(socket);
            after_batch();
        }
        sent
    }

    /// Sends what `addresses` and `iovecs` hold (the payloads they point at are alive for the call).
    fn send_batch(&mut self, socket: &UdpSocket) -> usize {
        self.headers.clear();
        for (iov, address) in self.iovecs.iter_mut().zip(&self.addresses) {
            // SAFETY: mmsghdr is plain old data; zero is a valid initial value for every field.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_name = address.as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = address.len();
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            self.headers.push(header);
        }
        let mut done = 0;
        let mut taken = 0;
        while done < self.headers.len() {
            // SAFETY: headers[done..] point at live iovecs over live payload slices and live addresses;
            // sendmmsg only reads them (and writes msg_len).
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers[done..].as_mut_ptr(),
                    (self.headers.len() - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                done += 1; // this datagram cannot go: drop it, go on with the next
            } else {
                done += n as usize;
                taken += n as usize;
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let sent = SendBatch::new().send_all(&a, payloads.iter().map(|p| (to, p.as_slice())));
        assert_eq!(sent, 100);
        let mut batch = RecvBatch::new(2048);
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while got.len() < 100 && std::time::Instant::now() < deadline {
            let n = batch.receive(&b).unwrap();
            for i in 0..n {
                let (from, bytes) = batch.get(i).unwrap();
                assert_eq!(from, a.local_addr().unwrap());
                got.push(bytes.to_vec());
            }
        }
        assert_eq!(got, payloads);
        assert_eq!(batch.receive(&b).unwrap(), 0, "nothing more, and no blocking");
    }
}
