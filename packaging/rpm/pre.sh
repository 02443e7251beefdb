# sipcast %pre: create the static system user before files owned by it are installed
# (the same entry as /usr/lib/sysusers.d/sipcast.conf, which is not on disk yet).
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers --replace=/usr/lib/sysusers.d/sipcast.conf - <<'SYSUSERS'
u sipcast - "sipcast SIP-to-RTMP gateway" /var/lib/sipcast -
SYSUSERS
elif ! getent passwd sipcast >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/sipcast --no-create-home \
        --shell /sbin/nologin --comment "sipcast SIP-to-RTMP gateway" sipcast
fi
exit 0
