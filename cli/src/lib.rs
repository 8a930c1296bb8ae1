//! The paircode command-line tool and daemon. The binary (`main.rs`) is the only place
//! errors become exit codes and messages; everything here returns typed errors.

pub mod client;
pub mod daemon;
pub mod devices;
pub mod exit;
pub mod instance;
pub mod ipc;
pub mod lock;
mod logging;
pub mod password;
pub mod progress;
pub mod start;
pub mod store;
