#!/usr/bin/env python3
"""Repeats an RTP pcap back to back into a longer one, as one continuous RTP stream.

Each repetition is shifted in capture time by the input's length plus one packet interval, and
its RTP sequence numbers and timestamps continue where the previous repetition stopped, so a
receiver sees one long stream without jumps (no SSRC change, no sequence reset). Used by
scripts/soak.sh to give the sipp callees minutes of media from the committed 10 s pcaps.

Usage: soak_loop_pcap.py IN.pcap OUT.pcap SECONDS CLOCK_RATE
"""

import struct
import sys

ETH_IP_UDP = 14 + 20 + 8


def read_packets(path):
    with open(path, "rb") as f:
        header = f.read(24)
        packets = []
        while True:
            record = f.read(16)
            if len(record) < 16:
                break
            sec, usec, incl, orig = struct.unpack("<IIII", record)
            packets.append((sec + usec / 1e6, f.read(incl), orig))
    return header, packets


def main():
    src, dst, seconds, clock_rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    header, packets = read_packets(src)
    seqs = [struct.unpack("!H", p[1][ETH_IP_UDP + 2:ETH_IP_UDP + 4])[0] for p in packets]
    stamps = [struct.unpack("!I", p[1][ETH_IP_UDP + 4:ETH_IP_UDP + 8])[0] for p in packets]
    seq_step = (seqs[-1] - seqs[0] + 1) & 0xFFFF
    # One repetition lasts the RTP time it spans plus one frame (the most common timestamp step),
    # in RTP units and in capture time alike, so A/V stay on their clocks across the seams.
    steps = sorted((b - a) & 0xFFFFFFFF for a, b in zip(stamps, stamps[1:]) if b != a)
    frame = steps[len(steps) // 2] if steps else clock_rate // 50
    ts_step = ((stamps[-1] - stamps[0]) & 0xFFFFFFFF) + frame
    period = ts_step / clock_rate
    repeats = max(1, int(seconds / period + 0.999))
    with open(dst, "wb") as out:
        out.write(header)
        for r in range(repeats):
            for (t, data, orig), seq, stamp in zip(packets, seqs, stamps):
                data = bytearray(data)
                struct.pack_into("!H", data, ETH_IP_UDP + 2, (seq + r * seq_step) & 0xFFFF)
                struct.pack_into("!I", data, ETH_IP_UDP + 4, (stamp + r * ts_step) & 0xFFFFFFFF)
                when = t + r * period
                sec = int(when)
                out.write(struct.pack("<IIII", sec, int((when - sec) * 1e6), len(data), orig))
                out.write(data)
    print(f"{dst}: {repeats} x {period:.2f} s")


if __name__ == "__main__":
    main()
