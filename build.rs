//! Stamps the build with the git commit: `SIPCAST_GIT_COMMIT` = short hash, `-dirty` when tracked
//! files differ from it, `unknown` without git (e.g. built from a crate tarball). Packagers
//! building from a tarball can set `SIPCAST_GIT_COMMIT` themselves.
//!
//! To keep rebuilds cheap we rerun only when HEAD moves (HEAD itself, the branch ref it points
//! to, packed-refs), not on every edit, so `-dirty` reflects the tree as of the last commit or
//! checkout. Release builds from a clean checkout are exact.
//!
//! It also compiles the Speex decoder from `vendor/libspeex` with the `cc` crate (see
//! `vendor/libspeex/README.sipcast`): a C compiler is all the build needs, no libclang.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SIPCAST_GIT_COMMIT");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match std::env::var("SIPCAST_GIT_COMMIT") {
        Ok(given) if !given.trim().is_empty() => given.trim().to_owned(),
        _ => git_commit(&manifest_dir).unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=SIPCAST_GIT_COMMIT={commit}");
    build_libspeex(&manifest_dir);
}

/// The libspeex files the decoder (and the test encoder) link against, in
/// `vendor/libspeex/libspeex/`.
const LIBSPEEX_SOURCES: &[&str] = &[
    "bits.c",
    "cb_search.c",
    "exc_10_16_table.c",
    "exc_10_32_table.c",
    "exc_20_32_table.c",
    "exc_5_256_table.c",
    "exc_5_64_table.c",
    "exc_8_128_table.c",
    "filters.c",
    "gain_table.c",
    "gain_table_lbr.c",
    "hexc_10_32_table.c",
    "hexc_table.c",
    "high_lsp_tables.c",
    "lpc.c",
    "lsp.c",
    "lsp_tables_nb.c",
    "ltp.c",
    "modes.c",
    "modes_wb.c",
    "nb_celp.c",
    "quant_lsp.c",
    "sb_celp.c",
    "speex.c",
    "speex_callbacks.c",
    "vbr.c",
    "vq.c",
    "window.c",
];

/// Compiles libspeex as a static library `sipcast_speex`, floating point (the configuration
/// speex-sys used), plus the layout probe that `src/media/speex/ffi.rs` tests against.
fn build_libspeex(manifest_dir: &Path) {
    let vendor = manifest_dir.join("vendor/libspeex");
    let probe = manifest_dir.join("src/media/speex/layout.c");
    let mut build = cc::Build::new();
    build
        .include(vendor.join("include"))
        .define("FLOATING_POINT", None)
        .define("EXPORT", Some(""))
        // Upstream code, compiled unmodified: its warnings are not ours to fix.
        .warnings(false)
        .file(&probe);
    println!("cargo:rerun-if-changed={}", probe.display());
    println!("cargo:rerun-if-changed={}", vendor.display());
    for source in LIBSPEEX_SOURCES {
        build.file(vendor.join("libspeex").join(source));
    }
    build.compile("sipcast_speex");
}

fn git_commit(manifest_dir: &Path) -> Option<String> {
    // Only our own repository counts, not one that happens to contain an unpacked tarball.
    let toplevel = git(manifest_dir, &["rev-parse", "--show-toplevel"])?;
    let same_dir = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_dir(Path::new(&toplevel), manifest_dir) {
        return None;
    }

    watch_head(manifest_dir);
    let hash = git(manifest_dir, &["rev-parse", "--short=7", "HEAD"])?;
    let dirty = git(
        manifest_dir,
        &["status", "--porcelain", "--untracked-files=no"],
    )
    .is_some_and(|changes| !changes.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

/// `rerun-if-changed` for HEAD and what it points to (works in linked worktrees too, where
/// `.git` is a file and refs live in the common directory).
fn watch_head(dir: &Path) {
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) else {
            continue;
        };
        let path = dir.join(path);
        // A missing file would make cargo rerun this script on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_owned())
}
