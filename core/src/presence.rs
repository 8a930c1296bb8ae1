//! Paired devices after pairing, sans IO: who is online, who still has to be told that we
//! unpaired it, when to greet the connected ones and which absent ones to look for.
//!
//! The driver feeds it what the network did (`handle_connected`, `handle_disconnected`,
//! `handle_message`, `handle_acknowledged`, `handle_found`, `handle_lookup_done`), what the
//! embedder decided (`set_paired`, `add_paired`, `remove_paired`, `unpair`) and the clock
//! (`handle_timeout` once `poll_timeout` is due), then carries out every
//! [`PresenceAction`] from `poll_action` until it returns `None`.
//!
//! Every [`PRESENCE_INTERVAL`] each connected device we care about gets a
//! [`DeviceMessage::Hello`] (or [`DeviceMessage::Unpaired`] if it is owed that notice),
//! which keeps the connection from going idle, so "online" means reachable now; each
//! absent one is dialled again and looked up in the DHT.
//!
//! A pairing can end up one-sided: a device killed between the initiator's save and its
//! own, or whose save failed, knows nothing of a device that still counts it as paired.
//! That device keeps greeting it, so a `Hello` from a connected device that is not paired
//! here is answered with `Unpaired` (and the greeter forgets us, as after any unpair). At
//! once if no pairing session runs here and none ended within [`STRANGER_GRACE`]; else
//! only once the same device has kept greeting for [`STRANGER_GRACE`]: right after a
//! pairing the initiator's first `Hello` may overtake the joiner's own save (the embedder
//! says when sessions run, [`Presence::handle_pairing`]). The time of that first `Hello`
//! is kept in the entry of the connected peer, so the connection limits bound it and a
//! disconnect forgets it: an attacker with fresh identities grows no table of its own.

mod message;
#[cfg(test)]
mod tests;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::identity::PeerId;

pub use message::DeviceMessage;

/// Well inside the idle-connection timeout, and cheap: one tiny request per device.
pub const PRESENCE_INTERVAL: Duration = Duration::from_secs(10);
/// DHT searches for absent devices running at once.
pub const MAX_PRESENCE_LOOKUPS: usize = 8;
/// How long a connected device that is not paired here must keep greeting us before it
/// is told `Unpaired`: longer than a joiner may take to store a pairing
/// (`Config::store_timeout`), so a pairing that is completing is never torn down.
pub const STRANGER_GRACE: Duration = Duration::from_secs(20);

/// What the driver must do, or report, for presence. Drained with [`Presence::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceAction {
    /// Send `message` to `peer` on `/paircode/device/1` (it is connected). Once the peer
    /// answers, report it with [`Presence::handle_acknowledged`]; a failed request needs
    /// no report: the next tick sends again whatever is still owed.
    Send {
        /// The device to send to.
        peer: PeerId,
        /// What to send.
        message: DeviceMessage,
    },
    /// A device we care about is absent: dial it at the addresses known for it, unless a
    /// dial of ours to it is already under way.
    Seek {
        /// The absent device.
        peer: PeerId,
    },
    /// Ask the DHT where an absent device is; report every peer the search returns with
    /// [`Presence::handle_found`] and its end with [`Presence::handle_lookup_done`].
    Lookup {
        /// The absent device.
        peer: PeerId,
    },
    /// New addresses for an absent device we care about just came in (mDNS, the DHT):
    /// dial it now, even if an older dial is still under way.
    Dial {
        /// The device that was found.
        peer: PeerId,
    },
    /// A paired device is connected.
    Online(PeerId),
    /// A paired device's last connection closed.
    Offline(PeerId),
    /// This paired device told us it forgot us; it is no longer paired here.
    UnpairedByPeer(PeerId),
    /// A device we unpaired acknowledged our notice.
    UnpairDelivered(PeerId),
    /// A device that is not paired here kept greeting us as paired for
    /// [`STRANGER_GRACE`] (a one-sided pairing): it was sent `Unpaired`, so it forgets us.
    ToldNotPaired(PeerId),
}

/// Whether this device is pairing, which makes a greeting stranger possibly a device whose
/// pairing with us is being saved right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Pairing {
    #[default]
    Idle,
    Running,
    EndedAt(Instant),
}

/// Where we stand with a device we care about. Only a paired device can be online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Paired {
        online: bool,
    },
    /// Unpaired here; it has not acknowledged our notice yet.
    OwesNotice,
}

/// Presence of paired devices: inputs through `handle_*` and the embedder's calls, outputs
/// through [`Presence::poll_action`], the next tick from [`Presence::poll_timeout`].
///
/// Deterministic in its inputs: devices are visited in PeerId order.
#[derive(Debug, Default)]
pub struct Presence {
    devices: BTreeMap<PeerId, Relation>,
    /// Every peer the transport is connected to, whether we care about it or not, so that
    /// a device registered later is known to be online at once; with, for one that is not
    /// paired here, when it first greeted us as paired.
    connected: BTreeMap<PeerId, Option<Instant>>,
    /// DHT searches started and not reported done.
    lookups: usize,
    pairing: Pairing,
    next_tick: Option<Instant>,
    actions: VecDeque<PresenceAction>,
}

impl Presence {
    /// Nothing paired, nothing connected.
    pub fn new() -> Self {
        Presence::default()
    }

    /// Replaces the paired devices. Those already connected are reported online (unless
    /// they were already); those dropped are forgotten without an `Offline`. Devices owed
    /// a notice stay owed unless listed here. Greets or seeks every device at once and
    /// (re)starts the tick, so `poll_timeout` changes.
    pub fn set_paired(&mut self, peers: impl IntoIterator<Item = PeerId>, now: Instant) {
        let peers: BTreeSet<PeerId> = peers.into_iter().collect();
        self.devices
            .retain(|peer, relation| *relation == Relation::OwesNotice || peers.contains(peer));
        for peer in peers {
            let relation = self
                .devices
                .entry(peer.clone())
                .or_insert(Relation::Paired { online: false });
            if *relation == Relation::OwesNotice {
                *relation = Relation::Paired { online: false };
            }
            self.mark_online_if_connected(&peer);
        }
        self.tick(now);
    }

    /// A device was just paired (or paired again: a notice it was owed is dropped). Like
    /// [`Presence::set_paired`], greets or seeks every device at once and restarts the tick.
    pub fn add_paired(&mut self, peer: PeerId, now: Instant) {
        let relation = self
            .devices
            .entry(peer.clone())
            .or_insert(Relation::Paired { online: false });
        if *relation == Relation::OwesNotice {
            *relation = Relation::Paired { online: false };
        }
        self.mark_online_if_connected(&peer);
        self.tick(now);
    }

    /// Stops caring about a paired device, silently (no `Offline`, no notice): the other
    /// side unpaired us, or the embedder will not tell it. A device owed a notice stays owed.
    pub fn remove_paired(&mut self, peer: &PeerId) {
        if let Some(Relation::Paired { .. }) = self.devices.get(peer) {
            self.devices.remove(peer);
        }
    }

    /// Unpairs `peer` here and tells it so as soon as it is reachable: now if connected,
    /// else when it connects or at a later tick, until it acknowledges
    /// ([`PresenceAction::UnpairDelivered`]). Starts the tick if none runs.
    pub fn unpair(&mut self, peer: PeerId, now: Instant) {
        self.devices.insert(peer.clone(), Relation::OwesNotice);
        match self.connected.contains_key(&peer) {
            true => self.send(peer, DeviceMessage::Unpaired),
            false => self.seek(peer),
        }
        self.next_tick.get_or_insert(now + PRESENCE_INTERVAL);
    }

    /// The transport has (another) connection to `peer`. A paired device goes online and
    /// is greeted at once (so that a device which lost the pairing says so when the two
    /// meet, not a tick later); one owed a notice gets it.
    pub fn handle_connected(&mut self, peer: &PeerId, _now: Instant) {
        self.connected.entry(peer.clone()).or_insert(None);
        match self.devices.get(peer) {
            Some(Relation::Paired { online: false }) => {
                self.mark_online_if_connected(peer);
                self.send(peer.clone(), DeviceMessage::Hello);
            }
            Some(Relation::Paired { online: true }) => {}
            Some(Relation::OwesNotice) => self.send(peer.clone(), DeviceMessage::Unpaired),
            None => {}
        }
    }

    /// The transport's last connection to `peer` closed. A paired device goes offline.
    pub fn handle_disconnected(&mut self, peer: &PeerId, _now: Instant) {
        self.connected.remove(peer);
        if let Some(Relation::Paired { online }) = self.devices.get_mut(peer) {
            if std::mem::take(online) {
                self.actions
                    .push_back(PresenceAction::Offline(peer.clone()));
            }
        }
    }

    /// A request from `peer` on `/paircode/device/1` (always answered empty). `Unpaired`
    /// from a paired device unpairs it here; `Hello` from a connected device that is not
    /// paired here (nor owed a notice) is answered with `Unpaired`: at once, or, around a
    /// pairing session ([`Presence::handle_pairing`]), once it has kept greeting for
    /// [`STRANGER_GRACE`]. Anything that does not decode strictly is ignored,
    /// and the error says why.
    pub fn handle_message(
        &mut self,
        peer: &PeerId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<DeviceMessage, crate::messages::DecodeError> {
        let message = DeviceMessage::decode(bytes)?;
        match (message, self.devices.get(peer)) {
            (DeviceMessage::Unpaired, Some(Relation::Paired { .. })) => {
                self.devices.remove(peer);
                self.actions
                    .push_back(PresenceAction::UnpairedByPeer(peer.clone()));
            }
            (DeviceMessage::Hello, None) => self.on_stranger_hello(peer, now),
            _ => {}
        }
        Ok(message)
    }

    /// A `Hello` from a device that is not paired here: it holds a pairing we do not.
    fn on_stranger_hello(&mut self, peer: &PeerId, now: Instant) {
        // Not (or no longer) connected: nothing to remember it by, and no reply path.
        let Some(since) = self.connected.get_mut(peer) else {
            return;
        };
        let first = *since.get_or_insert(now);
        let pairing_lately = match self.pairing {
            Pairing::Idle => false,
            Pairing::Running => true,
            Pairing::EndedAt(at) => now.saturating_duration_since(at) < STRANGER_GRACE,
        };
        if !pairing_lately || now.saturating_duration_since(first) >= STRANGER_GRACE {
            self.send(peer.clone(), DeviceMessage::Unpaired);
            self.actions
                .push_back(PresenceAction::ToldNotPaired(peer.clone()));
        }
    }

    /// `peer` answered the `message` we sent it ([`PresenceAction::Send`]). An answered
    /// `Unpaired` means the notice was delivered (one told to a device that greeted us
    /// without being paired here was owed nothing, and is not reported).
    pub fn handle_acknowledged(&mut self, peer: &PeerId, message: DeviceMessage, _now: Instant) {
        if message != DeviceMessage::Unpaired {
            return;
        }
        match self.devices.get(peer) {
            Some(Relation::OwesNotice) => {
                self.devices.remove(peer);
            }
            None if self.connected.get(peer).is_some_and(Option::is_some) => return,
            _ => {}
        }
        self.actions
            .push_back(PresenceAction::UnpairDelivered(peer.clone()));
    }

    /// Discovery (mDNS, a DHT search) came across `peer` with addresses: dial it if it is
    /// a device we care about and it is not connected.
    pub fn handle_found(&mut self, peer: &PeerId, _now: Instant) {
        if self.devices.contains_key(peer) && !self.connected.contains_key(peer) {
            self.actions
                .push_back(PresenceAction::Dial { peer: peer.clone() });
        }
    }

    /// Whether a pairing session runs on this device now (call whenever that may have
    /// changed; repeats are harmless). While one runs, and for [`STRANGER_GRACE`] after it
    /// ended, a greeting device that is not paired here gets the grace period before it is
    /// told `Unpaired`; otherwise it is told at once.
    pub fn handle_pairing(&mut self, running: bool, now: Instant) {
        self.pairing = match (running, self.pairing) {
            (true, _) => Pairing::Running,
            (false, Pairing::Running) => Pairing::EndedAt(now),
            (false, other) => other,
        };
    }

    /// A DHT search started by [`PresenceAction::Lookup`] ended, whatever its result; it
    /// frees a slot for the next one.
    pub fn handle_lookup_done(&mut self, _now: Instant) {
        self.lookups = self.lookups.saturating_sub(1);
    }

    /// Call once [`Presence::poll_timeout`] has passed: greets the connected devices we
    /// care about, seeks the absent ones, and schedules the next tick (none once nothing is
    /// left to care about).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_tick.is_some_and(|at| at <= now) {
            self.tick(now);
        }
    }

    /// The next thing to do; call until `None` after every input.
    pub fn poll_action(&mut self) -> Option<PresenceAction> {
        self.actions.pop_front()
    }

    /// When to call [`Presence::handle_timeout`]: the next tick, if any device is paired
    /// or owed a notice. `set_paired`, `add_paired`, `unpair` and `handle_timeout` move it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    fn tick(&mut self, now: Instant) {
        self.next_tick = (!self.devices.is_empty()).then(|| now + PRESENCE_INTERVAL);
        let devices: Vec<(PeerId, Relation)> = self
            .devices
            .iter()
            .map(|(peer, relation)| (peer.clone(), *relation))
            .collect();
        for (peer, relation) in devices {
            if !self.connected.contains_key(&peer) {
                self.seek(peer);
                continue;
            }
            let message = match relation {
                Relation::Paired { .. } => DeviceMessage::Hello,
                Relation::OwesNotice => DeviceMessage::Unpaired,
            };
            self.send(peer, message);
        }
    }

    /// Also forgets when a now-paired `peer` first greeted us as a stranger.
    fn mark_online_if_connected(&mut self, peer: &PeerId) {
        let connected = match self.connected.entry(peer.clone()) {
            Entry::Occupied(mut entry) => {
                entry.insert(None);
                true
            }
            Entry::Vacant(_) => false,
        };
        if let Some(Relation::Paired { online }) = self.devices.get_mut(peer) {
            if connected && !*online {
                *online = true;
                self.actions.push_back(PresenceAction::Online(peer.clone()));
            }
        }
    }

    fn send(&mut self, peer: PeerId, message: DeviceMessage) {
        self.actions
            .push_back(PresenceAction::Send { peer, message });
    }

    /// Dials an absent device and, while fewer than [`MAX_PRESENCE_LOOKUPS`] searches run,
    /// asks the DHT where it is.
    fn seek(&mut self, peer: PeerId) {
        if self.lookups < MAX_PRESENCE_LOOKUPS {
            self.lookups += 1;
            self.actions
                .push_back(PresenceAction::Seek { peer: peer.clone() });
            self.actions.push_back(PresenceAction::Lookup { peer });
        } else {
            self.actions.push_back(PresenceAction::Seek { peer });
        }
    }
}
