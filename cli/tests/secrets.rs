//! The password never shows in `ps` or the daemon's log, however it was given; the code
//! words never reach the log either.

mod support;

use std::io::Write;
use std::process::Stdio;

use paircode_netbed::daemon::PASSWORD;
use support::{alice_and_bob, daemons, Daemons, StopOnDrop, TestResult};

fn assert_not_exposed(bed: &Daemons, instance: &str, secrets: &[&str]) -> TestResult {
    let pid = bed.pid(instance)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let log = std::fs::read(bed.instance_dir(instance).join("daemon.log")).unwrap();
    assert!(!log.is_empty(), "the daemon logs something");
    for secret in secrets {
        let needle = secret.as_bytes();
        let found = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(!found(&cmdline), "secret in /proc/{pid}/cmdline");
        assert!(!found(&environ), "secret in /proc/{pid}/environ");
        assert!(!found(&log), "secret in the daemon log");
    }
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    for secret in secrets {
        assert!(
            !String::from_utf8_lossy(&ps.stdout).contains(secret),
            "secret in ps output"
        );
    }
    Ok(())
}

#[test]
fn password_from_environment_stays_hidden() -> TestResult {
    let bed = alice_and_bob()?;
    let (generating, words) = bed.generate("alice", &["--auto-accept"])?;
    bed.ok(
        "bob",
        &[
            "--verbose",
            "network",
            "pair",
            "join",
            "--yes",
            "--code",
            &words,
        ],
    )?;
    generating.finish()?;
    assert_not_exposed(&bed, "alice", &[PASSWORD, &words])?;
    assert_not_exposed(&bed, "bob", &[PASSWORD, &words])?;
    Ok(())
}

#[test]
fn password_from_stdin_stays_hidden() -> TestResult {
    let bed = daemons()?;
    let secret = "stdin-only secret 42";
    let mut init = bed
        .cmd("dave")
        .env_remove("PAIRCODE_PASSWORD")
        .args(["network", "init", "--password-stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(init.stdin.take().unwrap(), "{secret}").unwrap();
    assert!(init.wait().unwrap().success());
    let mut start = bed
        .cmd("dave")
        .env_remove("PAIRCODE_PASSWORD")
        .args([
            "--verbose",
            "start",
            "--password-stdin",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(start.stdin.take().unwrap(), "{secret}").unwrap();
    let out = start.wait_with_output().unwrap();
    assert!(out.status.success());
    let _stop = StopOnDrop(&bed, "dave");
    assert_not_exposed(&bed, "dave", &[secret])?;
    Ok(())
}

/// Types `secret` at the password prompt(s) of `args`, run under a pseudo-terminal
/// (`script`), as a person would.
fn at_prompt(bed: &Daemons, instance: &str, args: &str, secret: &str, prompts: usize) -> bool {
    let command = format!(
        "{} --instance {instance} {args}",
        env!("CARGO_BIN_EXE_paircode")
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("PAIRCODE_DATA_DIR", bed.data_dir())
        .env_remove("PAIRCODE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("script runs");
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..prompts {
        // Give the program time to turn echo off before the "keystrokes" arrive.
        std::thread::sleep(std::time::Duration::from_millis(400));
        writeln!(stdin, "{secret}").unwrap();
    }
    child.wait().unwrap().success()
}

#[test]
fn password_from_prompt_stays_hidden() -> TestResult {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        println!(
            "skipping: `script` (util-linux) is not installed, so no pseudo-terminal to type into"
        );
        return Ok(());
    }
    let bed = daemons()?;
    let secret = "typed at the prompt 7";
    assert!(at_prompt(&bed, "erin", "network init", secret, 2));
    let args = "--verbose start --no-mdns --listen /ip4/127.0.0.1/tcp/0";
    assert!(at_prompt(&bed, "erin", args, secret, 1));
    let _stop = StopOnDrop(&bed, "erin");
    assert_not_exposed(&bed, "erin", &[secret])?;
    Ok(())
}
