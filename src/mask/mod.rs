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
pub use rewriter::{ColumnAction, MaskError, MaskPlan, Rewriter};
pub use spec::{ColumnSpec, HashEncoding, StrategySpec};
pub use strategies::{build, Outcome, Strategy};
