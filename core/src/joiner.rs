//! The joiner (Bob): knows the code, looks for the device holding it, proves it.
//!
//! Bob cannot tell which discovered device is Alice, so he asks them (a few at a time) and
//! keeps asking those that answered "no session" — Alice may start after Bob's daemon
//! found her. Only a peer whose Challenge carries a valid MAC is believed, and only a
//! verdict naming the current attempt (`Done.re`) is acted upon.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;

use crate::action::{Action, FailReason, Progress};
use crate::config::Config;
use crate::device::{PairedDevice, Role};
use crate::handshake::{random32, transcript, ChallengeFields, Ephemeral};
use crate::identity::PeerId;
use crate::keys::{macs_equal, CodeKeys};
use crate::messages::{
    Bytes32, Challenge, Done, Join, Message, Outcome, Prove, RejectReason, UNATTRIBUTED,
};
use crate::pairing::LocalDevice;

pub struct Joiner {
    cfg: Config,
    local: LocalDevice,
    keys: CodeKeys,
    rng: ChaCha20Rng,
    /// End of the search (while searching) or of the wait for the verdict (while proving).
    deadline: Instant,
    next_lookup: Instant,
    state: State,
    candidates: BTreeMap<PeerId, Candidate>,
    queue: VecDeque<PeerId>,
    /// Some peer said the code expired: the search failing is then reported as that.
    saw_expired: bool,
    actions: VecDeque<Action>,
}

/// One peer we ask. Its attempt (nonce, ephemeral key, Join bytes) is kept across resends,
/// so a Challenge that arrives late still matches.
struct Candidate {
    attempt: Option<Box<Attempt>>,
    status: Status,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Queued,
    InFlight {
        deadline: Instant,
    },
    RetryAt(Instant),
    /// Proved it does not hold this code (bad MAC, expired, incompatible): never asked again.
    Dead,
}

struct Attempt {
    join: Join,
    bytes: Vec<u8>,
    eph: Ephemeral,
}

enum State {
    Searching,
    Proving {
        device: Box<PairedDevice>,
        nonce: Bytes32,
        prove: Vec<u8>,
        resend_at: Instant,
    },
    Finished,
}

/// Where the joiner is, for status displays and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinerState {
    Searching,
    Proving,
    Finished,
}

impl Joiner {
    pub(crate) fn new(
        cfg: Config,
        local: LocalDevice,
        keys: CodeKeys,
        now: Instant,
        rng: ChaCha20Rng,
    ) -> Self {
        let mut actions = VecDeque::new();
        actions.push_back(Action::Lookup {
            key: keys.discovery_id,
        });
        Joiner {
            deadline: now + cfg.join_timeout,
            next_lookup: now + cfg.lookup_interval,
            cfg,
            local,
            keys,
            rng,
            state: State::Searching,
            candidates: BTreeMap::new(),
            queue: VecDeque::new(),
            saw_expired: false,
            actions,
        }
    }

    pub fn state(&self) -> JoinerState {
        match self.state {
            State::Searching => JoinerState::Searching,
            State::Proving { .. } => JoinerState::Proving,
            State::Finished => JoinerState::Finished,
        }
    }

    pub(crate) fn keys(&self) -> &CodeKeys {
        &self.keys
    }

    /// A peer was discovered, or discovered again: a rediscovered peer moves to the front,
    /// since a fresh DHT or mDNS report is the best hint of who holds the session now.
    pub fn handle_peer(&mut self, peer: &PeerId, now: Instant) {
        if !matches!(self.state, State::Searching) || *peer == self.local.peer {
            return;
        }
        match self.candidates.get(peer).map(|c| c.status) {
            None | Some(Status::Queued) | Some(Status::RetryAt(_)) => {
                self.enqueue_front(peer.clone())
            }
            Some(Status::InFlight { .. } | Status::Dead) => {}
        }
        self.pump(now);
    }

    pub fn handle_message(&mut self, peer: &PeerId, bytes: &[u8], now: Instant) {
        // A message arriving after the deadline must not complete anything; other timers
        // wait for `handle_timeout`, so an input's effects are its own.
        if now >= self.deadline {
            self.handle_timeout(now);
        }
        let message = Message::decode(bytes);
        if let Ok(Message::Join(join)) = &message {
            // We hold no session to join: say so at once, so that joiner moves on.
            let done = Done::rejected(join.nonce, RejectReason::NoSession);
            self.send(peer, Message::Done(done).encode());
            return;
        }
        match (&self.state, message) {
            (State::Searching, Ok(Message::Challenge(challenge))) => {
                self.on_challenge(peer, challenge, now)
            }
            (State::Searching, Ok(Message::Done(done))) => self.on_rejected(peer, done, now),
            // Garbage instead of an answer: this peer is no initiator of ours.
            (State::Searching, Err(_)) if self.in_flight(peer) => {
                self.set_status(peer, Status::Dead);
                self.pump(now);
            }
            (State::Proving { device, nonce, .. }, Ok(Message::Done(done)))
                if &device.peer == peer && done.re == *nonce =>
            {
                self.on_verdict(done, now);
            }
            _ => {}
        }
    }

    /// The driver lost its connection to `peer`, or could not deliver to it. A candidate
    /// is asked again later; a peer we proved the code to gets one more attempt's time to
    /// come back (the resent proof redials) instead of the whole confirmation timeout.
    pub fn handle_unreachable(&mut self, peer: &PeerId, now: Instant) {
        match &self.state {
            State::Proving { device, .. } if &device.peer == peer => {
                self.deadline = self.deadline.min(now + self.cfg.attempt_timeout);
            }
            State::Searching if self.in_flight(peer) => {
                self.set_status(peer, Status::RetryAt(now + self.cfg.retry_interval));
                self.pump(now);
            }
            _ => {}
        }
    }

    pub fn handle_cancel(&mut self, _now: Instant) {
        if !matches!(self.state, State::Finished) {
            self.finish(Action::Failed(FailReason::Cancelled));
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::Finished => {}
            State::Proving {
                device,
                prove,
                resend_at,
                ..
            } => {
                if now >= self.deadline {
                    let peer = device.peer.clone();
                    self.finish(Action::Failed(FailReason::NoAnswer { peer }));
                } else if now >= *resend_at {
                    // The verdict may have been lost; the initiator answers a repeated proof.
                    *resend_at = now + self.cfg.attempt_timeout;
                    let (peer, bytes) = (device.peer.clone(), prove.clone());
                    self.send(&peer, bytes);
                }
            }
            State::Searching => {
                if now >= self.deadline {
                    let reason = match self.saw_expired {
                        true => FailReason::CodeExpired,
                        false => FailReason::NoDeviceAnswered,
                    };
                    self.finish(Action::Failed(reason));
                    return;
                }
                if now >= self.next_lookup {
                    self.next_lookup = now + self.cfg.lookup_interval;
                    self.actions.push_back(Action::Lookup {
                        key: self.keys.discovery_id,
                    });
                }
                let due: Vec<PeerId> = self
                    .candidates
                    .iter()
                    .filter(|(_, c)| match c.status {
                        Status::InFlight { deadline } => deadline <= now,
                        Status::RetryAt(at) => at <= now,
                        Status::Queued | Status::Dead => false,
                    })
                    .map(|(p, _)| p.clone())
                    .collect();
                for peer in due {
                    self.enqueue_back(peer);
                }
                self.pump(now);
            }
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Finished => None,
            State::Proving { resend_at, .. } => Some((*resend_at).min(self.deadline)),
            State::Searching => {
                let candidates = self.candidates.values().filter_map(|c| match c.status {
                    Status::InFlight { deadline } => Some(deadline),
                    Status::RetryAt(at) => Some(at),
                    Status::Queued | Status::Dead => None,
                });
                candidates.chain([self.deadline, self.next_lookup]).min()
            }
        }
    }

    /// The nonce a verdict from `peer` must carry to count.
    #[cfg(test)]
    pub(crate) fn expected_re(&self, peer: &PeerId) -> Option<Bytes32> {
        match &self.state {
            State::Proving { device, nonce, .. } if &device.peer == peer => Some(*nonce),
            _ => self
                .candidates
                .get(peer)?
                .attempt
                .as_ref()
                .map(|a| a.join.nonce),
        }
    }

    fn in_flight(&self, peer: &PeerId) -> bool {
        matches!(
            self.candidates.get(peer).map(|c| c.status),
            Some(Status::InFlight { .. })
        )
    }

    fn set_status(&mut self, peer: &PeerId, status: Status) {
        let candidate = self.candidates.entry(peer.clone()).or_insert(Candidate {
            attempt: None,
            status,
        });
        candidate.status = status;
    }

    fn enqueue_back(&mut self, peer: PeerId) {
        self.set_status(&peer, Status::Queued);
        self.queue.retain(|p| *p != peer);
        self.queue.push_back(peer);
    }

    fn enqueue_front(&mut self, peer: PeerId) {
        self.set_status(&peer, Status::Queued);
        self.queue.retain(|p| *p != peer);
        self.queue.push_front(peer);
    }

    /// Sends Joins to queued peers while there is room.
    fn pump(&mut self, now: Instant) {
        let mut in_flight = self
            .candidates
            .values()
            .filter(|c| matches!(c.status, Status::InFlight { .. }))
            .count();
        while in_flight < self.cfg.parallel_attempts {
            let Some(peer) = self.queue.pop_front() else {
                break;
            };
            if self.candidates.get(&peer).map(|c| c.status) != Some(Status::Queued) {
                continue;
            }
            self.contact(peer, now);
            in_flight += 1;
        }
    }

    /// Sends the peer's Join: the one it was sent before, if any, so that a Challenge
    /// still on its way stays valid.
    fn contact(&mut self, peer: PeerId, now: Instant) {
        let deadline = now + self.cfg.attempt_timeout;
        let candidate = self
            .candidates
            .get_mut(&peer)
            .expect("queued peers are candidates");
        candidate.status = Status::InFlight { deadline };
        let bytes = match &candidate.attempt {
            Some(attempt) => attempt.bytes.clone(),
            None => {
                let eph = Ephemeral::new(&mut self.rng);
                let join = Join {
                    discovery_id: self.keys.discovery_id.0,
                    nonce: random32(&mut self.rng),
                    eph: eph.public,
                    info: self.local.info.clone(),
                };
                let bytes = Message::Join(join.clone()).encode();
                candidate.attempt = Some(Box::new(Attempt {
                    join,
                    bytes: bytes.clone(),
                    eph,
                }));
                bytes
            }
        };
        self.send(&peer, bytes);
        self.actions
            .push_back(Action::Progress(Progress::Contacting { peer }));
    }

    fn on_challenge(&mut self, peer: &PeerId, challenge: Challenge, now: Instant) {
        let attempt = match self.candidates.get(peer) {
            Some(Candidate {
                attempt: Some(attempt),
                status,
            }) if *status != Status::Dead => attempt,
            _ => return, // unsolicited
        };
        let transcript = transcript(
            &attempt.join,
            &self.local.peer,
            ChallengeFields {
                nonce: &challenge.nonce,
                eph: &challenge.eph,
                info: &challenge.info,
                peer,
            },
        );
        let shared = match macs_equal(&self.keys.initiator_mac(&transcript), &challenge.mac) {
            true => attempt.eph.agree(&challenge.eph),
            false => None,
        };
        let Some(shared) = shared else {
            // Does not know the code, or relays someone who does under another identity.
            self.set_status(peer, Status::Dead);
            self.pump(now);
            return;
        };
        let nonce = attempt.join.nonce;
        let device = Box::new(PairedDevice {
            peer: peer.clone(),
            info: challenge.info.clone(),
            role: Role::Joiner,
            keys: self.keys.session_keys(&transcript, &shared),
        });
        let prove = Message::Prove(Prove {
            nonce,
            mac: self.keys.joiner_mac(&transcript),
        })
        .encode();
        self.send(peer, prove.clone());
        self.actions.push_back(Action::Progress(Progress::Verified {
            peer: peer.clone(),
            info: challenge.info,
        }));
        // Waits as long as the initiator's user may take, plus one attempt for the verdict
        // to travel.
        self.deadline = now + self.cfg.confirm_timeout + self.cfg.attempt_timeout;
        self.state = State::Proving {
            device,
            nonce,
            prove,
            resend_at: now + self.cfg.attempt_timeout,
        };
    }

    fn on_rejected(&mut self, peer: &PeerId, done: Done, now: Instant) {
        let Outcome::Rejected(reason) = done.outcome else {
            return; // an acceptance we never asked for
        };
        let Some(candidate) = self.candidates.get(peer) else {
            return;
        };
        let ours = candidate
            .attempt
            .as_ref()
            .is_some_and(|a| a.join.nonce == done.re);
        let unreadable = done.re == UNATTRIBUTED
            && matches!(
                reason,
                RejectReason::UnsupportedVersion | RejectReason::Malformed
            );
        if candidate.status == Status::Dead || !(ours || unreadable) {
            return; // about another (older) attempt
        }
        let next = match reason {
            RejectReason::NoSession | RejectReason::Busy | RejectReason::RateLimited => {
                // That attempt is over on the other side: the next one gets a fresh nonce,
                // so a late copy of this answer cannot be mistaken for one about it.
                if let Some(candidate) = self.candidates.get_mut(peer) {
                    candidate.attempt = None;
                }
                Status::RetryAt(now + self.cfg.retry_interval)
            }
            RejectReason::Expired => {
                // Someone held this code and let it expire. Only a short grace remains for
                // another device to answer (the claim is unauthenticated, so it must not end
                // the search on its own), then the user hears "expired", not "nobody".
                self.saw_expired = true;
                self.deadline = self.deadline.min(now + self.cfg.attempt_timeout);
                Status::Dead
            }
            _ => Status::Dead,
        };
        self.set_status(peer, next);
        self.pump(now);
    }

    fn on_verdict(&mut self, done: Done, now: Instant) {
        let State::Proving { device, .. } = &self.state else {
            return;
        };
        let peer = device.peer.clone();
        match done.outcome {
            Outcome::Accepted => {
                let State::Proving { device, .. } =
                    std::mem::replace(&mut self.state, State::Finished)
                else {
                    return;
                };
                self.candidates.clear();
                self.queue.clear();
                self.actions.push_back(Action::Completed(device));
            }
            // Our attempt is gone on the other side (evicted or timed out): a fresh one.
            Outcome::Rejected(RejectReason::NoSession | RejectReason::Busy) => {
                self.state = State::Searching;
                self.deadline = now + self.cfg.join_timeout;
                self.candidates.insert(
                    peer,
                    Candidate {
                        attempt: None,
                        status: Status::RetryAt(now + self.cfg.retry_interval),
                    },
                );
            }
            Outcome::Rejected(RejectReason::Expired) => {
                self.finish(Action::Failed(FailReason::CodeExpired))
            }
            Outcome::Rejected(reason) => {
                self.finish(Action::Failed(FailReason::Rejected { peer, reason }))
            }
        }
    }

    fn send(&mut self, peer: &PeerId, bytes: Vec<u8>) {
        self.actions.push_back(Action::Send {
            peer: peer.clone(),
            bytes,
        });
    }

    fn finish(&mut self, action: Action) {
        self.state = State::Finished;
        self.candidates.clear();
        self.queue.clear();
        self.actions.push_back(action);
    }
}
