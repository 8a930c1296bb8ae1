//! The Kademlia store of every paircode node, meeting point and device alike: a
//! `MemoryStore` that holds provider records only, at most `per_peer` of them from any one
//! remote provider and `total` in all.
//!
//! libp2p-kad bounds a `MemoryStore` per key (`max_providers_per_key`) and in keys
//! (`max_provided_keys`), but not per remote provider: one peer could announce keys until
//! the store is full, and crowd out everybody else, the node's own records included — a
//! device's `start_providing` then fails and its session is never announced (issue 10,
//! item 5). So the limits apply to remote providers only: the node's own records (added by
//! its own `start_providing`, a handful at a time) are always accepted, also into a key
//! that is full of others' records, where one of those makes room. Kad also never deletes
//! expired remote provider records (it only skips them when answering), so this store
//! prunes them itself before it counts.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use libp2p::kad::store::{self, MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::PeerId;

/// Limits of a node's provider-record store (remote providers' records only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Provider records one peer may have stored here at once.
    pub per_peer: usize,
    /// Provider records stored here at once, from all peers.
    pub total: usize,
    /// Providers kept per key (kad's replication factor is 20).
    pub per_key: usize,
}

impl Default for StoreLimits {
    /// A meeting point's: it serves every device that uses it.
    fn default() -> Self {
        // A device announces one key while it shows a code, plus one rendezvous key per
        // paired device: 64 leaves room for a large household.
        StoreLimits {
            per_peer: 64,
            total: 65_536,
            per_key: 20,
        }
    }
}

impl StoreLimits {
    /// A device's: it serves the DHT only on a LAN or when publicly reachable, and holds
    /// at most as many records as libp2p's default store (1,024).
    pub fn device() -> Self {
        StoreLimits {
            total: 1024,
            ..StoreLimits::default()
        }
    }
}

/// A Kademlia store of provider records only, bounded per remote provider and in total.
pub(crate) struct BoundedStore {
    local: PeerId,
    inner: MemoryStore,
    limits: StoreLimits,
    /// The keys each remote provider has records under, as far as this store knows; kept in
    /// step with `inner` by `add_provider`, `remove_provider` and `prune`.
    keys_by_provider: HashMap<PeerId, HashSet<RecordKey>>,
    stored: usize,
}

impl BoundedStore {
    pub(crate) fn new(local: PeerId, limits: StoreLimits) -> Self {
        let config = MemoryStoreConfig {
            // A meeting point holds no value records: it stores only who provides what,
            // so that nobody can park data on it.
            max_records: 0,
            max_value_bytes: 0,
            max_providers_per_key: limits.per_key,
            // Despite its name and doc, MemoryStore 0.47 checks this against the number of
            // keys it holds provider records for, remote providers' and ours together; the
            // bounds are this wrapper's, which counts remote records only (each adds at
            // most one key), so the inner store must never refuse.
            max_provided_keys: usize::MAX,
        };
        BoundedStore {
            local,
            inner: MemoryStore::with_config(local, config),
            limits,
            keys_by_provider: HashMap::new(),
            stored: 0,
        }
    }

    /// How many unexpired provider records from `peer` are stored.
    pub fn records_of(&mut self, peer: &PeerId, now: Instant) -> usize {
        self.prune_peer(peer, now);
        self.keys_by_provider.get(peer).map_or(0, HashSet::len)
    }

    /// Forgets `peer`'s records that expired, or that the inner store dropped (a full key
    /// keeps its closest providers and may have pushed this one out).
    fn prune_peer(&mut self, peer: &PeerId, now: Instant) {
        let Some(keys) = self.keys_by_provider.get_mut(peer) else {
            return;
        };
        let before = keys.len();
        let inner = &mut self.inner;
        keys.retain(|key| {
            let live = inner
                .providers(key)
                .iter()
                .any(|r| r.provider == *peer && !r.is_expired(now));
            if !live {
                inner.remove_provider(key, peer);
            }
            live
        });
        self.stored -= before - keys.len();
        if keys.is_empty() {
            self.keys_by_provider.remove(peer);
        }
    }

    /// Our own record: never refused. A key full of others' records (MemoryStore would
    /// silently drop ours) gives up one of them, the last stored.
    fn add_own(&mut self, record: ProviderRecord, now: Instant) -> store::Result<()> {
        let providers = self.inner.providers(&record.key);
        let ours = providers.iter().any(|r| r.provider == self.local);
        if !ours && providers.len() >= self.limits.per_key {
            if let Some(last) = providers.last() {
                let (key, peer) = (last.key.clone(), last.provider);
                self.remove_provider(&key, &peer);
            }
        }
        self.prune_all_if_full(now);
        self.inner.add_provider(record)
    }

    /// Expired records are pruned only when the store looks full: pruning everything is
    /// linear in the store's size.
    fn prune_all_if_full(&mut self, now: Instant) {
        if self.stored >= self.limits.total {
            self.prune_all(now);
        }
    }

    fn prune_all(&mut self, now: Instant) {
        let peers: Vec<PeerId> = self.keys_by_provider.keys().copied().collect();
        for peer in peers {
            self.prune_peer(&peer, now);
        }
    }
}

impl RecordStore for BoundedStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.inner.get(k)
    }

    fn put(&mut self, _: Record) -> store::Result<()> {
        Err(store::Error::MaxRecords)
    }

    fn remove(&mut self, k: &RecordKey) {
        self.inner.remove(k)
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> store::Result<()> {
        let now = Instant::now();
        let peer = record.provider;
        if peer == self.local {
            return self.add_own(record, now);
        }
        let renewal = self
            .keys_by_provider
            .get(&peer)
            .is_some_and(|keys| keys.contains(&record.key));
        if !renewal {
            if self.records_of(&peer, now) >= self.limits.per_peer {
                return Err(store::Error::MaxProvidedKeys);
            }
            if self.stored >= self.limits.total {
                self.prune_all_if_full(now);
                if self.stored >= self.limits.total {
                    return Err(store::Error::MaxProvidedKeys);
                }
            }
        }
        let key = record.key.clone();
        self.inner.add_provider(record)?;
        if !renewal {
            self.keys_by_provider.entry(peer).or_default().insert(key);
            self.stored += 1;
        }
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.inner.providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.inner.provided()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        self.inner.remove_provider(k, p);
        if let Some(keys) = self.keys_by_provider.get_mut(p) {
            if keys.remove(k) {
                self.stored -= 1;
            }
            if keys.is_empty() {
                self.keys_by_provider.remove(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(key: u32, provider: PeerId, expires: Option<Instant>) -> ProviderRecord {
        ProviderRecord {
            key: RecordKey::new(&key.to_be_bytes()),
            provider,
            expires,
            addresses: Vec::new(),
        }
    }

    fn limits(per_peer: usize, total: usize) -> StoreLimits {
        StoreLimits {
            per_peer,
            total,
            per_key: 20,
        }
    }

    #[test]
    fn one_peer_gets_at_most_its_share() {
        let (me, alice, bob) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut store = BoundedStore::new(me, limits(3, 100));
        for key in 0..3 {
            store.add_provider(record(key, alice, None)).unwrap();
        }
        assert!(matches!(
            store.add_provider(record(3, alice, None)),
            Err(store::Error::MaxProvidedKeys)
        ));
        assert!(store
            .providers(&RecordKey::new(&3u32.to_be_bytes()))
            .is_empty());
        // Renewing a record it already has is not a new one.
        store.add_provider(record(1, alice, None)).unwrap();
        // Others are not affected by alice's cap.
        store.add_provider(record(3, bob, None)).unwrap();
        assert_eq!(store.records_of(&alice, Instant::now()), 3);
        assert_eq!(store.records_of(&bob, Instant::now()), 1);
        // A removed record frees its slot.
        store.remove_provider(&RecordKey::new(&0u32.to_be_bytes()), &alice);
        store.add_provider(record(4, alice, None)).unwrap();
    }

    #[test]
    fn expired_records_free_their_slots() {
        let (me, alice) = (PeerId::random(), PeerId::random());
        let mut store = BoundedStore::new(me, limits(2, 100));
        let past = Instant::now() - Duration::from_secs(1);
        store.add_provider(record(0, alice, Some(past))).unwrap();
        store.add_provider(record(1, alice, Some(past))).unwrap();
        store.add_provider(record(2, alice, None)).unwrap();
        assert_eq!(store.records_of(&alice, Instant::now()), 1);
        assert!(store
            .providers(&RecordKey::new(&0u32.to_be_bytes()))
            .is_empty());
    }

    /// Issue 10, item 5: a hostile peer (with as many identities as it likes) fills a
    /// device's store with provider records for random keys; the device's own
    /// `start_providing` still succeeds, and the device answers for its key. With libp2p's
    /// `MemoryStore` (what devices used before) the same flood makes it fail.
    #[test]
    fn a_hostile_peer_filling_the_store_cannot_stop_our_own_publication() {
        use libp2p::kad;
        let me = PeerId::random();
        let limits = StoreLimits::device();
        let flood = limits.total as u32 + 500;
        let hostile = |key| record(key, PeerId::random(), None);

        let mut before = MemoryStore::new(me);
        for key in 0..flood {
            let _ = before.add_provider(hostile(key));
        }
        let mut kad = kad::Behaviour::new(me, before);
        assert!(
            kad.start_providing(RecordKey::new(b"ours")).is_err(),
            "the attack works on a MemoryStore"
        );

        let mut store = BoundedStore::new(me, limits);
        let refused = (0..flood)
            .filter(|key| store.add_provider(hostile(*key)).is_err())
            .count();
        assert_eq!(refused, 500, "the store is full");
        // The hostile peers also fill the very key we announce.
        let ours = 7u32;
        for _ in 0..limits.per_key {
            let _ = store.add_provider(hostile(ours));
        }
        let mut kad = kad::Behaviour::new(me, store);
        for key in [ours, 1_000_000] {
            let key = RecordKey::new(&key.to_be_bytes());
            kad.start_providing(key.clone()).expect("our publication");
            let providers = kad.store_mut().providers(&key);
            assert!(providers.iter().any(|r| r.provider == me));
            assert!(providers.len() <= limits.per_key);
        }
        assert_eq!(kad.store_mut().provided().count(), 2);
    }

    #[test]
    fn the_total_is_bounded_and_value_records_are_refused() {
        let me = PeerId::random();
        let mut store = BoundedStore::new(me, limits(2, 3));
        for key in 0..3 {
            store
                .add_provider(record(key, PeerId::random(), None))
                .unwrap();
        }
        assert!(matches!(
            store.add_provider(record(9, PeerId::random(), None)),
            Err(store::Error::MaxProvidedKeys)
        ));
        let value = Record::new(RecordKey::new(b"k"), b"v".to_vec());
        assert!(matches!(store.put(value), Err(store::Error::MaxRecords)));
    }
}
