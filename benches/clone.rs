//! The clone benchmark: privaci against `pg_dump | psql`, `pg_dump -Fd -j N` + `pg_restore -j N`
//! and `pgcopydb clone`, and against the limit (the target alone loading the same rows from
//! binary files staged beforehand, with the same parallelism, then building the same indexes
//! and constraints). Two local clusters with identical settings; each contestant gets a fresh
//! target database; contestants alternate within each round; the median of the rounds is
//! reported. Row counts are checked on every target, so no tool is timed doing less.
//!
//! cargo bench --bench clone
//! PRIVACI_BENCH_SCALE=4 PRIVACI_BENCH_ROUNDS=5 PRIVACI_BENCH_JOBS=2 cargo bench --bench clone
//!
//! Writes target/bench/clone.md and target/bench/clone.json. pgcopydb is optional: install it
//! with `apt-get install pgcopydb` (Debian, Ubuntu); without it, its row says "not installed".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use privaci::devcluster::{bindir, Cluster};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start() -> Cluster {
    // The same settings for every contestant.
    Cluster::builder()
        .without_tls()
        .hba("host all postgres 127.0.0.1/32 trust")
        .setting("shared_buffers = 256MB")
        .setting("maintenance_work_mem = 256MB")
        .setting("max_wal_size = 8GB")
        .setting("checkpoint_timeout = 30min")
        .setting("autovacuum = off")
        .start()
}

fn url(c: &Cluster, db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{}/{db}", c.port())
}

fn sh(script: &str) -> Result<(), String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail; {script}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join(" | "))
    }
}

/// Busy CPU seconds of the whole machine (all processes, all cores).
fn machine_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = f.first().unwrap_or(&0.0)
        + f.get(1).unwrap_or(&0.0)
        + f.get(2).unwrap_or(&0.0)
        + f.get(5).unwrap_or(&0.0)
        + f.get(6).unwrap_or(&0.0)
        + f.get(7).unwrap_or(&0.0);
    busy / 100.0
}

/// CPU seconds of the waited-for children of this process.
fn children_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(13).unwrap_or(&0.0) + f.get(14).unwrap_or(&0.0)) / 100.0
}

#[derive(Default, Clone)]
struct Sample {
    wall: f64,
    client_cpu: f64,
    machine_cpu: f64,
    peak_rss_mib: Option<f64>,
}

/// The "phases:" line of privaci's last report, to show where its time went.
static PHASES: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Runs a command (privaci) and samples its peak RSS while it runs.
fn run_watched(mut cmd: Command) -> Result<f64, String> {
    let out_file =
        std::env::temp_dir().join(format!("privaci-bench-report-{}", std::process::id()));
    let stdout = std::fs::File::create(&out_file).map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0f64;
    loop {
        if let Some(v) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        }) {
            peak = peak.max(v / 1024.0);
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if !status.success() {
                let mut err = String::new();
                use std::io::Read;
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(err.lines().rev().take(5).collect::<Vec<_>>().join(" | "));
            }
            if let Some(line) = std::fs::read_to_string(&out_file).ok().and_then(|r| {
                r.lines()
                    .find(|l| l.starts_with("phases:"))
                    .map(str::to_string)
            }) {
                if let Ok(mut p) = PHASES.lock() {
                    *p = line;
                }
            }
            let _ = std::fs::remove_file(&out_file);
            return Ok(peak);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let scale = env_num("PRIVACI_BENCH_SCALE", 2);
    let rounds = env_num("PRIVACI_BENCH_ROUNDS", 3).max(1) as usize;
    let jobs = env_num("PRIVACI_BENCH_JOBS", 2).max(1);
    let work = std::env::temp_dir().join(format!("privaci-clone-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let dataset = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/dataset.sql");
    let bin = bindir();
    let psql = bin.join("psql");
    let (pg_dump, pg_restore) = (bin.join("pg_dump"), bin.join("pg_restore"));
    let privaci = env!("CARGO_BIN_EXE_privaci");
    let pgcopydb = ["/usr/bin/pgcopydb", "/usr/lib/postgresql/15/bin/pgcopydb"]
        .into_iter()
        .find(|p| Path::new(p).exists());

    eprintln!("starting two clusters, loading the dataset at scale {scale}...");
    let source = start();
    let target = start();
    source.psql("postgres", "CREATE DATABASE bench");
    sh(&format!("{} -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {} -U postgres -d bench -v scale={scale} -f {dataset}", psql.display(), source.port())).unwrap();
    let tables: Vec<String> = source.psql("bench", "SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'bench'::regnamespace AND c.relkind = 'r' ORDER BY 1").lines().map(str::to_string).collect();
    let count_sql = format!(
        "SELECT {}",
        tables
            .iter()
            .map(|t| format!("(SELECT count(*) FROM {t})"))
            .collect::<Vec<_>>()
            .join(" + ")
    );
    let rows: u64 = source.psql("bench", &count_sql).parse().unwrap();
    let bytes: u64 = source.psql("bench", "SELECT sum(pg_table_size(c.oid)) FROM pg_class c WHERE c.relnamespace = 'bench'::regnamespace AND c.relkind = 'r'").parse().unwrap();
    eprintln!(
        "{rows} rows, {:.0} MB in {} tables",
        bytes as f64 / 1e6,
        tables.len()
    );

    // Staged for the limit: the rows as binary files, the schema as a custom-format dump.
    let staged = work.join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    for t in &tables {
        sh(&format!("{} -X -q -h 127.0.0.1 -p {} -U postgres -d bench -c \"\\copy {t} to '{}/{t}.bin' with (format binary)\"", psql.display(), source.port(), staged.display())).unwrap();
    }
    sh(&format!(
        "{} -Fc --schema-only -h 127.0.0.1 -p {} -U postgres -d bench -f {}/schema.dump",
        pg_dump.display(),
        source.port(),
        staged.display()
    ))
    .unwrap();

    let config = work.join("masking.toml");
    std::fs::write(
        &config,
        "[tables.\"bench.customers\".columns]\nemail = \"email\"\nfull_name = \"full_name\"\nphone = \"digits\"\nssn = { strategy = \"redact\", keep_last = 4 }\nbirth_date = { strategy = \"date_shift\", max_days = 30 }\n",
    )
    .unwrap();

    let (src_url, cfg) = (url(&source, "bench"), config.clone());
    let tables_for_limit = tables.clone();
    type Runner<'a> = Box<dyn Fn(&str) -> Result<Option<f64>, String> + 'a>;
    let tp = target.port();
    let sp = source.port();
    let mut contestants: Vec<(&str, Runner)> = vec![
        (
            "pg_dump | psql",
            Box::new(|db: &str| {
                sh(&format!("{} -h 127.0.0.1 -p {sp} -U postgres bench | {} -X -q -h 127.0.0.1 -p {tp} -U postgres -d {db}", pg_dump.display(), psql.display())).map(|_| None)
            }),
        ),
        (
            "pg_dump -Fd -j N + pg_restore -j N",
            Box::new(|db: &str| {
                let dir = work.join(format!("dump-{db}"));
                let r = sh(&format!(
                "{} -Fd -j {jobs} -h 127.0.0.1 -p {sp} -U postgres -f {} bench && {} -j {jobs} -h 127.0.0.1 -p {tp} -U postgres -d {db} {}",
                pg_dump.display(),
                dir.display(),
                pg_restore.display(),
                dir.display()
            ));
                let _ = std::fs::remove_dir_all(&dir);
                r.map(|_| None)
            }),
        ),
    ];
    if let Some(pgc) = pgcopydb {
        let w = work.clone();
        let (s, t) = (source.port(), target.port());
        contestants.push(("pgcopydb clone", Box::new(move |db: &str| {
            let dir = w.join(format!("pgcopydb-{db}"));
            let r = sh(&format!(
                "PATH={}:$PATH {pgc} clone --source postgres://postgres@127.0.0.1:{s}/bench --target postgres://postgres@127.0.0.1:{t}/{db} --table-jobs {jobs} --index-jobs {jobs} --dir {} --no-owner --no-acl",
                bindir().display(),
                dir.display()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            r.map(|_| None)
        })));
    }
    contestants.push((
        "privaci clone",
        Box::new(|db: &str| {
            let mut cmd = Command::new(privaci);
            cmd.args([
                "clone",
                "--source",
                &src_url,
                "--target",
                &url(&target, db),
                "--jobs",
                &jobs.to_string(),
                "--quiet",
            ]);
            run_watched(cmd).map(Some)
        }),
    ));
    contestants.push((
        "privaci clone, masked",
        Box::new(|db: &str| {
            let mut cmd = Command::new(privaci);
            cmd.args([
                "clone",
                "--source",
                &src_url,
                "--target",
                &url(&target, db),
                "--jobs",
                &jobs.to_string(),
                "--quiet",
                "--config",
            ])
            .arg(&cfg)
            .env("PRIVACI_MASK_KEY", "benchmark masking key 0123456789");
            run_watched(cmd).map(Some)
        }),
    ));
    contestants.push(("limit: target alone, staged binary files", Box::new(|db: &str| {
        let dump = staged.join("schema.dump");
        sh(&format!("{} -h 127.0.0.1 -p {tp} -U postgres -d {db} --section=pre-data {}", pg_restore.display(), dump.display()))?;
        // The same parallelism: N loaders, largest files first, each taking the next file.
        let mut files: Vec<(u64, String)> = tables_for_limit.iter().map(|t| (std::fs::metadata(staged.join(format!("{t}.bin"))).map(|m| m.len()).unwrap_or(0), t.clone())).collect();
        files.sort_by(|a, b| b.cmp(a));
        let mut lanes: Vec<Vec<String>> = vec![Vec::new(); jobs as usize];
        let mut load = vec![0u64; jobs as usize];
        for (size, t) in files {
            let i = (0..lanes.len()).min_by_key(|&i| load[i]).unwrap_or(0);
            load[i] += size;
            lanes[i].push(t);
        }
        let handles: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                let script = lane
                    .iter()
                    .map(|t| format!("{} -X -q -h 127.0.0.1 -p {tp} -U postgres -d {db} -c \"\\copy {t} from '{}/{t}.bin' with (format binary)\"", psql.display(), staged.display()))
                    .collect::<Vec<_>>()
                    .join(" && ");
                std::thread::spawn(move || sh(&script))
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "loader panicked".to_string())??;
        }
        sh(&format!("{} -j {jobs} -h 127.0.0.1 -p {tp} -U postgres -d {db} --section=post-data {}", pg_restore.display(), dump.display())).map(|_| None)
    })));

    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    let mut failures: BTreeMap<&str, String> = BTreeMap::new();
    for round in 0..rounds {
        // Alternate the order from round to round.
        let mut order: Vec<usize> = (0..contestants.len()).collect();
        order.rotate_left(round % contestants.len());
        for i in order {
            let (name, f) = &contestants[i];
            if failures.contains_key(name) {
                continue;
            }
            let db = format!("t{round}_{i}");
            target.psql("postgres", &format!("CREATE DATABASE {db}"));
            target.psql("postgres", "CHECKPOINT");
            let (m0, c0) = (machine_cpu(), children_cpu());
            let t0 = Instant::now();
            let result = f(&db);
            let wall = t0.elapsed().as_secs_f64();
            let (m1, c1) = (machine_cpu(), children_cpu());
            match result {
                Ok(peak) => {
                    let got: u64 = target.psql(&db, &count_sql).parse().unwrap_or(0);
                    if got != rows {
                        failures.insert(name, format!("loaded {got} rows, not {rows}"));
                    } else {
                        samples.entry(name).or_default().push(Sample {
                            wall,
                            client_cpu: c1 - c0,
                            machine_cpu: m1 - m0,
                            peak_rss_mib: peak,
                        });
                    }
                }
                Err(e) => {
                    failures.insert(name, e);
                }
            }
            target.psql("postgres", &format!("DROP DATABASE {db}"));
            eprintln!("round {}: {name}: {wall:.1} s", round + 1);
        }
    }

    let wall_of = |name: &str| {
        samples
            .get(name)
            .map(|s| median(&mut s.iter().map(|x| x.wall).collect::<Vec<_>>()))
    };
    let masked = wall_of("privaci clone, masked").unwrap_or(f64::NAN);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut md = format!(
        "Clone of `benches/dataset.sql` at scale {scale} ({rows} rows, {:.0} MB of tables, {} tables and partitions), N = {jobs}, median of {rounds} rounds, on {cores} cores.\n\n\
         | method | wall time | rows/s | MB/s | client CPU | machine CPU | time vs privaci masked | peak RSS |\n|---|---|---|---|---|---|---|---|\n",
        bytes as f64 / 1e6,
        tables.len()
    );
    let mut json = Vec::new();
    for (name, _) in &contestants {
        let shown = name.replace('|', "\\|");
        if let Some(e) = failures.get(name) {
            md += &format!("| {shown} | failed: {e} | | | | | | |\n");
            json.push(serde_json::json!({"method": name, "error": e}));
            continue;
        }
        let Some(s) = samples.get(name) else {
            md += &format!("| {shown} | not run | | | | | | |\n");
            continue;
        };
        let wall = median(&mut s.iter().map(|x| x.wall).collect::<Vec<_>>());
        let cpu = median(&mut s.iter().map(|x| x.client_cpu).collect::<Vec<_>>());
        let machine = median(&mut s.iter().map(|x| x.machine_cpu).collect::<Vec<_>>());
        let peak = s
            .iter()
            .filter_map(|x| x.peak_rss_mib)
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        md += &format!(
            "| {shown} | {wall:.1} s | {:.0} | {:.1} | {cpu:.1} s | {machine:.1} s | {:.2} | {} |\n",
            rows as f64 / wall,
            bytes as f64 / 1e6 / wall,
            wall / masked,
            peak.map(|p| format!("{p:.1} MiB")).unwrap_or_else(|| "-".into())
        );
        json.push(serde_json::json!({
            "method": name, "median_wall_s": wall, "rows_per_s": rows as f64 / wall, "mb_per_s": bytes as f64 / 1e6 / wall,
            "client_cpu_s": cpu, "machine_cpu_s": machine, "peak_rss_mib": peak,
            "runs_wall_s": s.iter().map(|x| x.wall).collect::<Vec<_>>(),
        }));
    }
    if pgcopydb.is_none() {
        md += "| pgcopydb clone | not installed (apt-get install pgcopydb) | | | | | | |\n";
    }
    let share = samples.get("privaci clone, masked").map(|s| {
        median(
            &mut s
                .iter()
                .map(|x| x.client_cpu / x.machine_cpu.max(1e-9))
                .collect::<Vec<_>>(),
        )
    });
    if let Ok(p) = PHASES.lock() {
        if !p.is_empty() {
            md += &format!("\nprivaci's last run, {p}\n");
        }
    }
    md += "\nTargets:\n";
    let ratio = |other: &str| wall_of(other).map(|w| masked / w);
    for (what, value, goal) in [
        ("privaci masked / pgcopydb", ratio("pgcopydb clone"), 0.7),
        (
            "privaci masked / pg_dump | psql",
            ratio("pg_dump | psql"),
            0.6,
        ),
        (
            "privaci masked / limit",
            ratio("limit: target alone, staged binary files"),
            1.25,
        ),
        ("privaci's share of the run's CPU", share, 0.15),
    ] {
        md += &format!(
            "- {what}: {} (target at most {goal}) {}\n",
            value
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "n/a".into()),
            match value {
                Some(v) if v <= goal => "met",
                Some(_) => "MISSED",
                None => "",
            }
        );
    }
    println!("{md}");
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("clone.md"), &md).unwrap();
    std::fs::write(
        dir.join("clone.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&work);
}
