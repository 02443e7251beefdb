//! `sipcast validate [--check-secrets] PATH...`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::EX_CONFIG;
use crate::secret::SecretSource;
use crate::spec::{self, BroadcastSpec, SpecError};

pub fn main(paths: &[PathBuf], check_secrets: bool) -> ExitCode {
    let mut problems = 0usize;
    let mut checked = 0usize;
    for path in paths {
        for file in spec_files(path, &mut problems) {
            checked += 1;
            match spec::load(&file) {
                Ok(spec) => {
                    for warning in &spec.warnings {
                        let SpecError {
                            line, col, message, ..
                        } = warning;
                        eprintln!("{}:{line}:{col}: warning: {message}", file.display());
                    }
                    if check_secrets {
                        for error in secret_problems(&file, &spec) {
                            println!("{error}");
                            problems += 1;
                        }
                    }
                }
                Err(errors) => {
                    for error in errors.0 {
                        println!("{error}");
                        problems += 1;
                    }
                }
            }
        }
    }
    if problems == 0 {
        eprintln!("{checked} spec file(s) valid");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EX_CONFIG)
    }
}

/// The spec files a path names: itself, or the `*.toml` directly inside a directory, sorted.
/// Every `*.toml` entry counts, as for the daemon: one that is not a readable file (a broken
/// link, a FIFO, a directory, ...) is reported by [`spec::load`], not skipped.
fn spec_files(path: &Path, problems: &mut usize) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| spec::broadcast_name(&e.file_name().to_string_lossy()).is_some())
                .map(|e| e.path())
                .collect();
            files.sort();
            files
        }
        Err(e) => {
            println!("{}:1:1: cannot read directory: {e}", path.display());
            *problems += 1;
            Vec::new()
        }
    }
}

/// Reads every secret the spec names, reporting each that cannot be read at its key.
fn secret_problems(file: &Path, spec: &BroadcastSpec) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut sources: Vec<(&str, &SecretSource)> = Vec::new();
    if let Some(password) = &spec.sip.password {
        sources.push(("password", password));
    }
    for target in &spec.rtmp {
        if let Some(key) = &target.stream_key {
            sources.push(("stream_key", key));
        }
    }
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut out = Vec::new();
    for (stem, source) in sources {
        let key = match source {
            SecretSource::Inline(_) => stem.to_string(),
            SecretSource::File(_) => format!("{stem}_file"),
            SecretSource::Env(_) => format!("{stem}_env"),
        };
        let nth = seen.entry(key.clone()).or_default();
        let (line, col) = locate_key(&text, &key, *nth);
        *nth += 1;
        if let Err(e) = source.read() {
            out.push(format!("{}:{line}:{col}: {key}: {e}", file.display()));
        }
    }
    out
}

/// Line and column of the value of the `nth` assignment to `key` (1-based; 1:1 if not found).
fn locate_key(text: &str, key: &str, nth: usize) -> (usize, usize) {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let trimmed = line.trim_start();
            let rest = trimmed.strip_prefix(key)?.trim_start().strip_prefix('=')?;
            let value_at = line.len() - rest.trim_start().len();
            Some((i + 1, line[..value_at].chars().count() + 1))
        })
        .nth(nth)
        .unwrap_or((1, 1))
}

#[cfg(test)]
mod tests {
    use super::locate_key;

    #[test]
    fn locates_the_nth_assignment_value() {
        let text = "[[rtmp]]\nstream_key_file = \"a\"\n[[rtmp]]\n  stream_key_file=\"b\"\n";
        assert_eq!(locate_key(text, "stream_key_file", 0), (2, 19));
        assert_eq!(locate_key(text, "stream_key_file", 1), (4, 19));
        assert_eq!(locate_key(text, "password_file", 0), (1, 1));
    }
}
