#!/usr/bin/env python3
"""Receives RTP on local UDP ports and writes each port's packets to its own classic pcap file.

Each packet is wrapped in Ethernet/IPv4/UDP headers (what sipp's play_pcap_* expects) and
stamped with the time it arrived, so a sender running in real time (ffmpeg -re) gives a pcap
that sipp replays at the same pace. Stops after --seconds of silence once packets have flowed.

One file per port because sipp plays a whole file to one media port (play_pcap_audio to the
audio port of the SDP, play_pcap_video to the video port).

Usage: capture_rtp_pcap.py PORT=OUT.pcap [PORT=OUT.pcap...] [--idle SECONDS]
"""

import argparse
import select
import socket
import struct
import time

SRC_IP = bytes([127, 0, 0, 1])
DST_IP = bytes([127, 0, 0, 1])


def ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(payload: bytes, src_port: int, dst_port: int, ident: int) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0,
                     SRC_IP, DST_IP)
    ip = ip[:10] + struct.pack("!H", ipv4_checksum(ip)) + ip[12:]
    ethernet = bytes(6) + bytes(6) + b"\x08\x00"
    return ethernet + ip + udp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outputs", nargs="+", metavar="PORT=OUT.pcap")
    parser.add_argument("--idle", type=float, default=2.0)
    args = parser.parse_args()

    sockets = {}
    for output in args.outputs:
        port, path = output.split("=", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("127.0.0.1", int(port)))
        out = open(path, "wb")
        # Classic pcap header: microsecond stamps, snaplen 65535, LINKTYPE_ETHERNET.
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        sockets[sock] = [out, 0]

    last = None
    while True:
        ready, _, _ = select.select(list(sockets), [], [], 0.2)
        now = time.time()
        if not ready:
            if last is not None and now - last > args.idle:
                break
            continue
        for sock in ready:
            payload, (_, src_port) = sock.recvfrom(65535)
            out, count = sockets[sock]
            data = frame(payload, src_port, sock.getsockname()[1], count)
            seconds = int(now)
            micros = int((now - seconds) * 1_000_000)
            out.write(struct.pack("<IIII", seconds, micros, len(data), len(data)))
            out.write(data)
            sockets[sock][1] = count + 1
            last = now
    for sock, (out, count) in sockets.items():
        out.close()
        print(f"{count} packets from port {sock.getsockname()[1]} written to {out.name}")


if __name__ == "__main__":
    main()
