//! `daemon.log` with a size cap: past [`MAX_BYTES`] the file becomes `daemon.log.1` (older
//! ones shift up to `.{KEEP}`, the oldest is dropped) and a new one starts, so the log
//! never takes more than `(KEEP + 1) × MAX_BYTES` of disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Rotated files kept beside the current one.
pub const KEEP: usize = 3;

pub struct LogFile {
    path: PathBuf,
    file: File,
    len: u64,
    max: u64,
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        LogFile::with_max(path, MAX_BYTES)
    }

    fn with_max(path: &Path, max: u64) -> io::Result<Self> {
        let file = open_append(path)?;
        let len = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            len,
            max,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        for n in (1..KEEP).rev() {
            let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        self.file = open_append(&self.path)?;
        self.len = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl Write for LogFile {
    /// Writes all of `buf` (one formatted line) or nothing, so lines are never split
    /// across files.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.len > 0 && self.len + buf.len() as u64 > self.max {
            // A log that cannot rotate keeps growing rather than losing lines.
            let _ = self.rotate();
        }
        self.file.write_all(buf)?;
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        let mut log = LogFile::with_max(&path, 100).unwrap();
        for i in 0..100 {
            writeln!(log, "line {i:04} of some length").unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["daemon.log", "daemon.log.1", "daemon.log.2", "daemon.log.3"]
        );
        for name in names {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= 100, "{len}");
        }
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.ends_with("line 0099 of some length\n"), "{last}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
