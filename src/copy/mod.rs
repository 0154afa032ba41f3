//! The binary COPY format: header, tuples (int16 field count, int32 length or -1 per field),
//! trailer. A streaming walker finds tuple and field boundaries in place, whatever the split
//! of its input; a writer produces the same format.

pub mod binary;
pub mod walker;

pub use binary::{write_header, write_trailer, TupleWriter, SIGNATURE};
pub use walker::{CopyError, Field, Tuple, TupleSink, TupleWalker};
