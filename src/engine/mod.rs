//! The clone run: the snapshot and its locks, units and their schedule, workers with their
//! retries, each unit's copy, post-data, run state and resume checks, audit and progress.

pub mod audit;
pub mod clone;
pub mod connections;
pub mod copy_unit;
pub mod large_objects;
pub mod post_data;
pub mod preflight;
pub mod progress;
pub mod resume_check;
pub mod shared;
pub mod snapshot;
pub mod state;
pub mod stream;
pub mod units;
pub mod worker;

pub use stream::{stream_table, StreamStats};
