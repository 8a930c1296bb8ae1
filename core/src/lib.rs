//! paircode-core: the pure, deterministic heart of paircode.
//!
//! It owns no sockets, reads no clock and draws no global randomness: the driver passes in
//! time (`now`) and an RNG, feeds events with `handle_*`, carries out what `poll_action`
//! returns until it yields `None`, and calls `handle_timeout` once `poll_timeout` is due.
//! The protocol is DESIGN §2–§6 of the paircode design.

mod action;
pub mod code;
mod config;
pub mod device;
mod handshake;
pub mod host;
pub mod identity;
pub mod initiator;
pub mod joiner;
pub mod keys;
pub mod messages;
mod pairing;
mod rate_limit;
mod timer;

#[cfg(test)]
mod initiator_tests;
#[cfg(test)]
mod joiner_tests;
#[cfg(test)]
mod test_support;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use action::{Action, FailReason, Progress};
pub use code::{Code, CodeError};
pub use config::Config;
pub use device::{DeviceInfo, PairedDevice, Role};
pub use host::{HostError, PairingHost, SessionId, LINGER};
pub use identity::{DeviceIdentity, PeerId};
pub use keys::{DiscoveryId, SessionKeys};
pub use messages::{Message, RejectReason, MAX_MESSAGE_LEN, PROTOCOL_VERSION};
pub use pairing::{LocalDevice, Pairing};
pub use timer::Timer;
