//! Datagrams taken off an RTP socket in batches: one `recvmmsg` (Linux) for up to [`BATCH`]
//! of them, each with the kernel's arrival time, into buffers owned by the batch (no
//! allocation per datagram).
//!
//! The media driver polls its RTP sockets on a short tick instead of waking for every
//! datagram: a 2 Mbit/s call sends ~260 packets a second, and a wake-up, a readiness check
//! and a `recvfrom` for each cost more than everything else the packet needs. The sockets are
//! plain non-blocking `std` sockets, registered with no reactor, so a datagram arriving between
//! ticks wakes nothing. The kernel's timestamp (`SO_TIMESTAMPNS`) keeps each packet's arrival
//! time exact, so jitter and timing do not see the tick.

#![allow(unsafe_code)]

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

/// Datagrams taken per system call.
pub const BATCH: usize = 32;

/// One buffer per datagram, one byte larger than the largest datagram taken, so a longer one
/// is seen as oversized rather than cut.
pub struct DatagramBatch<const SLOT: usize> {
    buffers: Box<[[u8; SLOT]; BATCH]>,
    lens: [usize; BATCH],
    sources: [Option<SocketAddr>; BATCH],
    /// How long before the batch was taken each datagram arrived.
    ages: [Duration; BATCH],
    count: usize,
}

impl<const SLOT: usize> Default for DatagramBatch<SLOT> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SLOT: usize> DatagramBatch<SLOT> {
    pub fn new() -> Self {
        DatagramBatch {
            buffers: Box::new([[0; SLOT]; BATCH]),
            lens: [0; BATCH],
            sources: [None; BATCH],
            ages: [Duration::ZERO; BATCH],
            count: 0,
        }
    }

    /// Takes up to [`BATCH`] datagrams waiting on `socket`, without blocking. `Ok(0)` when
    /// none are waiting.
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        let count = sys::receive(socket, self)?;
        self.count = count;
        Ok(count)
    }

    /// How long before the last [`Self::receive`] its `index`th datagram arrived.
    pub fn age(&self, index: usize) -> Option<Duration> {
        self.ages.get(..self.count)?.get(index).copied()
    }

    /// The `index`th datagram of the last [`Self::receive`]: its bytes (mutable, so SRTP can
    /// decrypt in place), its source and how long ago it arrived.
    pub fn datagram(&mut self, index: usize) -> Option<(&mut [u8], SocketAddr, Duration)> {
        if index >= self.count {
            return None;
        }
        let source = self.sources.get(index).copied().flatten()?;
        let len = *self.lens.get(index)?;
        let age = *self.ages.get(index)?;
        let buffer = self.buffers.get_mut(index)?;
        let bytes = buffer.get_mut(..len.min(SLOT))?;
        Some((bytes, source, age))
    }
}

/// Asks for the kernel's receive timestamp on every datagram, and for a receive buffer large
/// enough to hold a keyframe's burst between two ticks (the kernel caps the size at
/// `net.core.rmem_max`). Both are best effort.
pub fn prepare(socket: &UdpSocket, receive_buffer: usize) {
    sys::prepare(socket, receive_buffer);
}

/// How long before `now` a kernel timestamp lies (zero if it is in the future or absent).
fn age(now: SystemTime, arrived: Option<SystemTime>) -> Duration {
    arrived
        .and_then(|arrived| now.duration_since(arrived).ok())
        .unwrap_or_default()
}

#[cfg(target_os = "linux")]
mod sys {
    use super::{BATCH, DatagramBatch, age};
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// Room for one `SCM_TIMESTAMPNS` control message (a `timespec`), aligned.
    const CONTROL: usize = 64;

    pub(super) fn prepare(socket: &UdpSocket, receive_buffer: usize) {
        let size = libc::c_int::try_from(receive_buffer).unwrap_or(libc::c_int::MAX);
        for (option, value) in [(libc::SO_TIMESTAMPNS, 1), (libc::SO_RCVBUF, size)] {
            // SAFETY: valid fd; the value is a live c_int of the size given.
            unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    (&raw const value).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }

    pub(super) fn receive<const SLOT: usize>(
        socket: &UdpSocket,
        batch: &mut DatagramBatch<SLOT>,
    ) -> io::Result<usize> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut controls = [[0u64; CONTROL / 8]; BATCH];
        // SAFETY: as above (null pointers, zero lengths until set below).
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, buffer) in batch.buffers.iter_mut().enumerate() {
            iovecs[i] = libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let header = &mut headers[i].msg_hdr;
            header.msg_name = (&raw mut names[i]).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &raw mut iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = controls[i].as_mut_ptr().cast();
            header.msg_controllen = CONTROL as _;
        }
        // SAFETY: every header points at live buffers of the sizes it states, all of which
        // outlive the call; MSG_DONTWAIT never blocks.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(error),
            };
        }
        let received = usize::try_from(received).unwrap_or(0).min(BATCH);
        let now = crate::clock::kernel_realtime();
        for i in 0..received {
            let header = &headers[i];
            batch.lens[i] = header.msg_len as usize;
            batch.sources[i] = socket_addr(&names[i], header.msg_hdr.msg_namelen);
            batch.ages[i] = age(now, timestamp(&header.msg_hdr));
        }
        Ok(received)
    }

    fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
        let len = len as usize;
        match libc::c_int::from(name.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let v4 = unsafe { &*(&raw const *name).cast::<libc::sockaddr_in>() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    u32::from_be(v4.sin_addr.s_addr).into(),
                    u16::from_be(v4.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let v6 = unsafe { &*(&raw const *name).cast::<libc::sockaddr_in6>() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    v6.sin6_addr.s6_addr.into(),
                    u16::from_be(v6.sin6_port),
                    v6.sin6_flowinfo,
                    v6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// The `SCM_TIMESTAMPNS` of a received message, if the kernel attached one.
    fn timestamp(header: &libc::msghdr) -> Option<SystemTime> {
        // SAFETY: the control buffer is the one recvmmsg filled, with msg_controllen set by
        // the kernel; the CMSG_* walkers stay inside it.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(header);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let spec =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                    let since_epoch = Duration::new(
                        u64::try_from(spec.tv_sec).ok()?,
                        u32::try_from(spec.tv_nsec).ok()?,
                    );
                    return UNIX_EPOCH.checked_add(since_epoch);
                }
                cmsg = libc::CMSG_NXTHDR(header, cmsg);
            }
        }
        None
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use super::{BATCH, DatagramBatch};
    use std::io;
    use std::net::UdpSocket;
    use std::time::Duration;

    pub(super) fn prepare(_socket: &UdpSocket, _receive_buffer: usize) {}

    pub(super) fn receive<const SLOT: usize>(
        socket: &UdpSocket,
        batch: &mut DatagramBatch<SLOT>,
    ) -> io::Result<usize> {
        let mut count = 0;
        while count < BATCH {
            match socket.recv_from(&mut batch.buffers[count]) {
                Ok((len, from)) => {
                    batch.lens[count] = len;
                    batch.sources[count] = Some(from);
                    batch.ages[count] = Duration::ZERO;
                    count += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if count == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        prepare(&receiver, 1 << 20);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.connect(receiver.local_addr().unwrap()).unwrap();
        (receiver, sender)
    }

    #[test]
    fn takes_what_is_waiting_in_batches_with_sources_and_ages() {
        let (receiver, sender) = pair();
        let mut batch = DatagramBatch::<2049>::new();
        assert_eq!(batch.receive(&receiver).unwrap(), 0);
        std::thread::sleep(Duration::from_millis(20));
        for i in 0..(BATCH + 3) {
            sender.send(&[i as u8; 100]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(30));
        let (mut seen, mut oldest) = (Vec::new(), Duration::ZERO);
        loop {
            let count = batch.receive(&receiver).unwrap();
            assert_eq!(batch.age(count), None);
            for i in 0..count {
                let said = batch.age(i);
                let (bytes, from, age) = batch.datagram(i).unwrap();
                assert_eq!(said, Some(age));
                assert_eq!(from, sender.local_addr().unwrap());
                assert_eq!(bytes.len(), 100);
                assert!(age < Duration::from_secs(1), "{age:?}");
                oldest = oldest.max(age);
                seen.push(bytes[0]);
            }
            if count < BATCH {
                break;
            }
        }
        assert_eq!(seen, (0..(BATCH as u8 + 3)).collect::<Vec<_>>());
        if cfg!(target_os = "linux") {
            // The kernel turns receive timestamps on for the host lazily, so the very first
            // datagrams after the first socket asked may carry none (their age reads zero).
            assert!(oldest >= Duration::from_millis(20), "{oldest:?}");
        }
        assert!(batch.datagram(BATCH).is_none());
    }

    #[test]
    fn an_oversized_datagram_shows_as_longer_than_the_largest_taken() {
        let (receiver, sender) = pair();
        let mut batch = DatagramBatch::<65>::new();
        sender.send(&[7; 500]).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(batch.receive(&receiver).unwrap(), 1);
        let (bytes, _, _) = batch.datagram(0).unwrap();
        assert_eq!(
            bytes.len(),
            65,
            "cut to the slot, one byte over the limit of 64"
        );
    }
}
