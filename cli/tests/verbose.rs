//! `--verbose` on client commands: the exchange with the daemon on stderr, stdout as
//! without it.

mod support;

use support::{daemons, stderr, TestResult};

#[test]
fn verbose_client_commands_show_the_exchange_on_stderr() -> TestResult {
    let bed = daemons()?;
    bed.init("alice")?;
    bed.start("alice", None)?;
    let socket = bed.instance_dir("alice").join("daemon.sock");

    let quiet = bed.run("alice", &["network", "devices"])?;
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(
        stderr(&quiet),
        "",
        "a client command without --verbose is quiet"
    );

    let loud = bed.run("alice", &["--verbose", "network", "devices"])?;
    assert!(loud.status.success(), "{}", stderr(&loud));
    assert_eq!(
        loud.stdout, quiet.stdout,
        "stdout is the same with --verbose"
    );
    let detail = stderr(&loud);
    for expected in [
        format!("connecting to {}", socket.display()),
        "IPC version".to_string(),
        "connected in".to_string(),
        "→ Devices request".to_string(),
        "← reply after".to_string(),
        "Devices([])".to_string(),
        "done in".to_string(),
    ] {
        assert!(detail.contains(&expected), "no {expected:?} in:\n{detail}");
    }

    // The code's words stay off stderr: a request shows its kind only. (The join is refused
    // at once: this daemon is busy with the code it generated.)
    let (mut generating, words) = bed.generate("alice", &[])?;
    let join = bed.run(
        "alice",
        &["-v", "network", "pair", "join", "--yes", "--code", &words],
    );
    let _ = generating.child.kill();
    let _ = generating.finish();
    let join = join?;
    let detail = stderr(&join);
    assert!(detail.contains("→ Join request"), "{detail}");
    assert!(detail.contains("← reply after"), "{detail}");
    // (Single words could be ordinary English in a message: look for any two in a row.)
    let list: Vec<&str> = words.split(' ').collect();
    for pair in list.windows(2) {
        let pair = pair.join(" ");
        assert!(!detail.contains(&pair), "{pair:?} in:\n{detail}");
    }

    // No daemon: it says where it looked.
    bed.stop("alice")?;
    let gone = bed.run("alice", &["--verbose", "status"])?;
    assert_eq!(gone.status.code(), Some(3), "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("no daemon answers there"),
        "{}",
        stderr(&gone)
    );
    Ok(())
}
