//! The test bed's daemon harness (`paircode_netbed::daemon`) for the `paircode` binary this
//! crate builds: real processes on loopback (mDNS off, DHT bootstrap), each instance in a
//! data directory that disappears with the harness.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

pub use paircode_netbed::daemon::{DaemonError, Daemons};

/// What a test returns: a harness error fails it with the command and its output.
pub type TestResult = Result<(), DaemonError>;

/// An empty harness for this crate's `paircode`.
pub fn daemons() -> Result<Daemons, DaemonError> {
    Daemons::new(env!("CARGO_BIN_EXE_paircode"))
}

/// Alice and Bob initialised and running, Bob bootstrapped from Alice.
pub fn alice_and_bob() -> Result<Daemons, DaemonError> {
    let bed = daemons()?;
    bed.init("alice")?;
    bed.init("bob")?;
    bed.start("alice", None)?;
    bed.start("bob", Some("alice"))?;
    Ok(bed)
}

/// Alice and Bob running and paired: Alice generates a code with `--auto-accept`, Bob
/// joins with it, and both have stored the pairing.
pub fn paired_alice_and_bob() -> Result<Daemons, DaemonError> {
    let bed = alice_and_bob()?;
    let (generating, words) = bed.generate("alice", &["--auto-accept"])?;
    bed.ok(
        "bob",
        &["network", "pair", "join", "--yes", "--code", &words],
    )?;
    generating.finish()?;
    Ok(bed)
}

/// Daemon options that keep a start on loopback with mDNS off (also starts that must
/// fail, should they not fail).
pub const LOOPBACK: [&str; 3] = ["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

/// `start` with [`LOOPBACK`].
pub const LOOPBACK_START: [&str; 4] = ["start", LOOPBACK[0], LOOPBACK[1], LOOPBACK[2]];

/// Waits for `child` to exit and returns its output; after 20 s kills it and fails the
/// test with `hung` (instead of hanging it).
pub fn output_within_20s(mut child: Child, hung: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{hung}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Makes every save of `instance`'s device list fail, as a full disk would (also for
/// root): the daemon writes the list through `.devices.tmp-<pid>` (and a pairing's save
/// readied early through `.devices.tmp-<pid>-early`, the file it keeps reserved for it),
/// and a directory there is in the way. [`SaveBlocker::remove`] lets saves through again.
pub fn block_saves(bed: &Daemons, instance: &str) -> Result<SaveBlocker, DaemonError> {
    let pid = bed.pid(instance)?;
    let dir = bed.instance_dir(instance);
    let mut blockers = Vec::new();
    for tag in ["", "-early"] {
        let blocker = dir.join(format!(".devices.tmp-{pid}{tag}"));
        // The reservation goes: the daemon writes into the file it holds, whose name is
        // now the directory's, and its rename into place fails.
        if !tag.is_empty() && blocker.is_file() {
            std::fs::remove_file(&blocker).unwrap();
        }
        // A save in flight (a last-seen time) owns that name for a moment: wait it out.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = std::fs::create_dir(&blocker) {
            assert!(
                e.kind() == std::io::ErrorKind::AlreadyExists && Instant::now() < deadline,
                "{e}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        blockers.push(blocker);
    }
    Ok(SaveBlocker(blockers))
}

/// The directories [`block_saves`] put in the way.
pub struct SaveBlocker(Vec<PathBuf>);

impl SaveBlocker {
    pub fn remove(self) {
        for blocker in self.0 {
            std::fs::remove_dir(&blocker).unwrap();
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stops an instance started outside [`Daemons::start`] when the test ends, however it
/// ends.
pub struct StopOnDrop<'a>(pub &'a Daemons, pub &'a str);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(self.1, &["stop"]);
    }
}
