//! Raw table passthrough: COPY OUT (binary) from one local cluster straight into COPY IN of
//! another, no masking, against `psql \copy ... to stdout | psql \copy ... from stdin` on the
//! same tables in the same run, alternating, median of several rounds. Also compares
//! forwarding the source's frames as they are with re-framing them into larger CopyData
//! messages of several sizes, and measures peak memory of a passthrough of a table of at
//! least 1 GB.
//!
//! cargo bench --bench passthrough                  (scale 1 dataset, 3 rounds, a 1 GiB table)
//! PRIVACI_BENCH_SCALE=2 PRIVACI_BENCH_ROUNDS=5 PRIVACI_BENCH_BIG_MB=2048 cargo bench --bench passthrough
//!
//! Writes target/bench/passthrough.json and prints a Markdown table.

use privaci::devcluster as support;

use std::process::Command;
use std::time::{Duration, Instant};

use privaci::conn::{connect, Connection};
use privaci::conninfo::Config;
use privaci::wire::copy_frames::CopyDataPayloads;
use support::Cluster;

/// How privaci moves a table: the source's frames as they are, or re-framed.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Forward,
    Reframe(usize),
}

impl Mode {
    fn name(self) -> String {
        match self {
            Mode::Forward => "privaci, frames forwarded as read".into(),
            Mode::Reframe(n) => format!("privaci, re-framed to {} KiB", n / 1024),
        }
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start_cluster() -> Cluster {
    Cluster::builder()
        .without_tls()
        .hba("host all postgres 127.0.0.1/32 trust")
        .setting("shared_buffers = 256MB")
        .setting("max_wal_size = 8GB")
        .setting("checkpoint_timeout = 30min")
        .setting("autovacuum = off")
        .start()
}

async fn conn(c: &Cluster) -> Connection {
    let cfg = Config::parse_with(
        &c.conninfo("user=postgres dbname=bench sslmode=disable"),
        &|_| None,
        None,
    )
    .unwrap();
    connect(&cfg).await.unwrap()
}

/// One table through privaci; returns (rows, payload bytes).
async fn privaci_copy(
    source: &mut Connection,
    target: &mut Connection,
    table: &str,
    mode: Mode,
) -> (u64, u64) {
    let mut out = source
        .copy_out(&format!("COPY {table} TO STDOUT (FORMAT binary)"))
        .await
        .unwrap();
    let mut sink = target
        .copy_in(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
        .await
        .unwrap();
    let mut payload = 0u64;
    if let Mode::Reframe(size) = mode {
        sink.set_frame_size(size);
    }
    while let Some(frames) = out.next_frames().await.unwrap() {
        match mode {
            Mode::Forward => {
                payload += CopyDataPayloads::new(&frames)
                    .map(|p| p.len() as u64)
                    .sum::<u64>();
                sink.write_frames(&frames).await.unwrap();
            }
            Mode::Reframe(_) => {
                for p in CopyDataPayloads::new(&frames) {
                    payload += p.len() as u64;
                    sink.write(p).await.unwrap();
                }
            }
        }
    }
    let rows = sink.finish().await.unwrap();
    assert_eq!(Some(rows), out.rows(), "{table}: rows out and in differ");
    (rows, payload)
}

fn psql_pipe(source: &Cluster, target: &Cluster, table: &str) {
    let psql = support::bindir().join("psql");
    let script = format!(
        "set -o pipefail; {psql} -X -q -h 127.0.0.1 -p {} -U postgres -d bench -c '\\copy {table} to stdout (format binary)' | {psql} -X -q -h 127.0.0.1 -p {} -U postgres -d bench -c '\\copy {table} from stdin (format binary)'",
        source.port(),
        target.port(),
        psql = psql.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql pipe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// (own CPU seconds, waited-for children's CPU seconds) from /proc/self/stat.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
    // utime, stime, cutime, cstime are fields 14-17 of stat, 12-15 after the name.
    (get(11) + get(12), get(13) + get(14))
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0 and later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run only
    // when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let scale = env_num("PRIVACI_BENCH_SCALE", 1);
    let rounds = env_num("PRIVACI_BENCH_ROUNDS", 3).max(1) as usize;
    let big_mb = env_num("PRIVACI_BENCH_BIG_MB", 1024);
    let dataset = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/dataset.sql");

    eprintln!("starting two clusters and loading the dataset at scale {scale}...");
    let source = start_cluster();
    let target = start_cluster();
    for c in [&source, &target] {
        c.psql("postgres", "CREATE DATABASE bench");
    }
    let load = Instant::now();
    let out = Command::new(support::bindir().join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(source.socket_dir())
        .args([
            "-p",
            &source.port().to_string(),
            "-U",
            "postgres",
            "-d",
            "bench",
            "-v",
            &format!("scale={scale}"),
            "-f",
            dataset,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("loaded in {:.1} s", load.elapsed().as_secs_f64());
    // The target: the same tables, without indexes or constraints, so that what is timed is
    // the transfer and the server's COPY, not index maintenance.
    let out = Command::new(support::bindir().join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(target.socket_dir())
        .args([
            "-p",
            &target.port().to_string(),
            "-U",
            "postgres",
            "-d",
            "bench",
            "-v",
            "scale=0",
            "-f",
            dataset,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.psql(
        "bench",
        "DO $$ DECLARE r record; BEGIN
           FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint WHERE connamespace = 'bench'::regnamespace AND contype = 'f' AND conparentid = 0 LOOP
             EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname); END LOOP;
           FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint WHERE connamespace = 'bench'::regnamespace AND contype IN ('p', 'u') AND conparentid = 0 LOOP
             EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname); END LOOP;
           FOR r IN SELECT indexrelid::regclass AS i FROM pg_index JOIN pg_class c ON c.oid = indrelid WHERE c.relnamespace = 'bench'::regnamespace AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = indexrelid) LOOP
             EXECUTE format('DROP INDEX IF EXISTS %s', r.i); END LOOP;
         END $$",
    );
    let tables: Vec<String> = source
        .psql("bench", "SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'bench'::regnamespace AND c.relkind = 'r' ORDER BY 1")
        .lines()
        .map(str::to_string)
        .collect();
    let truncate = format!("TRUNCATE {}", tables.join(", "));

    let mut src = conn(&source).await;
    let mut dst = conn(&target).await;
    let modes = [
        Mode::Forward,
        Mode::Reframe(16 << 10),
        Mode::Reframe(64 << 10),
        Mode::Reframe(256 << 10),
        Mode::Reframe(1 << 20),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); modes.len() + 1];
    let mut cpu: Vec<f64> = vec![0.0; modes.len() + 1];
    let (mut rows, mut bytes) = (0u64, 0u64);
    for round in 0..rounds {
        for (i, mode) in modes.iter().enumerate() {
            dst.execute(&truncate).await.unwrap();
            dst.execute("CHECKPOINT").await.unwrap();
            let t = Instant::now();
            let c0 = cpu_seconds().0;
            let (mut r, mut b) = (0, 0);
            for table in &tables {
                let (tr, tb) = privaci_copy(&mut src, &mut dst, table, *mode).await;
                r += tr;
                b += tb;
            }
            times[i].push(t.elapsed());
            cpu[i] += cpu_seconds().0 - c0;
            (rows, bytes) = (r, b);
        }
        dst.execute(&truncate).await.unwrap();
        dst.execute("CHECKPOINT").await.unwrap();
        let t = Instant::now();
        let c0 = cpu_seconds().1;
        for table in &tables {
            psql_pipe(&source, &target, table);
        }
        times[modes.len()].push(t.elapsed());
        cpu[modes.len()] += cpu_seconds().1 - c0;
        let count = target.psql(
            "bench",
            &format!(
                "SELECT {}",
                tables
                    .iter()
                    .map(|t| format!("(SELECT count(*) FROM {t})"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        );
        assert_eq!(
            count,
            rows.to_string(),
            "psql loaded a different number of rows"
        );
        eprintln!("round {} of {rounds} done", round + 1);
    }

    let psql_median = median(&mut times[modes.len()].clone());
    let mut report = String::new();
    report += &format!(
        "Passthrough of {} tables, {rows} rows, {:.1} MB of binary COPY data (scale {scale}), median of {rounds} rounds, same run:\n\n",
        tables.len(),
        bytes as f64 / 1e6
    );
    report += "| method | wall time | MB/s | rows/s | client CPU | time vs psql |\n|---|---|---|---|---|---|\n";
    let mut json = Vec::new();
    let names: Vec<String> = modes
        .iter()
        .map(|m| m.name())
        .chain(std::iter::once("psql \\copy \\| psql \\copy".to_string()))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let m = median(&mut times[i].clone());
        let secs = m.as_secs_f64();
        report += &format!(
            "| {name} | {secs:.2} s | {:.0} | {:.0} | {:.2} s | {:.2} |\n",
            bytes as f64 / 1e6 / secs,
            rows as f64 / secs,
            cpu[i] / rounds as f64,
            secs / psql_median.as_secs_f64()
        );
        json.push(format!(
            "{{\"method\":{:?},\"median_s\":{secs:.4},\"mb_per_s\":{:.1},\"rows_per_s\":{:.0},\"runs_s\":[{}]}}",
            name,
            bytes as f64 / 1e6 / secs,
            rows as f64 / secs,
            times[i].iter().map(|d| format!("{:.4}", d.as_secs_f64())).collect::<Vec<_>>().join(",")
        ));
    }

    // Peak memory on a table of at least `big_mb` MB.
    let mut peak_line = String::new();
    if big_mb > 0 {
        let rows_big = big_mb * 1024 * 1024 / 1100;
        source.psql("bench", &format!("CREATE TABLE bench.big AS SELECT g AS id, repeat(md5(g::text), 32) AS pad FROM generate_series(1, {rows_big}) g"));
        target.psql("bench", "CREATE TABLE bench.big (id int, pad text)");
        let size = source.psql("bench", "SELECT pg_total_relation_size('bench.big')");
        reset_peak_rss();
        let before = vm_hwm_kib();
        let t = Instant::now();
        let (r, b) = privaci_copy(&mut src, &mut dst, "bench.big", Mode::Reframe(256 << 10)).await;
        let secs = t.elapsed().as_secs_f64();
        let after = vm_hwm_kib();
        peak_line = format!(
            "Peak memory: a {:.2} GB table ({r} rows, {:.2} GB of COPY data) passed through in {secs:.1} s ({:.0} MB/s); the process's peak RSS was {:.1} MiB before and {:.1} MiB during the copy.\n",
            size.parse::<f64>().unwrap_or(0.0) / 1e9,
            b as f64 / 1e9,
            b as f64 / 1e6 / secs,
            before as f64 / 1024.0,
            after as f64 / 1024.0
        );
        json.push(format!(
            "{{\"big_table_bytes\":{size},\"rows\":{r},\"peak_rss_kib_before\":{before},\"peak_rss_kib_during\":{after},\"seconds\":{secs:.2}}}"
        ));
    }
    println!("{report}\n{peak_line}");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        format!("{dir}/passthrough.json"),
        format!("[{}]\n", json.join(",\n")),
    )
    .unwrap();
    std::fs::write(
        format!("{dir}/passthrough.md"),
        format!("{report}\n{peak_line}"),
    )
    .unwrap();
}
