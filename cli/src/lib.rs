//! The paircode command-line tool and daemon. Everything returns typed errors; the binary
//! prints them (`output`) and exits with [`error::CliError::exit_code`], the one place an
//! error becomes an exit code.

pub mod addr;
pub mod args;
pub mod client;
pub mod code_prompt;
pub mod daemon;
pub mod devices;
pub mod error;
mod fd_limit;
pub mod instance;
pub mod interrupt;
pub mod ipc;
mod ipc_server;
pub mod lock;
mod log_file;
mod log_limit;
mod logging;
pub mod meeting_points;
mod memory;
pub mod output;
pub mod password;
pub mod progress;
pub mod relay;
pub mod start;
pub mod store;
pub mod transfer;
