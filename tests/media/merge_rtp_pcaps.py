#!/usr/bin/env python3
"""Merges RTP pcaps into one that sipp 3.6 plays with a single play_pcap_audio.

sipp runs one pcap-playing thread per call, and starting a second one (play_pcap_video after
play_pcap_audio) cancels the first: only the last stream would play. One file carrying every
stream avoids that. sipp sends each packet to the SDP's audio port plus (the packet's UDP
destination port minus the lowest one in the file), so the first input keeps that base port
and input N gets base + 2N: audio first, then video two ports above, which is where sipcast
binds a call's video.

Each input's packets are re-timed to start at 0, then all are interleaved by time.

Usage: merge_rtp_pcaps.py OUT.pcap FIRST.pcap [MORE.pcap...]
"""

import struct
import sys

BASE_PORT = 41000
GLOBAL_HEADER = 24
RECORD_HEADER = 16
UDP_DPORT = 14 + 20 + 2  # Ethernet, IPv4 (no options), then the UDP destination port


def records(path):
    data = open(path, "rb").read()
    header, offset = data[:GLOBAL_HEADER], GLOBAL_HEADER
    out = []
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[offset : offset + RECORD_HEADER])
        offset += RECORD_HEADER
        out.append((sec * 1_000_000 + usec, bytearray(data[offset : offset + incl]), orig))
        offset += incl
    return header, out


def main():
    out_path, inputs = sys.argv[1], sys.argv[2:]
    merged, header = [], None
    for index, path in enumerate(inputs):
        header, packets = records(path)
        start = packets[0][0]
        for time_us, packet, orig in packets:
            struct.pack_into("!H", packet, UDP_DPORT, BASE_PORT + 2 * index)
            merged.append((time_us - start, index, packet, orig))
    merged.sort(key=lambda record: (record[0], record[1]))
    with open(out_path, "wb") as out:
        out.write(header)
        for time_us, _, packet, orig in merged:
            sec, usec = divmod(time_us, 1_000_000)
            out.write(struct.pack("<IIII", sec, usec, len(packet), orig))
            out.write(packet)
    print(f"{len(merged)} packets from {len(inputs)} streams written to {out_path}")


if __name__ == "__main__":
    main()
