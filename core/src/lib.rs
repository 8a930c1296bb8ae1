//! paircode-core: the pure, deterministic heart of paircode.
//!
//! It owns no sockets, reads no clock and draws no global randomness. The protocol it
//! implements — code words, key schedule, wire messages, the handshake — is specified in
//! `docs/PROTOCOL.md`.
//!
//! A device holds one [`PairingHost`]: it runs at most one pairing session at a time and
//! routes every incoming message to the right place (the session, a finished initiator
//! still answering repeats, or the answer of a device without a session).
//!
//! # The run loop
//!
//! The host never blocks and never acts on its own. The driver around it:
//!
//! 1. feeds every input with a `handle_*` method, passing the current time: messages
//!    ([`handle_message`](PairingHost::handle_message)), discovered peers
//!    ([`handle_peer`](PairingHost::handle_peer)), lost peers
//!    ([`handle_unreachable`](PairingHost::handle_unreachable)), the user's answers
//!    ([`handle_confirm`](PairingHost::handle_confirm),
//!    [`handle_cancel`](PairingHost::handle_cancel)), and whether a pairing it was asked to
//!    store ([`Action::Store`]) is saved ([`handle_stored`](PairingHost::handle_stored));
//! 2. after each input, carries out every [`Action`] that
//!    [`poll_action`](PairingHost::poll_action) returns, until it returns `None`;
//! 3. sleeps until [`poll_timeout`](PairingHost::poll_timeout) — asking again after every
//!    input, since any of them can move it — and then calls
//!    [`handle_timeout`](PairingHost::handle_timeout).
//!
//! Two devices pairing through that loop, with a perfect network in between and a clock
//! that jumps to the next timeout:
//!
//! ```
//! use std::time::Instant;
//!
//! use paircode_core::{
//!     Action, Code, Config, DeviceIdentity, DeviceInfo, LocalDevice, PairedDevice, PairingHost,
//!     Role,
//! };
//! use rand_core::OsRng;
//!
//! let device = |name: &str| LocalDevice {
//!     peer: DeviceIdentity::generate(&mut OsRng).peer_id(),
//!     info: DeviceInfo::new(name).unwrap(),
//! };
//! let (mut alice, mut bob) = (PairingHost::new(device("alice")), PairingHost::new(device("bob")));
//! let code = Code::generate(&mut OsRng); // Alice shows it, Bob types it in
//! let mut now = Instant::now();
//! let cfg = Config { auto_accept: true, ..Config::default() };
//! alice.start(Role::Initiator, cfg.clone(), &code, now, &mut OsRng).unwrap();
//! bob.start(Role::Joiner, cfg, &code, now, &mut OsRng).unwrap();
//! // Bob's discovery (mDNS or the DHT) finds Alice.
//! bob.handle_peer(&alice.local().peer, now);
//!
//! let (mut on_alice, mut on_bob) = (None, None);
//! while on_alice.is_none() || on_bob.is_none() {
//!     let acted = carry_out(&mut alice, &mut bob, now, &mut on_alice)
//!         | carry_out(&mut bob, &mut alice, now, &mut on_bob);
//!     if !acted {
//!         // Nothing to do but wait: sleep until the earliest timeout.
//!         now = [alice.poll_timeout(), bob.poll_timeout()].into_iter().flatten().min().unwrap();
//!         alice.handle_timeout(now);
//!         bob.handle_timeout(now);
//!     }
//! }
//! let (on_alice, on_bob) = (on_alice.unwrap(), on_bob.unwrap());
//! assert_eq!(on_alice.keys, on_bob.keys);
//! assert_eq!(on_bob.info.name, "alice");
//!
//! /// Carries out everything `me` asks for; what it sends reaches `other` at once (a real
//! /// driver hands it to the transport). Returns whether there was anything to do.
//! fn carry_out(
//!     me: &mut PairingHost,
//!     other: &mut PairingHost,
//!     now: Instant,
//!     paired: &mut Option<Box<PairedDevice>>,
//! ) -> bool {
//!     let mut acted = false;
//!     while let Some(action) = me.poll_action() {
//!         acted = true;
//!         match action {
//!             Action::Send { bytes, .. } => other.handle_message(&me.local().peer, &bytes, now),
//!             // Save it durably (a real embedder writes its device list), then say so: an
//!             // initiator acknowledges the pairing only after this.
//!             Action::Store(device) => {
//!                 let session = me.session().unwrap();
//!                 me.handle_stored(session, &device.peer, true, now);
//!             }
//!             Action::Completed(device) => *paired = Some(device),
//!             Action::Failed(reason) => panic!("{reason}"),
//!             // Publish, Lookup, Progress, …: the DHT and the UI, not needed here.
//!             _ => {}
//!         }
//!     }
//!     acted
//! }
//! ```
//!
//! Tests drive hosts the same way with `paircode_core::testing::Pair` (feature `testing`).

#![warn(missing_docs)]

mod action;
pub mod code;
mod config;
mod cookie;
pub mod device;
pub mod exporter;
mod handshake;
mod host;
pub mod identity;
mod initiator;
mod joiner;
pub mod keys;
pub mod messages;
pub mod name;
mod pairing;
pub mod presence;
mod rate_limit;
mod timer;
pub mod verification;

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
pub use config::{Config, MAX_DURATION};
pub use device::{DeviceInfo, PairedDevice, Role};
pub use exporter::export_key;
pub use host::{HostError, PairingHost, SessionId, LINGER};
pub use identity::{DeviceIdentity, PeerId};
pub use initiator::{Initiator, InitiatorState};
pub use joiner::{Joiner, JoinerState};
pub use keys::{DiscoveryId, SessionKeys};
pub use messages::{Message, RejectReason, MAX_MESSAGE_LEN, PROTOCOL_VERSION};
pub use pairing::{LocalDevice, Pairing};
pub use presence::{DeviceMessage, Presence, PresenceAction};
pub use timer::Timer;
pub use verification::Verification;
