//! The user's workflow with the real binary: init, start, generate, join, devices, restart.

mod support;

use paircode_netbed::daemon::{event_of, paired_of};
use support::{alice_and_bob, paired_alice_and_bob, stderr, StopOnDrop, TestResult};

#[test]
fn generate_with_auto_accept_and_join() -> TestResult {
    let bed = alice_and_bob()?;
    let (generating, words) = bed.generate("alice", &["--auto-accept"])?;
    let joined = bed.run(
        "bob",
        &["network", "pair", "join", "--yes", "--code", &words],
    )?;
    assert!(joined.status.success(), "join failed: {}", stderr(&joined));
    let out = String::from_utf8_lossy(&joined.stdout);
    assert!(out.contains("paired with alice"), "{out}");
    let progress = stderr(&joined);
    assert!(
        progress.contains("searching") && progress.contains("found alice"),
        "{progress}"
    );

    let (status, events) = generating.finish()?;
    assert!(status.success());
    let outcome = events.last().unwrap();
    assert!(
        paired_of(outcome).is_some_and(|p| p["name"] == "bob"),
        "{outcome}"
    );

    let (alice_id, bob_id) = (bed.peer_id("alice")?, bed.peer_id("bob")?);
    let on_alice = bed.devices("alice")?;
    let on_bob = bed.devices("bob")?;
    assert_eq!(on_alice.len(), 1);
    assert_eq!(on_bob.len(), 1);
    assert_eq!(on_alice[0]["peer_id"], bob_id.as_str());
    assert_eq!(on_alice[0]["name"], "bob");
    assert_eq!(on_bob[0]["peer_id"], alice_id.as_str());
    assert_eq!(on_bob[0]["name"], "alice");
    Ok(())
}

#[test]
fn confirm_yes_pairs() -> TestResult {
    let bed = alice_and_bob()?;
    let (mut generating, words) = bed.generate("alice", &[])?;
    let bob = bed
        .cmd("bob")
        .args(["network", "pair", "join", "--yes", "--code", &words])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until bob's join is waited for, a harness error panics rather than returning: an
    // early return would leave the join unwaited.
    loop {
        let event = generating.next_line().expect("generate reports");
        if event_of(&event) == Some("confirm") {
            assert_eq!(event["name"], "bob");
            break;
        }
    }
    generating.answer("y").expect("answer written");
    let (status, events) = generating.finish().expect("generate exits");
    assert!(status.success());
    let outcome = events.last().unwrap();
    assert!(
        paired_of(outcome).is_some_and(|p| p["name"] == "bob"),
        "{outcome}"
    );
    assert!(bob.wait_with_output().unwrap().status.success());
    assert_eq!(bed.devices("alice")?.len(), 1);
    assert_eq!(bed.devices("bob")?.len(), 1);
    // Bob's save was readied while Alice was asked, Alice's when she challenged him; each
    // was put in place once she said yes.
    bed.eventually("no save is left half done", || {
        Ok(bed.no_leftovers("bob")? && bed.no_leftovers("alice")?)
    })?;
    Ok(())
}

#[test]
fn confirm_no_rejects_and_stores_nothing() -> TestResult {
    let bed = alice_and_bob()?;
    let (mut generating, words) = bed.generate("alice", &[])?;
    let bob = bed
        .cmd("bob")
        .args(["network", "pair", "join", "--yes", "--code", &words])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // As above: no early return before bob's join is waited for.
    while event_of(&generating.next_line().expect("generate reports")) != Some("confirm") {}
    generating.answer("n").expect("answer written");
    let (status, _) = generating.finish().expect("generate exits");
    assert!(!status.success());
    let joined = bob.wait_with_output().unwrap();
    assert_eq!(joined.status.code(), Some(10), "{}", stderr(&joined));
    assert!(stderr(&joined).contains("declined"), "{}", stderr(&joined));
    assert!(bed.devices("alice")?.is_empty());
    assert!(bed.devices("bob")?.is_empty());
    // Bob readied his save while Alice was asked (the device list with Alice in it, under
    // a temporary name), Alice hers when she challenged him: declined, both are gone, not
    // left beside the stores.
    bed.eventually("the readied saves are removed", || {
        Ok(bed.no_leftovers("bob")? && bed.no_leftovers("alice")?)
    })?;
    Ok(())
}

/// Files a save writes before renaming them into place (`.NAME.tmp-…`).
fn temporary_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with('.') && name.contains(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn lists_survive_restart_and_devices_come_back_online() -> TestResult {
    let bed = paired_alice_and_bob()?;
    bed.stop("alice")?;
    bed.stop("bob")?;
    bed.start("alice", None)?;
    bed.start("bob", Some("alice"))?;
    bed.eventually("both show each other online", || {
        let a = bed.devices("alice")?;
        let b = bed.devices("bob")?;
        Ok(a.len() == 1 && b.len() == 1 && a[0]["online"] == true && b[0]["online"] == true)
    })?;
    Ok(())
}

#[test]
fn unpair_removes_the_device_on_both_sides() -> TestResult {
    let bed = paired_alice_and_bob()?;
    let unknown = bed.run("alice", &["network", "unpair", "carol"])?;
    assert_eq!(unknown.status.code(), Some(13), "{}", stderr(&unknown));
    let out = bed.ok("alice", &["network", "unpair", "bob"])?;
    assert!(out.contains("unpaired bob"), "{out}");
    assert!(bed.devices("alice")?.is_empty());
    bed.eventually("bob forgot alice too", || {
        Ok(bed.devices("bob")?.is_empty())
    })?;
    Ok(())
}

#[test]
fn ctrl_c_on_generate_cancels_the_session_in_the_daemon() -> TestResult {
    let bed = alice_and_bob()?;
    let (generating, _words) = bed.generate("alice", &[])?;
    let session = bed.json("alice", &["network", "pair", "status"])?;
    assert_eq!(session["session"]["role"], "initiator", "{session}");
    // The file the pairing's save will go into was reserved ahead (`Vault::reserve_early`,
    // `Daemon::reserve_ahead`); the session's files go with it, and the next is reserved.
    let dir = bed.instance_dir("alice");
    bed.eventually("the save's file is reserved", || {
        Ok(temporary_files(&dir)
            .iter()
            .any(|name| name.ends_with("-early")))
    })?;
    let pid = generating.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let (status, _) = generating.finish()?;
    assert_eq!(status.code(), Some(11));
    bed.eventually("the daemon dropped the session", || {
        Ok(bed.json("alice", &["network", "pair", "status"])?["session"].is_null())
    })?;
    bed.eventually("nothing of the session is left", || {
        Ok(bed.no_leftovers("alice")? && temporary_files(&dir).len() == 1)
    })?;
    // Nor of the daemon, once it stopped.
    bed.stop("alice")?;
    assert_eq!(temporary_files(&dir), Vec::<String>::new());
    Ok(())
}

#[test]
fn an_impostor_with_a_paired_name_is_not_trusted() -> TestResult {
    let bed = paired_alice_and_bob()?;
    bed.stop("bob")?;
    bed.eventually("alice sees bob go offline", || {
        Ok(bed.devices("alice")?[0]["online"] == false)
    })?;

    // Another device calling itself "bob" connects to alice (she is its bootstrap peer).
    bed.init("mallory")?;
    let addr = bed.addr("alice")?;
    bed.ok(
        "mallory",
        &[
            "start",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--name",
            "bob",
            "--bootstrap",
            &addr,
        ],
    )?;
    let _stop = StopOnDrop(&bed, "mallory");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let devices = bed.devices("alice")?;
    assert_eq!(devices.len(), 1);
    assert_ne!(devices[0]["peer_id"], bed.peer_id("mallory")?.as_str());
    assert_eq!(
        devices[0]["online"], false,
        "a name proves nothing: {devices:?}"
    );
    Ok(())
}

/// Issue 10, item 3: without `--yes` the joiner's user is asked too, before Bob proves
/// the code, and both prompts show the same verification words.
#[test]
fn both_users_confirm_the_same_verification_words() -> TestResult {
    let bed = alice_and_bob()?;
    let (mut generating, words) = bed.generate("alice", &[])?;
    let mut joining = bed.spawn("bob", &["network", "pair", "join", "--code", &words])?;
    let on_bob = joining.wait_for("confirm")?;
    assert_eq!(on_bob["name"], "alice", "{on_bob}");
    let verification = on_bob["verification"]
        .as_str()
        .expect("a verification string");
    assert_eq!(verification.split(' ').count(), 4, "{on_bob}");
    joining.answer("y")?;
    let on_alice = generating.wait_for("confirm")?;
    assert_eq!(on_alice["name"], "bob", "{on_alice}");
    assert_eq!(on_alice["verification"], on_bob["verification"]);
    generating.answer("y")?;
    let (status, _) = generating.finish()?;
    assert!(status.success());
    let (status, _) = joining.finish()?;
    assert!(status.success());
    assert_eq!(bed.devices("alice")?.len(), 1);
    assert_eq!(bed.devices("bob")?.len(), 1);
    Ok(())
}

/// A "no" on the joiner's side comes before Bob proves anything: neither side stores a
/// thing, and Alice is never asked.
#[test]
fn the_joiner_declining_leaves_nothing_on_either_side() -> TestResult {
    let bed = alice_and_bob()?;
    let (mut generating, words) = bed.generate("alice", &[])?;
    let mut joining = bed.spawn("bob", &["network", "pair", "join", "--code", &words])?;
    joining.wait_for("confirm")?;
    joining.answer("n")?;
    let (status, _) = joining.finish()?;
    assert!(!status.success());
    assert!(bed.devices("alice")?.is_empty());
    assert!(bed.devices("bob")?.is_empty());
    generating.child.kill().expect("generate stopped");
    let (_, events) = generating.finish()?;
    assert!(
        !events.iter().any(|e| event_of(e) == Some("confirm")),
        "alice was asked: {events:?}"
    );
    Ok(())
}

/// A daemon killed during a save leaves its temporary file (`.devices.tmp-PID`, or a save
/// readied ahead of time, `…-early`) behind; the next start removes those of processes
/// that are gone, and leaves a live process's (a command saving right now) alone.
#[test]
fn a_start_removes_the_temporary_files_of_saves_a_crash_interrupted() -> TestResult {
    let bed = alice_and_bob()?;
    bed.stop("alice")?;
    let dir = bed.instance_dir("alice");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = [
        format!(".devices.tmp-{dead}"),
        format!(".devices.tmp-{dead}-early"),
    ];
    let live = format!(".devices.tmp-{}", std::process::id());
    for name in stale.iter().chain([&live]) {
        std::fs::write(dir.join(name), b"a save cut short").unwrap();
    }
    bed.start("alice", None)?;
    // The new daemon's own is the file it reserves for its next pairing's save.
    let reserved = format!(".devices.tmp-{}-early", bed.pid("alice")?);
    let mut expected = vec![live, reserved];
    expected.sort();
    bed.eventually(
        "only the live file and the new daemon's reservation are left",
        || {
            let mut left = temporary_files(&dir);
            left.sort();
            Ok(left == expected)
        },
    )?;
    Ok(())
}
