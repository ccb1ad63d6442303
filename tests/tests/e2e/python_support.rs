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

/// What the script `script` (relative to the repository) printed as JSON
/// when run on a temporary file holding `input` (named `file_name`, for
/// the script's own checks of its extension), with `packages` (from
/// [`pip_target`]) on `PYTHONPATH`. A script that fails fails the test with
/// its error output, naming `what` it refused.
pub(crate) async fn run_json(
    script: &str,
    packages: &Path,
    file_name: &str,
    input: &[u8],
    what: &str,
) -> serde_json::Value {
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}-{file_name}", uuid::Uuid::new_v4()));
    std::fs::write(&file, input).expect("write the script's input");
    let mut python = Command::new("python3");
    python
        .arg(repo_root().join(script))
        .arg(&file)
        .env("PYTHONPATH", packages);
    let output = tokio::task::spawn_blocking(move || python.output())
        .await
        .expect("the blocking task")
        .expect("python3 runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "{script} refused the {what}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}
