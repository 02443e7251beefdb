# sipcast %preun ($1 = 0 on erase, 1 on upgrade): on erase disable and stop the service.
# On upgrade it keeps running until %postun restarts it with the new binary.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable sipcast.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop sipcast.service >/dev/null 2>&1 || :
    fi
fi
exit 0
