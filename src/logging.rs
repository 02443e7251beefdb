//! Logging setup (in progress)
