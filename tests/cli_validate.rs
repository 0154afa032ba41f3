//! `privaci validate`: exit 0 for a valid config, 3 with file:line for an invalid one or a
//! missing key.

use std::process::Command;

fn validate(text: &str, key: Option<&str>) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "privaci-validate-{}-{}",
        std::process::id(),
        text.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("masking.toml");
    std::fs::write(&file, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args(["validate", "--config"]).arg(&file);
    match key {
        Some(k) => cmd.env("PRIVACI_MASK_KEY", k),
        None => cmd.env_remove("PRIVACI_MASK_KEY"),
    };
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn valid_config() {
    let (code, stdout, stderr) = validate("[tables.customer.columns]\nemail = \"email\"\nssn = { strategy = \"redact\", keep_last = 4 }\n", Some("a secret of enough length"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("valid (1 tables, 2 columns"), "{stdout}");
}

#[test]
fn invalid_config_exits_3_with_the_place() {
    let (code, _, stderr) = validate(
        "[tables.customer.columns]\nemail = \"email\"\nssn = { strategy = \"redcat\" }\n",
        Some("a secret of enough length"),
    );
    assert_eq!(code, 3);
    assert!(stderr.contains("masking.toml:3: table \"public.customer\", column \"ssn\": unknown strategy \"redcat\""), "{stderr}");
}

#[test]
fn keyed_strategies_need_the_key_for_clone_only() {
    // validate masks nothing: a reviewer without the secret can run it; it warns.
    let (code, stdout, stderr) = validate("[tables.customer.columns]\nemail = \"email\"\n", None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("valid"), "{stdout}");
    assert!(
        stderr.contains("warning") && stderr.contains("`privaci clone` will need PRIVACI_MASK_KEY"),
        "{stderr}"
    );
    let (code, _, stderr) = validate(
        "[tables.customer.columns]\nemail = \"email\"\n",
        Some("short"),
    );
    assert_eq!(code, 3);
    assert!(stderr.contains("at least 16 bytes"), "{stderr}");
    // Unkeyed strategies do not need it.
    let (code, _, _) = validate("[tables.customer.columns]\nnote = \"null\"\n", None);
    assert_eq!(code, 0);
}
