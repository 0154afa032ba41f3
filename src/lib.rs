//! privaci: clone a PostgreSQL database to another server, masking personal data in flight.
//! Layers, lowest first: wire, auth, tls, conninfo, conn, cli.

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod conn;
pub mod conninfo;
pub mod copy;
pub mod devcluster;
pub mod engine;
pub mod error;
pub mod mask;
pub mod scan;
pub mod schema;
pub mod tls;
pub mod types;
pub mod verify;
pub mod wire;

pub use error::{Error, ErrorKind};
