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
}
