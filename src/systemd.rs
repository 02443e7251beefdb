//! systemd integration (in progress)
