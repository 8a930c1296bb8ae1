//! Tunables of a pairing session. Defaults suit a person reading a code aloud on a LAN.

use std::time::Duration;

/// The longest any duration of a session may be: a day, far beyond any sensible code
/// lifetime or timeout. A longer one is taken as this, so that no `now + duration` inside
/// the machines can overflow `Instant` (which panics), whatever an embedder passes in.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

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
    /// How soon a joiner sends again to a peer its last send could not reach (the
    /// connection failed or closed); doubled after each such failure in a row, up to
    /// `retry_interval` (joiner).
    pub redial_interval: Duration,
    /// How long after its start a joiner with peers at hand makes its first DHT lookup
    /// (joiner): they are asked first, and one on the same LAN answers well within this. A
    /// joiner with none looks up at once.
    pub first_lookup_delay: Duration,
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
            redial_interval: Duration::from_millis(25),
            first_lookup_delay: Duration::from_millis(50),
            lookup_interval: Duration::from_secs(2),
            confirm_timeout: Duration::from_secs(120),
            store_timeout: Duration::from_secs(10),
            max_failures_per_peer: 5,
            failure_block: Duration::from_secs(60),
            parallel_attempts: 128,
        }
    }
}

impl Config {
    /// The wait after `failures` failures in a row: `redial_interval`, doubled for each
    /// earlier one, at most `cap` (the joiner's redials and repeated lookups).
    pub(crate) fn backoff(&self, failures: u32, cap: Duration) -> Duration {
        self.redial_interval
            .saturating_mul(1 << failures.min(16))
            .min(cap)
    }

    /// This configuration with every duration at most [`MAX_DURATION`]; the machines run on
    /// it, never on durations as given.
    pub fn bounded(self) -> Self {
        let cap = |d: Duration| d.min(MAX_DURATION);
        Config {
            code_ttl: cap(self.code_ttl),
            join_timeout: cap(self.join_timeout),
            attempt_timeout: cap(self.attempt_timeout),
            retry_interval: cap(self.retry_interval),
            redial_interval: cap(self.redial_interval),
            first_lookup_delay: cap(self.first_lookup_delay),
            lookup_interval: cap(self.lookup_interval),
            confirm_timeout: cap(self.confirm_timeout),
            store_timeout: cap(self.store_timeout),
            failure_block: cap(self.failure_block),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::Fixture;
    use crate::{Action, Pairing};

    use super::*;

    /// `--expires 9223372036854775807` once reached the initiator as a 2^63 s code
    /// lifetime, and `now + ttl` panicked inside the network task.
    #[test]
    fn a_code_ttl_of_2_pow_63_seconds_does_not_panic() {
        let mut f = Fixture::new();
        let huge = Duration::from_secs(1 << 63);
        f.cfg = Config {
            code_ttl: huge,
            join_timeout: huge,
            attempt_timeout: huge,
            retry_interval: huge,
            redial_interval: huge,
            first_lookup_delay: huge,
            lookup_interval: huge,
            confirm_timeout: huge,
            store_timeout: huge,
            failure_block: huge,
            ..Config::default()
        };
        let mut initiator = f.initiator();
        match initiator.poll_action() {
            Some(Action::Publish { until, .. }) => assert_eq!(until, f.now + MAX_DURATION),
            other => panic!("expected Publish, got {other:?}"),
        }
        assert_eq!(initiator.poll_timeout(), Some(f.now + MAX_DURATION));
        let mut joiner = f.joiner();
        while joiner.poll_action().is_some() {}
        assert!(joiner.poll_timeout().is_some());
        assert!(matches!(joiner, Pairing::Joiner(_)));
    }

    #[test]
    fn ordinary_durations_are_kept() {
        assert_eq!(Config::default().bounded(), Config::default());
    }
}
