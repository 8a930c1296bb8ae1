//! Per-peer accounting of failed attempts on the initiator.
//!
//! A wrong proof fails only its own attempt (`docs/PROTOCOL.md`), so without this a peer could
//! retry forever; with it, a peer that keeps failing is shut out for a while. The table is
//! bounded so that a flood of fresh peer ids cannot grow it without limit.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::identity::PeerId;

const MAX_TRACKED_PEERS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    max_failures: u32,
    block: Duration,
    peers: BTreeMap<PeerId, Record>,
}

impl RateLimiter {
    pub fn new(max_failures: u32, block: Duration) -> Self {
        RateLimiter {
            max_failures,
            block,
            peers: BTreeMap::new(),
        }
    }

    /// How many peers have a record.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_blocked(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers
            .get(peer)
            .and_then(|r| r.blocked_until)
            .is_some_and(|until| now < until)
    }

    pub fn record_failure(&mut self, peer: &PeerId, now: Instant) {
        if !self.peers.contains_key(peer) && self.peers.len() >= MAX_TRACKED_PEERS {
            self.evict(now);
        }
        let record = self.peers.entry(peer.clone()).or_insert(Record {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        // A block that has run out starts a fresh count.
        if record.blocked_until.is_some_and(|until| now >= until) {
            *record = Record {
                failures: 0,
                last: now,
                blocked_until: None,
            };
        }
        record.failures += 1;
        record.last = now;
        if record.failures >= self.max_failures {
            record.blocked_until = Some(now + self.block);
        }
    }

    fn evict(&mut self, now: Instant) {
        self.peers
            .retain(|_, r| r.blocked_until.is_some_and(|until| now < until));
        if self.peers.len() >= MAX_TRACKED_PEERS {
            if let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, r)| r.last)
                .map(|(p, _)| p.clone())
            {
                self.peers.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_then_forgives() {
        let now = Instant::now();
        let peer = PeerId::from_bytes(&[1]).unwrap();
        let mut limiter = RateLimiter::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            limiter.record_failure(&peer, now);
        }
        assert!(!limiter.is_blocked(&peer, now));
        limiter.record_failure(&peer, now);
        assert!(limiter.is_blocked(&peer, now));
        assert!(limiter.is_blocked(&peer, now + Duration::from_secs(9)));
        assert!(!limiter.is_blocked(&peer, now + Duration::from_secs(10)));
        limiter.record_failure(&peer, now + Duration::from_secs(10));
        assert!(!limiter.is_blocked(&peer, now + Duration::from_secs(10)));
    }

    #[test]
    fn table_is_bounded() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(3, Duration::from_secs(10));
        for i in 0..(MAX_TRACKED_PEERS as u32 + 100) {
            limiter.record_failure(&PeerId::from_bytes(&i.to_be_bytes()).unwrap(), now);
        }
        assert!(limiter.peers.len() <= MAX_TRACKED_PEERS);
    }
}
