//! Records the commit and the compiler berth is built from, for `berth
//! version` and `berth --version`.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = output("git", &["rev-parse", "--short=7", "HEAD"]);
    println!(
        "cargo:rustc-env=BERTH_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(&rustc, &["--version"]);
    println!(
        "cargo:rustc-env=BERTH_RUSTC_VERSION={}",
        version.as_deref().unwrap_or("unknown")
    );
    // Run again when the checked-out commit changes (HEAD, and the reflog
    // every commit appends to); never on every build.
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(dir) = output("git", &["rev-parse", "--absolute-git-dir"]) {
        for f in ["HEAD", "logs/HEAD"] {
            let p = std::path::Path::new(&dir).join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
}
