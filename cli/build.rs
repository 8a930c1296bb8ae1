//! Links the `paircode` client as a fixed-address executable (see `docs` below).

fn main() {
    // The client runs once per command and exits: the loader's work at each start counts
    // (about 11,000 relative relocations in a position-independent executable, 0.3 ms).
    // Linked at a fixed address it has none. Only the client: it reads the user's input
    // and the local daemon's replies, while `paircode-daemon`, which parses what any
    // peer sends, keeps address-space randomisation.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=paircode=-no-pie");
    }
    // The unwinder from the static libgcc_eh, as a statically linked C library takes it,
    // in place of the shared libgcc_s: loading libgcc_s runs its constructor, which asks
    // the CPU for its features with one `cpuid` after another, and in a virtual machine
    // each of them is a trap to the hypervisor. A minimal Rust program started 0.1 ms
    // sooner without it here (0.68 ms against 0.78, 400 runs each). The unwinder is
    // needed at all only on a panic. Linked ahead of the standard library's `-lgcc_s`,
    // it resolves the unwinding symbols first, and `--as-needed` then drops libgcc_s.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
