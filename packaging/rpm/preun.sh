# sipcast %preun ($1 = 0 on erase, 1 on upgrade): on erase stop and disable the service.
# On upgrade it keeps running until %postun restarts it with the new binary.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now sipcast.service >/dev/null 2>&1 || :
fi
exit 0
