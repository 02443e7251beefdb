//! The SIP user agent: a sans-IO core ([`core`]) and a thin tokio driver.
pub mod core;
