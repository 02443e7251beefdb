//! The `sipcast` command line (DESIGN.md, "Command line").

/// The git commit this binary was built from (set by build.rs), or `unknown`.
pub const GIT_COMMIT: &str = match option_env!("SIPCAST_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};
