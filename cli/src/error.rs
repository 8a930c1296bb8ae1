//! Every way a `paircode` command can fail, each variant carrying its typed cause, and the
//! one place where an error becomes an exit code and a stable `kind` string.

use std::path::PathBuf;

use paircode_core::{CodeError, FailReason};
use paircode_net::Error as NetError;
use serde::{Deserialize, Serialize};

use crate::instance::{command_line, InstanceError};
use crate::ipc::{DaemonError, FrameError, Response};
use crate::lock::LockError;
use crate::password::PasswordError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "the paircode daemon for instance '{instance}' is not running; start it with `{}`",
        command_line(.instance, "start")
    )]
    NotRunning { instance: String },
    #[error(
        "instance '{instance}' has no device identity yet: run `{}` first",
        command_line(.instance, "network init")
    )]
    NotInitialised { instance: String },
    #[error(
        "instance '{instance}' already has a store ({}); nothing was changed. \
         `paircode --instance {instance} network init --force` starts over with a new identity \
         and keeps a copy of each file",
        list_files(.files)
    )]
    AlreadyInitialised {
        instance: String,
        files: Vec<PathBuf>,
    },
    #[error("keeping a copy of {} before starting over: {source}; nothing was changed", .path.display())]
    Backup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    BadCode(#[from] CodeError),
    /// What the daemon answered.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("connecting to {}: {source}", .path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon closed the connection")]
    DaemonHungUp,
    #[error("talking to the daemon: {0}")]
    Ipc(FrameError),
    #[error("unexpected answer from the daemon: {0:?}")]
    Unexpected(Box<Response>),
    #[error("starting the network node: {0}")]
    Node(NetError),
    #[error(transparent)]
    NodeEnded(#[from] crate::daemon::NodeEnded),
    #[error("the daemon's socket {}: {source}", .path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon's log {}: {source}", .path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("setting up logging: {0}")]
    Logging(String),
    /// `paircode-daemon`, which runs the daemon and the meeting point, could not be run.
    #[error(
        "could not run {} (paircode's daemon program, installed next to paircode: \
         `cargo install --path cli` installs both): {source}",
        .path.display()
    )]
    DaemonProgram {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The meeting point (`paircode relay`) could not run.
    #[error(transparent)]
    Relay(#[from] crate::relay::RelayError),
    /// A detached daemon that failed to start, as it reported itself.
    #[error("{}", .0.message)]
    Reported(ErrorBody),
    #[error("the daemon exited ({status}) before it was ready: {said}")]
    DaemonExited {
        status: std::process::ExitStatus,
        /// Its standard error, if it wrote anything.
        said: String,
    },
    /// Ctrl+C while a pairing was running.
    #[error("cancelled")]
    Interrupted,
    #[error("reading {what}: {source}")]
    Input {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the downloads directory {}: {source}", .path.display())]
    Downloads {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Command-line input that cannot work, caught before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// clap's own message, for `--json` output.
    #[error("{0}")]
    Arguments(String),
    #[error(
        "{what} address {value:?} is not usable ({reason}); the right form looks like {example}"
    )]
    Multiaddr {
        what: &'static str,
        value: String,
        reason: String,
        example: &'static str,
    },
    /// A `send` naming so many paths that the request exceeds what the daemon reads.
    #[error("this send names too many paths for one request (over {max} bytes): send fewer at a time, or a directory that holds them")]
    SendTooLarge { max: usize },
    /// The `relays` file in the instance directory cannot be read or holds a bad address.
    #[error("cannot read the meeting points file {}: {reason}", .path.display())]
    RelaysFile {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// The `error` member of the JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub kind: String,
    pub message: String,
    pub exit: u8,
}

fn list_files(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl CliError {
    /// The process's exit code. Stable: scripts rely on it, and new codes are only ever
    /// added at the end.
    ///
    /// | code | meaning |
    /// |-----:|---------|
    /// | 0  | success |
    /// | 1  | any other failure (I/O, IPC, the node, a store file that cannot be saved) |
    /// | 2  | usage: bad arguments, instance name, password input, a request the daemon cannot read |
    /// | 3  | the instance's daemon is not running |
    /// | 4  | wrong password |
    /// | 5  | a store file is corrupt, missing or not a regular file (it is left untouched) |
    /// | 6  | a daemon is already running for the instance |
    /// | 7  | the code is not a valid code (typo, word count, checksum) |
    /// | 8  | the code has expired |
    /// | 9  | no device answered with the code |
    /// | 10 | the other device rejected, or this side declined, the pairing |
    /// | 11 | cancelled (Ctrl+C, `pair cancel`, or the confirmation window closed) |
    /// | 12 | the instance has no identity yet (`network init`) |
    /// | 13 | no paired device by that name or peer id |
    /// | 14 | a pairing session is already running |
    /// | 15 | send: the device is offline (the message says when it was last seen) |
    /// | 16 | send: the device refused (receiving off, not paired there, a name it will not take) |
    /// | 17 | send: the device has no room for it |
    /// | 18 | send: the content did not arrive intact (connection lost, size or hash mismatch) |
    pub fn exit_code(&self) -> u8 {
        use CliError as E;
        use DaemonError as D;
        match self {
            E::Usage(_) | E::Instance(_) | E::Password(_) => 2,
            E::NotRunning { .. } => 3,
            E::Store(StoreError::WrongPassword { .. }) => 4,
            E::Store(
                StoreError::Corrupt { .. }
                | StoreError::Missing { .. }
                | StoreError::RolledBack { .. },
            ) => 5,
            E::Store(
                StoreError::Io { .. }
                | StoreError::Save { .. }
                | StoreError::EmptyPassword
                | StoreError::Kdf(_),
            ) => 1,
            E::Lock(LockError::AlreadyRunning { .. }) => 6,
            E::Lock(LockError::Io { .. }) => 1,
            E::BadCode(_) => 7,
            E::Daemon(D::Pairing {
                reason: FailReason::CodeExpired,
            }) => 8,
            E::Daemon(D::Pairing {
                reason: FailReason::NoDeviceAnswered,
            }) => 9,
            E::Daemon(D::Pairing {
                reason: FailReason::Rejected { .. } | FailReason::Declined { .. },
            }) => 10,
            E::Daemon(D::Pairing {
                reason: FailReason::Cancelled | FailReason::ConfirmTimeout { .. },
            }) => 11,
            E::Interrupted => 11,
            E::NotInitialised { .. } => 12,
            E::Daemon(D::UnknownDevice(_)) => 13,
            E::Daemon(D::Busy) => 14,
            E::Daemon(D::Transfer(e)) => e.exit_code(),
            E::Daemon(
                D::BadRequest(_) | D::BadCode(_) | D::ConfirmWithoutSession | D::BadExpiry { .. },
            ) => 2,
            E::Daemon(
                D::Pairing {
                    reason: FailReason::NoAnswer { .. } | FailReason::NotStored { .. },
                }
                | D::NodeStopped
                | D::Transport(_)
                | D::InvalidName { .. }
                | D::NoSession
                | D::InvalidStoredPeer { .. }
                | D::Save { .. },
            ) => 1,
            E::AlreadyInitialised { .. }
            | E::Backup { .. }
            | E::Connect { .. }
            | E::DaemonHungUp
            | E::Ipc(_)
            | E::Unexpected(_)
            | E::Node(_)
            | E::Socket { .. }
            | E::Log { .. }
            | E::Logging(_)
            | E::Spawn { .. }
            | E::DaemonProgram { .. }
            | E::DaemonExited { .. }
            | E::Input { .. }
            | E::Relay(_)
            | E::Runtime(_)
            | E::Downloads { .. }
            | E::NodeEnded(_) => 1,
            // Derived by this same function in the process that reported it.
            E::Reported(body) => body.exit,
        }
    }

    /// A stable snake_case name for scripts (`error.kind` in the JSON envelope), finer than
    /// the exit code.
    pub fn kind(&self) -> &str {
        use CliError as E;
        use DaemonError as D;
        match self {
            E::Usage(_) | E::Instance(_) | E::Password(_) => "usage",
            E::NotRunning { .. } => "not_running",
            E::Store(e) => match e {
                StoreError::WrongPassword { .. } => "wrong_password",
                StoreError::Corrupt { .. } => "corrupt_store",
                StoreError::Missing { .. } => "store_file_missing",
                StoreError::RolledBack { .. } => "store_rolled_back",
                StoreError::Io { .. } => "store_io",
                StoreError::Save { .. } => "store_save_failed",
                StoreError::EmptyPassword => "empty_password",
                StoreError::Kdf(_) => "key_derivation",
            },
            E::Lock(LockError::AlreadyRunning { .. }) => "already_running",
            E::Lock(LockError::Io { .. }) => "lock_io",
            E::NotInitialised { .. } => "not_initialised",
            E::AlreadyInitialised { .. } => "already_initialised",
            E::Backup { .. } => "backup_failed",
            E::BadCode(_) => "bad_code",
            E::Daemon(e) => match e {
                D::Pairing { reason } => match reason {
                    FailReason::CodeExpired => "code_expired",
                    FailReason::NoDeviceAnswered => "no_device_answered",
                    FailReason::Rejected { .. } => "rejected",
                    FailReason::Declined { .. } => "declined",
                    FailReason::NoAnswer { .. } => "no_answer",
                    FailReason::Cancelled => "cancelled",
                    FailReason::ConfirmTimeout { .. } => "confirm_timeout",
                    FailReason::NotStored { .. } => "not_stored",
                },
                D::Busy => "busy",
                D::NodeStopped => "node_stopped",
                D::Transport(_) => "transport",
                D::InvalidName { .. } => "invalid_name",
                D::NoSession => "no_session",
                D::UnknownDevice(_) => "unknown_device",
                D::InvalidStoredPeer { .. } => "invalid_stored_peer",
                D::Save { .. } => "store_save_failed",
                D::BadRequest(_) => "bad_request",
                D::BadCode(_) => "bad_code",
                D::ConfirmWithoutSession => "bad_request",
                D::BadExpiry { .. } => "usage",
                D::Transfer(e) => e.kind(),
            },
            E::Connect { .. } | E::Ipc(_) | E::Unexpected(_) => "ipc",
            E::DaemonHungUp => "daemon_hung_up",
            E::Node(_) => "node",
            E::NodeEnded(_) => "node_ended",
            E::Socket { .. } => "socket",
            E::Log { .. } | E::Logging(_) => "logging",
            E::Spawn { .. } | E::DaemonProgram { .. } | E::DaemonExited { .. } => "daemon_start",
            E::Reported(body) => &body.kind,
            E::Interrupted => "cancelled",
            E::Input { .. } => "input",
            E::Runtime(_) => "runtime",
            E::Downloads { .. } => "downloads",
            E::Relay(_) => "relay",
        }
    }

    /// What to check next, for a person (not in the JSON envelope: scripts go by `kind`).
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Daemon(DaemonError::Pairing {
                reason: FailReason::NoDeviceAnswered,
            }) => Some(
                "Likely causes:\n  \
                 - `paircode network pair generate` is no longer running on the other device \
                 (or showed another code): generate a new code there and join again;\n  \
                 - the devices are on different networks: start this daemon with the \
                 `--bootstrap` line the other device's `paircode status` prints;\n  \
                 - a firewall drops mDNS (UDP 5353) or the daemon's TCP port (see the README).",
            ),
            _ => None,
        }
    }

    /// The `error` member of the JSON envelope.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            kind: self.kind().to_string(),
            message: self.to_string(),
            exit: self.exit_code(),
        }
    }
}

/// The socket's errors, a closed connection told apart because it is the common one.
impl From<FrameError> for CliError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Closed => CliError::DaemonHungUp,
            e @ (FrameError::TooLarge { .. }
            | FrameError::Version(_)
            | FrameError::Malformed(_)
            | FrameError::Io(_)) => CliError::Ipc(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_failures_keep_their_codes_and_the_cores_words() {
        let cases = [
            (FailReason::CodeExpired, 8, "code_expired"),
            (FailReason::NoDeviceAnswered, 9, "no_device_answered"),
            (FailReason::Cancelled, 11, "cancelled"),
        ];
        for (reason, exit, kind) in cases {
            let words = reason.to_string();
            let e = CliError::from(DaemonError::from(NetError::from(reason)));
            assert_eq!(e.exit_code(), exit);
            assert_eq!(e.kind(), kind);
            assert_eq!(e.to_string(), words);
        }
    }
}
