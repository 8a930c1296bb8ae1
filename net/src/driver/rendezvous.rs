//! Paired devices find each other again across networks: each pair meets under a DHT key
//! only the two devices can compute, and that changes every hour.
//!
//! `key(epoch) = dht_key("paircode rendezvous v1" ‖ secret ‖ epoch)` (the sha2-256
//! multihash, see `protocol::dht_key`), `epoch` the Unix
//! hour as 8 big-endian bytes, `secret` the pair's [`RENDEZVOUS_LABEL`] exporter key (see
//! `paircode_core::export_key`: both sides derive the same one, and it reveals nothing
//! of the pairing secret). Each device puts a provider record under the current key
//! through its meeting points, and when the other is absent it looks up the current and
//! the previous key (the other may not have republished since the hour turned). The
//! provider record carries the device's confirmed external addresses, its relay circuit
//! among them, so the other device can dial it through the relay, and DCUtR upgrades.
//!
//! Why this scheme: a DHT search for the device's PeerId (what a LAN or a public node
//! uses) cannot work for a device behind a NAT, which is a DHT client and in nobody's
//! routing table. A key derived from the pairing secret is useless to anyone outside the
//! pair: they cannot find it, nor tell which of the DHT's keys belongs to a pair. Rotating
//! it hourly means that someone who learnt one key (a DHT node that stored it) cannot
//! follow the pair beyond that hour by key. What a meeting point still sees is the
//! PeerIds that publish and look up, as it sees every connection; that is the stated
//! limit of what it learns (issue 12: PeerIds, addresses and discovery ids).

use super::*;

/// The exporter label of the rendezvous secret.
pub const RENDEZVOUS_LABEL: &str = "paircode/rendezvous/v1";
const CONTEXT: &[u8] = b"paircode rendezvous v1";
const EPOCH_SECS: u64 = 3600;

fn key(secret: &[u8; 32], epoch: u64) -> RecordKey {
    let preimage = [CONTEXT, secret, &epoch.to_be_bytes()].concat();
    crate::protocol::dht_key(&preimage)
}

fn epoch_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / EPOCH_SECS)
}

/// The pairs' secrets and what is published.
#[derive(Default)]
pub(crate) struct Rendezvous {
    secrets: HashMap<Libp2pPeerId, [u8; 32]>,
    /// The epoch the records were last published for, and when to publish again (the
    /// record TTL is the code's, so they are refreshed well within it).
    published: Option<(u64, Instant)>,
    /// Lookups running, for which peer.
    lookups: HashMap<kad::QueryId, Libp2pPeerId>,
    /// A second search for absent devices shortly after a reservation: two devices that
    /// restart together may each search before the other's record is in place.
    seek_again: Option<Instant>,
}

/// How long after a reservation the second search runs.
const SEEK_AGAIN_AFTER: Duration = Duration::from_secs(2);

impl Rendezvous {
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [self.published.map(|(_, at)| at), self.seek_again]
            .into_iter()
            .flatten()
            .min()
    }
}

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    pub(super) fn set_rendezvous(&mut self, peer: Libp2pPeerId, secret: Option<[u8; 32]>) {
        match secret {
            Some(secret) => {
                self.rendezvous.secrets.insert(peer, secret);
                self.publish_rendezvous();
                // `presence` may have searched before the secret arrived.
                if self.reach.reserved() && !self.swarm.is_connected(&peer) {
                    self.seek_rendezvous(peer);
                    self.rendezvous.seek_again = Some(Instant::now() + SEEK_AGAIN_AFTER);
                }
            }
            None => {
                if let Some(secret) = self.rendezvous.secrets.remove(&peer) {
                    let epoch = epoch_now();
                    for epoch in [epoch, epoch.saturating_sub(1)] {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .stop_providing(&key(&secret, epoch));
                    }
                }
            }
        }
    }

    /// Publishes every pair's current record, if a meeting point holds a reservation
    /// (without one, nobody on another network could use the addresses).
    pub(super) fn publish_rendezvous(&mut self) {
        if !self.reach.reserved() {
            self.rendezvous.published = None;
            return;
        }
        let epoch = epoch_now();
        let keys: Vec<RecordKey> = self
            .rendezvous
            .secrets
            .values()
            .map(|s| key(s, epoch))
            .collect();
        for key in keys {
            if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
                tracing::warn!("cannot publish a rendezvous record: {e}");
            }
        }
        let refresh = (self.pairing_config.code_ttl / 2).min(Duration::from_secs(EPOCH_SECS / 4));
        self.rendezvous.published = Some((epoch, Instant::now() + refresh));
    }

    pub(super) fn rendezvous_timeout(&mut self, now: Instant) {
        if self.rendezvous.published.is_some_and(|(_, at)| at <= now) {
            self.publish_rendezvous();
        }
        if self.rendezvous.seek_again.is_some_and(|at| at <= now) {
            self.rendezvous.seek_again = None;
            self.seek_all_rendezvous();
        }
    }

    /// Looks for `peer` under the pair's current and previous key.
    pub(super) fn seek_rendezvous(&mut self, peer: Libp2pPeerId) {
        let Some(secret) = self.rendezvous.secrets.get(&peer).copied() else {
            return;
        };
        if self.rendezvous.lookups.values().any(|p| *p == peer) {
            return;
        }
        let epoch = epoch_now();
        for epoch in [epoch, epoch.saturating_sub(1)] {
            let query = self
                .swarm
                .behaviour_mut()
                .kad
                .get_providers(key(&secret, epoch));
            self.rendezvous.lookups.insert(query, peer);
        }
    }

    /// A reservation just became active: seeks every paired device that is not
    /// connected, now and once more shortly after.
    pub(super) fn seek_after_reservation(&mut self) {
        self.seek_all_rendezvous();
        if !self.rendezvous.secrets.is_empty() {
            self.rendezvous.seek_again = Some(Instant::now() + SEEK_AGAIN_AFTER);
        }
    }

    fn seek_all_rendezvous(&mut self) {
        let absent: Vec<Libp2pPeerId> = self
            .rendezvous
            .secrets
            .keys()
            .filter(|peer| !self.swarm.is_connected(peer))
            .copied()
            .collect();
        for peer in absent {
            self.seek_rendezvous(peer);
        }
    }

    pub(super) fn rendezvous_peers(&self) -> Vec<Libp2pPeerId> {
        self.rendezvous.secrets.keys().copied().collect()
    }

    pub(super) fn rendezvous_query(&self, id: &kad::QueryId) -> bool {
        self.rendezvous.lookups.contains_key(id)
    }

    /// A rendezvous lookup progressed.
    pub(super) fn on_rendezvous_providers(
        &mut self,
        id: kad::QueryId,
        result: &Result<GetProvidersOk, kad::GetProvidersError>,
        last: bool,
    ) {
        let Some(peer) = self.rendezvous.lookups.get(&id).copied() else {
            return;
        };
        if last {
            self.rendezvous.lookups.remove(&id);
        }
        if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = result {
            // Only the device this key belongs to counts. Its addresses sit in the
            // running query, where the dial `presence` asks for now finds them. Two
            // devices that restart together find each other at the same moment: only
            // the one with the lower PeerId dials, so that they hold one relayed
            // connection and DCUtR punches one hole, not two colliding ones. The other
            // is dialed, or dials at `presence`'s next search if it is not.
            let we_dial = *self.swarm.local_peer_id() < peer;
            if providers.contains(&peer) && we_dial {
                tracing::debug!(%peer, "found a paired device through its rendezvous key");
                self.presence_found(&[peer]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_per_pair_and_per_hour() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(key(&a, 7), key(&a, 7));
        assert_ne!(key(&a, 7), key(&a, 8));
        assert_ne!(key(&a, 7), key(&b, 7));
        // A sha2-256 multihash: code, length, 32-byte digest.
        assert_eq!(key(&a, 7).as_ref().len(), 34);
        assert_eq!(&key(&a, 7).as_ref()[..2], &[0x12, 0x20]);
    }
}
