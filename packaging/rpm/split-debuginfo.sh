#!/bin/sh
# Replaces a built sipcast binary with a stripped copy and keeps its debug symbols beside it,
# for the rpm:
# cargo-generate-rpm packs files as they are (its README: strip before packing), so run this
# after `cargo build --release` (and after `cargo deb`, which strips its own copy and needs the
# symbols still in target/release/sipcast) and before
#     cargo generate-rpm                      # sipcast: the stripped binary
#     cargo generate-rpm --variant debuginfo  # sipcast-debuginfo: /usr/lib/debug/usr/bin/sipcast.debug
# gdb finds the .debug file through the binary's .gnu_debuglink (by file name, checked by CRC)
# in /usr/lib/debug/usr/bin/, and both carry the same build id.
#
# Usage: packaging/rpm/split-debuginfo.sh [BINARY]   (default target/release/sipcast)
# Running it again on a binary it already stripped keeps the .debug file it wrote then.
set -eu

bin="${1:-target/release/sipcast}"
debug="$bin.debug"
build_id() { readelf -n "$1" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p'; }

if readelf -S "$bin" | grep -q ' \.debug_info '; then
    objcopy --only-keep-debug --compress-debug-sections=zlib "$bin" "$debug"
    chmod 0644 "$debug"
    # Linked by base name: the debuglink records "sipcast.debug" and the file's CRC. The
    # stripped copy replaces the binary by rename, never in place: cargo's target/release/sipcast
    # is a hard link to its own artifact in target/release/deps/, which must keep its symbols
    # (`rm target/release/sipcast && cargo build --release` brings the unstripped one back).
    (
        cd "$(dirname "$bin")"
        name="$(basename "$bin")"
        objcopy --strip-debug --strip-unneeded --remove-section=.comment \
            --add-gnu-debuglink="$(basename "$debug")" "$name" "$name.stripping"
        mv -f "$name.stripping" "$name"
    )
elif [ ! -f "$debug" ] || [ "$(build_id "$bin")" != "$(build_id "$debug")" ]; then
    echo "split-debuginfo: $bin has no debug info and no matching $debug; rebuild it" >&2
    exit 1
fi
echo "$bin: $(stat -c %s "$bin") bytes stripped, build id $(build_id "$bin"); $debug: $(stat -c %s "$debug") bytes"
