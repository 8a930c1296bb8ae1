//! `paircode relay`: prints its addresses with its peer id, keeps its identity in a 0600
//! key file across restarts, stops cleanly on SIGTERM, and refuses a key others can read.
//! Loopback only.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_paircode");

fn relay(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["relay", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    command
}

/// Runs the relay until it printed its address, stops it with SIGTERM; returns the address.
fn run_once(data_dir: &Path) -> String {
    let mut child = relay(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn paircode relay");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("an address line");
    // SAFETY: signalling a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "stops cleanly on SIGTERM: {status}");
    line.trim().to_owned()
}

#[test]
fn identity_is_stable_and_the_key_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_once(dir.path());
    assert!(first.starts_with("/ip4/127.0.0.1/tcp/"), "{first}");
    let (_, peer) = first
        .split_once("/p2p/")
        .expect("address has /p2p/<peer id>");
    assert!(peer.starts_with("12D3KooW"), "{peer}");

    let key = dir.path().join("default").join("relay.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode");

    let second = run_once(dir.path());
    assert!(
        second.ends_with(&format!("/p2p/{peer}")),
        "same identity after a restart: {first} then {second}"
    );
}

#[test]
fn a_key_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run_once(dir.path());
    let key = dir.path().join("default").join("relay.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = relay(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(out.stdout.is_empty(), "no address printed");
}

#[test]
fn external_addresses_replace_the_listen_addresses_in_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = relay(dir.path())
        .args(["--external", "/ip4/203.0.113.7/tcp/4001"])
        .args(["--external", "/dns4/relay.example.org/tcp/4001"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn paircode relay");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    // SAFETY: signalling a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    assert!(
        first.starts_with("/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW"),
        "{first}"
    );
    assert!(
        second.starts_with("/dns4/relay.example.org/tcp/4001/p2p/"),
        "{second}"
    );
}
