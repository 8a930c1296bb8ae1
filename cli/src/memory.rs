//! Keeping the daemon's memory bounded. glibc's allocator keeps freed memory in its
//! arenas (one per thread that allocates, up to 8 per core) instead of returning it to the
//! system, so after an attack whose state the daemon has since dropped (connections,
//! per-peer tables) the process would stay at its peak size for good: a periodic
//! `malloc_trim` returns the free pages. And a transfer's buffers (256 KiB chunks on the
//! disk threads, yamux's 16 KiB frames on the runtime's) used to leave a receiving daemon
//! at 28–38 MiB under load instead of 18–21 MiB: glibc raises its mmap threshold to the
//! size of the first large buffer freed, after which such buffers come from the arenas of
//! whichever threads touch them and fragment them. [`bound_allocator`] fixes both.

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

/// Buffers from this size up are mappings of their own, returned to the system when
/// freed (glibc's initial threshold, made fixed: setting it turns off its raising).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
/// The runtime's and the blocking pool's threads share this many arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Called once as the daemon starts, before its transfers allocate.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn bound_allocator() {
    // SAFETY: mallopt only changes the allocator's parameters; it is safe to call at any
    // time, from any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
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
