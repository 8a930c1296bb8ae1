//! Confirming our own addresses from what peers observe, without a meeting point.
//!
//! libp2p-kad 0.47 puts only *confirmed external* addresses into the provider records it
//! sends; with none, a record holder answers with whatever address its routing table has
//! for us, or drops us from its answer, and a joiner learns our PeerId but nothing to dial
//! (measured: 12 of 48 joins failed in a 40-node private DHT). On a LAN or in a private
//! DHT nothing else confirms an address: AutoNAT runs only with meeting points.
//!
//! The rule: an address is confirmed once peers connected from [`CONFIRMATIONS`] distinct
//! IP addresses reported, through identify, that they reach us at it, and its port is one
//! we listen on. Why these two conditions:
//! - Several witnesses: one peer alone could make us advertise any address (pointing
//!   joiners' dials at a third party); two independent observations of the same address
//!   are what libp2p's own AutoNAT-less setups use as evidence, and on a LAN every inbound
//!   connection gives one. Witnesses are counted by where their connection comes from, not
//!   by PeerId: identities are free, so one host minting PeerIds could otherwise confirm
//!   made-up addresses until the confirmed set is full and real ones no longer fit. A
//!   public IPv4 address counts by its /24 and a public IPv6 address by its /48, the
//!   blocks one party usually gets (an IPv6 /64 alone holds 2^64 addresses, so counting by
//!   address would let one host be any number of witnesses); a private or link-local
//!   address counts by itself, so that devices on one LAN confirm each other. On loopback
//!   every peer shares 127.0.0.1 and runs on this machine already, so there a witness is
//!   its PeerId (what the loopback DHT tests rely on).
//! - Few addresses per witness: a witness vouches for at most [`PER_WITNESS`] addresses at
//!   once (a real peer sees us at one, perhaps an IPv4 and an IPv6 one), so a party with
//!   several networks still fills only a few of the confirmed places, never all of them.
//! - A listen port: our outgoing dials leave from fresh ports (see `transport`), so their
//!   observed addresses are ephemeral and never reachable; an inbound connection, or a
//!   dial that kept the listen port through a port-preserving NAT, is observed at a port
//!   that accepts connections.
//!
//! Listen addresses themselves are not confirmed blindly: an unspecified or private
//! listen address says nothing about what others can reach.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Distinct witnesses (IP addresses) that must report an address before it is confirmed.
pub(super) const CONFIRMATIONS: usize = 2;
/// Unconfirmed addresses remembered; any peer can report anything, so the oldest report
/// makes room.
const MAX_CANDIDATES: usize = 16;
/// Addresses confirmed this way; a device has a handful of interfaces.
const MAX_CONFIRMED: usize = 8;
/// Addresses, candidate or confirmed, that one witness may vouch for at once.
pub(super) const PER_WITNESS: usize = 2;

/// Who vouches for an observation: a network (see the module docs), or, on loopback, a
/// peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Witness {
    Network(IpAddr),
    Local(PeerId),
}

impl Witness {
    /// The witness for a report from `peer`, connected from `ip`.
    pub(super) fn new(ip: IpAddr, peer: PeerId) -> Witness {
        if ip.is_loopback() {
            return Witness::Local(peer);
        }
        Witness::Network(match ip {
            IpAddr::V4(v4) if v4.is_private() || v4.is_link_local() => ip,
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                IpAddr::from([a, b, c, 0])
            }
            // Unique local (fc00::/7) and link-local (fe80::/10) addresses.
            IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => ip,
            IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => ip,
            IpAddr::V6(v6) => {
                let [a, b, c, ..] = v6.segments();
                IpAddr::from([a, b, c, 0, 0, 0, 0, 0])
            }
        })
    }
}

#[derive(Default)]
pub(super) struct Observed {
    /// Address → the witnesses that reported it, oldest candidate first.
    candidates: Vec<(Multiaddr, HashSet<Witness>)>,
    /// Confirmed address → the witnesses that confirmed it.
    confirmed: HashMap<Multiaddr, HashSet<Witness>>,
}

impl Observed {
    /// `witness` says it reaches us at `addr`. Returns the address if this report confirms
    /// it.
    pub(super) fn report(
        &mut self,
        witness: Witness,
        addr: Multiaddr,
        listen_ports: &HashSet<u16>,
    ) -> Option<Multiaddr> {
        let addr = without_peer_id(addr);
        if self.confirmed.contains_key(&addr) || self.confirmed.len() >= MAX_CONFIRMED {
            return None;
        }
        if !tcp_port(&addr).is_some_and(|port| listen_ports.contains(&port)) {
            return None;
        }
        let already = self
            .candidates
            .iter()
            .any(|(a, w)| *a == addr && w.contains(&witness));
        if !already && self.vouched_by(&witness) >= PER_WITNESS {
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
        let witnesses = &mut self.candidates[i].1;
        witnesses.insert(witness);
        if witnesses.len() < CONFIRMATIONS {
            return None;
        }
        let (_, witnesses) = self.candidates.remove(i);
        self.confirmed.insert(addr.clone(), witnesses);
        Some(addr)
    }

    /// How many addresses, candidate or confirmed, `witness` vouches for.
    fn vouched_by(&self, witness: &Witness) -> usize {
        let candidates = self.candidates.iter().map(|(_, w)| w);
        candidates
            .chain(self.confirmed.values())
            .filter(|w| w.contains(witness))
            .count()
    }

    /// Forgets confirmed addresses on `port` (its listener is gone) and returns them.
    pub(super) fn listen_port_closed(&mut self, port: u16) -> Vec<Multiaddr> {
        let gone: Vec<Multiaddr> = self
            .confirmed
            .keys()
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

/// The IP address of a connection's remote address (a relayed one's: the relay's).
pub(super) fn ip(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
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

    /// A witness at 10.0.0.N.
    fn host(n: u8) -> Witness {
        Witness::new(IpAddr::from([10, 0, 0, n]), PeerId::random())
    }

    /// A witness from a public address.
    fn public(ip: &str) -> Witness {
        Witness::new(ip.parse().unwrap(), PeerId::random())
    }

    #[test]
    fn two_distinct_hosts_on_a_listen_port_confirm() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        let (a, b) = (host(1), host(2));
        let at = addr("/ip4/192.168.1.7/tcp/4001");
        assert_eq!(observed.report(a, at.clone(), &ports), None);
        // The same host again is no second opinion.
        assert_eq!(observed.report(a, at.clone(), &ports), None);
        assert_eq!(observed.report(b, at.clone(), &ports), Some(at.clone()));
        // Confirmed once.
        assert_eq!(observed.report(host(3), at.clone(), &ports), None);
        assert_eq!(observed.listen_port_closed(4001), vec![at]);
    }

    /// One host minting identities: every report comes from the same IP address, so no
    /// made-up address is confirmed and the confirmed set stays free for real ones.
    #[test]
    fn fresh_identities_from_one_host_confirm_nothing() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        for i in 0..100u8 {
            let made_up = addr(&format!("/ip4/203.0.113.{i}/tcp/4001"));
            for _ in 0..CONFIRMATIONS {
                assert_eq!(observed.report(host(66), made_up.clone(), &ports), None);
            }
        }
        let real = addr("/ip4/192.168.1.7/tcp/4001");
        assert_eq!(observed.report(host(1), real.clone(), &ports), None);
        assert_eq!(observed.report(host(2), real.clone(), &ports), Some(real));
    }

    /// A public IPv4 /24 is one witness, and so is a public IPv6 /48, whichever of their
    /// addresses a report comes from.
    #[test]
    fn a_public_block_is_one_witness() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        let made_up = addr("/ip4/203.0.113.50/tcp/4001");
        for sender in ["198.51.100.1", "198.51.100.2", "198.51.100.250"] {
            assert_eq!(
                observed.report(public(sender), made_up.clone(), &ports),
                None
            );
        }
        let made_up_too = addr("/ip4/203.0.113.51/tcp/4001");
        for sender in ["2001:db8:1:2::1", "2001:db8:1:ffff::9", "2001:db8:1::7"] {
            assert_eq!(
                observed.report(public(sender), made_up_too.clone(), &ports),
                None
            );
        }
        // A second block confirms.
        let other = public("192.0.2.7");
        assert_eq!(
            observed.report(other, made_up.clone(), &ports),
            Some(made_up)
        );
    }

    /// A party with many networks still fills only a few confirmed places: each witness
    /// vouches for [`PER_WITNESS`] addresses at most, so real ones keep room.
    #[test]
    fn many_networks_fill_only_a_few_places() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        let (a, b) = (public("198.51.100.1"), public("192.0.2.1"));
        let mut confirmed = 0;
        for i in 0..100u8 {
            let made_up = addr(&format!("/ip4/203.0.113.{i}/tcp/4001"));
            observed.report(a, made_up.clone(), &ports);
            confirmed += usize::from(observed.report(b, made_up, &ports).is_some());
        }
        assert_eq!(confirmed, PER_WITNESS);
        let real = addr("/ip4/100.64.7.7/tcp/4001");
        assert_eq!(
            observed.report(public("8.8.8.8"), real.clone(), &ports),
            None
        );
        assert_eq!(
            observed.report(public("1.1.1.1"), real.clone(), &ports),
            Some(real)
        );
    }

    /// On loopback every peer comes from 127.0.0.1; there, distinct peers are witnesses.
    #[test]
    fn on_loopback_distinct_peers_confirm() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        let at = addr("/ip4/127.0.0.1/tcp/4001");
        let local = || Witness::new(IpAddr::from([127, 0, 0, 1]), PeerId::random());
        assert_eq!(observed.report(local(), at.clone(), &ports), None);
        assert_eq!(observed.report(local(), at.clone(), &ports), Some(at));
    }

    #[test]
    fn ephemeral_ports_and_circuits_are_never_confirmed() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        for _ in 0..4 {
            let ephemeral = addr("/ip4/198.51.100.9/tcp/53211");
            assert_eq!(observed.report(host(1), ephemeral, &ports), None);
            let circuit = addr("/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit");
            assert_eq!(observed.report(host(2), circuit, &ports), None);
        }
    }

    #[test]
    fn reports_are_bounded() {
        let mut observed = Observed::default();
        let ports = HashSet::from([4001]);
        for i in 0..1000u32 {
            let a = addr(&format!("/ip4/10.{}.{}.1/tcp/4001", i / 256, i % 256));
            observed.report(host((i % 250) as u8 + 1), a, &ports);
        }
        assert!(observed.candidates.len() <= MAX_CANDIDATES);
        assert!(observed.confirmed.is_empty());
    }
}
