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

/// Reserves the disk blocks for bytes `offset..offset + length` of `file` before they
/// arrive, without changing its length (a resume still reads what is held from it). The
/// file system then allocates once, not page by page as the bytes come (a seventh less
/// system time per GiB written here), and a disk too full for the whole file says so
/// before the first byte. A file system that cannot reserve is no error: the writes
/// allocate as they go, as before.
#[cfg(target_os = "linux")]
pub fn reserve(file: &std::fs::File, offset: u64, length: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
        return Ok(());
    };
    if length == 0 {
        return Ok(());
    }
    // SAFETY: a plain system call on a descriptor that `file` keeps open meanwhile.
    let rc =
        unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, length) };
    match rc {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            e if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => Err(e),
            _ => Ok(()),
        },
    }
}

#[cfg(not(target_os = "linux"))]
pub fn reserve(_: &std::fs::File, _: u64, _: u64) -> io::Result<()> {
    Ok(())
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn reserving_allocates_the_rest_without_changing_the_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.part");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&[1; 4096]).unwrap();
        reserve(&file, 4096, 8 << 20).unwrap();
        let meta = file.metadata().unwrap();
        // What is held stays what a resume reads; the blocks for the rest are there.
        assert_eq!(meta.len(), 4096);
        let allocated = meta.blocks() * 512;
        if allocated < (8 << 20) {
            eprintln!(
                "skipped: {} does not reserve blocks ({allocated} bytes allocated)",
                dir.path().display()
            );
            return;
        }
        assert!(allocated >= 4096 + (8 << 20), "{allocated}");
    }
}
