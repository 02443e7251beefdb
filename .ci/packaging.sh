#!/bin/sh
# Builds the .deb and .rpm and checks them: installs the .deb (dpkg -i), inspects user, files,
# modes, the unit (systemd-analyze verify and security), purges it and checks nothing is left;
# lists the .rpm's files, flags and scriptlets. Needs root (dpkg -i) on a Debian-like system.
# Also checks the fresh-machine promise (no bindgen in the build, no hand-installed package in
# the README's quick start), that the shipped binaries are stripped with their symbols in
# sipcast-dbgsym / sipcast-debuginfo under the same build id, and prints the sizes.
#
# One line per check: "ok - ..." or "FAIL - ...". Exits 1 if any check failed.
# SIPCAST_SECURITY_MAX overrides the highest acceptable `systemd-analyze security` score.
set -eu

cd "$(dirname "$0")/.."
security_max="${SIPCAST_SECURITY_MAX:-2.0}"
failures=0

ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
# check DESCRIPTION COMMAND...: runs the command quietly, reports, shows output on failure.
check() {
    description="$1"
    shift
    if output="$("$@" 2>&1)"; then
        ok "$description"
    else
        fail "$description"
        printf '%s\n' "$output" | sed 's/^/    /'
    fi
}
step() { echo "== $*"; }

# --- tools -------------------------------------------------------------------------------
step "tools"
if [ "$(id -u)" -ne 0 ]; then
    echo "FAIL - must run as root (dpkg -i / dpkg --purge)"
    exit 1
fi
missing_apt=""
command -v rpm >/dev/null 2>&1 || missing_apt="$missing_apt rpm"
command -v systemd-analyze >/dev/null 2>&1 || missing_apt="$missing_apt systemd"
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing_apt="$missing_apt dpkg-dev"
command -v strace >/dev/null 2>&1 || missing_apt="$missing_apt strace"
command -v file >/dev/null 2>&1 || missing_apt="$missing_apt file"
command -v objcopy >/dev/null 2>&1 || missing_apt="$missing_apt binutils"
command -v cpio >/dev/null 2>&1 || missing_apt="$missing_apt cpio"
if [ -n "$missing_apt" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing_apt
fi
missing_cargo=""
cargo deb --version >/dev/null 2>&1 || missing_cargo="$missing_cargo cargo-deb"
cargo generate-rpm --version >/dev/null 2>&1 || missing_cargo="$missing_cargo cargo-generate-rpm"
if [ -n "$missing_cargo" ]; then
    cargo install --locked $missing_cargo
fi
ok "tools: $(cargo deb --version), $(cargo generate-rpm --version), $(rpm --version)"

# --- a fresh machine builds sipcast with Rust and a C/C++ compiler alone --------------------
step "fresh machine"
# bindgen (and the libclang it loads through clang-sys) is what once made `apt-get install
# libclang-dev` a prerequisite; nothing in the build graph may bring it back, on any target.
graph="$(cargo tree --locked -e build,normal --target all --prefix none --format '{p}' 2>&1)"
clang_crates="$(printf '%s\n' "$graph" | grep -E '^(bindgen|clang-sys) ' | sort -u | tr '\n' ' ' || true)"
if [ -n "$graph" ] && [ -z "$clang_crates" ]; then
    ok "cargo tree -e build,normal has no bindgen or clang-sys ($(printf '%s\n' "$graph" | sort -u | wc -l) packages)"
else
    fail "cargo tree -e build,normal has no bindgen or clang-sys (found: ${clang_crates:-no output})"
fi
# The README's quick start: from its heading to the next `## ` heading.
quick_start="$(sed -n '/^## Quick start/,/^## /p' README.md | sed '$d')"
by_hand="$(printf '%s\n' "$quick_start" |
    grep -nEi 'apt(-get)? +install|dnf +install|yum +install|zypper +install|apk +add|brew +install|libclang|-dev\b' || true)"
if [ -n "$quick_start" ] && [ -z "$by_hand" ]; then
    ok "the README's quick start names no package to install by hand"
else
    fail "the README's quick start names no package to install by hand"
    printf '%s\n' "${by_hand:-(no \"## Quick start\" section found)}" | sed 's/^/    /'
fi

# --- build -------------------------------------------------------------------------------
step "build"
target_dir="$(cargo metadata --format-version 1 --no-deps \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
release="$target_dir/release"
packages="$target_dir/packages"
bin="$release/sipcast"
# A previous run left a stripped copy here (split-debuginfo.sh); cargo puts its own back.
rm -f "$bin" "$bin.debug"
cargo build --release --locked

rm -rf "$packages"
mkdir -p "$packages"
unstripped_size="$(stat -c %s "$bin")"
# cargo deb strips its own copy; the rpm's binary is stripped in place afterwards.
cargo deb --no-build --output "$packages/"
packaging/rpm/split-debuginfo.sh "$bin"
cargo generate-rpm --output "$packages/"
cargo generate-rpm --variant debuginfo --output "$packages/"
deb="$(ls "$packages"/sipcast_*.deb)"
dbgsym="$(ls "$packages"/sipcast-dbgsym_*.*deb)"
rpm_file="$(ls "$packages"/sipcast-[0-9]*.rpm)"
debuginfo_rpm="$(ls "$packages"/sipcast-debuginfo-*.rpm)"
ok "built $(basename "$deb"), $(basename "$dbgsym"), $(basename "$rpm_file") and $(basename "$debuginfo_rpm")"

# --- maintainer scripts ------------------------------------------------------------------
step "maintainer scripts"
control="$(mktemp -d)"
dpkg-deb --control "$deb" "$control"
for script in "$control"/postinst "$control"/prerm "$control"/postrm packaging/rpm/*.sh; do
    check "${script#"$control"/} parses (sh -n)" sh -n "$script"
done
check "deb postinst restarts the service after an upgrade" grep -q "_dh_action=restart" "$control/postinst"
check "deb prerm leaves the service running during an upgrade" \
    grep -q '\[ "\$1" = remove \]' "$control/prerm"
rm -rf "$control"

# --- deb: install ------------------------------------------------------------------------
step "deb: install"
deb_state() { dpkg-query -W -f '${db:Status-Status}' sipcast 2>/dev/null || echo not-installed; }
if [ "$(deb_state)" != not-installed ]; then
    dpkg --purge sipcast >/dev/null
fi
check "dpkg -i $(basename "$deb")" dpkg -i "$deb"

check "user sipcast exists" getent passwd sipcast
check "user sipcast is a system user without a login shell" \
    sh -c 'getent passwd sipcast | grep -Eq ":(/usr)?/s?bin/(nologin|false)$"'
check "group sipcast exists" getent group sipcast

# path, expected "mode owner:group"
expect_mode() {
    if [ ! -e "$1" ]; then
        fail "$1 exists"
        return
    fi
    actual="$(stat -c '%a %U:%G' "$1")"
    if [ "$actual" = "$2" ]; then ok "$1 is $2"; else fail "$1 is $2 (found $actual)"; fi
}
expect_mode /usr/bin/sipcast "755 root:root"
expect_mode /usr/lib/systemd/system/sipcast.service "644 root:root"
expect_mode /usr/lib/sysusers.d/sipcast.conf "644 root:root"
expect_mode /etc/sipcast "755 root:root"
expect_mode /etc/sipcast/sipcast.toml "644 root:root"
expect_mode /etc/sipcast/broadcasts.d "755 root:root"
expect_mode /etc/sipcast/broadcasts.d/README "644 root:root"
expect_mode /etc/sipcast/broadcasts.d/example.toml.example "644 root:root"
expect_mode /etc/sipcast/secrets "750 sipcast:sipcast"
expect_mode /usr/share/man/man1/sipcast.1.gz "644 root:root"
expect_mode /usr/share/doc/sipcast/copyright "644 root:root"
expect_mode /usr/share/doc/sipcast/OPERATIONS.md "644 root:root"
expect_mode /usr/share/doc/sipcast/README.md "644 root:root"
expect_mode /usr/share/bash-completion/completions/sipcast "644 root:root"
expect_mode /usr/share/zsh/vendor-completions/_sipcast "644 root:root"
expect_mode /usr/share/fish/vendor_completions.d/sipcast.fish "644 root:root"
expect_mode /usr/share/sipcast/grafana/sipcast.json "644 root:root"
expect_mode /usr/share/sipcast/prometheus/sipcast-alerts.yml "644 root:root"
check "the installed dashboard is the Grafana dashboard of sipcast" \
    grep -q '"uid": "sipcast"' /usr/share/sipcast/grafana/sipcast.json
if command -v promtool >/dev/null 2>&1; then
    check "promtool check rules accepts the installed alerting rules" \
        promtool check rules /usr/share/sipcast/prometheus/sipcast-alerts.yml
else
    echo "info - promtool not installed; the installed rules are checked by tests/alert_rules.rs"
fi

# Stripped, with the symbols in sipcast-dbgsym under the binary's build id.
build_id() { readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p'; }
check "/usr/bin/sipcast is stripped (file)" \
    sh -c 'file -b /usr/bin/sipcast | grep -q ", stripped" && ! file -b /usr/bin/sipcast | grep -q "with debug_info"'
installed_id="$(build_id /usr/bin/sipcast)"
check "/usr/bin/sipcast has a build id" test -n "$installed_id"
check "dpkg -i $(basename "$dbgsym")" dpkg -i "$dbgsym"
debug_file="/usr/lib/debug/.build-id/$(printf '%s' "$installed_id" | cut -c1-2)/$(printf '%s' "$installed_id" | cut -c3-).debug"
check "sipcast-dbgsym installs $debug_file" test -f "$debug_file"
check "the dbgsym file's build id is /usr/bin/sipcast's" \
    test "$(build_id "$debug_file")" = "$installed_id"
check "the dbgsym file holds line tables (.debug_line)" \
    sh -c "readelf -S '$debug_file' | grep -q ' \.debug_line '"
echo "size - unstripped target/release/sipcast: $unstripped_size bytes; installed /usr/bin/sipcast: $(stat -c %s /usr/bin/sipcast) bytes; $debug_file: $(stat -c %s "$debug_file") bytes"
for package in "$deb" "$dbgsym" "$rpm_file" "$debuginfo_rpm"; do
    echo "size - $(basename "$package"): $(stat -c %s "$package") bytes"
done

specs="$(ls -A /etc/sipcast/broadcasts.d | tr '\n' ' ')"
if [ "$specs" = "README example.toml.example " ]; then
    ok "broadcasts.d holds only README and example.toml.example (nothing dials)"
else
    fail "broadcasts.d holds only README and example.toml.example (found: $specs)"
fi
check "sipcast.toml is a conffile" \
    sh -c "dpkg-query -W -f '\${Conffiles}' sipcast | grep -q ' /etc/sipcast/sipcast.toml '"
check "copyright carries the Fraunhofer FDK AAC licence" \
    grep -q "Software License for The Fraunhofer FDK AAC Codec Library" /usr/share/doc/sipcast/copyright
check "copyright carries the libspeex licence" \
    grep -q "Neither the name of the Xiph.org Foundation" /usr/share/doc/sipcast/copyright
# Rendered from a copy outside the manual path so that man-db caches no cat page.
man_copy="$(mktemp -d)"
zcat /usr/share/man/man1/sipcast.1.gz >"$man_copy/sipcast.1"
check "man page renders without groff warnings" \
    sh -c "MANWIDTH=80 man --warnings -l '$man_copy/sipcast.1' 2>&1 >/dev/null | grep . && exit 1 || exit 0"
rm -rf "$man_copy"
check "sipcast --version names the version and commit" \
    sh -c '/usr/bin/sipcast --version | grep -Eq "^sipcast [0-9]+\.[0-9]+\.[0-9]+ \(([0-9a-f]{7,}(-dirty)?|unknown)\)"'
check "sipcast validate /etc/sipcast/broadcasts.d passes" \
    /usr/bin/sipcast validate /etc/sipcast/broadcasts.d
example_dir="$(mktemp -d)"
tail -n +8 /etc/sipcast/broadcasts.d/example.toml.example | sed 's/^# \{0,1\}//' \
    >"$example_dir/example.toml"
check "the example spec, uncommented, passes sipcast validate" \
    /usr/bin/sipcast validate "$example_dir/example.toml"
rm -rf "$example_dir"

# Reinstalling runs the upgrade path of every maintainer script (prerm upgrade, postinst
# configure with the old version); operator data must survive it.
echo "secret" >/etc/sipcast/secrets/upgrade-check
echo "# operator edit" >>/etc/sipcast/sipcast.toml
check "dpkg -i again (the upgrade path)" dpkg -i "$deb"
check "an upgrade keeps files in /etc/sipcast/secrets" test -f /etc/sipcast/secrets/upgrade-check
expect_mode /etc/sipcast/secrets "750 sipcast:sipcast"
check "an upgrade keeps the operator's sipcast.toml" grep -q "# operator edit" /etc/sipcast/sipcast.toml

# --- deb: the unit -----------------------------------------------------------------------
step "deb: systemd unit"
# --man=no: verify would otherwise render the page and leave a cat page in /var/cache/man.
check "systemd-analyze verify accepts the installed unit" \
    sh -c '! systemd-analyze verify --man=no /usr/lib/systemd/system/sipcast.service 2>&1 | grep .'
check "the unit's Documentation=man:sipcast(1) resolves" man -w sipcast
security="$(systemd-analyze security --offline=true --no-pager \
    /usr/lib/systemd/system/sipcast.service 2>&1 || true)"
printf '%s\n' "$security"
score="$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
if [ -n "$score" ] && awk "BEGIN { exit !($score <= $security_max) }"; then
    ok "systemd-analyze security score $score <= $security_max"
else
    fail "systemd-analyze security score ${score:-unknown} <= $security_max"
fi

# --- deb: does the daemon fit the unit's sandbox? ----------------------------------------
# No systemd runs here, so the sandbox itself cannot be entered. Instead the installed daemon
# runs as the sipcast user under strace (start-up, first scan, SIGHUP, SIGTERM) and every
# system call, socket family and file opened for writing is compared with what the unit allows.
step "deb: sandbox fit (strace)"
expand_syscall_set() { # @group... -> every syscall name, one per line
    for group in "$@"; do
        systemd-analyze syscall-filter --no-pager "$group" | sed -n 's/^ \{4\}\([@a-z0-9_-]\+\)$/\1/p' |
            while read -r entry; do
                case "$entry" in
                    @*) expand_syscall_set "$entry" ;;
                    *) echo "$entry" ;;
                esac
            done
    done
}
if command -v strace >/dev/null 2>&1; then
    trace_dir="$(mktemp -d)"
    chmod 0755 "$trace_dir"
    # The daemon watches the spec directory's parent too: keep strace's own output out of it,
    # or every traced syscall writes an event the daemon reads, which is traced, and so on.
    mkdir -p "$trace_dir/etc/specs"
    # The packaged configuration, with flags moving every listener to a free loopback port.
    strace -f -qq -o "$trace_dir/trace" -u sipcast /usr/bin/sipcast run \
        --config /etc/sipcast/sipcast.toml --dir "$trace_dir/etc/specs" --api 127.0.0.1:0 \
        --sip-listen 127.0.0.1:0 --rtp-ports 40000-40099 >"$trace_dir/log" 2>&1 &
    strace_pid=$!
    sleep 3
    daemon_pid="$(pgrep -P "$strace_pid" -x sipcast || true)"
    if [ -n "$daemon_pid" ]; then
        kill -HUP "$daemon_pid" 2>/dev/null || true
        sleep 1
        kill -TERM "$daemon_pid" 2>/dev/null || true
    fi
    daemon_status=0
    wait "$strace_pid" || daemon_status=$?
    if [ -n "$daemon_pid" ] && [ "$daemon_status" -eq 0 ]; then
        ok "sipcast run with the packaged sipcast.toml ran until SIGTERM and exited 0"
    else
        fail "sipcast run with the packaged sipcast.toml ran until SIGTERM and exited 0 (exit $daemon_status)"
        sed 's/^/    /' "$trace_dir/log"
    fi
    allowed="$trace_dir/allowed"
    expand_syscall_set @system-service | sort -u >"$trace_dir/service"
    expand_syscall_set @privileged @resources | sort -u >"$trace_dir/denied"
    comm -23 "$trace_dir/service" "$trace_dir/denied" >"$allowed"
    # Everything after the daemon's execve runs under the filter.
    sed -n 's/^[0-9]\+ \+\([a-z0-9_]\+\)(.*/\1/p' "$trace_dir/trace" | sort -u >"$trace_dir/used"
    forbidden="$(comm -23 "$trace_dir/used" "$allowed" | tr '\n' ' ')"
    if [ -z "$forbidden" ]; then
        ok "every system call the daemon made is in @system-service minus @privileged @resources ($(wc -l <"$trace_dir/used") distinct)"
    else
        fail "system calls outside the unit's SystemCallFilter: $forbidden"
    fi
    families="$(grep -o 'socket(AF_[A-Z0-9]*' "$trace_dir/trace" | sed 's/socket(//' | sort -u | tr '\n' ' ')"
    stray_families="$(printf '%s\n' $families | grep -vx -e AF_INET -e AF_INET6 -e AF_UNIX -e AF_NETLINK || true)"
    if [ -z "$stray_families" ]; then
        ok "socket families used (${families:-none}) are within RestrictAddressFamilies"
    else
        fail "socket families outside RestrictAddressFamilies: $stray_families"
    fi
    writes="$(grep -E 'open(at)?\(.*O_(WRONLY|RDWR|CREAT)' "$trace_dir/trace" |
        sed -n 's/.*open[a-z]*([^"]*"\([^"]*\)".*/\1/p' |
        grep -v -e '^/dev/' -e '^/proc/self/' -e "^$trace_dir/" -e '^/var/lib/sipcast/' \
            -e '^/run/sipcast/' -e '^/tmp/' | sort -u | tr '\n' ' ' || true)"
    if [ -z "$writes" ]; then
        ok "no file opened for writing outside the state, runtime and temp directories"
    else
        fail "files opened for writing that ProtectSystem=strict would refuse: $writes"
    fi
    rm -rf "$trace_dir"
else
    fail "strace is not installed (apt-get install strace)"
fi

# --- deb: purge --------------------------------------------------------------------------
step "deb: purge"
check "dpkg --purge sipcast-dbgsym" dpkg --purge sipcast-dbgsym
check "dpkg --purge sipcast" dpkg --purge sipcast
if [ "$(deb_state)" = not-installed ]; then
    ok "dpkg no longer lists sipcast"
else
    fail "dpkg no longer lists sipcast (state: $(deb_state))"
fi
leftovers="$(find /usr/bin /usr/lib/systemd /usr/lib/sysusers.d /usr/share/man /usr/share/doc \
    /usr/share/bash-completion /usr/share/zsh /usr/share/fish /usr/share/sipcast /etc /var/lib \
    /var/cache /run -name '*sipcast*' 2>/dev/null || true)"
if [ -n "$installed_id" ] && [ -e "$debug_file" ]; then
    leftovers="$leftovers $debug_file"
fi
if [ -z "$leftovers" ]; then
    ok "purge leaves no sipcast files behind (/usr, /etc, /var/lib, /var/cache, /run)"
else
    fail "purge leaves no sipcast files behind; found:"
    printf '%s\n' "$leftovers" | sed 's/^/    /'
fi
if getent passwd sipcast >/dev/null; then
    echo "info - the sipcast system user is kept after purge (Debian convention, see postrm)"
fi

# --- rpm ---------------------------------------------------------------------------------
step "rpm: $(basename "$rpm_file")"
rpm_files="$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm_file")"
printf '%s\n' "$rpm_files" | sed 's/^/    /'
# mode, flags ("cn" = %config(noreplace), "d" = %doc, "" = none) and path of every file
expect_rpm_file() {
    if printf '%s\n' "$rpm_files" | grep -qx -- "$1 $2 $3"; then
        ok "rpm has $3 ($1${2:+, $2})"
    else
        fail "rpm has $3 ($1${2:+, $2})"
    fi
}
expect_rpm_file "-rwxr-xr-x" "" /usr/bin/sipcast
expect_rpm_file "-rw-r--r--" "" /usr/lib/systemd/system/sipcast.service
expect_rpm_file "-rw-r--r--" "" /usr/lib/sysusers.d/sipcast.conf
expect_rpm_file "-rw-r--r--" "cn" /etc/sipcast/sipcast.toml
expect_rpm_file "-rw-r--r--" "cn" /etc/sipcast/broadcasts.d/README
expect_rpm_file "-rw-r--r--" "cn" /etc/sipcast/broadcasts.d/example.toml.example
expect_rpm_file "-rw-r--r--" "d" /usr/share/man/man1/sipcast.1
expect_rpm_file "-rw-r--r--" "d" /usr/share/licenses/sipcast/copyright
expect_rpm_file "-rw-r--r--" "d" /usr/share/doc/sipcast/OPERATIONS.md
expect_rpm_file "-rw-r--r--" "d" /usr/share/doc/sipcast/README.md
expect_rpm_file "-rw-r--r--" "" /usr/share/bash-completion/completions/sipcast
expect_rpm_file "-rw-r--r--" "" /usr/share/zsh/site-functions/_sipcast
expect_rpm_file "-rw-r--r--" "" /usr/share/fish/vendor_completions.d/sipcast.fish
expect_rpm_file "-rw-r--r--" "" /usr/share/sipcast/grafana/sipcast.json
expect_rpm_file "-rw-r--r--" "" /usr/share/sipcast/prometheus/sipcast-alerts.yml
check "rpm -qpl lists exactly the packaged files" \
    test "$(rpm -qpl "$rpm_file" | wc -l)" -eq 15

# The rpm's binary is stripped; sipcast-debuginfo holds its symbols where its debuglink points.
rpm_tree="$(mktemp -d)"
(cd "$rpm_tree" && rpm2cpio "$rpm_file" | cpio -idm --quiet && rpm2cpio "$debuginfo_rpm" | cpio -idm --quiet)
check "the rpm's /usr/bin/sipcast is stripped (file)" \
    sh -c "file -b '$rpm_tree/usr/bin/sipcast' | grep -q ', stripped' && ! file -b '$rpm_tree/usr/bin/sipcast' | grep -q 'with debug_info'"
check "the rpm's binary links its symbols as sipcast.debug (.gnu_debuglink)" \
    sh -c "readelf --string-dump=.gnu_debuglink '$rpm_tree/usr/bin/sipcast' | grep -q 'sipcast.debug'"
check "sipcast-debuginfo holds exactly /usr/lib/debug/usr/bin/sipcast.debug" \
    test "$(rpm -qpl "$debuginfo_rpm")" = /usr/lib/debug/usr/bin/sipcast.debug
check "the debuginfo file's build id is the rpm binary's" \
    test "$(build_id "$rpm_tree/usr/lib/debug/usr/bin/sipcast.debug")" = "$(build_id "$rpm_tree/usr/bin/sipcast")"
check "sipcast-debuginfo's scriptlets do nothing (':' at most)" \
    test -z "$(rpm -qp --scripts "$debuginfo_rpm" | grep -v 'scriptlet' | tr -d '[:space:]:')"
rm -rf "$rpm_tree"

scripts="$(rpm -qp --scripts "$rpm_file")"
printf '%s\n' "$scripts" | sed 's/^/    /'
expect_script() { # DESCRIPTION PATTERN
    if printf '%s\n' "$scripts" | grep -q -- "$2"; then ok "rpm scriptlet: $1"; else fail "rpm scriptlet: $1"; fi
}
expect_script "preinstall creates the user" "systemd-sysusers --replace=/usr/lib/sysusers.d/sipcast.conf"
expect_script "postinstall creates the secrets directory" "install -d -m 0750 -o sipcast -g sipcast /etc/sipcast/secrets"
expect_script "postinstall reloads systemd" "systemctl daemon-reload"
expect_script "postinstall presets on first install" "systemctl --no-reload preset sipcast.service"
expect_script "preuninstall disables on erase" "systemctl --no-reload disable sipcast.service"
expect_script "preuninstall stops on erase" "systemctl stop sipcast.service"
expect_script "postuninstall try-restarts on upgrade" "systemctl try-restart sipcast.service"

# Run the scriptlets for real: install and erase with a scratch rpm database (this host's
# packages are dpkg's, so rpm's dependency check is skipped).
step "rpm: install and erase (scratch rpm database)"
rpm_db="$(mktemp -d)"
check "rpm -i $(basename "$rpm_file")" rpm -i --nodeps --dbpath "$rpm_db" "$rpm_file"
check "rpm %pre created user sipcast" getent passwd sipcast
expect_mode /etc/sipcast/secrets "750 sipcast:sipcast"
expect_mode /etc/sipcast/sipcast.toml "644 root:root"
expect_mode /usr/bin/sipcast "755 root:root"
check "rpm -U of the same package (the upgrade path)" \
    rpm -U --replacepkgs --nodeps --dbpath "$rpm_db" "$rpm_file"
check "rpm -e sipcast" rpm -e --nodeps --dbpath "$rpm_db" sipcast
# By design (see postun.sh) erase keeps the secrets directory.
check "rpm -e keeps /etc/sipcast/secrets" test -d /etc/sipcast/secrets
rm -rf /etc/sipcast/secrets
rmdir /etc/sipcast/broadcasts.d /etc/sipcast 2>/dev/null || true
leftovers="$(find /usr/bin /usr/lib/systemd /usr/lib/sysusers.d /usr/share/man /usr/share/doc \
    /usr/share/licenses /usr/share/bash-completion /usr/share/zsh /usr/share/fish /etc \
    -name '*sipcast*' 2>/dev/null || true)"
if [ -z "$leftovers" ]; then
    ok "rpm -e leaves no packaged files behind"
else
    fail "rpm -e leaves no packaged files behind; found:"
    printf '%s\n' "$leftovers" | sed 's/^/    /'
fi
rm -rf "$rpm_db"

echo "== $failures failed check(s)"
[ "$failures" -eq 0 ]
