//! Tunables of a pairing session. Defaults suit a person reading a code aloud on a LAN.

use std::time::Duration;

/// Timeouts and limits of one pairing session; see [`Config::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long a generated code stays valid (initiator).
    pub code_ttl: Duration,
    /// Complete without asking the local user to confirm (both).
    pub auto_accept: bool,
    /// How long a joiner searches before giving up with "no device answered" (joiner).
    pub join_timeout: Duration,
    /// How long one attempt may wait for the next message before it is abandoned (both).
    pub attempt_timeout: Duration,
    /// How soon a joiner asks a peer again after it said it holds no session (joiner).
    pub retry_interval: Duration,
    /// How often a searching joiner repeats its DHT lookup (joiner).
    pub lookup_interval: Duration,
    /// How long the local user has to answer a confirmation (both); a joiner that proved
    /// the code also waits this long for the initiator's verdict (keep it equal on both).
    pub confirm_timeout: Duration,
    /// How long the embedder may take to answer `Action::Store` (both). A save is a few
    /// file writes; past this the pairing is treated as not stored.
    pub store_timeout: Duration,
    /// Failed proofs or malformed messages a peer may send before it is blocked (initiator).
    pub max_failures_per_peer: u32,
    /// How long a peer stays blocked (initiator).
    pub failure_block: Duration,
    /// How many peers a joiner talks to at the same time (joiner). A `Join` is cheap, so
    /// this is large: peers that never answer must not keep the initiator waiting.
    pub parallel_attempts: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            code_ttl: Duration::from_secs(300),
            auto_accept: false,
            join_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(3),
            retry_interval: Duration::from_secs(1),
            lookup_interval: Duration::from_secs(2),
            confirm_timeout: Duration::from_secs(120),
            store_timeout: Duration::from_secs(10),
            max_failures_per_peer: 5,
            failure_block: Duration::from_secs(60),
            parallel_attempts: 128,
        }
    }
}
