//! The command line: subcommands, output, and the exit codes users and CI scripts rely on
//! (0 success, 1 run failed, 2 pre-flight refusal, 3 invalid configuration).

mod ping;
mod validate;

use clap::{Parser, Subcommand};

/// Exit codes, kept from the seed design.
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const PREFLIGHT: i32 = 2;
    pub const INVALID_CONFIG: i32 = 3;
}

#[derive(Parser, Debug)]
#[command(
    name = "privaci",
    version,
    about = "Clone a PostgreSQL database to another server, masking personal data in flight",
    long_about = "Clone a PostgreSQL database to another server, masking personal data in flight.\n\n\
Connection strings follow libpq: a URI (postgresql://user@host:5432/db?sslmode=verify-full) or \
key=value pairs (host=db.example.com dbname=app sslmode=verify-full). PGHOST, PGPORT, PGUSER, \
PGPASSWORD, PGDATABASE, PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGAPPNAME, \
PGCONNECT_TIMEOUT, PGPASSFILE and PGCHANNELBINDING fill in what the string leaves out, and \
~/.pgpass supplies passwords.\n\nLog detail is set with RUST_LOG (e.g. RUST_LOG=privaci=debug)."
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
    },
}

/// Runs the command and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Ping { conninfo } => ping::run(&conninfo).await,
        Command::Validate { config } => validate::run(&config),
    }
}
