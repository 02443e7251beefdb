#!/usr/bin/env python3
"""Merges RTP pcaps into one that sipp 3.6 plays with a single play_pcap_audio.

sipp runs one pcap-playing thread per call, and starting a second one (play_pcap_video after
play_pcap_audio) cancels the first: only the last stream would play. One file carrying every
stream avoids that. sipp sends each packet to the SDP's audio port plus (the packet's UDP
destination port minus the lowest one in the file), so the first input keeps that base port
and input N gets base + 2N: audio first, then video two ports above, which is where sipcast
binds a call's video.

Each input's packets are re-timed to start at 0 (or at OFFSET seconds), then all are
interleaved by time. An input may be played REPEAT times back to back (RTP sequence numbers and
timestamps continue across the repeats, as one long stream).

Usage: merge_rtp_pcaps.py OUT.pcap FIRST.pcap[@OFFSET][*REPEAT] [MORE.pcap...]
"""

import struct
import sys

BASE_PORT = 41000
GLOBAL_HEADER = 24
RECORD_HEADER = 16
UDP_DPORT = 14 + 20 + 2  # Ethernet, IPv4 (no options), then the UDP destination port
RTP = 14 + 20 + 8  # where the RTP header starts


def parse_input(arg):
    """FILE[@OFFSET][*REPEAT] -> (path, offset in microseconds, repeat count)."""
    repeat = 1
    if "*" in arg:
        arg, count = arg.rsplit("*", 1)
        repeat = int(count)
    offset = 0
    if "@" in arg:
        arg, seconds = arg.rsplit("@", 1)
        offset = int(float(seconds) * 1_000_000)
    return arg, offset, repeat


def repeated(packets, repeat):
    """The packets REPEAT times, each round after the last, RTP sequence and time continuing."""
    if repeat == 1:
        return packets
    first, last = packets[0], packets[-1]
    span = last[0] - first[0] + 20_000
    seq_first = struct.unpack_from("!H", first[1], RTP + 2)[0]
    seq_last = struct.unpack_from("!H", last[1], RTP + 2)[0]
    ts_first = struct.unpack_from("!I", first[1], RTP + 4)[0]
    ts_last = struct.unpack_from("!I", last[1], RTP + 4)[0]
    seq_span = (seq_last - seq_first + 1) & 0xFFFF
    ts_step = (ts_last - ts_first) * len(packets) // max(1, len(packets) - 1)
    out = []
    for round_ in range(repeat):
        for time_us, packet, orig in packets:
            packet = bytearray(packet)
            seq = struct.unpack_from("!H", packet, RTP + 2)[0]
            ts = struct.unpack_from("!I", packet, RTP + 4)[0]
            struct.pack_into("!H", packet, RTP + 2, (seq + round_ * seq_span) & 0xFFFF)
            struct.pack_into("!I", packet, RTP + 4, (ts + round_ * ts_step) & 0xFFFFFFFF)
            out.append((time_us + round_ * span, packet, orig))
    return out


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
    for index, arg in enumerate(inputs):
        path, offset, repeat = parse_input(arg)
        header, packets = records(path)
        packets = repeated(packets, repeat)
        start = packets[0][0]
        for time_us, packet, orig in packets:
            struct.pack_into("!H", packet, UDP_DPORT, BASE_PORT + 2 * index)
            merged.append((time_us - start + offset, index, packet, orig))
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
