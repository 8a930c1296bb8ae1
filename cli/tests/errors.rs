//! Bad input gets its own clear error and exit code, and loses nothing.

mod support;

use support::{alice_and_bob, daemons, paired_alice_and_bob, stderr, TestResult, LOOPBACK_START};

#[test]
fn wrong_password_is_refused_and_nothing_is_lost() -> TestResult {
    let bed = paired_alice_and_bob()?;
    bed.stop("alice")?;
    let out = bed
        .cmd("alice")
        .env("PAIRCODE_PASSWORD", "not it")
        .args(LOOPBACK_START)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    bed.start("alice", None)?;
    assert_eq!(bed.devices("alice")?.len(), 1);
    Ok(())
}

#[test]
fn corrupt_store_file_is_named_and_left_alone() -> TestResult {
    let bed = paired_alice_and_bob()?;
    bed.stop("alice")?;
    let path = bed.instance_dir("alice").join("devices");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let out = bed.run("alice", &LOOPBACK_START)?;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&path.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the damaged file must not be replaced"
    );

    let identity = bed.instance_dir("alice").join("identity");
    let original = std::fs::read(&identity).unwrap();
    std::fs::write(&identity, &original[..original.len() / 2]).unwrap();
    let out = bed.run("alice", &LOOPBACK_START)?;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("identity") && stderr(&out).contains("truncated"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn second_daemon_on_an_instance_is_refused() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    bed.start("alice", None)?;
    let out = bed.run("alice", &LOOPBACK_START)?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    let out = bed.run("alice", &["start", "--foreground", "--no-mdns"])?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    bed.ok("alice", &["status"])?;
    Ok(())
}

#[test]
fn mistyped_codes_are_caught_before_anything_is_sent() -> TestResult {
    // No daemon runs: the code is checked first, so the error is about the code.
    let bed = daemons()?;
    let typo = bed.run(
        "bob",
        &["network", "pair", "join", "--yes", "--code", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandn about"],
    )?;
    assert_eq!(typo.status.code(), Some(7), "{}", stderr(&typo));
    assert!(
        stderr(&typo).contains("did you mean \"abandon\""),
        "{}",
        stderr(&typo)
    );
    let short = bed.run(
        "bob",
        &["network", "pair", "join", "--yes", "abandon", "about"],
    )?;
    assert_eq!(short.status.code(), Some(7));
    assert!(stderr(&short).contains("12 words"), "{}", stderr(&short));
    let checksum = bed.run(
        "bob",
        &[
            "network",
            "pair",
            "join",
            "--code",
            &["abandon"; 12].join(" "),
        ],
    )?;
    assert_eq!(checksum.status.code(), Some(7));
    assert!(
        stderr(&checksum).contains("checksum"),
        "{}",
        stderr(&checksum)
    );
    Ok(())
}

#[test]
fn expired_code_says_so() -> TestResult {
    let bed = alice_and_bob()?;
    let (generating, words) = bed.generate("alice", &["--auto-accept", "--expires", "1"])?;
    let (status, _) = generating.finish()?;
    assert_eq!(status.code(), Some(8));
    let out = bed.run(
        "bob",
        &["network", "pair", "join", "--yes", "--code", &words],
    )?;
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert!(bed.devices("bob")?.is_empty());
    Ok(())
}

#[test]
fn commands_without_a_daemon_say_how_to_start_it() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    for args in [
        &["status"][..],
        &["network", "devices"],
        &["network", "pair", "generate"],
    ] {
        let out = bed.run("alice", args)?;
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("paircode --instance alice start"),
            "{}",
            stderr(&out)
        );
    }
    Ok(())
}

#[test]
fn uninitialised_instance_cannot_start() -> TestResult {
    let bed = daemons()?;
    let out = bed.run("carol", &["start", "--no-mdns"])?;
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(stderr(&out).contains("network init"), "{}", stderr(&out));
    Ok(())
}
