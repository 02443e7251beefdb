#!/bin/sh
# Soak: N concurrent broadcasts (default 20) for M minutes (default 10) through a release build
# of `sipcast run`, against one sipp callee playing H.264 + PCMU to every call and nginx-rtmp
# taking every stream. Every 30 s it prints the daemon's RSS, CPU (share of one core over the
# last interval), threads and open fds, and from the status API how many broadcasts stream,
# the bytes sent, call attempts and RTMP reconnects. At the end: a summary line.
#
#   scripts/soak.sh [MINUTES] [BROADCASTS]
#
# Not part of `cargo test`. Needs sipp (with pcap play; root or CAP_NET_RAW), nginx with
# libnginx-mod-rtmp, python3, jq, curl. Everything runs on 127.0.0.1 in a temp dir, on ports
# from SOAK_PORT_BASE (default 27000) up, and is stopped on exit. SIPCAST_BIN overrides the
# binary (default: target/release/sipcast, built if missing).
set -eu

minutes="${1:-10}"
count="${2:-20}"
interval="${SOAK_INTERVAL:-30}"
root="$(cd "$(dirname "$0")/.." && pwd)"
base="${SOAK_PORT_BASE:-27000}"
api_port=$base
sip_port=$((base + 1))
callee_port=$((base + 2))
rtmp_port=$((base + 3))
callee_media=$((base + 10))
rtp_low=$((base + 100))
rtp_high=$((rtp_low + count * 8 + 16))

for tool in sipp nginx python3 jq curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "soak: $tool is required" >&2; exit 1; }
done
rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
[ -f "$rtmp_module" ] || { echo "soak: $rtmp_module missing (libnginx-mod-rtmp)" >&2; exit 1; }

bin="${SIPCAST_BIN:-$root/target/release/sipcast}"
if [ ! -x "$bin" ]; then
    echo "soak: building $bin"
    (cd "$root" && cargo build --release --bin sipcast)
fi

work="$(mktemp -d)"
pids=""
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
    if [ -n "${SOAK_KEEP:-}" ]; then echo "soak: files kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

# Media long enough for the whole soak: the committed 10 s pcaps, repeated as one stream.
seconds=$((minutes * 60 + 60))
python3 "$root/scripts/soak_loop_pcap.py" "$root/tests/media/h264_320x240_15fps.pcap" \
    "$work/video.pcap" "$seconds" 90000 >/dev/null
python3 "$root/scripts/soak_loop_pcap.py" "$root/tests/media/pcmu_8k.pcap" \
    "$work/audio.pcap" "$seconds" 8000 >/dev/null
python3 "$root/tests/media/merge_rtp_pcaps.py" "$work/media.pcap" \
    "$work/audio.pcap" "$work/video.pcap" >/dev/null
sed -e 's#\.\./media/h264_pcmu\.pcap#media.pcap#' \
    "$root/tests/sipp/e2e_callee.xml" >"$work/callee.xml"

mkdir -p "$work/nginx" "$work/broadcasts.d"
cat >"$work/nginx/nginx.conf" <<EOF
load_module $rtmp_module;
daemon off;
master_process off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 256; }
rtmp { server { listen 127.0.0.1:$rtmp_port; chunk_size 4096;
  application live { live on; } } }
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" >/dev/null 2>&1 &
pids="$pids $!"

(cd "$work" && exec sipp -sf callee.xml -i 127.0.0.1 -p "$callee_port" -mp "$callee_media" \
    -m "$count" -nostdin -trace_err >/dev/null 2>&1) &
pids="$pids $!"

RUST_LOG=info "$bin" run --dir "$work/broadcasts.d" --api "127.0.0.1:$api_port" \
    --sip-listen "127.0.0.1:$sip_port" --rtp-ports "$rtp_low-$rtp_high" --log-format text \
    2>"$work/daemon.log" &
daemon=$!
pids="$daemon $pids"
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$api_port/readyz" >/dev/null || {
    echo "soak: the daemon did not become ready" >&2
    cat "$work/daemon.log" >&2
    exit 1
}

i=1
while [ "$i" -le "$count" ]; do
    name=$(printf 'soak%02d' "$i")
    cat >"$work/broadcasts.d/.$name.tmp" <<EOF
[sip]
user = "soak"
domain = "127.0.0.1:$callee_port"
[call]
to = "callee-$i"
[[rtmp]]
url = "rtmp://127.0.0.1:$rtmp_port/live/$name"
EOF
    mv "$work/broadcasts.d/.$name.tmp" "$work/broadcasts.d/$name.toml"
    i=$((i + 1))
done

ticks_per_second=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$daemon/status"; }

echo "soak: $count broadcasts for $minutes min; daemon pid $daemon; $(date -u +%FT%TZ)"
printf '%8s %9s %6s %7s %5s %9s %12s %8s %10s\n' \
    elapsed rss_mib cpu_% threads fds streaming bytes_sent attempts reconnects
start=$(date +%s)
last_ticks=$(cpu_ticks)
last_time=$start
samples=""
end=$((start + minutes * 60))
while :; do
    now=$(date +%s)
    [ "$now" -ge "$end" ] && break
    sleep "$interval"
    kill -0 "$daemon" 2>/dev/null || { echo "soak: the daemon died" >&2; tail -50 "$work/daemon.log" >&2; exit 1; }
    now=$(date +%s)
    ticks=$(cpu_ticks)
    cpu=$(awk -v t="$((ticks - last_ticks))" -v s="$((now - last_time))" -v hz="$ticks_per_second" \
        'BEGIN {printf "%.1f", 100 * t / hz / (s > 0 ? s : 1)}')
    last_ticks=$ticks
    last_time=$now
    rss=$(rss_kib)
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$daemon/status")
    fds=$(ls "/proc/$daemon/fd" | wc -l)
    summary=$(curl -fs "http://127.0.0.1:$api_port/v1/broadcasts" | jq -r '[
        ([.broadcasts[] | select(.phase == "streaming")] | length),
        ([.broadcasts[].rtmp[].bytes_sent] | add // 0),
        ([.broadcasts[].attempts] | add // 0),
        ([.broadcasts[].rtmp[].reconnects] | add // 0)] | @tsv')
    set -- $summary
    printf '%7ss %9.1f %6s %7s %5s %6s/%-2s %12s %8s %10s\n' "$((now - start))" \
        "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$cpu" "$threads" "$fds" "$1" "$count" "$2" "$3" "$4"
    samples="$samples $rss:$cpu"
done

echo "$samples" | tr ' ' '\n' | awk -F: 'NF == 2 {
        n++; rss[n] = $1; cpu += $2; if ($1 > max) max = $1
    } END {
        if (n == 0) exit
        printf "soak: RSS first %.1f MiB, last %.1f MiB, max %.1f MiB; mean CPU %.1f %% of one core over %d samples\n",
            rss[1] / 1024, rss[n] / 1024, max / 1024, cpu / n, n
    }'
warnings=$(grep -c -E ' (WARN|ERROR) ' "$work/daemon.log" || true)
echo "soak: daemon log: $warnings WARN/ERROR lines"
