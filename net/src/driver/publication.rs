//! Announcing the running session in the DHT, and telling the session when that fails.
//!
//! The initiator's provider record is what a joiner on another network finds it by. A
//! publication can fail without any error from `start_providing`: the DHT query times out
//! (a busy or churning DHT; kad then stores the record nowhere), or it ends having reached
//! nobody (every entry point down). Either way the record is published again after
//! [`RETRY_AFTER`] while the session lasts, and the session gets
//! [`PairingEvent::NotAnnounced`] so that its user learns why nobody from elsewhere may
//! find the code — unless the node has no DHT entry point at all (LAN only), where
//! reaching nobody is the expected outcome. The record is also published again whenever a
//! new external address is confirmed, since Kademlia copies those into the record.

use super::*;

/// How soon a failed publication is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(super) struct Publication {
    /// The running session's keys.
    keys: HashSet<RecordKey>,
    /// A publication failed: all keys go out again then.
    retry_at: Option<Instant>,
    /// Bootstrap peers or meeting points are configured: a publication that reaches
    /// nobody is a failure worth telling.
    entry_points: bool,
}

impl Publication {
    pub(super) fn has_entry_points(&mut self) {
        self.entry_points = true;
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }
}

impl<M> Driver<M>
where
    M: NetworkBehaviour<ToSwarm = mdns::Event> + Send + 'static,
{
    pub(super) fn publish(&mut self, key: RecordKey) {
        self.publication.keys.insert(key.clone());
        self.provide(key);
    }

    pub(super) fn unpublish(&mut self, key: RecordKey) {
        self.publication.keys.remove(&key);
        if self.publication.keys.is_empty() {
            self.publication.retry_at = None;
        }
        self.swarm.behaviour_mut().kad.stop_providing(&key);
    }

    /// Publishes the running session's records again (new external addresses, or a retry).
    pub(super) fn republish(&mut self) {
        let keys: Vec<RecordKey> = self.publication.keys.iter().cloned().collect();
        for key in keys {
            self.provide(key);
        }
    }

    pub(super) fn publication_timeout(&mut self, now: Instant) {
        if self.publication.retry_at.is_some_and(|at| at <= now) {
            self.publication.retry_at = None;
            self.republish();
        }
    }

    /// Our own records always fit in our store (see `store`), so `start_providing` fails
    /// only if the store is broken; the session is told all the same.
    fn provide(&mut self, key: RecordKey) {
        if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
            self.not_announced(format!("the DHT store refused it ({e})"));
        }
    }

    /// A publication ended.
    pub(super) fn on_published(&mut self, result: kad::AddProviderResult, stats: &kad::QueryStats) {
        let key = match &result {
            Ok(ok) => &ok.key,
            Err(e) => e.key(),
        };
        if !self.publication.keys.contains(key) {
            return;
        }
        match result {
            Err(e) => self.not_announced(format!("the DHT did not answer in time ({e})")),
            Ok(_) if stats.num_successes() == 0 && self.publication.entry_points => {
                self.not_announced("no DHT node could be reached".to_owned())
            }
            Ok(_) => tracing::debug!(
                duration = ?stats.duration(),
                stored_at = stats.num_successes(),
                "provider record published"
            ),
        }
    }

    fn not_announced(&mut self, reason: String) {
        tracing::warn!("cannot publish the session in the DHT: {reason}; trying again");
        self.session_event(PairingEvent::NotAnnounced { reason });
        self.publication.retry_at = Some(Instant::now() + RETRY_AFTER);
    }
}
