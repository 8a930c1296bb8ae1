//! The test bed's daemon harness (`paircode_netbed::daemon`) for the `paircode` binary this
//! crate builds: real processes on loopback (mDNS off, DHT bootstrap), each instance in a
//! data directory that disappears with the harness.

#![allow(dead_code)]

use std::process::Output;

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
