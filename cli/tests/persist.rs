//! Persist before accepting (issue 10, item 4), with real daemons on loopback: a pairing is
//! acknowledged only once the acknowledging side stored it, a failed save reaches the other
//! user as a clear rejection, and a pairing only one side could store does not stay so.

mod support;

use std::time::{Duration, Instant};

use paircode_netbed::daemon::{error_of, exit_of};
use support::{alice_and_bob, block_saves, stderr, TestResult};

/// Alice cannot save the pairing: Bob's user hears that the other device could not save
/// it, Alice's user hears which file and why, and neither device lists the other. On the
/// old code Bob stored Alice while Alice had nothing.
#[test]
fn initiator_save_failure_rejects_joiner() -> TestResult {
    let bed = alice_and_bob()?;
    let blocker = block_saves(&bed, "alice")?;
    let (generating, words) = bed.generate("alice", &["--auto-accept"])?;
    let (_, error, code) = bed.json_stream_error(
        "bob",
        &["network", "pair", "join", "--yes", "--code", &words],
    )?;
    assert_eq!(code, Some(10), "a rejection: {error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("the other device could not save the pairing")),
        "{error}"
    );
    let (status, lines) = generating.finish()?;
    assert_eq!(status.code(), Some(1), "{lines:?}");
    let alice_error = lines.iter().find_map(error_of).expect("alice's error");
    assert_eq!(alice_error["kind"], "store_save_failed", "{alice_error}");
    assert!(
        exit_of(alice_error).is_some_and(|c| c == 1),
        "{alice_error}"
    );
    assert!(!bed.lists("alice", "bob")? && !bed.lists("bob", "alice")?);

    blocker.remove();
    bed.pair("alice", "bob")?;
    assert!(bed.lists("alice", "bob")? && bed.lists("bob", "alice")?);
    Ok(())
}

/// Bob cannot save the pairing after Alice stored and accepted it: Bob's user hears which
/// file and why, and Alice is told `Unpaired` by Bob's device when it keeps greeting it (after
/// the grace period that protects a pairing still being saved), so she forgets Bob too.
#[test]
fn joiner_save_failure_is_repaired_when_the_devices_meet() -> TestResult {
    let bed = alice_and_bob()?;
    let blocker = block_saves(&bed, "bob")?;
    let (generating, words) = bed.generate("alice", &["--auto-accept"])?;
    let out = bed.run(
        "bob",
        &["network", "pair", "join", "--yes", "--code", &words],
    )?;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not be saved"),
        "{}",
        stderr(&out)
    );
    assert!(
        generating.finish()?.0.success(),
        "alice stored and accepted"
    );
    assert!(!bed.lists("bob", "alice")?);
    let started = Instant::now();
    while bed.lists("alice", "bob")? {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "alice still lists bob, who never stored the pairing"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "one-sided pairing repaired {} ms after the failed save",
        started.elapsed().as_millis()
    );
    let log = std::fs::read_to_string(bed.instance_dir("alice").join("daemon.log")).unwrap();
    assert!(
        log.contains("bob no longer knows this device"),
        "alice's log says why bob was removed"
    );
    blocker.remove();
    Ok(())
}
