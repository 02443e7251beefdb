//! The sans-IO SIP core: no sockets, no clocks, no tokio. Time comes in as `now`.
pub mod digest;
pub mod dtmf;
pub mod message;
pub mod sdp;
pub mod transaction;

/// A fixed origin for virtual-time tests; never advanced by reading the clock again.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_origin() -> std::time::Instant {
    std::time::Instant::now()
}
