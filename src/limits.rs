//! Process resource limits the daemon sets for itself.

use rustix::process::{Resource, getrlimit, setrlimit};

/// Raises the soft limit on open files to the hard limit and returns the limit now in force.
///
/// systemd (and most shells) start services with a soft limit of 1024 and a far higher hard
/// limit; a gateway with hundreds of calls needs more than 1024 descriptors, and the API's
/// connection cap is derived from what is available (see `api::ServeLimits`).
pub fn raise_open_files() -> u64 {
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the open-files limit: {e}");
            return before.unwrap_or(1024);
        }
    }
    // `None` is "unlimited"; count it as a generous finite number.
    limit.current.unwrap_or(1 << 20)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let raised = super::raise_open_files();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now.current, now.maximum);
        assert!(raised >= 64);
    }
}
