#!/usr/bin/env bash
# Short, bounded fuzz runs for CI: every cargo-fuzz target for FUZZ_SECONDS (default 10) on a copy
# of its committed corpus (fuzz/corpus/TARGET, when there is one), with its dictionary
# (fuzz/dict/TARGET.dict, or the family's: sip_* -> sip.dict, rtp/rtcp/media_* -> rtp.dict,
# spec/cron -> spec.dict, srtp_* -> srtp.dict). A crash fails the run and leaves the input in
# fuzz/artifacts/TARGET/. The long runs (10 minutes and more per target) are done by hand:
# `cargo +nightly fuzz run TARGET -- -max_total_time=600 -dict=fuzz/dict/FAMILY.dict`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-10}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
# cargo-fuzz needs nightly flags; use a nightly toolchain when there is one, else let stable
# accept them.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

dict_for() {
    local target="$1"
    for candidate in "fuzz/dict/$target.dict" \
        "fuzz/dict/$(case "$target" in
            sip_*) echo sip ;;
            rtp_* | rtcp_* | media_*) echo rtp ;;
            spec | cron) echo spec ;;
            srtp_*) echo srtp ;;
            *) echo none ;;
        esac).dict"; do
        if [ -f "$candidate" ]; then
            echo "-dict=$candidate"
            return
        fi
    done
}

targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^sipcast-fuzz$')
"${fuzz[@]}" build --sanitizer none >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in $targets; do
    corpus="$work/$target"
    mkdir -p "$corpus"
    if [ -d "fuzz/corpus/$target" ]; then
        cp -r "fuzz/corpus/$target/." "$corpus/"
    fi
    dict=$(dict_for "$target")
    echo "fuzz: $target for ${seconds}s ($(ls "$corpus" | wc -l) seeds${dict:+, $dict})"
    log="$work/$target.log"
    if ! "${fuzz[@]}" run --sanitizer none "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=65536 ${dict:+"$dict"} -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz: $target failed; a crashing input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -h '^stat::number_of_executed_units' "$log" || true
done
echo "fuzz: every target ran ${seconds}s without a crash"
