//! Writing a received file out to disk while it arrives, so the final `fsync` waits for
//! the last few MiB only, not for the whole file at once (a 1 GiB file took a second of
//! flushing after its last byte). A window's pages start going to disk as soon as the
//! window is full, and the window before it is waited for, so at most two windows of a
//! file are dirty at a time: memory stays bounded whatever the file size, and the disk
//! works while the network does. The calls block: they are made on the sink's thread.

use std::io;

/// How much of a file is handed to the disk at once.
const WINDOW: u64 = 8 * 1024 * 1024;

/// Where a file's write-out stands.
pub struct Writeback {
    /// The end of what has been handed to the disk.
    started: u64,
    /// The window handed over last, not yet waited for: (offset, length).
    in_flight: Option<(u64, u64)>,
}

impl Writeback {
    /// For a file whose first `held` bytes are already there.
    pub fn new(held: u64) -> Writeback {
        Writeback {
            started: held,
            in_flight: None,
        }
    }

    /// Called once the file's first `written` bytes are in it: once a window is full,
    /// starts writing it out and waits for the previous one.
    pub fn advance(&mut self, file: &std::fs::File, written: u64) -> io::Result<()> {
        if written < self.started + WINDOW {
            return Ok(());
        }
        let window = (self.started, written - self.started);
        let previous = self.in_flight.replace(window);
        self.started = written;
        start(file, window)?;
        match previous {
            Some(previous) => wait(file, previous),
            None => Ok(()),
        }
    }
}

/// Starts writing `(offset, length)` of the file out, without waiting.
#[cfg(target_os = "linux")]
fn start(file: &std::fs::File, (offset, length): (u64, u64)) -> io::Result<()> {
    sync_range(file, offset, length, libc::SYNC_FILE_RANGE_WRITE)
}

/// Waits until `(offset, length)` of the file is on disk.
#[cfg(target_os = "linux")]
fn wait(file: &std::fs::File, (offset, length): (u64, u64)) -> io::Result<()> {
    sync_range(
        file,
        offset,
        length,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    )
}

#[cfg(target_os = "linux")]
fn sync_range(
    file: &std::fs::File,
    offset: u64,
    length: u64,
    flags: libc::c_uint,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on a descriptor that `file` keeps open meanwhile.
    let rc =
        unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, length as i64, flags) };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

// Elsewhere the final `fsync` does all the work, as before.
#[cfg(not(target_os = "linux"))]
fn start(_: &std::fs::File, _: (u64, u64)) -> io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn wait(_: &std::fs::File, _: (u64, u64)) -> io::Result<()> {
    Ok(())
}
