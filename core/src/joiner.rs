//! The joiner (Bob): knows the code, looks for the device holding it, proves it.
//!
//! Bob cannot tell which discovered device is Alice, so he asks them (a few at a time) and
//! keeps asking those that answered "no session" — Alice may start after Bob's daemon
//! found her. Only a peer whose Challenge carries a valid MAC is believed.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;

use crate::action::{Action, FailReason, Progress};
use crate::config::Config;
use crate::device::{PairedDevice, Role};
use crate::handshake::{random32, transcript, ChallengeFields, Ephemeral};
use crate::identity::PeerId;
use crate::keys::{macs_equal, CodeKeys};
use crate::messages::{Challenge, Done, Join, Message, Prove, RejectReason};
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

enum Candidate {
    Queued,
    InFlight(Box<Attempt>),
    RetryAt(Instant),
    /// Proved it does not hold this code (bad MAC, expired, incompatible): never asked again.
    Dead,
}

struct Attempt {
    join: Join,
    eph: Ephemeral,
    deadline: Instant,
}

enum State {
    Searching,
    Proving {
        device: Box<PairedDevice>,
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

    pub fn handle_peer(&mut self, peer: &PeerId, now: Instant) {
        if !matches!(self.state, State::Searching) || *peer == self.local.peer {
            return;
        }
        match self.candidates.get(peer) {
            None => self.enqueue(peer.clone()),
            Some(Candidate::RetryAt(at)) if *at <= now => self.enqueue(peer.clone()),
            Some(_) => {}
        }
        self.pump(now);
    }

    pub fn handle_message(&mut self, peer: &PeerId, bytes: &[u8], now: Instant) {
        if now >= self.deadline {
            self.handle_timeout(now);
        }
        let message = Message::decode(bytes);
        match (&self.state, message) {
            (State::Searching, Ok(Message::Challenge(challenge))) => {
                self.on_challenge(peer, challenge, now)
            }
            (State::Searching, Ok(Message::Done(Done::Rejected(reason)))) => {
                self.on_rejected(peer, reason, now)
            }
            (State::Searching, Err(_)) => {
                // Garbage instead of an answer: this peer is no initiator of ours.
                if matches!(self.candidates.get(peer), Some(Candidate::InFlight(_))) {
                    self.candidates.insert(peer.clone(), Candidate::Dead);
                    self.pump(now);
                }
            }
            (State::Proving { device, .. }, Ok(Message::Done(done))) if &device.peer == peer => {
                self.on_verdict(done, now);
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
            } => {
                if now >= self.deadline {
                    let peer = device.peer.clone();
                    self.finish(Action::Failed(FailReason::NoAnswer { peer }));
                } else if now >= *resend_at {
                    // The verdict may have been lost; the initiator answers a repeated proof.
                    *resend_at = now + self.cfg.attempt_timeout;
                    let action = Action::Send {
                        peer: device.peer.clone(),
                        bytes: prove.clone(),
                    };
                    self.actions.push_back(action);
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
                    .filter(|(_, c)| match c {
                        Candidate::InFlight(a) => a.deadline <= now,
                        Candidate::RetryAt(at) => *at <= now,
                        Candidate::Queued | Candidate::Dead => false,
                    })
                    .map(|(p, _)| p.clone())
                    .collect();
                for peer in due {
                    self.enqueue(peer);
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
                let candidates = self.candidates.values().filter_map(|c| match c {
                    Candidate::InFlight(a) => Some(a.deadline),
                    Candidate::RetryAt(at) => Some(*at),
                    Candidate::Queued | Candidate::Dead => None,
                });
                candidates.chain([self.deadline, self.next_lookup]).min()
            }
        }
    }

    fn enqueue(&mut self, peer: PeerId) {
        self.candidates.insert(peer.clone(), Candidate::Queued);
        self.queue.push_back(peer);
    }

    /// Starts attempts with queued peers while there is room.
    fn pump(&mut self, now: Instant) {
        let mut in_flight = self
            .candidates
            .values()
            .filter(|c| matches!(c, Candidate::InFlight(_)))
            .count();
        while in_flight < self.cfg.parallel_attempts {
            let Some(peer) = self.queue.pop_front() else {
                break;
            };
            if !matches!(self.candidates.get(&peer), Some(Candidate::Queued)) {
                continue;
            }
            self.start_attempt(peer, now);
            in_flight += 1;
        }
    }

    fn start_attempt(&mut self, peer: PeerId, now: Instant) {
        let eph = Ephemeral::new(&mut self.rng);
        let join = Join {
            discovery_id: self.keys.discovery_id.0,
            nonce: random32(&mut self.rng),
            eph: eph.public,
            info: self.local.info.clone(),
        };
        self.actions.push_back(Action::Send {
            peer: peer.clone(),
            bytes: Message::Join(join.clone()).encode(),
        });
        self.actions
            .push_back(Action::Progress(Progress::Contacting {
                peer: peer.clone(),
            }));
        let attempt = Attempt {
            join,
            eph,
            deadline: now + self.cfg.attempt_timeout,
        };
        self.candidates
            .insert(peer, Candidate::InFlight(Box::new(attempt)));
    }

    fn on_challenge(&mut self, peer: &PeerId, challenge: Challenge, now: Instant) {
        let Some(Candidate::InFlight(attempt)) = self.candidates.get(peer) else {
            return; // unsolicited, or a duplicate after we moved on
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
            self.candidates.insert(peer.clone(), Candidate::Dead);
            self.pump(now);
            return;
        };
        let device = Box::new(PairedDevice {
            peer: peer.clone(),
            info: challenge.info.clone(),
            role: Role::Joiner,
            keys: self.keys.session_keys(&transcript, &shared),
        });
        let prove = Message::Prove(Prove {
            mac: self.keys.joiner_mac(&transcript),
        })
        .encode();
        self.actions.push_back(Action::Send {
            peer: peer.clone(),
            bytes: prove.clone(),
        });
        self.actions.push_back(Action::Progress(Progress::Verified {
            peer: peer.clone(),
            info: challenge.info,
        }));
        self.candidates.clear();
        self.queue.clear();
        self.deadline = now + self.cfg.confirm_timeout;
        self.state = State::Proving {
            device,
            prove,
            resend_at: now + self.cfg.attempt_timeout,
        };
    }

    fn on_rejected(&mut self, peer: &PeerId, reason: RejectReason, now: Instant) {
        if !matches!(self.candidates.get(peer), Some(Candidate::InFlight(_))) {
            return;
        }
        let next = match reason {
            RejectReason::NoSession | RejectReason::Busy | RejectReason::RateLimited => {
                Candidate::RetryAt(now + self.cfg.retry_interval)
            }
            RejectReason::Expired => {
                // Someone held this code and let it expire. Only a short grace remains for
                // another device to answer (the claim is unauthenticated, so it must not end
                // the search on its own), then the user hears "expired", not "nobody".
                self.saw_expired = true;
                self.deadline = self.deadline.min(now + self.cfg.attempt_timeout);
                Candidate::Dead
            }
            _ => Candidate::Dead,
        };
        self.candidates.insert(peer.clone(), next);
        self.pump(now);
    }

    fn on_verdict(&mut self, done: Done, now: Instant) {
        let State::Proving { device, .. } = &self.state else {
            return;
        };
        let peer = device.peer.clone();
        match done {
            Done::Accepted => {
                let State::Proving { device, .. } =
                    std::mem::replace(&mut self.state, State::Finished)
                else {
                    return;
                };
                self.actions.push_back(Action::Completed(device));
            }
            // Our attempt was dropped on the other side (evicted or timed out): search again.
            Done::Rejected(RejectReason::NoSession | RejectReason::Busy) => {
                self.state = State::Searching;
                self.deadline = now + self.cfg.join_timeout;
                self.candidates
                    .insert(peer, Candidate::RetryAt(now + self.cfg.retry_interval));
            }
            Done::Rejected(RejectReason::Expired) => {
                self.finish(Action::Failed(FailReason::CodeExpired))
            }
            Done::Rejected(reason) => {
                self.finish(Action::Failed(FailReason::Rejected { peer, reason }))
            }
        }
    }

    fn finish(&mut self, action: Action) {
        self.state = State::Finished;
        self.candidates.clear();
        self.queue.clear();
        self.actions.push_back(action);
    }
}
