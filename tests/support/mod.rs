//! Test support: the throwaway clusters live in the library (`privaci::devcluster`, shared
//! with the benchmarks and `privaci demo`); protocol captures and the fault proxy are here.
#![allow(dead_code)]

pub mod capture;
pub mod fault;
pub mod fixture_clone;

#[allow(unused_imports)]
pub use privaci::devcluster::*;
