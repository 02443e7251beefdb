//! The sans-IO SIP core: no sockets, no clocks, no tokio. Time comes in as `now`.
pub mod digest;
pub mod message;
