//! paircode's benchmarks. The binaries print their tables; with `--write` they also replace
//! their section of BENCHMARKS.md, with the date and the load average beside each table.

pub mod args;
pub mod handshake;
pub mod report;
pub mod tools;
pub mod wormhole;
