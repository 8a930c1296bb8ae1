//! Finding the programs the benchmarks run: the `paircode` binary, this package's other
//! binaries, and `wormhole-rs`.

use std::path::PathBuf;

/// The home directory (`/root` when `HOME` is unset: the benchmarks run as root).
pub fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

/// The `paircode` binary: `given` (`--paircode PATH`), else `PAIRCODE_BIN`, else the
/// `paircode` next to this program.
pub fn paircode_bin(given: Option<PathBuf>) -> Result<PathBuf, String> {
    let bin = match given.or_else(|| std::env::var_os("PAIRCODE_BIN").map(PathBuf::from)) {
        Some(bin) => bin,
        None => std::env::current_exe()
            .map_err(|e| format!("locating this program: {e}"))?
            .with_file_name("paircode"),
    };
    match bin.exists() {
        true => Ok(bin),
        false => Err(format!(
            "{} not found: run `cargo build --release -p paircode-cli` first, or pass \
             --paircode PATH",
            bin.display()
        )),
    }
}

/// A sibling of this binary in the target directory (`paircode`, `hello`, `p2p-floor`).
pub fn sibling(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe.with_file_name(name);
    match path.exists() {
        true => Ok(path),
        false => Err(format!(
            "{} not found: `cargo build --release -p paircode-cli -p paircode-bench` first",
            path.display()
        )),
    }
}

/// `wormhole-rs`, on PATH or in ~/.cargo/bin.
pub fn wormhole_rs() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([home().join(".cargo/bin")])
        .map(|dir| dir.join("wormhole-rs"))
        .find(|bin| bin.exists())
        .ok_or_else(|| {
            "wormhole-rs not found (install: `nice cargo install magic-wormhole-cli --locked`)"
                .into()
        })
}
