//! Where an instance keeps its files. One daemon per instance; several instances can run on
//! one machine (alice and bob in the demo), each in its own directory.

use std::path::{Path, PathBuf};

pub const IDENTITY_FILE: &str = "identity";
pub const DEVICES_FILE: &str = "devices";
const SOCKET_FILE: &str = "daemon.sock";
const LOCK_FILE: &str = "daemon.pid";
const LOG_FILE: &str = "daemon.log";
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InstanceError {
    #[error("instance name {0:?} is not allowed: use 1 to 64 letters, digits, '-' or '_'")]
    BadName(String),
    #[error("no data directory could be determined: set --data-dir or PAIRCODE_DATA_DIR")]
    NoDataDir,
    #[error("socket path {} is longer than the {MAX_SOCKET_PATH} bytes Unix sockets allow: choose a shorter --data-dir", .0.display())]
    SocketPathTooLong(PathBuf),
}

impl Instance {
    /// `data_dir` from `--data-dir` / `PAIRCODE_DATA_DIR`, else the platform's data directory.
    pub fn resolve(data_dir: Option<&Path>, name: &str) -> Result<Self, InstanceError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(InstanceError::BadName(name.to_string()));
        }
        let base = match data_dir {
            Some(dir) => dir.to_path_buf(),
            None => directories::ProjectDirs::from("", "", "paircode")
                .ok_or(InstanceError::NoDataDir)?
                .data_dir()
                .to_path_buf(),
        };
        let instance = Instance {
            name: name.to_string(),
            dir: base.join(name),
        };
        let socket = instance.socket();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(InstanceError::SocketPathTooLong(socket));
        }
        Ok(instance)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET_FILE)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    pub fn is_initialised(&self) -> bool {
        self.dir.join(IDENTITY_FILE).exists()
    }
}

/// `paircode ARGS` as the user would type it for the instance called `name`.
pub fn command_line(name: &str, args: &str) -> String {
    match name {
        "default" => format!("paircode {args}"),
        name => format!("paircode --instance {name} {args}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let i = Instance::resolve(Some(Path::new("/tmp/x")), "alice").unwrap();
        assert_eq!(i.socket(), Path::new("/tmp/x/alice/daemon.sock"));
        assert!(matches!(
            Instance::resolve(Some(Path::new("/tmp")), "../etc"),
            Err(InstanceError::BadName(_))
        ));
        assert!(matches!(
            Instance::resolve(Some(Path::new("/tmp")), ""),
            Err(InstanceError::BadName(_))
        ));
        let long = "/tmp/".to_string() + &"d".repeat(120);
        assert!(matches!(
            Instance::resolve(Some(Path::new(&long)), "a"),
            Err(InstanceError::SocketPathTooLong(_))
        ));
    }
}
