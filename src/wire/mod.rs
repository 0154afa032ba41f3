//! The PostgreSQL v3 wire protocol: message framing, frontend writers and the backend parser.
//! Sans-IO: everything here works over `bytes` buffers and never touches a socket.

pub mod backend;
pub mod capture;
pub mod copy_frames;
pub mod db_error;
pub mod frontend;

pub use backend::Message;
pub use db_error::DbError;

/// The protocol version privaci speaks: 3.0.
pub const PROTOCOL_VERSION: i32 = 3 << 16;

/// A malformed, truncated, oversized or unexpected message from the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol error: {0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    pub fn new(msg: impl Into<String>) -> Self {
        ProtocolError(msg.into())
    }
}
