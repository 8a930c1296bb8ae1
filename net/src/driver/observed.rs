//! Confirming our own addresses from what peers observe, without a meeting point.
//!
//! libp2p-kad 0.47 puts only *confirmed external* addresses into the provider records it
//! sends; with none, a record holder answers with whatever address its routing table has
//! for us, or drops us from its answer, and a joiner learns our PeerId but nothing to dial
//! (measured: 12 of 48 joins failed in a 40-node private DHT). On a LAN or in a private
//! DHT nothing else confirms an address: AutoNAT runs only with meeting points.
//!
//! The rule: an address is confirmed once [`CONFIRMATIONS`] distinct peers reported,
//! through identify, that they reach us at it, and its port is one we listen on. Why these
//! two conditions:
//! - Several peers: one peer alone could make us advertise any address (pointing joiners'
//!   dials at a third party); two independent observations of the same address are what
//!   libp2p's own AutoNAT-less setups use as evidence, and on a LAN every inbound
//!   connection gives one.
//! - A listen port: our outgoing dials leave from fresh ports (see `transport`), so their
//!   observed addresses are ephemeral and never reachable; an inbound connection, or a
//!   dial that kept the listen port through a port-preserving NAT, is observed at a port
//!   that accepts connections.
//!
//! Listen addresses themselves are not confirmed blindly: an unspecified or private
//! listen address says nothing about what others can reach.

use std::collections::HashSet;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Distinct peers that must report an address before it is confirmed.
pub(super) const CONFIRMATIONS: usize = 2;
/// Unconfirmed addresses remembered; any peer can report anything, so the oldest report
/// makes room.
const MAX_CANDIDATES: usize = 16;
/// Addresses confirmed this way; a device has a handful of interfaces.
const MAX_CONFIRMED: usize = 8;

#[derive(Default)]
pub(super) struct Observed {
    /// Address → the peers that reported it, oldest candidate first.
    candidates: Vec<(Multiaddr, HashSet<PeerId>)>,
    confirmed: HashSet<Multiaddr>,
}

impl Observed {
    /// `peer` says it reaches us at `addr`. Returns the address if this report confirms it.
    pub(super) fn report(
        &mut self,
        peer: PeerId,
        addr: Multiaddr,
        listen_ports: &HashSet<u16>,
    ) -> Option<Multiaddr> {
        let addr = without_peer_id(addr);
        if self.confirmed.contains(&addr) || self.confirmed.len() >= MAX_CONFIRMED {
            return None;
        }
        if !tcp_port(&addr).is_some_and(|port| listen_ports.contains(&port)) {
            return None;
        }
        let i = match self.candidates.iter().position(|(a, _)| *a == addr) {
            Some(i) => i,
            None => {
                if self.candidates.len() >= MAX_CANDIDATES {
                    self.candidates.remove(0);
                }
                self.candidates.push((addr.clone(), HashSet::new()));
                self.candidates.len() - 1
            }
        };
        let peers = &mut self.candidates[i].1;
        peers.insert(peer);
        if peers.len() < CONFIRMATIONS {
            return None;
        }
        self.candidates.remove(i);
        self.confirmed.insert(addr.clone());
        Some(addr)
    }

    /// Forgets confirmed addresses on `port` (its listener is gone) and returns them.
    pub(super) fn listen_port_closed(&mut self, port: u16) -> Vec<Multiaddr> {
        let gone: Vec<Multiaddr> = self
            .confirmed
            .iter()
            .filter(|a| tcp_port(a) == Some(port))
            .cloned()
            .collect();
        for addr in &gone {
            self.confirmed.remove(addr);
        }
        self.candidates.retain(|(a, _)| tcp_port(a) != Some(port));
        gone
    }
}

/// The TCP port of a direct address (none for a circuit).
pub(super) fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Tcp(p) => port = Some(p),
            Protocol::P2pCircuit => return None,
            _ => {}
        }
    }
    port
}

fn without_peer_id(mut addr: Multiaddr) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn two_distinct_peers_on_a_listen_port_confirm() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        let (a, b) = (PeerId::random(), PeerId::random());
        let at = addr("/ip4/192.168.1.7/tcp/4001");
        assert_eq!(observed.report(a, at.clone(), &ports), None);
        // The same peer again is no second opinion.
        assert_eq!(observed.report(a, at.clone(), &ports), None);
        assert_eq!(observed.report(b, at.clone(), &ports), Some(at.clone()));
        // Confirmed once.
        assert_eq!(observed.report(PeerId::random(), at.clone(), &ports), None);
        assert_eq!(observed.listen_port_closed(4001), vec![at]);
    }

    #[test]
    fn ephemeral_ports_and_circuits_are_never_confirmed() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        for _ in 0..4 {
            let ephemeral = addr("/ip4/198.51.100.9/tcp/53211");
            assert_eq!(observed.report(PeerId::random(), ephemeral, &ports), None);
            let circuit = addr("/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit");
            assert_eq!(observed.report(PeerId::random(), circuit, &ports), None);
        }
    }

    #[test]
    fn reports_are_bounded() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        for i in 0..1000u32 {
            let a = addr(&format!("/ip4/10.{}.{}.1/tcp/4001", i / 256, i % 256));
            observed.report(PeerId::random(), a, &ports);
        }
        assert!(observed.candidates.len() <= MAX_CANDIDATES);
        assert!(observed.confirmed.is_empty());
    }
}
