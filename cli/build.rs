//! Links the `paircode` binary as a position-dependent executable on Linux.
//!
//! Every client command is a new process of this one 18 MB binary (libp2p, the daemon and
//! the client in one). Linked as PIE, the dynamic loader applies ~28,000 relative
//! relocations at each start, writing to ~115 pages of `.data.rel.ro` (each a page fault):
//! `paircode network devices` started with ~290 page faults, against ~170 without PIE, and
//! took 0.3 ms longer (interleaved A/B, 400 runs each; BENCHMARKS.md, issue 14). The cost
//! is that the executable's own code is not placed at a random address (libraries, heap and
//! stacks still are). Only the final link changes: the crates stay compiled as PIC, and
//! `-no-pie` after rustc's `-pie` wins (the compiler driver takes the last of the two).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=paircode=-no-pie");
    }
}
