//! "Last seen" with real daemons: it moves when a paired device goes offline, and when the
//! daemon itself stops (every device online until then was seen until the stop).

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{alice_and_bob, TestResult};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Alice's record of her one paired device: (online, last_seen).
fn alices_view(
    bed: &paircode_netbed::daemon::Daemons,
) -> Result<(bool, u64), support::DaemonError> {
    let devices = bed.devices("alice")?;
    assert_eq!(devices.len(), 1, "{devices:?}");
    let online = devices[0]["online"] == true;
    let last_seen = devices[0]["last_seen"].as_u64().unwrap_or(0);
    Ok((online, last_seen))
}

#[test]
fn last_seen_moves_when_a_device_leaves_and_when_the_daemon_stops() -> TestResult {
    let bed = alice_and_bob()?;
    bed.pair("alice", "bob")?;
    bed.eventually("alice sees bob online", || bed.online("alice", "bob"))?;
    // Whole seconds on both sides: a time taken now is never later than the stored one.
    std::thread::sleep(Duration::from_millis(2_100));

    let before = unix_now();
    bed.stop("bob")?;
    bed.eventually("alice sees bob offline", || Ok(!alices_view(&bed)?.0))?;
    let (_, seen) = alices_view(&bed)?;
    let after = unix_now();
    assert!(
        (before..=after).contains(&seen),
        "bob went offline between {before} and {after}, but alice says last seen {seen}"
    );

    // Bob back: online again, and then a while online before alice stops.
    bed.start("bob", Some("alice"))?;
    bed.eventually("alice sees bob online again", || bed.online("alice", "bob"))?;
    std::thread::sleep(Duration::from_millis(3_100));

    let before = unix_now();
    bed.stop("alice")?;
    let after = unix_now();
    // Bob must not tell a restarted alice anything: what she shows is what she saved.
    bed.stop("bob")?;
    bed.start("alice", None)?;
    let (online, seen) = alices_view(&bed)?;
    assert!(!online);
    assert!(
        (before..=after).contains(&seen),
        "alice stopped between {before} and {after} with bob online, but after her restart \
         bob was last seen {seen}"
    );
    Ok(())
}
