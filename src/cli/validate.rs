//! `privaci validate --config FILE [--source CONNINFO]`: the masking config checked on its
//! own, and against a database's catalog when a source is given. Exit 3 lists every problem.

use std::path::Path;

use super::exit;
use crate::catalog::{self, Filter};
use crate::config::{resolve, MaskingConfig};
use crate::conninfo::Config;
use crate::mask::key::MaskKey;

pub async fn run(path: &Path, source: Option<&str>) -> i32 {
    let config = match MaskingConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("privaci: invalid masking config: {e}");
            return exit::INVALID_CONFIG;
        }
    };
    let key = match MaskKey::from_env() {
        Err(e) => {
            eprintln!("privaci: invalid masking key: {e}");
            return exit::INVALID_CONFIG;
        }
        Ok(k) => k,
    };
    if key.is_none() && config.needs_key() {
        eprintln!(
            "privaci: warning: {}: {}",
            path.display(),
            resolve::missing_key_message(false)
        );
    }
    let Some(source) = source else {
        println!(
            "{}: valid ({} tables, {} columns; unlisted columns: {})",
            path.display(),
            config.tables.len(),
            config.tables.iter().map(|t| t.columns.len()).sum::<usize>(),
            unlisted(&config)
        );
        return exit::SUCCESS;
    };
    let cat = match load_catalog(source, &Filter::default()).await {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("privaci: {e}");
            return exit::FAILED;
        }
    };
    match resolve::resolve(&config, &path.display().to_string(), &cat, key.as_ref()) {
        Ok(tables) => {
            let masked = tables
                .iter()
                .filter(|t| !t.partitioned)
                .filter(|t| t.is_masked())
                .count();
            println!(
                "{}: valid against the source ({} tables to copy, {masked} with masked columns; unlisted columns: {})",
                path.display(),
                tables.iter().filter(|t| !t.partitioned).count(),
                unlisted(&config)
            );
            exit::SUCCESS
        }
        Err(errors) => {
            eprintln!(
                "privaci: the masking config has {} problem(s):",
                errors.len()
            );
            for e in errors {
                eprintln!("  {e}");
            }
            exit::INVALID_CONFIG
        }
    }
}

fn unlisted(config: &MaskingConfig) -> &'static str {
    match config.unlisted_columns {
        crate::config::Unlisted::Keep => "kept",
        crate::config::Unlisted::Fail => "refused",
    }
}

/// The catalog as `filter` takes it, and the filter's names that match nothing.
pub(super) async fn load_catalog(
    conninfo: &str,
    filter: &Filter,
) -> Result<(catalog::Catalog, Vec<String>), crate::Error> {
    let cfg = Config::parse(conninfo).map_err(|e| crate::Error::from(e).context("source"))?;
    let mut conn = crate::conn::connect(&cfg)
        .await
        .map_err(|e| e.context("source"))?;
    let cat = catalog::load(&mut conn, filter).await?;
    let misses = catalog::filter_misses(&mut conn, filter).await?;
    let _ = conn.close().await;
    Ok((cat, misses))
}
