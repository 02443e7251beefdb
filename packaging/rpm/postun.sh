# sipcast %postun ($1 = 0 on erase, 1 on upgrade).
#
# Upgrades restart the service (try-restart: only if it was running). A restart hangs up every
# live call and unpublishes every RTMP stream; broadcasts still desired redial as soon as the
# new daemon has scanned broadcasts.d (a few seconds). We restart rather than keep the old
# binary running so that security fixes take effect. To avoid a gap, upgrade between windows.
#
# Erase keeps /etc/sipcast/secrets and modified configuration (rpm saves those as .rpmsave)
# and the sipcast user, as rpm packages conventionally do; remove them by hand if wanted.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -ge 1 ]; then
    systemctl try-restart sipcast.service >/dev/null 2>&1 || :
else
    # cargo-generate-rpm cannot own directories: drop ours if nothing else is in them.
    rmdir /usr/share/doc/sipcast /usr/share/licenses/sipcast \
        /etc/sipcast/broadcasts.d /etc/sipcast 2>/dev/null || :
fi
exit 0
