//! Keeping the daemon's memory bounded. glibc's allocator keeps freed memory in its
//! arenas instead of returning it to the system, so after an attack whose state the
//! daemon has since dropped (connections, per-peer tables) the process would stay at its
//! peak size for good: a periodic `malloc_trim` returns the free pages. And a transfer's
//! buffers (256 KiB chunks on the disk threads, yamux's 16 KiB frames on the runtime's)
//! used to leave a receiving daemon at 28–38 MiB under load instead of 18–21 MiB: glibc
//! raises its mmap threshold to the size of the first large buffer freed, after which
//! such buffers come from the arenas of whichever threads touch them and fragment them.
//! [`bound_allocator`] fixes both.
//!
//! What `malloc_trim` cannot return is a page that still holds one live allocation, or a
//! chunk a thread keeps in its cache. Two settings glibc reads only as a process starts,
//! [`TUNABLES`], keep those few: a single arena, so that what outlives a flood is not
//! spread over one heap per thread, and no per-thread cache, whose up to 7 chunks of each
//! of 64 sizes per thread are so many pages pinned. `paircode` sets them for the
//! `paircode-daemon` it runs ([`daemon_tunables`]: `start`, detached or not, and `relay`).
//! (An `M_ARENA_MAX` set with `mallopt` when the daemon starts, as before, came too late:
//! the runtime's threads had their arenas already, three in all.)

use std::ffi::{OsStr, OsString};
use std::process::Command;
use std::time::Duration;

/// Often enough that memory is back soon after a flood ends; a trim of a daemon-sized heap
/// takes well under a millisecond.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// The environment variable glibc reads its tunables from, once, as a process starts.
const TUNABLES_VAR: &str = "GLIBC_TUNABLES";
/// `paircode-daemon`'s: one arena (the runtime's and the blocking pool's threads share it;
/// the daemon allocates little outside transfers), no per-thread cache. Measured with
/// three address floods (RELIABILITY.md, issue 11 item 3): 2.3–2.5 MB less resident after
/// each. `mallopt` cannot set them from the daemon's code: glibc has no `mallopt` for the
/// cache, and a thread's arena is chosen at its first allocation, before that code runs.
const TUNABLES: &str = "glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0";

/// Gives `command`, a `paircode-daemon` about to run, the daemon's [`TUNABLES`]; tunables
/// the user set come after them, so that theirs win.
pub fn daemon_tunables(command: &mut Command) -> &mut Command {
    command.env(
        TUNABLES_VAR,
        tunables_with(std::env::var_os(TUNABLES_VAR).as_deref()),
    )
}

fn tunables_with(inherited: Option<&OsStr>) -> OsString {
    let mut tunables = OsString::from(TUNABLES);
    if let Some(inherited) = inherited.filter(|t| !t.is_empty()) {
        tunables.push(":");
        tunables.push(inherited);
    }
    tunables
}

pub async fn trim_periodically() {
    loop {
        tokio::time::sleep(TRIM_EVERY).await;
        trim();
    }
}

/// Buffers from this size up are mappings of their own, returned to the system when
/// freed (glibc's initial threshold, made fixed: setting it turns off its raising).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Called once as the daemon starts, before its transfers allocate.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn bound_allocator() {
    // SAFETY: mallopt only changes the allocator's parameters; it is safe to call at any
    // time, from any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn bound_allocator() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_tunables_come_last() {
        assert_eq!(tunables_with(None), OsString::from(TUNABLES));
        assert_eq!(
            tunables_with(Some(OsStr::new(""))),
            OsString::from(TUNABLES)
        );
        assert_eq!(
            tunables_with(Some(OsStr::new("glibc.malloc.tcache_count=7"))),
            OsString::from(format!("{TUNABLES}:glibc.malloc.tcache_count=7"))
        );
    }
}
