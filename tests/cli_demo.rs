//! `privaci demo`, the README's main-job command, runs end to end.

#[test]
fn demo_clones_the_fixture_with_masking() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privaci"))
        .arg("demo")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (before, after) = stdout
        .split_once("Patients in the target")
        .expect("both tables are shown");
    assert!(
        before.contains("@mail") && before.contains("-0"),
        "{before}"
    );
    assert!(
        after.contains("***-**-") && !after.contains("@mail"),
        "{after}"
    );
    assert!(stdout.contains("total: 40 units, 4930 rows"), "{stdout}");
}
