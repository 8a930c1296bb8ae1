//! The meeting point's identity: an Ed25519 key in a file of its data directory, so that
//! its `/p2p/<peer id>` address stays the same across restarts. A server runs unattended,
//! so the key is not encrypted; it is readable by its owner only (0600), and a file that
//! others can read is refused rather than used.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;

/// Why the key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing it failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// It does not hold a key this program wrote.
    #[error("{} is not a paircode relay key", .0.display())]
    Malformed(PathBuf),
    /// Other users can read it.
    #[error("{} can be read by other users (mode {mode:o}): run `chmod 600` on it", path.display())]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the key at `path`, or creates it (and its directory, 0700) if there is none.
pub fn load_or_create(path: &Path) -> Result<Keypair, KeyFileError> {
    match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path)
                .map_err(io_error(path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(KeyFileError::TooOpen {
                    path: path.to_path_buf(),
                    mode: mode & 0o777,
                });
            }
            Keypair::from_protobuf_encoding(&bytes)
                .map_err(|_| KeyFileError::Malformed(path.to_path_buf()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair.to_protobuf_encoding().expect("ed25519 keys encode");
            write_atomically(path, &bytes)?;
            Ok(keypair)
        }
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Temp file (0600 from the start, never wider) + fsync + rename + fsync of the directory:
/// a crash leaves either no key or the whole key, never a torn one that would change the
/// server's identity on the next start.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(&temp)(e));
    }
    fs::rename(&temp, path).map_err(io_error(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "paircode-keyfile-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn created_0600_and_stable() {
        let dir = scratch("stable");
        let path = dir.join("sub").join("relay.key");
        let first = load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.public(), second.public());
        // No temp file is left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_readable_or_foreign_file() {
        let dir = scratch("refuse");
        let path = dir.join("relay.key");
        load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::TooOpen { mode: 0o644, .. })
        ));
        fs::write(&path, b"not a key").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Malformed(_))
        ));
        fs::remove_dir_all(dir).unwrap();
    }
}
