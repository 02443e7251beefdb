//! Reading a spec file from disk without trusting what the directory entry is.
//!
//! A name ending in `.toml` may be a dangling or looping symbolic link, a FIFO (opening one for
//! reading blocks until a writer comes), a device, a socket, a directory or a file far larger
//! than any spec. Each is refused with a reason, never opened when the entry's type already says
//! so, and a regular file is opened non-blocking and checked again on the open descriptor (the
//! entry may be swapped between the two looks). A file larger than [`MAX_SPEC_BYTES`] is refused
//! from its size, and read at most one byte past the bound.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::MAX_SPEC_BYTES;

/// Why an entry could not be read as a spec file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// The entry disappeared between listing and reading: treat it as absent.
    #[error("vanished while being read")]
    Vanished,
    #[error("is a symbolic link that cannot be followed: {0}")]
    BrokenLink(String),
    #[error("is {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("is {size} bytes, larger than the limit of {MAX_SPEC_BYTES} bytes")]
    TooLarge { size: u64 },
    #[error("cannot read: {0}")]
    Io(String),
}

/// The bytes of the spec file at `path`, bounded, following symbolic links.
pub fn read_spec_file(path: &Path) -> Result<Vec<u8>, Unreadable> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Err(not_followed(path, e)),
    };
    check_kind(&meta)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO swapped in after the check must not block the open; no effect on a file.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Unreadable::Vanished,
            _ => Unreadable::Io(e.to_string()),
        })?;
    let meta = file.metadata().map_err(|e| Unreadable::Io(e.to_string()))?;
    check_kind(&meta)?;
    read_at_most(file)
}

/// Refuses everything but a regular file of at most [`MAX_SPEC_BYTES`].
fn check_kind(meta: &Metadata) -> Result<(), Unreadable> {
    let kind = meta.file_type();
    let what = if kind.is_file() {
        if meta.len() > MAX_SPEC_BYTES as u64 {
            return Err(Unreadable::TooLarge { size: meta.len() });
        }
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    };
    Err(Unreadable::NotAFile(what))
}

fn not_followed(path: &Path, e: std::io::Error) -> Unreadable {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        // ELOOP for a loop, ENOENT for a dangling target.
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "its target does not exist".to_string()
        } else {
            e.to_string()
        };
        Unreadable::BrokenLink(why)
    } else if e.kind() == std::io::ErrorKind::NotFound {
        Unreadable::Vanished
    } else {
        Unreadable::Io(e.to_string())
    }
}

fn read_at_most(file: File) -> Result<Vec<u8>, Unreadable> {
    let mut bytes = Vec::new();
    file.take(MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Unreadable::Io(e.to_string()))?;
    if bytes.len() > MAX_SPEC_BYTES {
        // It grew after the size check.
        return Err(Unreadable::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_entry_that_is_not_a_file_is_refused_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("good.toml"), "a = 1\n").unwrap();
        std::os::unix::fs::symlink("missing.toml", p.join("dangling.toml")).unwrap();
        std::os::unix::fs::symlink("loop_b.toml", p.join("loop_a.toml")).unwrap();
        std::os::unix::fs::symlink("loop_a.toml", p.join("loop_b.toml")).unwrap();
        std::fs::create_dir(p.join("dir.toml")).unwrap();
        let fifo = p.join("fifo.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::fs::write(p.join("big.toml"), vec![b'#'; MAX_SPEC_BYTES + 1]).unwrap();
        std::fs::write(p.join("exact.toml"), vec![b'#'; MAX_SPEC_BYTES]).unwrap();

        assert_eq!(
            read_spec_file(&p.join("good.toml")),
            Ok(b"a = 1\n".to_vec())
        );
        assert_eq!(
            read_spec_file(&p.join("exact.toml")).map(|b| b.len()),
            Ok(MAX_SPEC_BYTES)
        );
        let err = |name: &str| read_spec_file(&p.join(name)).unwrap_err().to_string();
        assert_eq!(
            err("dangling.toml"),
            "is a symbolic link that cannot be followed: its target does not exist"
        );
        assert!(
            err("loop_a.toml").contains("symbolic link"),
            "{}",
            err("loop_a.toml")
        );
        assert_eq!(err("dir.toml"), "is a directory, not a regular file");
        // Would block forever if it were opened for reading.
        assert_eq!(err("fifo.toml"), "is a FIFO, not a regular file");
        assert_eq!(
            err("big.toml"),
            format!(
                "is {} bytes, larger than the limit of {MAX_SPEC_BYTES} bytes",
                MAX_SPEC_BYTES + 1
            )
        );
        assert_eq!(
            err("/dev/null"),
            "is a character device, not a regular file"
        );
        assert_eq!(
            read_spec_file(&p.join("gone.toml")),
            Err(Unreadable::Vanished)
        );
    }

    #[test]
    fn a_symlink_to_a_file_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join("..data/a.toml"), "x = 1\n").unwrap();
        std::os::unix::fs::symlink("..data/a.toml", dir.path().join("a.toml")).unwrap();
        assert_eq!(
            read_spec_file(&dir.path().join("a.toml")),
            Ok(b"x = 1\n".to_vec())
        );
    }
}
