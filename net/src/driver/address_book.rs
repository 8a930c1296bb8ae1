//! Where peers can be dialed, as learnt from mDNS, identify, Kademlia and the bootstrap
//! list; bounded, because any peer can connect and advertise anything: at most
//! [`MAX_PER_PEER`] addresses per peer (the newest) and [`MAX_PEERS`] peers, the one
//! learnt or dialed least recently making room for a new one (never a spared peer: a
//! paired device or a bootstrap peer).
//!
//! The book is allocated once, when the node starts, and then never allocates again:
//! each peer's addresses are byte arrays inside a fixed slot, and the index from peer to
//! slot has its capacity reserved up front. A flood of fresh identities thus only
//! rewrites the book in place. Kept as heap objects (a map entry, a queue and two
//! allocations per address), the book's ~17,000 small allocations made during a flood
//! were scattered among the flood's garbage, and each pinned a page the allocator could
//! otherwise return: the daemon stayed megabytes above its baseline for good.

use std::collections::HashMap;

use libp2p::{Multiaddr, PeerId as Libp2pPeerId};

/// Addresses kept per peer; also how many of a peer's advertised addresses are looked at.
pub(super) const MAX_PER_PEER: usize = 8;
/// Peers whose addresses are kept. The book is for the peers this node dials by itself:
/// its paired devices and bootstrap peers (always kept) and the few a pairing or a DHT
/// search just found; the DHT's own routing table keeps its peers' addresses, and dials
/// use those too. As many as the node holds connections at most
/// ([`crate::ConnectionLimits`]).
pub(super) const MAX_PEERS: usize = 256;
/// Longest address kept, in bytes (its binary form). Room for a relayed address over
/// IPv6 and QUIC (`/ip6/…/udp/…/quic-v1/p2p/RELAY/p2p-circuit/p2p/PEER`, 106 bytes) or
/// one naming a host of 70 characters; a longer one is not kept, and a dial to that peer
/// uses the other addresses the book and the node's behaviours know.
pub(super) const MAX_ADDRESS_LEN: usize = 127;

/// One address, in its binary form.
#[derive(Clone, Copy)]
struct InlineAddr {
    len: u8,
    bytes: [u8; MAX_ADDRESS_LEN],
}

impl InlineAddr {
    const EMPTY: InlineAddr = InlineAddr {
        len: 0,
        bytes: [0; MAX_ADDRESS_LEN],
    };

    fn new(addr: &Multiaddr) -> Option<InlineAddr> {
        let raw = addr.as_ref();
        let len = u8::try_from(raw.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_ADDRESS_LEN)?;
        let mut inline = InlineAddr::EMPTY;
        inline.len = len;
        inline.bytes[..raw.len()].copy_from_slice(raw);
        Some(inline)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A peer's place in the book.
#[derive(Clone, Copy)]
struct Slot {
    /// `None`: free.
    peer: Option<Libp2pPeerId>,
    /// The newest last; only the first `count` are addresses.
    addrs: [InlineAddr; MAX_PER_PEER],
    count: usize,
    /// When this peer was last learnt about or dialed, as a count of such events.
    touched: u64,
}

impl Slot {
    const FREE: Slot = Slot {
        peer: None,
        addrs: [InlineAddr::EMPTY; MAX_PER_PEER],
        count: 0,
        touched: 0,
    };

    fn addrs(&self) -> &[InlineAddr] {
        &self.addrs[..self.count]
    }

    fn add(&mut self, addr: InlineAddr) {
        if self.addrs().iter().any(|a| a.as_bytes() == addr.as_bytes()) {
            return;
        }
        if self.count == MAX_PER_PEER {
            self.addrs.rotate_left(1);
            self.count -= 1;
        }
        self.addrs[self.count] = addr;
        self.count += 1;
    }
}

pub(super) struct AddressBook {
    /// Allocated in full at the start; grows only when every slot holds a
    /// spared peer (a user with that many paired devices), which no remote peer can cause.
    slots: Vec<Slot>,
    /// Which slot holds each peer. Reserved for twice the peers: a full table with
    /// deleted entries is then rehashed in place instead of grown (hashbrown grows it only
    /// when it holds more than half of its capacity).
    index: HashMap<Libp2pPeerId, usize>,
    clock: u64,
}

impl AddressBook {
    pub(super) fn new() -> Self {
        AddressBook::with_max_peers(MAX_PEERS)
    }

    fn with_max_peers(max_peers: usize) -> Self {
        AddressBook {
            slots: vec![Slot::FREE; max_peers],
            index: HashMap::with_capacity(2 * max_peers),
            clock: 0,
        }
    }

    /// Remembers `addr` for `peer`; `spared` tells which peers must not be forgotten.
    /// An address longer than [`MAX_ADDRESS_LEN`] bytes is not kept.
    pub(super) fn learn(
        &mut self,
        peer: Libp2pPeerId,
        addr: Multiaddr,
        spared: impl Fn(&Libp2pPeerId) -> bool,
    ) {
        self.clock += 1;
        let Some(addr) = InlineAddr::new(&addr) else {
            return;
        };
        let slot = match self.index.get(&peer) {
            Some(&slot) => slot,
            None => match self.free_slot(&peer, spared) {
                Some(slot) => {
                    self.slots[slot].peer = Some(peer);
                    self.index.insert(peer, slot);
                    slot
                }
                None => return,
            },
        };
        let slot = &mut self.slots[slot];
        slot.touched = self.clock;
        slot.add(addr);
    }

    /// A slot for a new peer: a free one, else the least recently used one of a peer not
    /// spared; else, for a spared `peer` only, a new one.
    fn free_slot(
        &mut self,
        peer: &Libp2pPeerId,
        spared: impl Fn(&Libp2pPeerId) -> bool,
    ) -> Option<usize> {
        if let Some(free) = self.slots.iter().position(|s| s.peer.is_none()) {
            return Some(free);
        }
        let oldest = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.peer.is_some_and(|p| !spared(&p)))
            .min_by_key(|(_, s)| s.touched)
            .map(|(i, _)| i);
        match oldest {
            Some(oldest) => {
                if let Some(gone) = self.slots[oldest].peer {
                    self.index.remove(&gone);
                }
                self.slots[oldest] = Slot::FREE;
                Some(oldest)
            }
            // Only spared peers: they are few (paired devices), let the book grow.
            None if spared(peer) => {
                self.slots.push(Slot::FREE);
                Some(self.slots.len() - 1)
            }
            None => None,
        }
    }

    /// The addresses to dial `peer` with; the peer counts as recently used.
    pub(super) fn for_dial(&mut self, peer: &Libp2pPeerId) -> Vec<Multiaddr> {
        self.clock += 1;
        let Some(&slot) = self.index.get(peer) else {
            return Vec::new();
        };
        let slot = &mut self.slots[slot];
        slot.touched = self.clock;
        slot.addrs()
            .iter()
            .filter_map(|a| Multiaddr::try_from(a.as_bytes().to_vec()).ok())
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.index.len()
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

    #[test]
    fn the_least_recently_used_peer_makes_room() {
        let mut book = AddressBook::with_max_peers(2);
        let (a, b, c) = (
            Libp2pPeerId::random(),
            Libp2pPeerId::random(),
            Libp2pPeerId::random(),
        );
        book.learn(a, addr(1), |_| false);
        book.learn(b, addr(2), |_| false);
        // Dialing `a` makes `b` the least recently used.
        assert_eq!(book.for_dial(&a), vec![addr(1)]);
        book.learn(c, addr(3), |_| false);
        assert_eq!(book.for_dial(&b), Vec::<Multiaddr>::new());
        assert_eq!(book.for_dial(&a), vec![addr(1)]);
        assert_eq!(book.for_dial(&c), vec![addr(3)]);
    }

    #[test]
    fn spared_peers_are_never_forgotten() {
        let mut book = AddressBook::with_max_peers(2);
        let paired: Vec<_> = (0..3).map(|_| Libp2pPeerId::random()).collect();
        let spared = |p: &Libp2pPeerId| paired.contains(p);
        for (n, peer) in paired.iter().enumerate() {
            book.learn(*peer, addr(n), spared);
        }
        book.learn(Libp2pPeerId::random(), addr(9), spared);
        assert_eq!(book.len(), 3);
        for (n, peer) in paired.iter().enumerate() {
            assert_eq!(book.for_dial(peer), vec![addr(n)]);
        }
    }

    #[test]
    fn a_flood_does_not_allocate() {
        let mut book = AddressBook::with_max_peers(MAX_PEERS);
        let capacity = book.index.capacity();
        let slots = book.slots.as_ptr();
        for _ in 0..20 * MAX_PEERS {
            let peer = Libp2pPeerId::random();
            for n in 0..2 * MAX_PER_PEER {
                book.learn(peer, addr(n), |_| false);
            }
        }
        assert_eq!(book.len(), MAX_PEERS);
        // Not equal: the map's `capacity()` leaves out the slots its removals marked as
        // deleted, until it next rehashes them in place (which allocates nothing), so it
        // is often a little lower after a flood (873 of 896 in one CI run, session 10).
        // Growing would have doubled it.
        assert!(
            book.index.capacity() <= capacity,
            "the index grew: {} > {capacity}",
            book.index.capacity()
        );
        assert_eq!(book.slots.as_ptr(), slots);
    }

    #[test]
    fn a_relayed_address_fits_and_a_longer_one_is_not_kept() {
        let mut book = AddressBook::with_max_peers(2);
        let (relay, peer) = (Libp2pPeerId::random(), Libp2pPeerId::random());
        let relayed: Multiaddr =
            format!("/ip6/2001:db8::1/udp/4001/quic-v1/p2p/{relay}/p2p-circuit/p2p/{peer}")
                .parse()
                .unwrap();
        assert!(relayed.as_ref().len() <= MAX_ADDRESS_LEN);
        let long: Multiaddr = format!("/dns4/{}.example/tcp/4001", "a".repeat(120))
            .parse()
            .unwrap();
        book.learn(peer, relayed.clone(), |_| false);
        book.learn(peer, long, |_| false);
        assert_eq!(book.for_dial(&peer), vec![relayed]);
    }
}
