//! Masking: the keyed functions, the strategies, and the rewriter that applies a table's
//! plan to binary COPY data on its way from source to target.

pub mod feistel;
pub mod json;
pub mod key;
pub mod lists;
pub mod remap;
pub mod rewriter;
pub mod spec;
pub mod strategies;
pub mod text_rewriter;

pub use key::{MaskKey, Prf};

/// A rewriter of one table's COPY data: `Rewriter` for binary COPY, `TextRewriter` for text
/// COPY. Fed pieces of the stream as they arrive (any split), it accumulates the rewritten
/// stream in `output()`, which the caller sends and clears.
pub trait CopyRewriter {
    /// Rewrites the next piece of COPY data.
    fn feed(&mut self, data: &[u8]) -> Result<(), MaskError>;
    /// The rewritten bytes so far.
    fn output(&mut self) -> &mut bytes::BytesMut;
    /// Checks that the data ended where a row ends; the row count.
    fn finish(&self) -> Result<u64, MaskError>;
}
pub use rewriter::{ColumnAction, MaskError, MaskPlan, Rewriter};
pub use spec::{ColumnSpec, HashEncoding, StrategySpec};
pub use strategies::{build, Outcome, Strategy};
