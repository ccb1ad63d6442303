//! Python for the tests that prove other teams' tools work with FitFlow:
//! pinned packages installed once per requirements file with
//! `pip install --target` into the Cargo target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root directory.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A directory holding the packages pinned in `requirements_path` (relative
/// to the repository; `requirements` is its text), named `name` plus a hash
/// of the pins, so a fresh machine installs them once and a changed pin
/// installs again.
pub(crate) fn pip_target(name: &str, requirements_path: &str, requirements: &str) -> PathBuf {
    let key = requirements
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{key:016x}"));
    if dir.is_dir() {
        return dir;
    }
    // Install next to it, then rename, so an interrupted install is never
    // mistaken for a complete one.
    let partial = dir.with_extension(format!("partial-{}", std::process::id()));
    let requirements = repo_root().join(requirements_path);
    let pip = |extra: &[&str]| {
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-warn-script-location", "--target"])
            .arg(&partial)
            .arg("-r")
            .arg(&requirements)
            .args(extra)
            .env("PIP_ROOT_USER_ACTION", "ignore")
            .status()
            .expect("python3 -m pip runs (install Python 3 with pip)")
    };
    // Debian's system Python refuses pip installs (PEP 668) without the flag;
    // a --target directory is private to this test, so the flag is harmless.
    if !pip(&[]).success() {
        assert!(
            pip(&["--break-system-packages"]).success(),
            "pip install -r {} failed",
            requirements.display()
        );
    }
    if std::fs::rename(&partial, &dir).is_err() {
        // Another run finished first; use its copy.
        let _ = std::fs::remove_dir_all(&partial);
    }
    dir
}
