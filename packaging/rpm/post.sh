# sipcast %post ($1 = 1 on first install, 2 on upgrade).
# Secrets (SIP passwords, stream keys): readable by the service only.
install -d -m 0750 -o sipcast -g sipcast /etc/sipcast/secrets
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    # First install: enable or not as the distribution's presets say (Fedora: disabled).
    # Nothing dials until a spec is added to /etc/sipcast/broadcasts.d anyway.
    systemctl --no-reload preset sipcast.service >/dev/null 2>&1 || :
fi
exit 0
