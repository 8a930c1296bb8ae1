//! What scripts read: one JSON envelope per command, errors included, and no panic when
//! the reader goes away.

mod support;

use std::process::Stdio;

use paircode_netbed::daemon::{error_of, event_of, paired_of, parse_json, result_of};
use support::{alice_and_bob, daemons, stderr, TestResult};

#[test]
fn errors_come_in_the_envelope_with_kind_and_exit_code() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    let (error, code) = bed.json_error("alice", &["status"])?;
    assert_eq!(code, Some(3));
    assert_eq!(error["kind"], "not_running", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("paircode --instance alice start"),
        "{error}"
    );

    let (error, code) = bed.json_error(
        "alice",
        &[
            "network",
            "pair",
            "join",
            "--code",
            &["abandon"; 12].join(" "),
        ],
    )?;
    assert_eq!(code, Some(7));
    assert_eq!(error["kind"], "bad_code", "{error}");

    let (error, code) = bed.json_error("carol", &["start", "--no-mdns"])?;
    assert_eq!(code, Some(12));
    assert_eq!(error["kind"], "not_initialised", "{error}");
    Ok(())
}

#[test]
fn usage_errors_are_json_too_when_asked() -> TestResult {
    let bed = daemons()?;
    for (instance, args) in [
        (
            "alice",
            &["network", "pair", "generate", "--expires", "soon"][..],
        ),
        ("alice", &["network", "frobnicate"]),
        ("../etc", &["status"]),
    ] {
        let (error, code) = bed.json_error(instance, args)?;
        assert_eq!(code, Some(2), "{args:?}");
        assert_eq!(error["kind"], "usage", "{args:?}: {error}");
    }
    // Without --json, clap's own text on stderr, same exit code.
    let out = bed.run("alice", &["network", "frobnicate"])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("frobnicate"), "{}", stderr(&out));
    Ok(())
}

#[test]
fn a_detached_daemon_that_cannot_start_reports_its_own_error() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    let (error, code) = bed.json_error(
        "alice",
        &["start", "--no-mdns", "--listen", "/ip4/203.0.113.1/tcp/1"],
    )?;
    assert_eq!(code, Some(1), "{error}");
    assert_eq!(error["kind"], "node", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("203.0.113.1"),
        "{error}"
    );
    let out = bed
        .cmd("alice")
        .env("PAIRCODE_PASSWORD", "not it")
        .args([
            "--json",
            "start",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let envelope = parse_json(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(
        error_of(&envelope).is_some_and(|e| e["kind"] == "wrong_password"),
        "{envelope}"
    );
    Ok(())
}

#[test]
fn every_result_is_an_envelope() -> TestResult {
    let bed = alice_and_bob()?;
    let status = bed.json("alice", &["status"])?;
    assert_eq!(status["name"], "alice");
    assert!(bed.json("alice", &["network", "devices"])?.is_array());
    assert!(bed.json("alice", &["network", "pair", "status"])?["session"].is_null());
    let (error, code) = bed.json_error("alice", &["network", "pair", "cancel"])?;
    assert_eq!(
        (code, error["kind"].as_str()),
        (Some(1), Some("no_session"))
    );
    let (error, code) = bed.json_error("alice", &["network", "unpair", "carol"])?;
    assert_eq!(
        (code, error["kind"].as_str()),
        (Some(13), Some("unknown_device"))
    );

    // A stream: events, then the one envelope that ends it.
    let (generating, words) = bed.generate("alice", &["--auto-accept"])?;
    let out = bed.run(
        "bob",
        &[
            "--json", "network", "pair", "join", "--yes", "--code", &words,
        ],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| parse_json(l).expect("JSON line"))
        .collect();
    let (last, events) = lines.split_last().expect("lines");
    assert!(events.iter().all(|e| event_of(e).is_some()), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| event_of(e) == Some("found") && e["name"] == "alice"),
        "{events:?}"
    );
    assert!(
        paired_of(last).is_some_and(|p| p["name"] == "alice"),
        "{last}"
    );
    let (status, _) = generating.finish()?;
    assert!(status.success());
    Ok(())
}

#[test]
fn a_closed_stdout_is_not_a_panic() -> TestResult {
    let bed = alice_and_bob()?;
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["network", "devices"],
        &["--json", "network", "pair", "status"],
    ] {
        let mut child = bed
            .cmd("alice")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before paircode writes anything (`| head -0`, or `head -1`
        // that already read its line).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // And through a real shell pipeline, as people type it.
    let command = format!(
        "{} --instance alice status | head -1",
        env!("CARGO_BIN_EXE_paircode")
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("set -o pipefail; {command}")])
        .env("PAIRCODE_DATA_DIR", bed.data_dir())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("instance:"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    Ok(())
}

#[test]
fn a_foreground_daemon_reports_in_the_envelope_too() -> TestResult {
    use std::io::BufRead;
    let bed = daemons()?;
    bed.init("alice")?;
    let mut daemon = bed
        .cmd("alice")
        .args(["--json", "start", "--foreground", "--no-mdns"])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(daemon.stdout.take().unwrap()).lines();
    let started = parse_json(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(event_of(&started), Some("started"), "{started}");
    assert!(started["listen"][0]
        .as_str()
        .unwrap()
        .starts_with("/ip4/127.0.0.1/tcp/"));
    // Until the daemon is waited for, a harness error panics rather than returning.
    bed.ok("alice", &["stop"]).expect("alice stops");
    let stopped = parse_json(&lines.next().unwrap().unwrap()).unwrap();
    assert!(
        result_of(&stopped).is_some_and(|r| r["stopped"] == "alice"),
        "{stopped}"
    );
    assert!(daemon.wait().unwrap().success());
    Ok(())
}

/// `paircode` runs its daemon and meeting point from `paircode-daemon`, next to it (the
/// client itself has no libp2p, to start fast). Installed without it, `start` (detached or
/// in the foreground) and `relay` say which file is missing, and nothing starts.
#[test]
fn without_paircode_daemon_beside_it_start_says_what_is_missing() -> TestResult {
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("paircode");
    std::fs::copy(env!("CARGO_BIN_EXE_paircode"), &lone).unwrap();
    let missing = dir.path().join("paircode-daemon").display().to_string();
    let bed = paircode_netbed::daemon::Daemons::new(&lone)?;
    bed.init("alice")?;
    let runs: [&[&str]; 3] = [
        &["start", "--no-mdns"],
        &["start", "--foreground", "--no-mdns"],
        &["relay", "--listen", "/ip4/127.0.0.1/tcp/0"],
    ];
    for args in runs {
        let (error, code) = bed.json_error("alice", args)?;
        assert_eq!(code, Some(1), "{args:?}: {error}");
        assert_eq!(error["kind"], "daemon_start", "{args:?}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(&missing), "{args:?}: {error}");
        assert!(message.contains("cargo install --path cli"), "{error}");
    }
    let (error, code) = bed.json_error("alice", &["status"])?;
    assert_eq!(code, Some(3), "nothing started: {error}");
    Ok(())
}
