//! The packages are built from committed files only (so `cargo deb` and `cargo generate-rpm`
//! work straight after `cargo build --release`); these tests keep the committed copies equal to
//! what the binary generates. After changing the command line, refresh them with:
//!
//! ```sh
//! cargo run -q -- completions bash > packaging/completions/sipcast.bash
//! cargo run -q -- completions zsh > packaging/completions/_sipcast
//! cargo run -q -- completions fish > packaging/completions/sipcast.fish
//! ```

use std::path::Path;
use std::process::Command;

/// Shell, committed file.
const FILES: [(&str, &str); 3] = [
    ("bash", "packaging/completions/sipcast.bash"),
    ("zsh", "packaging/completions/_sipcast"),
    ("fish", "packaging/completions/sipcast.fish"),
];

#[test]
fn committed_completions_are_what_sipcast_generates() {
    for (shell, file) in FILES {
        let out = Command::new(env!("CARGO_BIN_EXE_sipcast"))
            .args(["completions", shell])
            .output()
            .expect("run sipcast completions");
        assert!(out.status.success(), "sipcast completions {shell}");
        let committed = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        assert!(
            out.stdout == committed,
            "{file} is stale: run `cargo run -q -- completions {shell} > {file}`"
        );
    }
}

#[test]
fn every_packaged_source_file_is_committed() {
    // Each asset of both packages is the binary, the debug file split from it, or a file in
    // the repository.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let built = ["target/release/sipcast", "target/release/sipcast.debug"];
    let mut sources = Vec::new();
    for line in manifest.lines() {
        let line = line.trim_start();
        let source = if let Some(rest) = line.strip_prefix("[\"") {
            rest.split('"').next()
        } else if let Some(rest) = line.strip_prefix("{ source = \"") {
            rest.split('"').next()
        } else {
            None
        };
        sources.extend(source);
    }
    assert!(sources.len() > 25, "{sources:?}");
    for source in sources {
        if built.contains(&source) {
            continue;
        }
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(source).is_file(),
            "{source} is packaged but not in the repository"
        );
        assert!(!source.starts_with("target/"), "{source} is generated");
    }
}
