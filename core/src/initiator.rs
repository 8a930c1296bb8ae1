//! The initiator (Alice): holds the code, answers `Join`s, verifies proofs, asks its user.
//!
//! Many joiners may knock at once (honest ones on a busy LAN, attackers who saw the public
//! discovery id); each gets its own Challenge, and only a valid proof moves the session on.
//! The initiator remembers nothing about a `Join` it answered: its Challenge values are
//! derived from a session secret and the `Join` (see `cookie`), so no number of `Join`s
//! can crowd out another. A wrong proof ends that attempt alone, so nobody without the
//! code can cancel the session.
//! Every verdict names the attempt it concerns (`Done.attempt_nonce`), and repeated messages
//! get the answer they got the first time, so loss and duplication on the way cannot split the
//! outcome between the two sides.

use std::collections::VecDeque;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;

use crate::action::{Action, FailReason, Progress};
use crate::config::Config;
use crate::cookie::CookieKey;
use crate::device::{DeviceInfo, PairedDevice, Role};
use crate::handshake::{transcript, ChallengeFields};
use crate::identity::PeerId;
use crate::keys::{macs_equal, CodeKeys, Transcript, KEY_LEN};
use crate::messages::{
    Challenge, DecodeError, Done, Join, Mac, Message, Nonce, Prove, RejectReason, UNATTRIBUTED,
};
use crate::pairing::LocalDevice;
use crate::rate_limit::RateLimiter;
use crate::timer::Timer;
use crate::verification::Verification;

/// The initiating side of one pairing session; drive it through [`Pairing`](crate::Pairing).
pub struct Initiator {
    cfg: Config,
    local: LocalDevice,
    keys: CodeKeys,
    /// Every attempt's Challenge values follow from it and the attempt's `Join`.
    cookie: CookieKey,
    expires_at: Instant,
    state: State,
    limiter: RateLimiter,
    /// How many more `Join`s get a `PrepareStore` with their `Challenge`.
    prepares_left: u8,
    actions: VecDeque<Action>,
}

/// `Join`s per session whose pairing the embedder may ready before the proof: the honest
/// joiner's and one resend of it. Anyone who learnt the `discovery_id` can send `Join`s
/// without knowing the code, and each readied save is a durable write: so a few, not one
/// per `Join`.
const PREPARES_PER_SESSION: u8 = 2;

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
    /// The user said yes; waiting for the embedder to store the pairing (`Action::Store`)
    /// until `deadline`. The joiner hears `Accepted` only once it is stored here.
    Storing {
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
    /// The user accepted; waiting for the pairing to be stored before acknowledging it.
    Storing,
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
        mut rng: ChaCha20Rng,
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
            cookie: CookieKey::generate(&mut rng),
            expires_at,
            state: State::Open,
            limiter,
            prepares_left: PREPARES_PER_SESSION,
            actions,
        }
    }

    /// Where the initiator is.
    pub fn state(&self) -> InitiatorState {
        match self.state {
            State::Open => InitiatorState::Open,
            State::Confirming { .. } => InitiatorState::Confirming,
            State::Storing { .. } => InitiatorState::Storing,
            State::Completed { .. } => InitiatorState::Completed,
            State::Failed(_) => InitiatorState::Failed,
        }
    }

    /// Whether `peer` proved the code and its verdict waits only for the embedder's
    /// answer to `Action::Store` (or the store deadline): a `Done` to `peer` follows
    /// without anyone else's say.
    pub fn verdict_pending(&self, peer: &PeerId) -> bool {
        matches!(&self.state, State::Storing { device, .. } if &device.peer == peer)
    }

    /// When the code expires.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// How many peers the initiator holds any record of (failed proofs, for rate
    /// limiting; bounded). Answering a `Join` adds nothing: there is no per-attempt state.
    pub fn tracked_peers(&self) -> usize {
        self.limiter.len()
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
            self.store(now);
        } else {
            self.reply(
                peer,
                Done::rejected(proven.nonce, RejectReason::UserRejected),
            );
            self.fail(FailReason::Declined { peer: peer.clone() });
        }
    }

    /// The embedder's answer to `Action::Store`: only a pairing stored here is
    /// acknowledged to the joiner; otherwise the joiner is told it was not stored.
    pub(crate) fn handle_stored(&mut self, peer: &PeerId, stored: bool, now: Instant) {
        self.check_deadlines(now);
        match &self.state {
            State::Storing { device, .. } if &device.peer == peer => {}
            _ => return,
        }
        if stored {
            self.complete();
        } else {
            self.tell_waiting(RejectReason::NotStored);
            self.fail(FailReason::NotStored { peer: peer.clone() });
        }
    }

    pub(crate) fn handle_cancel(&mut self, now: Instant) {
        self.check_deadlines(now);
        self.tell_waiting(RejectReason::Cancelled);
        if self.is_live() {
            self.fail(FailReason::Cancelled);
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.check_deadlines(now);
    }

    /// Expiry and the confirmation deadline, checked before any input too: nothing may
    /// complete after them, whenever the driver gets round to `handle_timeout`.
    fn check_deadlines(&mut self, now: Instant) {
        if self.is_live() && now >= self.expires_at {
            self.tell_waiting(RejectReason::Expired);
            self.fail(FailReason::CodeExpired);
        }
        match &self.state {
            State::Confirming {
                deadline, device, ..
            } if now >= *deadline => {
                let peer = device.peer.clone();
                self.tell_waiting(RejectReason::Timeout);
                self.fail(FailReason::ConfirmTimeout { peer });
            }
            // The embedder never answered: as good as a failed save.
            State::Storing {
                deadline, device, ..
            } if now >= *deadline => {
                let peer = device.peer.clone();
                self.tell_waiting(RejectReason::NotStored);
                self.fail(FailReason::NotStored { peer });
            }
            _ => {}
        }
    }

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest timer and its instant; `None` once the session is over.
    pub(crate) fn next_timer(&self) -> Option<(Instant, Timer)> {
        let expiry = (self.expires_at, Timer::CodeExpiry);
        match &self.state {
            State::Open => Some(expiry),
            State::Confirming { deadline, .. } => [(*deadline, Timer::Confirmation), expiry]
                .into_iter()
                .min_by_key(|(at, _)| *at),
            State::Storing { deadline, .. } => [(*deadline, Timer::Store), expiry]
                .into_iter()
                .min_by_key(|(at, _)| *at),
            State::Completed { .. } | State::Failed(_) => None,
        }
    }

    fn is_live(&self) -> bool {
        matches!(
            self.state,
            State::Open | State::Confirming { .. } | State::Storing { .. }
        )
    }

    fn on_join(&mut self, peer: &PeerId, join: Join, now: Instant) {
        let attempt_nonce = join.nonce;
        let answer = match &self.state {
            _ if join.discovery_id != self.keys.discovery_id => Some(RejectReason::NoSession),
            State::Failed(FailReason::CodeExpired) => {
                // Said with proof of the code: the joiner ends its search on it.
                let proof = self
                    .keys
                    .expired_mac(&attempt_nonce, peer, &self.local.peer);
                self.reply(peer, Done::expired(attempt_nonce, proof));
                return;
            }
            State::Failed(reason) => Some(answer_after(reason)),
            // A copy of the Join that led here: its attempt is past this point already.
            State::Confirming { device, proven, .. } | State::Storing { device, proven, .. }
                if &device.peer == peer && proven.nonce == attempt_nonce =>
            {
                None
            }
            State::Completed { peer: p, proven } if p == peer && proven.nonce == attempt_nonce => {
                None
            }
            State::Confirming { .. } | State::Storing { .. } => Some(RejectReason::Busy),
            State::Completed { .. } => Some(RejectReason::NoSession),
            State::Open if self.limiter.is_blocked(peer, now) => Some(RejectReason::RateLimited),
            State::Open => {
                self.challenge(peer, &join);
                return;
            }
        };
        if let Some(reason) = answer {
            self.reply(peer, Done::rejected(attempt_nonce, reason));
        }
    }

    /// Answers `join` with its Challenge, derived afresh (so a repeated Join gets the same
    /// one) and forgotten at once; while the budget lasts, with a `PrepareStore` of the
    /// pairing a valid proof of that Challenge would make, so that the embedder can write
    /// it during the round trip and the store after the proof has only to put it in place.
    fn challenge(&mut self, peer: &PeerId, join: &Join) {
        let (eph, nonce) = self.cookie.challenge_values(join, peer);
        let transcript = transcript(
            join,
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
        });
        self.actions.push_back(Action::Send {
            peer: peer.clone(),
            bytes: challenge.encode(),
        });
        if self.prepares_left == 0 {
            return;
        }
        if let Some(shared) = eph.agree(&join.eph) {
            self.prepares_left -= 1;
            let device = self.paired_device(peer, join.info.clone(), &transcript, &shared);
            self.actions.push_back(Action::PrepareStore(device));
        }
    }

    /// The pairing with `peer` that `transcript` and `shared` make.
    fn paired_device(
        &self,
        peer: &PeerId,
        info: DeviceInfo,
        transcript: &Transcript,
        shared: &[u8; KEY_LEN],
    ) -> Box<PairedDevice> {
        Box::new(PairedDevice {
            peer: peer.clone(),
            info,
            role: Role::Initiator,
            keys: self.keys.session_keys(transcript, shared),
        })
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
            State::Confirming { device, proven, .. } | State::Storing { device, proven, .. }
                if &device.peer == peer && proven.nonce == attempt_nonce =>
            {
                return; // a copy of the proof the user (or the store) is deciding about
            }
            State::Confirming { .. } | State::Storing { .. } => {
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
        // Re-derive what we answered to the Join this proof repeats. A proof for a Join
        // we never saw derives a Challenge the joiner never had: its MAC cannot match.
        let join = prove.join(self.keys.discovery_id);
        let (eph, nonce) = self.cookie.challenge_values(&join, peer);
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
        let expected = self.keys.joiner_mac(&transcript);
        let shared = match macs_equal(&expected.0, &prove.mac.0) {
            true => eph.agree(&join.eph),
            false => None,
        };
        let Some(shared) = shared else {
            self.limiter.record_failure(peer, now);
            self.reply(peer, Done::rejected(attempt_nonce, RejectReason::BadProof));
            return;
        };
        let device = self.paired_device(peer, join.info, &transcript, &shared);
        self.actions.push_back(Action::Progress(Progress::Verified {
            peer: peer.clone(),
            info: device.info.clone(),
        }));
        if !self.cfg.auto_accept {
            self.actions.push_back(Action::Confirm {
                peer: peer.clone(),
                info: device.info.clone(),
                verification: Verification::of(&device.keys.transcript),
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
            self.store(now);
        }
    }

    /// The user said yes: asks the embedder to store the pairing before the joiner hears
    /// of it. Does nothing unless confirming.
    fn store(&mut self, now: Instant) {
        let (device, proven, confirm_deadline) = match &self.state {
            State::Confirming {
                device,
                proven,
                deadline,
            } => (device.clone(), *proven, *deadline),
            _ => return,
        };
        self.actions.push_back(Action::Store(device.clone()));
        self.state = State::Storing {
            device,
            proven,
            // The joiner stops waiting for the verdict at the confirmation deadline, so a
            // slow save may not push the answer past it either.
            deadline: confirm_deadline.min(now + self.cfg.store_timeout),
        };
    }

    /// Finishes a session whose pairing was stored; does nothing in any other state.
    fn complete(&mut self) {
        let State::Storing { device, proven, .. } = &self.state else {
            return;
        };
        let (peer, proven) = (device.peer.clone(), *proven);
        let completed = State::Completed {
            peer: peer.clone(),
            proven,
        };
        let State::Storing { device, .. } = std::mem::replace(&mut self.state, completed) else {
            unreachable!("the state was Storing a moment ago");
        };
        self.reply(&peer, Done::accepted(proven.nonce));
        self.actions.push_back(Action::Unpublish {
            key: self.keys.discovery_id,
        });
        self.actions.push_back(Action::Completed(device));
    }

    /// Tells the joiner whose proof awaits the user's answer (or the store) that the
    /// pairing will not happen.
    fn tell_waiting(&mut self, reason: RejectReason) {
        if let State::Confirming { device, proven, .. } | State::Storing { device, proven, .. } =
            &self.state
        {
            let (peer, attempt_nonce) = (device.peer.clone(), proven.nonce);
            self.reply(&peer, Done::rejected(attempt_nonce, reason));
        }
    }

    fn fail(&mut self, reason: FailReason) {
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
        | FailReason::NotStored { .. }
        | FailReason::NoDeviceAnswered
        | FailReason::Rejected { .. }
        | FailReason::NoAnswer { .. } => RejectReason::NoSession,
    }
}
