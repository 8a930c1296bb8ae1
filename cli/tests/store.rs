//! The store never loses devices silently: damage, missing files, odd file types and failed
//! saves each get an error naming the file and the cause, and nothing is reset or replaced.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use paircode_netbed::daemon::Daemons;
use support::{
    block_saves, output_within_20s, paired_alice_and_bob, stderr, TestResult, LOOPBACK_START,
};

/// Runs `args` on `instance`, failing the test (instead of hanging it) after 20 s.
fn run_bounded(bed: &Daemons, instance: &str, args: &[&str]) -> Output {
    let child = bed
        .cmd(instance)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("paircode runs");
    output_within_20s(child, &format!("paircode {args:?} hung"))
}

fn says(out: &Output, words: &[&str]) {
    let text = stderr(out);
    for word in words {
        assert!(text.contains(word), "{word:?} missing from: {text}");
    }
}

#[test]
fn init_never_overwrites_a_store_and_force_keeps_a_copy() -> TestResult {
    let bed = paired_alice_and_bob()?;
    let before = bed.peer_id("alice")?;
    // Not while its daemon runs, even with --force.
    let out = bed.run("alice", &["network", "init", "--force"])?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    bed.stop("alice")?;
    let dir = bed.instance_dir("alice");
    let devices = dir.join("devices");
    let identity = dir.join("identity");
    let kept = std::fs::read(&devices).unwrap();

    // The case: the identity is gone, the device list is not.
    let old_identity = std::fs::read(&identity).unwrap();
    std::fs::remove_file(&identity).unwrap();
    let out = bed.run("alice", &["network", "init"])?;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    says(
        &out,
        &[
            &devices.display().to_string(),
            "--force",
            "nothing was changed",
        ],
    );
    assert_eq!(std::fs::read(&devices).unwrap(), kept, "untouched");
    assert!(!identity.exists(), "no identity was created");

    // Both files present: refused the same way.
    std::fs::write(&identity, &old_identity).unwrap();
    let out = bed.run("alice", &["network", "init"])?;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    says(&out, &[&identity.display().to_string(), "--force"]);
    assert_eq!(std::fs::read(&identity).unwrap(), old_identity);

    // --force starts over, and says where the copies are.
    let result = bed.json("alice", &["network", "init", "--force"])?;
    let backups: Vec<String> = result["backups"]
        .as_array()
        .expect("backups listed")
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect();
    assert_eq!(backups.len(), 2, "{result}");
    let copy_of = |name: &str| {
        backups
            .iter()
            .find(|b| {
                Path::new(b)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{name}.bak-"))
            })
            .unwrap_or_else(|| panic!("no copy of {name}: {backups:?}"))
            .clone()
    };
    assert_eq!(std::fs::read(copy_of("devices")).unwrap(), kept);
    assert_eq!(std::fs::read(copy_of("identity")).unwrap(), old_identity);
    assert_ne!(result["peer_id"], before.as_str(), "a new identity");

    // The text form says so too.
    let text = bed.ok("alice", &["network", "init", "--force"])?;
    assert!(text.contains("kept a copy"), "{text}");
    bed.start("alice", None)?;
    assert!(bed.devices("alice")?.is_empty());
    Ok(())
}

#[test]
fn a_deleted_device_list_is_an_error_not_zero_devices() -> TestResult {
    let bed = paired_alice_and_bob()?;
    bed.stop("alice")?;
    let devices = bed.instance_dir("alice").join("devices");
    let identity = bed.instance_dir("alice").join("identity");
    let kept = std::fs::read(&devices).unwrap();
    let id_bytes = std::fs::read(&identity).unwrap();
    std::fs::remove_file(&devices).unwrap();

    let out = run_bounded(&bed, "alice", &LOOPBACK_START);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    says(&out, &[&devices.display().to_string(), "missing", "backup"]);
    assert!(!devices.exists(), "no empty list was written in its place");
    assert_eq!(std::fs::read(&identity).unwrap(), id_bytes);

    std::fs::write(&devices, &kept).unwrap();
    bed.start("alice", None)?;
    assert_eq!(bed.devices("alice")?.len(), 1, "nothing was lost");
    Ok(())
}

#[test]
fn a_damaged_identity_header_says_corrupt_not_wrong_password() -> TestResult {
    let bed = paired_alice_and_bob()?;
    bed.stop("alice")?;
    let identity = bed.instance_dir("alice").join("identity");
    let original = std::fs::read(&identity).unwrap();
    // Header: magic (8), format (1), Argon2 memory, passes, lanes (4 each), salt (16),
    // key check (32).
    for (what, at) in [
        ("memory", 11),
        ("passes", 16),
        ("lanes", 20),
        ("salt", 25),
        ("key check", 50),
    ] {
        let mut damaged = original.clone();
        damaged[at] ^= 0x04;
        std::fs::write(&identity, &damaged).unwrap();
        let out = run_bounded(&bed, "alice", &LOOPBACK_START);
        assert_eq!(out.status.code(), Some(5), "{what}: {}", stderr(&out));
        says(&out, &["corrupt", &identity.display().to_string()]);
        assert!(
            !stderr(&out).contains("wrong password"),
            "{what}: {}",
            stderr(&out)
        );
        assert_eq!(std::fs::read(&identity).unwrap(), damaged, "left in place");
    }
    std::fs::write(&identity, &original).unwrap();
    bed.start("alice", None)?;
    assert_eq!(bed.devices("alice")?.len(), 1);
    Ok(())
}

#[test]
fn a_fifo_in_place_of_the_device_list_does_not_hang() -> TestResult {
    let bed = paired_alice_and_bob()?;
    bed.stop("alice")?;
    let devices = bed.instance_dir("alice").join("devices");
    let kept = std::fs::read(&devices).unwrap();
    std::fs::remove_file(&devices).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&devices)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());

    let started = Instant::now();
    let out = run_bounded(&bed, "alice", &LOOPBACK_START);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    says(
        &out,
        &[&devices.display().to_string(), "FIFO", "not a regular file"],
    );
    // The lock is free again: nothing is left holding it.
    assert!(!bed.instance_dir("alice").join("daemon.sock").exists());

    std::fs::remove_file(&devices).unwrap();
    std::fs::write(&devices, &kept).unwrap();
    bed.start("alice", None)?;
    assert_eq!(bed.devices("alice")?.len(), 1);
    Ok(())
}

#[test]
fn a_failed_save_names_the_file_and_the_cause_and_changes_nothing() -> TestResult {
    let bed = paired_alice_and_bob()?;
    let dir = bed.instance_dir("alice");
    let blocker = block_saves(&bed, "alice")?;

    let out = bed.run("alice", &["network", "unpair", "bob"])?;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    says(
        &out,
        &[
            &dir.join("devices").display().to_string(),
            "Is a directory",
            "try again",
        ],
    );
    let (error, _) = bed.json_error("alice", &["network", "unpair", "bob"])?;
    assert_eq!(error["kind"], "store_save_failed", "{error}");
    assert_eq!(bed.devices("alice")?.len(), 1, "still paired");

    blocker.remove();
    bed.ok("alice", &["network", "unpair", "bob"])?;
    assert!(bed.devices("alice")?.is_empty());
    Ok(())
}
