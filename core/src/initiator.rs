//! The initiator (Alice): holds the code, answers `Join`s, verifies proofs, asks its user.
//!
//! Many joiners may knock at once (honest ones on a busy LAN, attackers who saw the public
//! discovery id); each gets its own attempt, and only a valid proof moves the session on.
//! A wrong proof ends that attempt alone, so nobody without the code can cancel the session.
//! Every verdict names the attempt it concerns (`Done.attempt_nonce`), and repeated messages
//! get the answer they got the first time, so loss and duplication on the way cannot split the
//! outcome between the two sides.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;

use crate::action::{Action, FailReason, Progress};
use crate::config::Config;
use crate::device::{PairedDevice, Role};
use crate::handshake::{random32, transcript, ChallengeFields, Ephemeral};
use crate::identity::PeerId;
use crate::keys::{macs_equal, CodeKeys, Transcript};
use crate::messages::{
    Challenge, DecodeError, Done, Join, Mac, Message, Nonce, Prove, RejectReason, UNATTRIBUTED,
};
use crate::pairing::LocalDevice;
use crate::rate_limit::RateLimiter;
use crate::timer::Timer;

/// The initiating side of one pairing session; drive it through [`Pairing`](crate::Pairing).
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
    /// Sent again, unchanged, when the same Join arrives again.
    challenge: Vec<u8>,
    deadline: Instant,
    /// Arrival order, to evict the oldest when the table is full.
    seq: u64,
}

/// What identifies the verified attempt once the attempt table is gone.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Proven {
    nonce: Nonce,
    mac: Mac,
}

enum State {
    Open,
    /// A joiner proved the code; waiting for the local user until `deadline`.
    Confirming {
        device: Box<PairedDevice>,
        proven: Proven,
        deadline: Instant,
    },
    /// Kept so a retransmitted proof from the paired peer is answered again.
    Completed {
        peer: PeerId,
        proven: Proven,
    },
    /// Ended without pairing; what it answers from now on depends on why.
    Failed(FailReason),
}

/// Where the initiator is, for status displays and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitiatorState {
    /// Waiting for joiners; answering their `Join`s.
    Open,
    /// A joiner proved the code; waiting for the local user's answer.
    Confirming,
    /// Paired; still answers a repeated proof from the paired joiner.
    Completed,
    /// Ended without pairing.
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

    /// Where the initiator is.
    pub fn state(&self) -> InitiatorState {
        match self.state {
            State::Open => InitiatorState::Open,
            State::Confirming { .. } => InitiatorState::Confirming,
            State::Completed { .. } => InitiatorState::Completed,
            State::Failed(_) => InitiatorState::Failed,
        }
    }

    /// When the code expires.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// How many joiners are half-way through the handshake.
    pub fn pending_attempts(&self) -> usize {
        self.attempts.len()
    }

    pub(crate) fn keys(&self) -> &CodeKeys {
        &self.keys
    }

    pub(crate) fn handle_message(&mut self, peer: &PeerId, bytes: &[u8], now: Instant) {
        self.check_deadlines(now);
        match Message::decode(bytes) {
            Ok(Message::Join(join)) => self.on_join(peer, join, now),
            Ok(Message::Prove(prove)) => self.on_prove(peer, prove, now),
            // Wrong direction: an initiator never expects these.
            Ok(Message::Challenge(_) | Message::Done(_)) => {}
            Err(DecodeError::UnsupportedVersion(_)) => {
                self.reply(
                    peer,
                    Done::rejected(UNATTRIBUTED, RejectReason::UnsupportedVersion),
                );
            }
            Err(DecodeError::TooLarge { .. } | DecodeError::Malformed(_)) => {
                self.limiter.record_failure(peer, now);
                self.reply(peer, Done::rejected(UNATTRIBUTED, RejectReason::Malformed));
            }
        }
    }

    pub(crate) fn handle_confirm(&mut self, peer: &PeerId, accept: bool, now: Instant) {
        self.check_deadlines(now);
        let proven = match &self.state {
            State::Confirming { device, proven, .. } if &device.peer == peer => *proven,
            _ => return,
        };
        if accept {
            self.complete();
        } else {
            self.reply(
                peer,
                Done::rejected(proven.nonce, RejectReason::UserRejected),
            );
            self.fail(FailReason::Declined { peer: peer.clone() });
        }
    }

    pub(crate) fn handle_cancel(&mut self, now: Instant) {
        self.check_deadlines(now);
        self.tell_confirming(RejectReason::Cancelled);
        if self.is_live() {
            self.fail(FailReason::Cancelled);
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.check_deadlines(now);
        self.attempts.retain(|_, a| a.deadline > now);
    }

    /// Expiry and the confirmation deadline, checked before any input too: nothing may
    /// complete after them, whenever the driver gets round to `handle_timeout`.
    fn check_deadlines(&mut self, now: Instant) {
        if self.is_live() && now >= self.expires_at {
            self.tell_confirming(RejectReason::Expired);
            self.fail(FailReason::CodeExpired);
        }
        if let State::Confirming {
            deadline, device, ..
        } = &self.state
        {
            if now >= *deadline {
                let peer = device.peer.clone();
                self.tell_confirming(RejectReason::Timeout);
                self.fail(FailReason::ConfirmTimeout { peer });
            }
        }
    }

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest timer and its instant; `None` once the session is over.
    pub(crate) fn next_timer(&self) -> Option<(Instant, Timer)> {
        let expiry = (self.expires_at, Timer::CodeExpiry);
        match &self.state {
            State::Open => self
                .attempts
                .values()
                .map(|a| (a.deadline, Timer::Attempt))
                .chain([expiry])
                .min_by_key(|(at, _)| *at),
            State::Confirming { deadline, .. } => [(*deadline, Timer::Confirmation), expiry]
                .into_iter()
                .min_by_key(|(at, _)| *at),
            State::Completed { .. } | State::Failed(_) => None,
        }
    }

    fn is_live(&self) -> bool {
        matches!(self.state, State::Open | State::Confirming { .. })
    }

    /// How long an attempt lives after its last Join: the joiner resends its Join every
    /// `attempt_timeout`, so twice that keeps a slow but live attempt (and its Challenge)
    /// stable, and a resent Prove still finds it.
    fn attempt_deadline(&self, now: Instant) -> Instant {
        now + self.cfg.attempt_timeout * 2
    }

    fn on_join(&mut self, peer: &PeerId, join: Join, now: Instant) {
        let attempt_nonce = join.nonce;
        let answer = match &self.state {
            _ if join.discovery_id != self.keys.discovery_id => Some(RejectReason::NoSession),
            State::Failed(reason) => Some(answer_after(reason)),
            // A copy of the Join that led here: its attempt is past this point already.
            State::Confirming { device, proven, .. }
                if &device.peer == peer && proven.nonce == attempt_nonce =>
            {
                None
            }
            State::Completed { peer: p, proven } if p == peer && proven.nonce == attempt_nonce => {
                None
            }
            State::Confirming { .. } => Some(RejectReason::Busy),
            State::Completed { .. } => Some(RejectReason::NoSession),
            State::Open if self.limiter.is_blocked(peer, now) => Some(RejectReason::RateLimited),
            State::Open => {
                self.open_attempt(peer, join, now);
                return;
            }
        };
        if let Some(reason) = answer {
            self.reply(peer, Done::rejected(attempt_nonce, reason));
        }
    }

    fn open_attempt(&mut self, peer: &PeerId, join: Join, now: Instant) {
        let deadline = self.attempt_deadline(now);
        if let Some(attempt) = self.attempts.get_mut(peer).filter(|a| a.join == join) {
            // The joiner did not hear our Challenge (or resent early): the same one again.
            attempt.deadline = deadline;
            let bytes = attempt.challenge.clone();
            self.actions.push_back(Action::Send {
                peer: peer.clone(),
                bytes,
            });
            return;
        }
        if !self.attempts.contains_key(peer) && self.attempts.len() >= self.cfg.max_pending_attempts
        {
            self.evict_oldest();
        }
        let eph = Ephemeral::new(&mut self.rng);
        let nonce = Nonce(random32(&mut self.rng));
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
        let challenge = Message::Challenge(Challenge {
            nonce,
            eph: eph.public,
            info: self.local.info.clone(),
            mac: self.keys.initiator_mac(&transcript),
        })
        .encode();
        self.actions.push_back(Action::Send {
            peer: peer.clone(),
            bytes: challenge.clone(),
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        self.attempts.insert(
            peer.clone(),
            Attempt {
                join,
                eph,
                transcript,
                challenge,
                deadline,
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
            if let Some(attempt) = self.attempts.remove(&peer) {
                self.reply(
                    &peer,
                    Done::rejected(attempt.join.nonce, RejectReason::Busy),
                );
            }
        }
    }

    fn on_prove(&mut self, peer: &PeerId, prove: Prove, now: Instant) {
        let attempt_nonce = prove.nonce;
        match &self.state {
            State::Open => {}
            State::Completed { peer: p, proven } if p == peer && proven.nonce == attempt_nonce => {
                if proven.mac == prove.mac {
                    // The joiner did not get our Done: say it again.
                    self.reply(peer, Done::accepted(attempt_nonce));
                }
                return;
            }
            State::Confirming { device, proven, .. }
                if &device.peer == peer && proven.nonce == attempt_nonce =>
            {
                return; // a copy of the proof the user is deciding about
            }
            State::Confirming { .. } => {
                self.reply(peer, Done::rejected(attempt_nonce, RejectReason::Busy));
                return;
            }
            State::Failed(reason) => {
                let answer = answer_after(reason);
                self.reply(peer, Done::rejected(attempt_nonce, answer));
                return;
            }
            State::Completed { .. } => {
                self.reply(peer, Done::rejected(attempt_nonce, RejectReason::NoSession));
                return;
            }
        }
        let attempt = match self.attempts.remove(peer) {
            Some(attempt) if attempt.join.nonce == attempt_nonce => attempt,
            other => {
                // Its attempt timed out, was evicted, or is an older one: start over.
                if let Some(current) = other {
                    self.attempts.insert(peer.clone(), current);
                }
                self.reply(peer, Done::rejected(attempt_nonce, RejectReason::NoSession));
                return;
            }
        };
        let expected = self.keys.joiner_mac(&attempt.transcript);
        let shared = match macs_equal(&expected.0, &prove.mac.0) {
            true => attempt.eph.agree(&attempt.join.eph),
            false => None,
        };
        let Some(shared) = shared else {
            self.limiter.record_failure(peer, now);
            self.reply(peer, Done::rejected(attempt_nonce, RejectReason::BadProof));
            return;
        };
        let device = Box::new(PairedDevice {
            peer: peer.clone(),
            info: attempt.join.info.clone(),
            role: Role::Initiator,
            keys: self.keys.session_keys(&attempt.transcript, &shared),
        });
        // The session is held now; tell the others at once rather than let them time out.
        for (other, attempt) in std::mem::take(&mut self.attempts) {
            self.reply(
                &other,
                Done::rejected(attempt.join.nonce, RejectReason::Busy),
            );
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
            proven: Proven {
                nonce: attempt_nonce,
                mac: prove.mac,
            },
            // The joiner waits `confirm_timeout` for the verdict: answering later than that
            // would pair us with a device that gave up.
            deadline: now + self.cfg.confirm_timeout,
        };
        if self.cfg.auto_accept {
            self.complete();
        }
    }

    /// Finishes a session that is confirming; does nothing in any other state.
    fn complete(&mut self) {
        let State::Confirming { device, proven, .. } = &self.state else {
            return;
        };
        let (peer, proven) = (device.peer.clone(), *proven);
        let completed = State::Completed {
            peer: peer.clone(),
            proven,
        };
        let State::Confirming { device, .. } = std::mem::replace(&mut self.state, completed) else {
            unreachable!("the state was Confirming a moment ago");
        };
        self.reply(&peer, Done::accepted(proven.nonce));
        self.actions.push_back(Action::Unpublish {
            key: self.keys.discovery_id,
        });
        self.actions.push_back(Action::Completed(device));
    }

    /// Tells the joiner whose proof awaits the user's answer that it will not come.
    fn tell_confirming(&mut self, reason: RejectReason) {
        if let State::Confirming { device, proven, .. } = &self.state {
            let (peer, attempt_nonce) = (device.peer.clone(), proven.nonce);
            self.reply(&peer, Done::rejected(attempt_nonce, reason));
        }
    }

    fn fail(&mut self, reason: FailReason) {
        self.attempts.clear();
        self.state = State::Failed(reason.clone());
        self.actions.push_back(Action::Unpublish {
            key: self.keys.discovery_id,
        });
        self.actions.push_back(Action::Failed(reason));
    }

    fn reply(&mut self, peer: &PeerId, done: Done) {
        self.actions.push_back(Action::Send {
            peer: peer.clone(),
            bytes: Message::Done(done).encode(),
        });
    }
}

/// What a session that failed for `reason` tells a joiner that comes later: an expired code
/// says so, so the joiner's user hears "expired" rather than "nobody answered".
fn answer_after(reason: &FailReason) -> RejectReason {
    match reason {
        FailReason::CodeExpired => RejectReason::Expired,
        FailReason::Declined { .. }
        | FailReason::Cancelled
        | FailReason::ConfirmTimeout { .. }
        | FailReason::NoDeviceAnswered
        | FailReason::Rejected { .. }
        | FailReason::NoAnswer { .. } => RejectReason::NoSession,
    }
}
