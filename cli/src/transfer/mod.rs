//! `paircode send`: files, directories and texts to a paired device over an application
//! stream (`Node::connect`/`Node::accept`), verified end to end with SHA-256.
//!
//! - [`wire`]: the frames on the stream (docs/PROTOCOL.md, "Sending to a paired device").
//! - [`plan`]: what the sender sends, from the paths it was given.
//! - [`names`]: the receiver's check of the names it is sent, and where they land.
//! - [`send`] and [`receive`]: the two ends of one stream.
//! - [`partial`]: half-received files kept for resuming.
//! - `reader`: the sender's disk side (reading and hashing), on a thread of its own.
//! - `sink` and `writeback`: the receiver's disk side, on a thread of its own.
//! - [`log`]: what arrived, for `paircode received`.
//! - [`command`]: the CLI's side of `send`, `received` and `network receive`.

pub mod command;
mod error;
pub mod log;
pub mod names;
pub mod partial;
pub mod plan;
mod reader;
pub mod receive;
pub mod send;
mod sink;
pub mod wire;
mod writeback;

pub use error::{Refusal, TransferError};

/// The stream protocol. Outside `/paircode/`, which the node reserves for its own.
/// `/2`: the SHA-256 follows an item's bytes, and a resume is keyed on the sender's file id.
pub const PROTOCOL: &str = "/paircode-send/2";
