pub mod auth;
pub mod conninfo;
pub mod wire;
