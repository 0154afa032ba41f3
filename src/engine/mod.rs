//! The clone run. So far: streaming one table from a COPY OUT into a COPY IN, through the
//! rewriter when the table has masked columns.

pub mod audit;
pub mod clone;
pub mod preflight;
pub mod progress;
pub mod state;
pub mod stream;

pub use stream::{stream_table, StreamStats};
