//! The daemon's pid file doubles as its lock: an exclusive `flock` held for the daemon's
//! lifetime. The kernel drops it when the process dies, so a crashed daemon never leaves a
//! stale lock behind (unlike a pid file checked by content alone).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "a daemon is already running for this instance (pid {pid}); stop it with `paircode stop`"
    )]
    AlreadyRunning { pid: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while the daemon runs; released on drop or process exit.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(LockError::AlreadyRunning {
                pid: pid.trim().to_string(),
            });
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DaemonLock { _file: file })
    }

    /// The pid of the daemon holding the lock, if one does.
    pub fn holder(path: &Path) -> Option<u32> {
        let file = File::open(path).ok()?;
        // SAFETY: as above.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if free {
            return None;
        }
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.pid");
        let first = DaemonLock::acquire(&path).unwrap();
        assert_eq!(DaemonLock::holder(&path), Some(std::process::id()));
        match DaemonLock::acquire(&path) {
            Err(LockError::AlreadyRunning { pid }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("unexpected {other:?}"),
        }
        drop(first);
        assert_eq!(DaemonLock::holder(&path), None);
        DaemonLock::acquire(&path).unwrap();
    }
}
