//! Where peers can be dialed, as learnt from mDNS, identify, Kademlia and the bootstrap
//! list; bounded, because any peer can connect and advertise anything: at most
//! [`MAX_PER_PEER`] addresses per peer (the newest) and [`MAX_PEERS`] peers, the one
//! learnt or dialed least recently making room for a new one (never a spared peer: a
//! paired device or a bootstrap peer).

use std::collections::{HashMap, VecDeque};

use libp2p::{Multiaddr, PeerId as Libp2pPeerId};

/// Addresses kept per peer; also how many of a peer's advertised addresses are looked at.
pub(super) const MAX_PER_PEER: usize = 8;
/// Peers whose addresses are kept.
pub(super) const MAX_PEERS: usize = 1024;

struct Entry {
    addrs: VecDeque<Multiaddr>,
    /// When this peer was last learnt about or dialed, as a count of such events.
    touched: u64,
}

pub(super) struct AddressBook {
    peers: HashMap<Libp2pPeerId, Entry>,
    clock: u64,
    max_peers: usize,
}

impl AddressBook {
    pub(super) fn new() -> Self {
        AddressBook::with_max_peers(MAX_PEERS)
    }

    fn with_max_peers(max_peers: usize) -> Self {
        AddressBook {
            peers: HashMap::new(),
            clock: 0,
            max_peers,
        }
    }

    /// Remembers `addr` for `peer`; `spared` tells which peers must not be forgotten.
    pub(super) fn learn(
        &mut self,
        peer: Libp2pPeerId,
        addr: Multiaddr,
        spared: impl Fn(&Libp2pPeerId) -> bool,
    ) {
        self.clock += 1;
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.max_peers {
            let oldest = self
                .peers
                .iter()
                .filter(|(p, _)| !spared(p))
                .min_by_key(|(_, e)| e.touched)
                .map(|(p, _)| *p);
            match oldest {
                Some(oldest) => {
                    self.peers.remove(&oldest);
                }
                // Only spared peers: they are few (paired devices), let the book grow.
                None if !spared(&peer) => return,
                None => {}
            }
        }
        let entry = self.peers.entry(peer).or_insert_with(|| Entry {
            addrs: VecDeque::new(),
            touched: 0,
        });
        entry.touched = self.clock;
        if entry.addrs.contains(&addr) {
            return;
        }
        if entry.addrs.len() >= MAX_PER_PEER {
            entry.addrs.pop_front();
        }
        entry.addrs.push_back(addr);
    }

    /// The addresses to dial `peer` with; the peer counts as recently used.
    pub(super) fn for_dial(&mut self, peer: &Libp2pPeerId) -> Vec<Multiaddr> {
        self.clock += 1;
        match self.peers.get_mut(peer) {
            Some(entry) => {
                entry.touched = self.clock;
                entry.addrs.iter().cloned().collect()
            }
            None => Vec::new(),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: usize) -> Multiaddr {
        format!("/ip4/10.0.{}.{}/tcp/4001", n / 250, n % 250)
            .parse()
            .unwrap()
    }

    #[test]
    fn addresses_and_peers_are_bounded() {
        let mut book = AddressBook::with_max_peers(3);
        let paired = Libp2pPeerId::random();
        let spared = |p: &Libp2pPeerId| *p == paired;
        book.learn(paired, addr(0), spared);
        for n in 0..100 {
            book.learn(Libp2pPeerId::random(), addr(n), spared);
        }
        assert_eq!(book.len(), 3);
        assert_eq!(book.for_dial(&paired), vec![addr(0)]);

        let noisy = Libp2pPeerId::random();
        for n in 0..250 {
            book.learn(noisy, addr(n), spared);
        }
        let kept = book.for_dial(&noisy);
        assert_eq!(kept.len(), MAX_PER_PEER);
        assert_eq!(kept.last(), Some(&addr(249)));
        assert_eq!(book.len(), 3);
    }
}
