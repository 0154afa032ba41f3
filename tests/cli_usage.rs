//! A wrong command line exits 64 (usage), never 2 (a pre-flight refusal): a CI script can
//! tell a typo from a refused target. Help and version exit 0; help lists the exit codes.

use std::process::Command;

fn privaci(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_privaci"))
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let base = ["clone", "--source", "host=a", "--target", "host=b"];
    for extra in [
        &["--schema", "bogus"][..],
        &["--jobs", "-1"][..],
        &["--no-such-flag"][..],
        &["--lock-wait-timeout", "soon"][..],
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (code, _, err) = privaci(&args);
        assert_eq!(code, 64, "{args:?}: {err}");
        assert!(err.contains("error"), "{args:?}: {err}");
    }
    let (code, _, err) = privaci(&["clone", "--source", "host=a"]);
    assert_eq!(code, 64, "missing --target: {err}");
    let (code, _, _) = privaci(&[]);
    assert_eq!(code, 64, "no subcommand");
    let (code, _, _) = privaci(&["frobnicate"]);
    assert_eq!(code, 64, "unknown subcommand");

    let (code, out, _) = privaci(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("64 command-line usage error") && out.contains("2 pre-flight refusal"),
        "{out}"
    );
    let (code, out, _) = privaci(&["--version"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("privaci 0.") && out.contains("(commit "),
        "{out}"
    );
    // Built from this checkout: the commit is its HEAD.
    if let Ok(head) = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        if head.len() == 12 {
            assert!(out.contains(&format!("(commit {head}")), "{out} vs {head}");
        }
    }
}

/// Shell completions and manual pages are generated from the same definitions as --help,
/// so every option is in them.
#[test]
fn completions_and_manual_pages_cover_every_command_and_option() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = privaci(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for word in [
            "clone",
            "plan",
            "skip-unsupported",
            "privileges",
            "exclude-table",
        ] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, _, _) = privaci(&["completions", "tcsh"]);
    assert_eq!(code, 64);

    let (code, out, _) = privaci(&["man"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(".TH privaci 1") && out.contains("clone"),
        "{out}"
    );
    let (code, out, _) = privaci(&["man", "clone"]);
    assert_eq!(code, 0);
    assert!(out.contains(".TH privaci-clone 1"), "{out}");
    for option in [
        "skip\\-unsupported",
        "no\\-large\\-objects",
        "lock\\-wait\\-timeout",
        "resume",
    ] {
        assert!(out.contains(option), "man page lacks {option}");
    }
    let (code, _, err) = privaci(&["man", "nosuch"]);
    assert_eq!(code, 64, "{err}");
}

/// A config file that is not one (a device that never ends, binary data) is refused with
/// exit 3 before it is held in memory.
#[test]
fn oversized_or_binary_config_files_are_refused() {
    for cmd in [
        &["validate", "--config", "/dev/zero"][..],
        &[
            "clone",
            "--source",
            "host=a",
            "--target",
            "host=b",
            "--config",
            "/dev/zero",
        ][..],
    ] {
        let (code, _, err) = privaci(cmd);
        assert_eq!(code, 3, "{cmd:?}: {err}");
        assert!(err.contains("larger than 64 MiB"), "{err}");
    }
    let path = std::env::temp_dir().join(format!("privaci-binary-{}.toml", std::process::id()));
    std::fs::write(&path, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let (code, _, err) = privaci(&["validate", "--config", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not UTF-8 text"), "{err}");
}

/// A role that does not exist is named as such, not blamed on pg_hba.conf (both are SQLSTATE
/// 28000); a pg_hba.conf rejection still says pg_hba.conf.
#[test]
fn a_missing_role_is_not_blamed_on_pg_hba_conf() {
    let c = privaci::devcluster::Cluster::builder()
        .hba("host all all 127.0.0.1/32 trust")
        .start();
    let (code, _, err) = privaci(&["ping", &c.conninfo("user=nobody dbname=postgres")]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no role \"nobody\" on this server") && !err.contains("pg_hba.conf"),
        "{err}"
    );
}
