//! The initiator (Alice): holds the code, answers `Join`s, verifies proofs, asks its user.
//!
//! Many joiners may knock at once (honest ones on a busy LAN, attackers who saw the public
//! discovery id); each gets its own attempt, and only a valid proof moves the session on.
//! A wrong proof ends that attempt alone, so nobody without the code can cancel the session.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;

use crate::action::{Action, FailReason, Progress};
use crate::config::Config;
use crate::device::{PairedDevice, Role};
use crate::handshake::{random32, transcript, ChallengeFields, Ephemeral};
use crate::identity::PeerId;
use crate::keys::{macs_equal, CodeKeys, Transcript};
use crate::messages::{Bytes32, Challenge, DecodeError, Done, Join, Message, Prove, RejectReason};
use crate::pairing::LocalDevice;
use crate::rate_limit::RateLimiter;

pub struct Initiator {
    cfg: Config,
    local: LocalDevice,
    keys: CodeKeys,
    rng: ChaCha20Rng,
    expires_at: Instant,
    state: State,
    attempts: BTreeMap<PeerId, Attempt>,
    next_seq: u64,
    limiter: RateLimiter,
    actions: VecDeque<Action>,
}

struct Attempt {
    join: Join,
    eph: Ephemeral,
    transcript: Transcript,
    deadline: Instant,
    /// Arrival order, to evict the oldest when the table is full.
    seq: u64,
}

enum State {
    Open,
    /// A joiner proved the code; waiting for the local user.
    Confirming {
        device: Box<PairedDevice>,
        prove_mac: Bytes32,
    },
    /// Kept so a retransmitted proof from the paired peer is answered again.
    Completed {
        peer: PeerId,
        prove_mac: Bytes32,
    },
    Failed {
        expired: bool,
    },
}

/// Where the initiator is, for status displays and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitiatorState {
    Open,
    Confirming,
    Completed,
    Failed,
}

impl Initiator {
    pub(crate) fn new(
        cfg: Config,
        local: LocalDevice,
        keys: CodeKeys,
        now: Instant,
        rng: ChaCha20Rng,
    ) -> Self {
        let expires_at = now + cfg.code_ttl;
        let limiter = RateLimiter::new(cfg.max_failures_per_peer, cfg.failure_block);
        let mut actions = VecDeque::new();
        actions.push_back(Action::Publish {
            key: keys.discovery_id,
            until: expires_at,
        });
        Initiator {
            cfg,
            local,
            keys,
            rng,
            expires_at,
            state: State::Open,
            attempts: BTreeMap::new(),
            next_seq: 0,
            limiter,
            actions,
        }
    }

    pub fn state(&self) -> InitiatorState {
        match self.state {
            State::Open => InitiatorState::Open,
            State::Confirming { .. } => InitiatorState::Confirming,
            State::Completed { .. } => InitiatorState::Completed,
            State::Failed { .. } => InitiatorState::Failed,
        }
    }

    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    pub fn pending_attempts(&self) -> usize {
        self.attempts.len()
    }

    pub(crate) fn keys(&self) -> &CodeKeys {
        &self.keys
    }

    pub fn handle_message(&mut self, peer: &PeerId, bytes: &[u8], now: Instant) {
        self.expire_if_due(now);
        match Message::decode(bytes) {
            Ok(Message::Join(join)) => self.on_join(peer, join, now),
            Ok(Message::Prove(prove)) => self.on_prove(peer, prove, now),
            // Wrong direction: an initiator never expects these.
            Ok(Message::Challenge(_) | Message::Done(_)) => {}
            Err(DecodeError::UnsupportedVersion(_)) => {
                self.reply(peer, Done::Rejected(RejectReason::UnsupportedVersion));
            }
            Err(DecodeError::TooLarge { .. } | DecodeError::Malformed(_)) => {
                self.limiter.record_failure(peer, now);
                self.reply(peer, Done::Rejected(RejectReason::Malformed));
            }
        }
    }

    pub fn handle_confirm(&mut self, peer: &PeerId, accept: bool, now: Instant) {
        self.expire_if_due(now);
        let confirming =
            matches!(&self.state, State::Confirming { device, .. } if &device.peer == peer);
        if !confirming {
            return;
        }
        if accept {
            self.complete();
        } else {
            self.reply(peer, Done::Rejected(RejectReason::UserRejected));
            self.fail(FailReason::Declined { peer: peer.clone() }, false);
        }
    }

    pub fn handle_cancel(&mut self, now: Instant) {
        self.expire_if_due(now);
        if let State::Confirming { device, .. } = &self.state {
            let peer = device.peer.clone();
            self.reply(&peer, Done::Rejected(RejectReason::Cancelled));
        }
        if self.is_live() {
            self.fail(FailReason::Cancelled, false);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_if_due(now);
        self.attempts.retain(|_, a| a.deadline > now);
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Open => {
                let attempts = self.attempts.values().map(|a| a.deadline).min();
                Some(attempts.map_or(self.expires_at, |a| a.min(self.expires_at)))
            }
            State::Confirming { .. } => Some(self.expires_at),
            State::Completed { .. } | State::Failed { .. } => None,
        }
    }

    fn is_live(&self) -> bool {
        matches!(self.state, State::Open | State::Confirming { .. })
    }

    fn on_join(&mut self, peer: &PeerId, join: Join, now: Instant) {
        let answer = match &self.state {
            State::Failed { expired: true } => Some(RejectReason::Expired),
            _ if join.discovery_id() != self.keys.discovery_id => Some(RejectReason::NoSession),
            State::Completed { .. } | State::Failed { .. } => Some(RejectReason::NoSession),
            State::Confirming { .. } => Some(RejectReason::Busy),
            State::Open if self.limiter.is_blocked(peer, now) => Some(RejectReason::RateLimited),
            State::Open => None,
        };
        if let Some(reason) = answer {
            self.reply(peer, Done::Rejected(reason));
            return;
        }
        if self.attempts.get(peer).is_some_and(|a| a.join == join) {
            return; // a duplicate of the Join we already answered
        }
        if !self.attempts.contains_key(peer) && self.attempts.len() >= self.cfg.max_pending_attempts
        {
            self.evict_oldest();
        }
        let eph = Ephemeral::new(&mut self.rng);
        let nonce = random32(&mut self.rng);
        let transcript = transcript(
            &join,
            peer,
            ChallengeFields {
                nonce: &nonce,
                eph: &eph.public,
                info: &self.local.info,
                peer: &self.local.peer,
            },
        );
        let challenge = Challenge {
            nonce,
            eph: eph.public,
            info: self.local.info.clone(),
            mac: self.keys.initiator_mac(&transcript),
        };
        self.send(peer, Message::Challenge(challenge));
        let seq = self.next_seq;
        self.next_seq += 1;
        self.attempts.insert(
            peer.clone(),
            Attempt {
                join,
                eph,
                transcript,
                deadline: now + self.cfg.attempt_timeout,
                seq,
            },
        );
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .attempts
            .iter()
            .min_by_key(|(_, a)| a.seq)
            .map(|(p, _)| p.clone());
        if let Some(peer) = oldest {
            self.attempts.remove(&peer);
            self.reply(&peer, Done::Rejected(RejectReason::Busy));
        }
    }

    fn on_prove(&mut self, peer: &PeerId, prove: Prove, now: Instant) {
        match &self.state {
            State::Open => {}
            State::Completed {
                peer: paired,
                prove_mac,
            } if paired == peer && *prove_mac == prove.mac => {
                // The joiner did not get our Done: say it again.
                self.reply(peer, Done::Accepted);
                return;
            }
            State::Completed { .. } => {
                self.reply(peer, Done::Rejected(RejectReason::NoSession));
                return;
            }
            State::Confirming { .. } | State::Failed { .. } => return,
        }
        let Some(attempt) = self.attempts.remove(peer) else {
            // Its attempt timed out or was never made: let the joiner start over at once.
            self.reply(peer, Done::Rejected(RejectReason::NoSession));
            return;
        };
        let expected = self.keys.joiner_mac(&attempt.transcript);
        let shared = match macs_equal(&expected, &prove.mac) {
            true => attempt.eph.agree(&attempt.join.eph),
            false => None,
        };
        let Some(shared) = shared else {
            self.limiter.record_failure(peer, now);
            self.reply(peer, Done::Rejected(RejectReason::BadProof));
            return;
        };
        let device = Box::new(PairedDevice {
            peer: peer.clone(),
            info: attempt.join.info.clone(),
            role: Role::Initiator,
            keys: self.keys.session_keys(&attempt.transcript, &shared),
        });
        // The session is held now; tell the others at once rather than let them time out.
        for other in std::mem::take(&mut self.attempts).into_keys() {
            self.reply(&other, Done::Rejected(RejectReason::Busy));
        }
        self.actions.push_back(Action::Progress(Progress::Verified {
            peer: peer.clone(),
            info: device.info.clone(),
        }));
        if !self.cfg.auto_accept {
            self.actions.push_back(Action::Confirm {
                peer: peer.clone(),
                info: device.info.clone(),
            });
        }
        self.state = State::Confirming {
            device,
            prove_mac: prove.mac,
        };
        if self.cfg.auto_accept {
            self.complete();
        }
    }

    /// Finishes a session that is confirming; does nothing in any other state.
    fn complete(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Failed { expired: false });
        let State::Confirming { device, prove_mac } = state else {
            self.state = state;
            return;
        };
        let peer = device.peer.clone();
        self.reply(&peer, Done::Accepted);
        self.actions.push_back(Action::Unpublish {
            key: self.keys.discovery_id,
        });
        self.actions.push_back(Action::Completed(device));
        self.state = State::Completed { peer, prove_mac };
    }

    fn expire_if_due(&mut self, now: Instant) {
        if now < self.expires_at || !self.is_live() {
            return;
        }
        if let State::Confirming { device, .. } = &self.state {
            let peer = device.peer.clone();
            self.reply(&peer, Done::Rejected(RejectReason::Expired));
        }
        self.fail(FailReason::CodeExpired, true);
    }

    fn fail(&mut self, reason: FailReason, expired: bool) {
        self.attempts.clear();
        self.state = State::Failed { expired };
        self.actions.push_back(Action::Unpublish {
            key: self.keys.discovery_id,
        });
        self.actions.push_back(Action::Failed(reason));
    }

    fn reply(&mut self, peer: &PeerId, done: Done) {
        self.send(peer, Message::Done(done));
    }

    fn send(&mut self, peer: &PeerId, message: Message) {
        self.actions.push_back(Action::Send {
            peer: peer.clone(),
            bytes: message.encode(),
        });
    }
}
