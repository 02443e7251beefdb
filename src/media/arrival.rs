//! A call's RTP sockets emptied together, their datagrams handed over in the order the kernel
//! received them.
//!
//! The media driver takes its sockets' datagrams on a tick ([`super::batch`]), a tick's worth at
//! a time. Handing over one socket's datagrams and then the other's would show the receiver a
//! call that never happened (a tick of audio, then the video that came between): the keyframe
//! governor would see time pass without the keyframe that already arrived, and the output would
//! get the tracks a tick apart. Merging by the kernel's arrival time keeps the call as it came.

use std::net::{SocketAddr, UdpSocket};

use tokio::time::Instant;

use super::batch::{BATCH, DatagramBatch};
use crate::clock::monotonic;

/// Empties `sockets` (up to `max_batches` batches from each) into `batches`, and hands every
/// datagram to `handle` with the index of its socket, its source and when it arrived, oldest
/// first across both sockets.
pub fn receive_in_arrival_order<const SLOT: usize>(
    sockets: [Option<&UdpSocket>; 2],
    batches: &mut [DatagramBatch<SLOT>; 2],
    max_batches: usize,
    mut handle: impl FnMut(usize, &mut [u8], SocketAddr, Instant),
) {
    let [first, second] = sockets;
    let start = monotonic();
    let mut cursors = [Cursor::new(first, start), Cursor::new(second, start)];
    loop {
        for (cursor, batch) in cursors.iter_mut().zip(batches.iter_mut()) {
            cursor.refill(batch, max_batches);
        }
        let earliest = cursors
            .iter()
            .zip(batches.iter())
            .enumerate()
            .filter_map(|(lane, (cursor, batch))| Some((cursor.arrival(batch)?, lane)))
            .min();
        let Some((arrived, lane)) = earliest else {
            break;
        };
        let (Some(cursor), Some(batch)) = (cursors.get_mut(lane), batches.get_mut(lane)) else {
            break;
        };
        let index = cursor.next;
        cursor.next += 1;
        if let Some((datagram, from, _)) = batch.datagram(index) {
            handle(lane, datagram, from, arrived);
        }
    }
}

/// How far one socket's datagrams have been handed over.
struct Cursor<'a> {
    socket: Option<&'a UdpSocket>,
    /// Datagrams in the current batch, the next one to hand over, and when it was taken.
    count: usize,
    next: usize,
    taken_at: Instant,
    batches: usize,
}

impl<'a> Cursor<'a> {
    fn new(socket: Option<&'a UdpSocket>, start: Instant) -> Self {
        Cursor {
            socket,
            count: 0,
            next: 0,
            taken_at: start,
            batches: 0,
        }
    }

    /// Takes the next batch once this one is handed over, if it is the first or the last was
    /// full (more may wait); a short batch or a socket error ends this socket's part.
    fn refill<const SLOT: usize>(&mut self, batch: &mut DatagramBatch<SLOT>, max_batches: usize) {
        let more_may_wait = self.batches == 0 || self.count == BATCH;
        if self.next < self.count || !more_may_wait || self.batches >= max_batches {
            return;
        }
        let Some(socket) = self.socket else { return };
        // ICMP errors (port unreachable after our RTCP) and the like: nothing to read.
        self.count = batch.receive(socket).unwrap_or(0);
        self.next = 0;
        self.taken_at = monotonic();
        self.batches += 1;
    }

    /// When the next datagram to hand over arrived.
    fn arrival<const SLOT: usize>(&self, batch: &DatagramBatch<SLOT>) -> Option<Instant> {
        if self.next >= self.count {
            return None;
        }
        let age = batch.age(self.next)?;
        Some(self.taken_at.checked_sub(age).unwrap_or(self.taken_at))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::media::batch::prepare;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        prepare(&socket, 1 << 20);
        socket
    }

    fn take_all(
        sockets: [&UdpSocket; 2],
        batches: &mut [DatagramBatch<2049>; 2],
        max_batches: usize,
    ) -> Vec<(usize, u8)> {
        let mut seen = Vec::new();
        receive_in_arrival_order(
            [Some(sockets[0]), Some(sockets[1])],
            batches,
            max_batches,
            |lane, datagram, _, _| seen.push((lane, datagram[0])),
        );
        seen
    }

    #[test]
    fn datagrams_of_two_sockets_come_out_in_the_order_they_arrived() {
        let (audio, video) = (receiver(), receiver());
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batches = [DatagramBatch::new(), DatagramBatch::new()];
        // The kernel turns receive timestamps on lazily: one datagram each first, unjudged.
        for socket in [&audio, &video] {
            sender.send_to(&[0], socket.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        take_all([&audio, &video], &mut batches, 64);
        // Video, audio, then a video burst longer than a batch, then audio again: as a tick
        // of a call with a keyframe in it would hold them.
        let mut sent = Vec::new();
        let mut send = |lane: usize, tag: u8| {
            let to = [&audio, &video][lane].local_addr().unwrap();
            sender.send_to(&[tag; 200], to).unwrap();
            sent.push((lane, tag));
            std::thread::sleep(Duration::from_millis(2));
        };
        send(1, 1);
        send(0, 2);
        for tag in 3..(3 + BATCH as u8 + 5) {
            send(1, tag);
        }
        send(0, 100);
        send(0, 101);
        send(1, 102);
        let seen = take_all([&audio, &video], &mut batches, 64);
        assert_eq!(seen, sent);
    }

    #[test]
    fn a_socket_stops_after_its_batch_limit_and_keeps_the_rest_for_the_next_receive() {
        let (audio, video) = (receiver(), receiver());
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batches = [DatagramBatch::new(), DatagramBatch::new()];
        for tag in 0..(2 * BATCH as u8 + 1) {
            sender.send_to(&[tag], video.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        let first = take_all([&audio, &video], &mut batches, 1);
        assert_eq!(first.len(), BATCH);
        let rest = take_all([&audio, &video], &mut batches, 64);
        assert_eq!(rest.len(), BATCH + 1);
        assert!(rest.iter().all(|&(lane, _)| lane == 1));
    }
}
