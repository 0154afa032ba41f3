//! Masked values at the edges of their types still load: the server is the oracle.

mod support;

use std::process::Command;

use support::fixture_clone::{self, output};

#[test]
fn date_shift_keeps_dates_and_timestamps_at_the_types_limits_loadable() {
    let c = fixture_clone::cluster_with_roles(&["owner", "cloner"], &[]);
    c.psql("postgres", "CREATE DATABASE src OWNER owner");
    c.psql("postgres", "CREATE DATABASE dst OWNER cloner");
    c.psql(
        "src",
        "SET ROLE owner;
        CREATE TABLE edges (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz);
        INSERT INTO edges VALUES
          (1, '5874897-12-31', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00'),
          (2, '4714-11-24 BC', '4714-11-24 00:00:00 BC', '4714-11-24 00:00:00+00 BC'),
          (3, '5874897-12-25', '294276-12-30 00:00:00', '4714-11-25 00:00:00+00 BC'),
          (4, 'infinity', '-infinity', 'infinity'),
          (5, '2024-02-29', '2024-02-29 12:00', '2024-02-29 12:00+00')",
    );
    let dir = c.socket_dir().parent().unwrap().to_path_buf();
    let config = dir.join("masking.toml");
    std::fs::write(
        &config,
        "[tables.edges.columns]\nd = { strategy = \"date_shift\", max_days = 30 }\nts = { strategy = \"date_shift\", max_days = 30 }\ntz = { strategy = \"date_shift\", max_days = 30 }\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_privaci"));
    cmd.args([
        "clone",
        "--source",
        &fixture_clone::conninfo(&c, c.port(), "owner", "src"),
        "--target",
        &fixture_clone::conninfo(&c, c.port(), "cloner", "dst"),
        "--config",
        config.to_str().unwrap(),
        "--quiet",
    ])
    .env("PRIVACI_MASK_KEY", fixture_clone::KEY)
    .env("HOME", "/nonexistent");
    let (code, out) = output(cmd);
    assert_eq!(code, 0, "{out}");
    // Every finite value moved by 1 to 30 days (whole days), inside the type's range.
    let days = "SELECT string_agg(concat_ws(' ', d - date '2000-01-01', extract(epoch FROM ts)::numeric / 86400, extract(epoch FROM tz)::numeric / 86400), ' ' ORDER BY id) FROM edges WHERE id <> 4";
    let parse = |s: String| -> Vec<f64> { s.split(' ').map(|v| v.parse().unwrap()).collect() };
    let (before, after) = (parse(c.psql("src", days)), parse(c.psql("dst", days)));
    assert_eq!(before.len(), 12);
    for (b, a) in before.iter().zip(&after) {
        let moved = (a - b).abs();
        assert!(
            (1.0..=30.0).contains(&moved) && moved.fract() == 0.0,
            "{b} -> {a}"
        );
    }
    assert_eq!(
        c.psql(
            "dst",
            "SELECT d::text || ' ' || ts::text || ' ' || tz::text FROM edges WHERE id = 4"
        ),
        "infinity -infinity infinity"
    );
}
