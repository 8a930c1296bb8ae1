//! The wire model: how long a message takes, whether it is lost, duplicated or held back,
//! and which peers can reach each other at all.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use paircode_core::PeerId;
use rand_core::RngCore;

use crate::node::NodeId;
use crate::random::{chance, duration_between};

#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// One-way latency of a message, drawn uniformly from `latency.0..=latency.1`.
    pub latency: (Duration, Duration),
    /// Probability that one copy of a message never arrives.
    pub loss: f64,
    /// Probability that the network delivers a second copy (with its own latency).
    pub duplicate: f64,
    /// Probability that a copy is held back by up to `reorder_delay` on top of its latency,
    /// so that later messages overtake it.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// How long a DHT lookup takes to report a provider.
    pub lookup_latency: (Duration, Duration),
    /// How long after a joiner starts mDNS reports each device on the LAN.
    pub discovery_delay: (Duration, Duration),
}

impl NetConfig {
    /// A LAN that never misbehaves.
    pub fn perfect() -> Self {
        NetConfig {
            latency: (Duration::from_millis(1), Duration::from_millis(1)),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            lookup_latency: (Duration::from_millis(5), Duration::from_millis(5)),
            discovery_delay: (Duration::from_millis(2), Duration::from_millis(2)),
        }
    }

    /// The arrival delays of the copies of one message that survive; empty if all are lost.
    pub fn draw_copies(&self, rng: &mut impl RngCore) -> Vec<Duration> {
        let copies = if chance(rng, self.duplicate) { 2 } else { 1 };
        let mut delays = Vec::with_capacity(copies);
        for _ in 0..copies {
            let lost = chance(rng, self.loss);
            let mut delay = duration_between(rng, self.latency.0, self.latency.1);
            if chance(rng, self.reorder) {
                delay += duration_between(rng, Duration::ZERO, self.reorder_delay);
            }
            if !lost {
                delays.push(delay);
            }
        }
        delays
    }

    /// The longest a surviving copy can take, for choosing timeouts around it.
    pub fn max_delay(&self) -> Duration {
        let held = if self.reorder > 0.0 {
            self.reorder_delay
        } else {
            Duration::ZERO
        };
        self.latency.1 + held
    }
}

/// Who can reach whom: everyone, except pairs that were cut and peers confined to a few
/// others (a remote attacker that reaches only Alice, say, without listing a million pairs).
#[derive(Debug, Clone, Default)]
pub struct Links {
    cut: BTreeSet<(NodeId, NodeId)>,
    confined: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Nodes that refuse connections until the given offset.
    refusing: BTreeMap<NodeId, Duration>,
}

impl Links {
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a.min(b), a.max(b)));
    }

    /// `node` reaches only `peers` (and they it), from now on.
    pub fn confine(&mut self, node: NodeId, peers: impl IntoIterator<Item = NodeId>) {
        self.confined.insert(node, peers.into_iter().collect());
    }

    pub fn refuse_until(&mut self, node: NodeId, until: Duration) {
        self.refusing.insert(node, until);
    }

    /// Whether `node` refuses connections at `at`.
    pub fn refusing(&self, node: NodeId, at: Duration) -> bool {
        self.refusing.get(&node).is_some_and(|until| at < *until)
    }

    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        let allows = |x: NodeId, y: NodeId| self.confined.get(&x).is_none_or(|s| s.contains(&y));
        !self.cut.contains(&(a.min(b), a.max(b))) && allows(a, b) && allows(b, a)
    }
}

/// One message as it was sent, seen by the attacker's tap and kept for replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub at: Duration,
    pub from: PeerId,
    pub to: PeerId,
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn perfect_network_delivers_exactly_once() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let net = NetConfig::perfect();
        for _ in 0..100 {
            assert_eq!(net.draw_copies(&mut rng), vec![Duration::from_millis(1)]);
        }
    }

    #[test]
    fn total_loss_delivers_nothing() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let net = NetConfig {
            loss: 1.0,
            duplicate: 1.0,
            ..NetConfig::perfect()
        };
        assert!(net.draw_copies(&mut rng).is_empty());
    }

    #[test]
    fn delays_stay_within_bounds() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let net = NetConfig {
            latency: (Duration::from_millis(10), Duration::from_millis(50)),
            duplicate: 0.5,
            reorder: 0.5,
            reorder_delay: Duration::from_millis(100),
            ..NetConfig::perfect()
        };
        for _ in 0..1000 {
            for d in net.draw_copies(&mut rng) {
                assert!(d >= Duration::from_millis(10) && d <= net.max_delay());
            }
        }
    }

    #[test]
    fn confinement_is_symmetric() {
        let mut links = Links::default();
        links.confine(5, [0]);
        assert!(links.connected(5, 0) && links.connected(0, 5));
        assert!(!links.connected(5, 1) && !links.connected(1, 5));
        assert!(links.connected(1, 2));
    }

    #[test]
    fn links_are_symmetric() {
        let mut links = Links::default();
        links.cut(3, 1);
        assert!(!links.connected(1, 3));
        assert!(!links.connected(3, 1));
        assert!(links.connected(1, 2));
    }
}
