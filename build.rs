//! Records the git commit privaci is built from, for `privaci --version`: a bug report then
//! names the exact code. Outside a git checkout (a source tarball) it says "unknown".

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let suffix = if dirty { ", modified" } else { "" };
    println!("cargo:rustc-env=PRIVACI_GIT_COMMIT={commit}{suffix}");
    // Rebuilt when HEAD moves (a commit, a checkout) or the index changes. Only files that
    // exist are named: cargo reruns a build script whose named file is missing every time.
    let mut watch = vec![".git/HEAD".to_string(), ".git/index".to_string()];
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.strip_prefix("ref: ") {
            watch.push(format!(".git/{}", r.trim()));
        }
    }
    watch.push(".git/packed-refs".into());
    println!("cargo:rerun-if-changed=build.rs");
    for path in watch.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}
