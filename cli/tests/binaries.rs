//! How the two programs are linked (issue 14, a fast client): the `paircode` client at a
//! fixed address, so that the loader has no relocations to apply at each start, and
//! `paircode-daemon`, which parses what any peer sends, position-independent, so that it
//! keeps address-space randomisation. Neither loads libgcc_s, and the client starts
//! without Rust's start-up (`cli/src/main.rs`), doing itself what of it the client needs.

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

/// Whether the program asks the loader for libgcc_s (its name is in the dynamic strings).
fn needs_libgcc_s(path: &PathBuf) -> bool {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.windows(13).any(|w| w == b"libgcc_s.so.1")
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn neither_program_loads_libgcc_s() {
    // cli/build.rs: its constructor's `cpuid`s trap to the hypervisor in a VM.
    for name in [
        env!("CARGO_BIN_EXE_paircode"),
        env!("CARGO_BIN_EXE_paircode-daemon"),
    ] {
        assert!(
            !needs_libgcc_s(&PathBuf::from(name)),
            "{name} needs libgcc_s"
        );
    }
}

#[test]
#[cfg(unix)]
fn the_client_starts_without_rusts_start_up_and_still_keeps_its_promises() {
    let bin = env!("CARGO_BIN_EXE_paircode");
    let run = |script: &str| {
        std::process::Command::new("sh")
            .args(["-c", script, "sh", bin])
            .output()
            .expect("sh runs")
    };
    // Standard input closed: it is opened on /dev/null, so that the runtime's epoll
    // instance (the lowest free descriptor) does not take its place. `pair join` without
    // a code then reads an empty one, where it read from the epoll instance and failed
    // with "Invalid argument" without this.
    let dir = tempfile::tempdir().unwrap();
    let closed = run(&format!(
        r#"PAIRCODE_DATA_DIR='{}' exec "$1" --json network pair join <&-"#,
        dir.path().display()
    ));
    let stdout = String::from_utf8_lossy(&closed.stdout);
    assert!(stdout.contains(r#""kind":"bad_code""#), "{closed:?}");
    assert!(stdout.contains("this one has 0"), "{closed:?}");
    // A long output arrives whole (standard output is flushed at exit).
    let out = run(r#"exec "$1" completions bash"#);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim_end()
        .ends_with("fi"));
    // A usage error keeps its exit code.
    let usage = run(r#"exec "$1" no-such-command"#);
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}
