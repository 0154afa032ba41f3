//! `privaci scan`: classify every column of the source from its name and a sample of its
//! values, and write a strict masking config (or, with `--format json`, the classification).

use super::{exit, OutputFormat, ScanArgs};
use crate::conninfo::Config;
use crate::scan;

pub async fn run(args: ScanArgs) -> i32 {
    let filter = match args.filter.filter_or_exit() {
        Ok(f) => f,
        Err(code) => return code,
    };
    let source = match Config::parse(&args.source) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("privaci: source: {e}");
            return exit::FAILED;
        }
    };
    if let Some(path) = args.output.as_ref().filter(|p| p.exists() && !args.force) {
        eprintln!(
            "privaci: {} exists (a config you may have edited): pass --force to replace it, or choose another --output",
            path.display()
        );
        return exit::USAGE;
    }
    if args.sample == 0 {
        eprintln!("privaci: --sample must be at least 1 row");
        return exit::USAGE;
    }
    let report = match scan::run(scan::Options {
        source,
        filter,
        sample: args.sample,
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("privaci: scan failed: {e}");
            return exit::FAILED;
        }
    };
    if let Some(path) = &args.output {
        // Written beside it and renamed: an interrupted write never leaves half a config.
        let partial = path.with_extension("toml.partial");
        if let Err(e) =
            std::fs::write(&partial, &report.config).and_then(|()| std::fs::rename(&partial, path))
        {
            let _ = std::fs::remove_file(&partial);
            eprintln!("privaci: could not write {}: {e}", path.display());
            return exit::FAILED;
        }
    }
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        OutputFormat::Text if args.output.is_none() => print!("{}", report.config),
        OutputFormat::Text => {}
    }
    let kinds: Vec<String> = report
        .kinds
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    eprintln!(
        "privaci: scanned {} tables, {} columns in {:.1} s: {} personal ({}){}",
        report.tables.len(),
        report.columns,
        report.seconds,
        report.personal_columns,
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        },
        match &args.output {
            Some(p) => format!("; config written to {}", p.display()),
            None => String::new(),
        }
    );
    for t in report.tables.iter().filter(|t| t.note.is_some()) {
        eprintln!("privaci: {}: {}", t.table, t.note.as_deref().unwrap_or(""));
    }
    if !report.unmasked_personal.is_empty() {
        eprintln!(
            "privaci: warning: no strategy fits these personal columns, kept (marked REVIEW in the config): {}",
            report.unmasked_personal.join(", ")
        );
    }
    exit::SUCCESS
}
