#![doc = include_str!("../README.md")]
// paircode: futures 0.3.31 deprecated `Receiver::try_next`, which shared.rs calls; a path
// dependency's warnings show in every build of the workspace.
#![allow(deprecated)]

mod behaviour;
mod control;
mod handler;
mod shared;
mod upgrade;

pub use behaviour::{AlreadyRegistered, Behaviour};
pub use control::{Control, IncomingStreams, OpenStreamError};
