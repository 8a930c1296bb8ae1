//! Test harness for paircode-core: a deterministic simulated network of peers driving
//! `paircode_core::Pairing` state machines, an adversary that replays, relays and guesses,
//! and checkers for the invariants of docs/PROTOCOL.md §6.
//!
//! Everything is a function of one seed: latency, loss, duplication, reordering, identities,
//! codes and the attacker's choices all come from ChaCha20 streams of it, and time is
//! virtual, so any failing run can be replayed exactly.

pub mod attacker;
pub mod clock;
pub mod garbage;
pub mod ids;
pub mod invariants;
pub mod net;
pub mod node;
pub mod random;
pub mod record;
pub mod scenario;
pub mod schedule;
pub mod sim;
pub mod transcript;
