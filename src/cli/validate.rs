//! `privaci validate --config FILE`: structural validation of a masking config, before any
//! database is touched. Exit 3 when the config is invalid, as every command that reads one.

use std::path::Path;

use super::exit;
use crate::config::MaskingConfig;
use crate::mask::key::{MaskKey, KEY_ENV};

pub fn run(path: &Path) -> i32 {
    let config = match MaskingConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("privaci: invalid masking config: {e}");
            return exit::INVALID_CONFIG;
        }
    };
    match MaskKey::from_env() {
        Err(e) => {
            eprintln!("privaci: invalid masking key: {e}");
            return exit::INVALID_CONFIG;
        }
        Ok(None) if config.needs_key() => {
            eprintln!(
                "privaci: {}: the config uses keyed strategies, but {KEY_ENV} is not set; set it to a secret of 16 bytes or more (the same secret gives the same masked values in every run)",
                path.display()
            );
            return exit::INVALID_CONFIG;
        }
        Ok(_) => {}
    }
    let columns: usize = config.tables.iter().map(|t| t.columns.len()).sum();
    println!(
        "{}: valid ({} tables, {columns} columns; unlisted columns: {})",
        path.display(),
        config.tables.len(),
        match config.unlisted_columns {
            crate::config::Unlisted::Keep => "kept",
            crate::config::Unlisted::Fail => "refused",
        }
    );
    exit::SUCCESS
}
