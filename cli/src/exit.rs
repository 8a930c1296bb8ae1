//! Exit codes: each failure a script may want to tell apart has its own.

use std::fmt;

use crate::ipc::{ErrorKind, IpcError};
use crate::lock::LockError;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Failure = 1,
    Usage = 2,
    NotRunning = 3,
    WrongPassword = 4,
    CorruptStore = 5,
    AlreadyRunning = 6,
    BadCode = 7,
    CodeExpired = 8,
    NoDeviceAnswered = 9,
    Rejected = 10,
    Cancelled = 11,
    NotInitialised = 12,
    UnknownDevice = 13,
    Busy = 14,
}

/// An error at the CLI's edge: what to print and how to exit.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let exit = match e {
            StoreError::WrongPassword { .. } => Exit::WrongPassword,
            StoreError::Corrupt { .. } => Exit::CorruptStore,
            _ => Exit::Failure,
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<LockError> for CliError {
    fn from(e: LockError) -> Self {
        let exit = match e {
            LockError::AlreadyRunning { .. } => Exit::AlreadyRunning,
            LockError::Io { .. } => Exit::Failure,
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<IpcError> for CliError {
    fn from(e: IpcError) -> Self {
        let exit = match e.kind {
            ErrorKind::NoDeviceAnswered => Exit::NoDeviceAnswered,
            ErrorKind::CodeExpired => Exit::CodeExpired,
            ErrorKind::Rejected => Exit::Rejected,
            ErrorKind::Cancelled => Exit::Cancelled,
            ErrorKind::Busy => Exit::Busy,
            ErrorKind::UnknownDevice => Exit::UnknownDevice,
            ErrorKind::BadRequest => Exit::Usage,
            ErrorKind::NoSession | ErrorKind::Transport | ErrorKind::Internal => Exit::Failure,
        };
        CliError::new(exit, e.message)
    }
}

impl From<crate::password::PasswordError> for CliError {
    fn from(e: crate::password::PasswordError) -> Self {
        CliError::new(Exit::Usage, e.to_string())
    }
}
