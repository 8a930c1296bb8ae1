//! Giving memory back after a flood. glibc's allocator keeps freed memory in its arenas
//! (one per runtime thread) instead of returning it to the system, so after an attack
//! whose state the daemon has since dropped (connections, per-peer tables) the process
//! would stay at its peak size for good. A periodic `malloc_trim` returns the free pages.

use std::time::Duration;

/// Often enough that memory is back soon after a flood ends; a trim of a daemon-sized heap
/// takes well under a millisecond.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

pub async fn trim_periodically() {
    loop {
        tokio::time::sleep(TRIM_EVERY).await;
        trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
