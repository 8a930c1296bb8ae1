//! The test bed's errors: one enum for its callers (tests, benchmarks), each variant the
//! typed error of the part that failed.

use crate::hammer::HammerError;
use crate::lab::LabError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Hammer(#[from] HammerError),
    #[error("starting a node: {0}")]
    Node(#[from] paircode_net::Error),
    #[error(transparent)]
    NodeArgs(#[from] NodeArgsError),
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
}

/// What `paircode-node` says about its command line.
#[derive(Debug, thiserror::Error)]
pub enum NodeArgsError {
    #[error("{0} needs a value")]
    MissingValue(String),
    #[error("unknown runtime {0:?} (tokio or async-std)")]
    UnknownRuntime(String),
    #[error("unknown flag {0}")]
    UnknownFlag(String),
    #[error("{flag} {value:?}: {reason}")]
    BadValue {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("{0} is required")]
    Required(&'static str),
}
