//! The command line: subcommands, output, and the exit codes users and CI scripts rely on
//! (0 success, 1 run failed, 2 pre-flight refusal, 3 invalid configuration, 64 usage error).

mod clone;
mod demo;
mod ping;
mod plan;
mod report;
mod scan;
mod validate;
mod verify;

pub(crate) use clone::render as render_report;

use clap::{Parser, Subcommand};

/// Exit codes, kept from the seed design.
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const PREFLIGHT: i32 = 2;
    pub const INVALID_CONFIG: i32 = 3;
    /// `privaci verify` ran and a check failed (each is listed).
    pub const VERIFY_FAILED: i32 = 4;
    /// The command line itself is wrong (unknown flag, bad value): sysexits' `EX_USAGE`,
    /// apart from 2 so that a script can tell a typo from a refused target.
    pub const USAGE: i32 = 64;
}

const EXIT_CODES: &str =
    "Exit codes: 0 success; 1 the run failed (connection, COPY, server error); \
2 pre-flight refusal (nothing was written); 3 invalid masking configuration; 4 verify found \
a difference or a leak; 64 command-line usage error (unknown flag, bad value).";

#[derive(Parser, Debug)]
#[command(
    name = "privaci",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PRIVACI_GIT_COMMIT"), ")"),
    about = "Clone a PostgreSQL database to another server, masking personal data in flight",
    long_about = "Clone a PostgreSQL database to another server, masking personal data in flight.\n\n\
Connection strings follow libpq: a URI (postgresql://user@host:5432/db?sslmode=verify-full) or \
key=value pairs (host=db.example.com dbname=app sslmode=verify-full). PGHOST, PGPORT, PGUSER, \
PGPASSWORD, PGDATABASE, PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGAPPNAME, \
PGCONNECT_TIMEOUT, PGPASSFILE and PGCHANNELBINDING fill in what the string leaves out, and \
~/.pgpass supplies passwords.\n\nLog detail is set with RUST_LOG (e.g. RUST_LOG=privaci=debug).",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Connect to a server and report its version, the session's user and database, the TLS
    /// protocol and cipher, and how the server authenticated us.
    Ping {
        /// Connection string (URI or key=value); empty uses the PG* environment variables.
        #[arg(default_value = "")]
        conninfo: String,
    },
    /// Check a masking config file: its structure, every strategy and option, and whether
    /// the masking key it needs is set. Exits 3 with file:line and what is wrong.
    Validate {
        /// The masking config file (TOML).
        #[arg(long)]
        config: std::path::PathBuf,
        /// Also check the config against this database's catalog: tables, columns, types,
        /// keys, partitions and foreign keys.
        #[arg(long, value_name = "CONNINFO")]
        source: Option<String>,
    },
    /// Show what a clone would do, without writing anything: tables and partitions in copy
    /// order with estimated rows and size, each column's masking strategy (configured,
    /// inherited from a partitioned parent, or propagated along a foreign key), the objects
    /// to create, what is not supported, and any pre-flight refusal (exit 2).
    Plan(PlanArgs),
    /// Clone the source into the target, masking in flight: schema, rows (tables and
    /// partitions in parallel, from one consistent snapshot), then keys, indexes, foreign
    /// keys, triggers, views and sequence positions. Resumable with --resume.
    Clone(CloneArgs),
    /// Classify every column of the source by its name and a sample of its values (e-mail
    /// addresses, phones, national ids, cards, IBANs, IPs, birth dates, names, addresses,
    /// secrets, free text, JSON paths, images) and write a strict masking config: every column
    /// listed, each personal one with its strategy and the evidence (counts, never a value).
    /// Read-only; one table's sample in memory at a time.
    Scan(ScanArgs),
    /// Check a clone against its source and masking config, read-only on both sides: row
    /// counts, kept columns identical, masked columns as the config and key make them, no
    /// source value of a masked column in that column of the target, foreign keys hold,
    /// sequences at or past the source's, every source object present. Exit 0 when all
    /// hold, 4 when one fails (each listed by table and column, with counts, never a value).
    Verify(VerifyArgs),
    /// Show privaci at work on this machine, no arguments: start two throwaway PostgreSQL
    /// clusters, load the MedicalHelpDesk fixture, clone it masked as a non-superuser over
    /// TLS and SCRAM, print rows before and after, and remove the clusters. Needs the
    /// PostgreSQL server binaries (apt-get install postgresql).
    Demo,
    /// Print a shell completion script: `privaci completions bash > /etc/bash_completion.d/privaci`
    /// (or zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a manual page (roff): `privaci man > privaci.1`, `privaci man clone >
    /// privaci-clone.1` (each command's page lists all its options).
    Man {
        /// The command whose page to print; none for the main page.
        command: Option<String>,
    },
}

/// The masking config at `path` (every column kept without one), its name for messages, and
/// the key from the environment; or, the problem printed, exit code 3.
fn config_and_key(
    path: Option<&std::path::Path>,
) -> Result<
    (
        crate::config::MaskingConfig,
        String,
        Option<crate::mask::MaskKey>,
    ),
    i32,
> {
    let (config, file) = match path {
        Some(path) => match crate::config::MaskingConfig::load(path) {
            Ok(c) => (c, path.display().to_string()),
            Err(e) => {
                eprintln!("privaci: invalid masking config: {e}");
                return Err(exit::INVALID_CONFIG);
            }
        },
        None => (
            crate::config::MaskingConfig::keep_all(),
            "(no config)".to_string(),
        ),
    };
    match crate::mask::MaskKey::from_env() {
        Ok(key) => Ok((config, file, key)),
        Err(e) => {
            eprintln!("privaci: invalid masking key: {e}");
            Err(exit::INVALID_CONFIG)
        }
    }
}

/// `--jobs`, or the CPU count.
fn jobs_or_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    })
}

/// `1GB`, `500MB`, `64kB` or a number of bytes.
fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (num, mult) = match t.to_ascii_lowercase() {
        l if l.ends_with("gb") => (&t[..t.len() - 2], 1i64 << 30),
        l if l.ends_with("mb") => (&t[..t.len() - 2], 1 << 20),
        l if l.ends_with("kb") => (&t[..t.len() - 2], 1 << 10),
        _ => (t, 1),
    };
    num.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n * mult)
        .ok_or_else(|| format!("\"{s}\" is not a size (like 1GB, 500MB, 64kB or bytes)"))
}

/// Seconds, or a number with a unit: 30s, 5min, 1h.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("min") {
        (n, 60)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1)
    } else {
        (t.as_str(), 1)
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| std::time::Duration::from_secs(n * mult))
        .ok_or_else(|| format!("\"{s}\" is not a duration (like 60, 30s, 5min or 1h)"))
}

#[derive(clap::Args, Debug)]
pub struct CloneArgs {
    /// The database to clone.
    #[arg(long, value_name = "CONNINFO")]
    pub source: String,
    /// The database to clone into.
    #[arg(long, value_name = "CONNINFO")]
    pub target: String,
    /// The masking config file (TOML); without it every column is copied as it is.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Parallel workers, each with a source and a target connection (default: CPU cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Finish an earlier run that failed or was interrupted: only what did not commit is redone.
    #[arg(long)]
    pub resume: bool,
    /// How the target schema is obtained.
    #[arg(long, value_enum, default_value = "create")]
    pub schema: SchemaArg,
    /// Write the audit log (JSON Lines) to this file.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<std::path::PathBuf>,
    /// Also write the final report as JSON to this file (units with rows, bytes, seconds,
    /// masked columns and status; totals; phases; failures; notes; or the refusals or config
    /// errors), however the run ends. The README documents its fields.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// No progress lines; the final report is still printed.
    #[arg(long)]
    pub quiet: bool,
    /// Keep the run state (schema _privaci) on the target after a complete run.
    #[arg(long)]
    pub keep_state: bool,
    /// Split tables larger than this (TOAST included) into ctid-range chunks copied in
    /// parallel: 1GB, 500MB, 64kB or bytes; 0 never splits.
    #[arg(long, value_name = "SIZE", default_value = "1GB", value_parser = parse_size)]
    pub split_tables_larger_than: i64,
    /// How long to wait for the lock on each source table before giving up. The run locks
    /// every table it copies (ACCESS SHARE, as pg_dump does) so that TRUNCATE, rewriting ALTER
    /// TABLE and DROP TABLE on the source wait until it is done.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_wait_timeout: std::time::Duration,
    /// Clone without the objects privaci cannot create on the target (C functions, base
    /// types, event triggers, foreign tables...): each is listed in the report and the audit
    /// log. Without it such objects are refused at pre-flight (exit 2).
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Leave large objects out. By default they are copied as they are (a masking rule
    /// names columns; none reaches a large object's contents), as pg_dump does.
    #[arg(long)]
    pub no_large_objects: bool,
    /// Recreate GRANTs (tables, columns, sequences, views, schemas, functions, types, large
    /// objects) and default privileges for the roles that exist on the target; grants to
    /// roles it lacks are listed in the report. Without it objects belong to the target
    /// role and carry no grants.
    #[arg(long)]
    pub privileges: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Which schemas and tables to take.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only these schemas (repeatable).
    #[arg(long = "include-schema", value_name = "SCHEMA")]
    pub include_schemas: Vec<String>,
    /// Leave these schemas out (repeatable).
    #[arg(long = "exclude-schema", value_name = "SCHEMA")]
    pub exclude_schemas: Vec<String>,
    /// Leave this table out, as schema.table (repeatable).
    #[arg(long = "exclude-table", value_name = "SCHEMA.TABLE")]
    pub exclude_tables: Vec<String>,
}

impl FilterArgs {
    /// The filter, or (its errors printed) the exit code for a command-line mistake.
    pub fn filter_or_exit(&self) -> Result<crate::catalog::Filter, i32> {
        self.filter().map_err(|errors| {
            for e in errors {
                eprintln!("privaci: {e}");
            }
            exit::INVALID_CONFIG
        })
    }

    /// The filter with names folded as SQL reads them (bare names lower-cased, `"Quoted"`
    /// kept, `table` alone meaning `public.table`), as the masking config folds them; the
    /// errors name each flag that cannot be read.
    pub fn filter(&self) -> Result<crate::catalog::Filter, Vec<String>> {
        use crate::config::{parse_identifier, parse_qualified};
        let mut errors = Vec::new();
        let mut schemas = |flag: &str, names: &[String]| -> Vec<String> {
            names
                .iter()
                .filter_map(|n| {
                    parse_identifier(n)
                        .map_err(|e| errors.push(format!("{flag}: {e}")))
                        .ok()
                })
                .collect()
        };
        let include_schemas = schemas("--include-schema", &self.include_schemas);
        let exclude_schemas = schemas("--exclude-schema", &self.exclude_schemas);
        let exclude_tables = self
            .exclude_tables
            .iter()
            .filter_map(|n| {
                parse_qualified(n)
                    .map_err(|e| errors.push(format!("--exclude-table: {e}")))
                    .ok()
            })
            .collect();
        if errors.is_empty() {
            Ok(crate::catalog::Filter {
                include_schemas,
                exclude_schemas,
                exclude_tables,
            })
        } else {
            Err(errors)
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The database to clone.
    #[arg(long, value_name = "CONNINFO")]
    pub source: String,
    /// Also check the target: privileges, version, tables already there.
    #[arg(long, value_name = "CONNINFO")]
    pub target: Option<String>,
    /// The masking config file (TOML).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// How the target schema is obtained.
    #[arg(long, value_enum, default_value = "create")]
    pub schema: SchemaArg,
    /// As for clone: objects privaci cannot create are listed, not refused.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Finishing an earlier run: existing tables and run state are expected.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// The database to scan.
    #[arg(long, value_name = "CONNINFO")]
    pub source: String,
    /// Rows sampled per table (a block sample spread over big tables).
    #[arg(long, value_name = "ROWS", default_value_t = 2000)]
    pub sample: usize,
    /// Write the config to this file (text format prints it when no file is given). An
    /// existing file is not replaced without --force.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Replace the --output file if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// text: the config; json: the classification of every column (kind, strategy,
    /// evidence, counts).
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The database that was cloned.
    #[arg(long, value_name = "CONNINFO")]
    pub source: String,
    /// The clone.
    #[arg(long, value_name = "CONNINFO")]
    pub target: String,
    /// The masking config the clone used; without it every column must be identical.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Tables checked at once, each with a source and a target session (default: CPU cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Also look for source values of masked text columns in every kept text column of the
    /// target.
    #[arg(long)]
    pub deep: bool,
    /// Memory for the masked columns' value hashes, all jobs together (24 bytes per masked
    /// value: source, expected and target); past it a table is checked in several passes:
    /// 1GB, 500MB, 64kB or bytes.
    #[arg(long, value_name = "SIZE", default_value = "512MB", value_parser = parse_size)]
    pub max_memory: i64,
    /// How long to wait for the lock on each table (ACCESS SHARE on both sides, as the clone
    /// takes on the source: TRUNCATE and rewriting ALTER TABLE wait until verify is done).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_wait_timeout: std::time::Duration,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaArg {
    /// privaci creates the schema on the target.
    Create,
    /// The target already has it (made by your migrations).
    Existing,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Runs the command and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Ping { conninfo } => ping::run(&conninfo).await,
        Command::Validate { config, source } => validate::run(&config, source.as_deref()).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Clone(args) => clone::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Scan(args) => scan::run(args).await,
        Command::Demo => demo::run().await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "privaci", &mut std::io::stdout());
            exit::SUCCESS
        }
        Command::Man { command } => {
            use clap::CommandFactory;
            let cli = Cli::command();
            let page = match &command {
                None => clap_mangen::Man::new(cli),
                Some(name) => match cli.find_subcommand(name) {
                    Some(sub) => clap_mangen::Man::new(
                        sub.clone()
                            .display_name(format!("privaci-{name}"))
                            .bin_name(format!("privaci {name}")),
                    )
                    .title(format!("privaci-{name}")),
                    None => {
                        eprintln!("privaci: no command {name:?}: ping, validate, plan, clone, scan, verify, demo, completions");
                        return exit::USAGE;
                    }
                },
            };
            let mut out = Vec::new();
            match page
                .render(&mut out)
                .and_then(|_| std::io::Write::write_all(&mut std::io::stdout(), &out))
            {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    eprintln!("privaci: could not write the manual page: {e}");
                    exit::FAILED
                }
            }
        }
    }
}
