//! Secrets (SIP passwords, RTMP stream keys): where they come from, and a wrapper that never
//! prints its content.
//!
//! A secret is read when it is used, not when the spec is loaded, so a rotated
//! `password_file` applies at the next REGISTER or INVITE without a restart.

use std::fmt;
use std::path::PathBuf;

/// A secret value. `Debug` and `Display` print `****`; only [`Secret::expose`] gives the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Where a secret comes from. Equality compares the source, not the content: an unchanged
/// `password_file` path is an unchanged spec even if the file's content rotates.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// Written in the spec itself (allowed, but `validate` warns).
    Inline(Secret),
    /// Read from this file at use; one trailing newline is stripped.
    File(PathBuf),
    /// Read from this environment variable at use.
    Env(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(****)"),
            SecretSource::File(path) => write!(f, "File({})", path.display()),
            SecretSource::Env(var) => write!(f, "Env({var})"),
        }
    }
}

/// Why a secret could not be read. Names the source, never the content.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("secret file {path} is empty")]
    EmptyFile { path: String },
    #[error("environment variable {var} is not set")]
    EnvMissing { var: String },
    #[error("environment variable {var} is empty")]
    EnvEmpty { var: String },
}

/// Secret files larger than this are refused: a secret is a line, not a document.
const MAX_SECRET_FILE: u64 = 64 * 1024;

impl SecretSource {
    /// Reads the secret now.
    pub fn read(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Inline(secret) => Ok(secret.clone()),
            SecretSource::File(path) => read_file(path),
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(value) if value.is_empty() => Err(SecretError::EnvEmpty { var: var.clone() }),
                Ok(value) => Ok(Secret(value)),
                Err(_) => Err(SecretError::EnvMissing { var: var.clone() }),
            },
        }
    }
}

fn read_file(path: &PathBuf) -> Result<Secret, SecretError> {
    let shown = path.display().to_string();
    let file_error = |reason: String| SecretError::File {
        path: shown.clone(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| file_error(e.kind().to_string()))?;
    if meta.len() > MAX_SECRET_FILE {
        return Err(file_error(format!("larger than {MAX_SECRET_FILE} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.kind().to_string()))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(SecretError::EmptyFile { path: shown });
    }
    Ok(Secret(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("canary-password-42");
        assert_eq!(format!("{secret:?} {secret}"), "Secret(****) ****");
        let source = SecretSource::Inline(secret);
        assert!(!format!("{source:?}").contains("canary"));
    }

    #[test]
    fn file_secret_strips_one_newline_and_rereads_on_each_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "first\n").unwrap();
        let source = SecretSource::File(path.clone());
        assert_eq!(source.read().unwrap().expose(), "first");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(source.read().unwrap().expose(), "second");
    }

    #[test]
    fn unreadable_file_names_the_path_not_the_content() {
        let err = SecretSource::File("/nonexistent/pw".into())
            .read()
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/pw"), "{err}");
        let err = SecretSource::Env("SIPCAST_TEST_SURELY_UNSET".into())
            .read()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable SIPCAST_TEST_SURELY_UNSET is not set"
        );
    }
}
