//! Real `paircode` daemons on hosts of a namespace lab (`paircode_netbed::daemon::Site`):
//! one instance per host, named after it, each listening on its host's address only.

use std::io::Write;

use paircode_netbed::daemon::{DaemonError, Site};
use paircode_netbed::lab::{self, Host};

/// A line in the test output even when the harness captures `println!` (it does not
/// capture writes to the stderr handle itself): one per scenario, and the skip lines.
pub fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A site for this crate's `paircode`, or `None` (after one "skipping: …" line) where
/// namespaces cannot be made.
pub fn site(scenario: &str) -> Result<Option<Site>, DaemonError> {
    if let Some(reason) = lab::skip_reason() {
        log(&format!("skipping: {scenario}: {reason}"));
        return Ok(None);
    }
    Site::new(env!("CARGO_BIN_EXE_paircode")).map(Some)
}

/// Both hosts list each other under their real peer ids and names.
pub fn assert_paired(site: &Site, a: &Host, b: &Host) -> Result<(), DaemonError> {
    let daemons = &site.daemons;
    assert!(
        daemons.lists(&a.name, &b.name)?,
        "{} does not list {}",
        a.name,
        b.name
    );
    assert!(
        daemons.lists(&b.name, &a.name)?,
        "{} does not list {}",
        b.name,
        a.name
    );
    Ok(())
}
