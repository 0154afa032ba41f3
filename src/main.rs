//! The `privaci` binary: parse arguments, set up logging, run the command, exit with its code.

use clap::Parser;

fn main() {
    let cli = privaci::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("privaci: could not start the async runtime: {e}");
            std::process::exit(privaci::cli::exit::FAILED);
        }
    };
    let code = runtime.block_on(privaci::cli::run(cli));
    std::process::exit(code);
}
