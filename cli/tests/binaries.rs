//! How the two programs are linked (issue 14, a fast client): the `paircode` client at a
//! fixed address, so that the loader has no relocations to apply at each start, and
//! `paircode-daemon`, which parses what any peer sends, position-independent, so that it
//! keeps address-space randomisation.

use std::path::PathBuf;

/// The ELF type of an executable: 2 (`ET_EXEC`, fixed address) or 3 (`ET_DYN`, PIE).
fn elf_type(path: &PathBuf) -> u16 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[16], bytes[17]])
}

#[test]
#[cfg(target_os = "linux")]
fn the_client_is_fixed_and_the_daemon_position_independent() {
    let client = PathBuf::from(env!("CARGO_BIN_EXE_paircode"));
    let daemon = PathBuf::from(env!("CARGO_BIN_EXE_paircode-daemon"));
    assert_eq!(
        elf_type(&client),
        2,
        "paircode should be linked without PIE"
    );
    assert_eq!(elf_type(&daemon), 3, "paircode-daemon must stay PIE (ASLR)");
}
