//! The joiner (Bob): knows the code, looks for the device holding it, proves it.
//!
//! Bob cannot tell which discovered device is Alice, so he asks them (a few at a time) and
//! keeps asking those that answered "no session" — Alice may start after Bob's daemon
//! found her. Only a peer whose Challenge carries a valid MAC is believed, and only a
//! verdict naming the current attempt (`Done.attempt_nonce`) is acted upon (see
//! `docs/PROTOCOL.md`). Before a peer proved the code, nothing it says ends the search:
//! a rejection ends that peer's attempt only, and "expired" counts only with proof.
//! Once the Challenge verified, Bob's user confirms the initiator's name and the
//! verification string before Bob proves the code back.

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
    Challenge, Done, Join, Message, Nonce, Outcome, Prove, RejectReason, UNATTRIBUTED,
};
use crate::pairing::LocalDevice;
use crate::timer::Timer;
use crate::verification::Verification;

/// The joining side of one pairing session; drive it through [`Pairing`](crate::Pairing).
pub struct Joiner {
    ctx: Context,
    state: State,
}

/// What every state uses: who we are, the code's keys, randomness and the action queue.
struct Context {
    cfg: Config,
    local: LocalDevice,
    keys: CodeKeys,
    rng: ChaCha20Rng,
    actions: VecDeque<Action>,
}

enum State {
    Searching(Search),
    /// A peer proved it holds the code; our user decides before we prove it back.
    Confirming(Confirming),
    /// A peer proved it holds the code; we proved it back and wait for its verdict.
    Proving(Proving),
    /// The initiator accepted (it stored the pairing); waiting for our embedder to store
    /// it too (`Action::Store`).
    Storing(Storing),
    Finished,
}

struct Storing {
    device: Box<PairedDevice>,
    /// When an unanswered store counts as failed.
    deadline: Instant,
}

/// Looking for the initiator among the peers discovery reports.
struct Search {
    /// When the search gives up.
    deadline: Instant,
    next_lookup: Instant,
    /// When a first lookup waits for the peers at hand: `first_lookup_delay` after the
    /// start. `None` once a lookup went out.
    first_lookup_after_peers: Option<Instant>,
    /// Lookups of this search that reached no DHT peer; each doubles the wait before the
    /// next (see `handle_lookup_failed`). Never reset, so that lookups that keep failing
    /// (no DHT peer at all) come no more often than `lookup_interval` after the first few.
    failed_lookups: u32,
    candidates: BTreeMap<PeerId, Candidate>,
    /// Candidates waiting for a free slot, the next first.
    queue: VecDeque<PeerId>,
}

struct Confirming {
    device: Box<PairedDevice>,
    nonce: Nonce,
    /// Our `Prove`, sent once the user says yes.
    prove: Vec<u8>,
    /// When the user's answer is due.
    deadline: Instant,
    /// The search, on hold: nothing one-sided exists yet.
    search: Search,
}

struct Proving {
    device: Box<PairedDevice>,
    /// The attempt the verdict must name.
    nonce: Nonce,
    /// Our `Prove`, sent again until the verdict comes.
    prove: Vec<u8>,
    resend_at: Instant,
    /// When we stop waiting for the verdict.
    deadline: Instant,
    /// The search, on hold: it resumes if the initiator lost our attempt.
    search: Search,
}

/// One peer we ask. Its attempt (nonce, ephemeral key, Join bytes) is kept across resends,
/// so a Challenge that arrives late still matches.
struct Candidate {
    attempt: Option<Box<Attempt>>,
    status: Status,
    /// Sends in a row that could not reach this peer; each doubles the wait before the
    /// next (see [`Config::redial_interval`]).
    unreached: u32,
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

/// What a rejection during the search amounts to.
enum Heard {
    /// Nothing beyond that peer's attempt.
    Nothing,
    /// The code expired, said by a peer that proved it held the code.
    ProvenExpired,
}

struct Attempt {
    join: Join,
    bytes: Vec<u8>,
    eph: Ephemeral,
}

/// Where the joiner is, for status displays and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinerState {
    /// Looking for the initiator.
    Searching,
    /// The initiator proved the code; waiting for the local user's answer.
    Confirming,
    /// Proved the code to a peer; waiting for its verdict.
    Proving,
    /// The initiator accepted; waiting for the pairing to be stored here.
    Storing,
    /// Completed or failed; nothing more will happen.
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
        // No lookup yet: it is due at once, unless the embedder reports peers at hand (on
        // the LAN, connected) before the next timeout. Those are asked first, and a lookup
        // sent with their Joins would only delay them; with none, nothing is worth waiting
        // for.
        let actions = VecDeque::new();
        let search = Search {
            deadline: now + cfg.join_timeout,
            next_lookup: now,
            first_lookup_after_peers: Some(now + cfg.first_lookup_delay),
            failed_lookups: 0,
            candidates: BTreeMap::new(),
            queue: VecDeque::new(),
        };
        Joiner {
            ctx: Context {
                cfg,
                local,
                keys,
                rng,
                actions,
            },
            state: State::Searching(search),
        }
    }

    /// Where the joiner is.
    pub fn state(&self) -> JoinerState {
        match self.state {
            State::Searching(_) => JoinerState::Searching,
            State::Confirming(_) => JoinerState::Confirming,
            State::Proving(_) => JoinerState::Proving,
            State::Storing(_) => JoinerState::Storing,
            State::Finished => JoinerState::Finished,
        }
    }

    /// The verification string of the handshake with the initiator that proved the code,
    /// once one has (the string the `Action::Confirm` showed).
    pub fn verification(&self) -> Option<Verification> {
        let device = match &self.state {
            State::Confirming(c) => &c.device,
            State::Proving(p) => &p.device,
            State::Storing(s) => &s.device,
            State::Searching(_) | State::Finished => return None,
        };
        Some(Verification::of(&device.keys.transcript))
    }

    pub(crate) fn keys(&self) -> &CodeKeys {
        &self.ctx.keys
    }

    /// A peer was discovered, or discovered again. A new peer goes to the front of the
    /// queue, and one waiting to be asked again is asked now (behind those waiting); a peer
    /// already queued keeps its place, so one that re-announces itself cannot jump the
    /// queue again and again.
    pub(crate) fn handle_peer(&mut self, peer: &PeerId, now: Instant) {
        let State::Searching(search) = &mut self.state else {
            return;
        };
        if *peer == self.ctx.local.peer {
            return;
        }
        if let Some(after_peers) = search.first_lookup_after_peers {
            search.next_lookup = search.next_lookup.max(after_peers);
        }
        match search.candidates.get(peer).map(|c| c.status) {
            None => search.enqueue_front(peer.clone()),
            Some(Status::RetryAt(_)) => search.enqueue_back(peer.clone()),
            Some(Status::Queued | Status::InFlight { .. } | Status::Dead) => {}
        }
        search.pump(&mut self.ctx, now);
    }

    /// A DHT lookup ended without reaching any DHT peer (every one it tried refused or
    /// failed, as during a connection flood, or none is known): the next comes after
    /// `redial_interval`, doubled for each failed lookup of the search, instead of a whole
    /// `lookup_interval`, which stays the longest wait.
    pub(crate) fn handle_lookup_failed(&mut self, now: Instant) {
        let State::Searching(search) = &mut self.state else {
            return;
        };
        let cfg = &self.ctx.cfg;
        let wait = cfg.backoff(search.failed_lookups, cfg.lookup_interval);
        search.failed_lookups = search.failed_lookups.saturating_add(1);
        search.next_lookup = search.next_lookup.min(now + wait);
    }

    pub(crate) fn handle_message(&mut self, peer: &PeerId, bytes: &[u8], now: Instant) {
        // A message arriving after the deadline must not complete anything; other timers
        // wait for `handle_timeout`, so an input's effects are its own.
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            self.handle_timeout(now);
        }
        let message = Message::decode(bytes);
        if let Ok(Message::Join(join)) = &message {
            // We hold no session to join: say so at once, so that joiner moves on.
            let done = Done::rejected(join.nonce, RejectReason::NoSession);
            self.ctx.send(peer, Message::Done(done).encode());
            return;
        }
        match (&mut self.state, message) {
            (State::Searching(_), Ok(Message::Challenge(challenge))) => {
                self.on_challenge(peer, challenge, now)
            }
            (State::Searching(search), Ok(Message::Done(done))) => {
                match search.on_rejected(&mut self.ctx, peer, done, now) {
                    Heard::ProvenExpired => self.finish(Action::Failed(FailReason::CodeExpired)),
                    Heard::Nothing => {}
                }
            }
            // Garbage instead of an answer: this peer is no initiator of ours.
            (State::Searching(search), Err(_)) if search.in_flight(peer) => {
                search.set_status(peer, Status::Dead);
                search.pump(&mut self.ctx, now);
            }
            (State::Proving(proving), Ok(Message::Done(done)))
                if proving.device.peer == *peer && done.attempt_nonce == proving.nonce =>
            {
                self.on_verdict(done, now);
            }
            _ => {}
        }
    }

    /// The driver lost its connection to `peer`, or could not deliver to it. A candidate
    /// is asked again later; a peer we proved the code to gets one more attempt's time to
    /// come back (the resent proof redials) instead of the whole confirmation timeout.
    pub(crate) fn handle_unreachable(&mut self, peer: &PeerId, now: Instant) {
        match &mut self.state {
            State::Proving(proving) if proving.device.peer == *peer => {
                proving.deadline = proving.deadline.min(now + self.ctx.cfg.attempt_timeout);
            }
            State::Searching(search) if search.in_flight(peer) => {
                let retry = now + search.redial_delay(peer, &self.ctx.cfg);
                search.set_status(peer, Status::RetryAt(retry));
                search.pump(&mut self.ctx, now);
            }
            _ => {}
        }
    }

    /// The local user's answer to our `Action::Confirm`: yes proves the code to the
    /// initiator, no ends the session (the initiator holds nothing for us).
    pub(crate) fn handle_confirm(&mut self, peer: &PeerId, accept: bool, now: Instant) {
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            self.handle_timeout(now);
        }
        let State::Confirming(confirming) = &self.state else {
            return;
        };
        if confirming.device.peer != *peer {
            return;
        }
        if !accept {
            self.finish(Action::Failed(FailReason::Declined { peer: peer.clone() }));
            return;
        }
        self.prove_pending(now);
    }

    /// The embedder's answer to `Action::Store`. The initiator already holds the pairing;
    /// if it could not be stored here, the initiator learns it when the two next meet
    /// (presence answers a device that is not paired here with `Unpaired`).
    pub(crate) fn handle_stored(&mut self, peer: &PeerId, stored: bool, now: Instant) {
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            self.handle_timeout(now);
        }
        let State::Storing(storing) = &mut self.state else {
            return;
        };
        if storing.device.peer != *peer {
            return;
        }
        let action = match stored {
            true => Action::Completed(storing.device.clone()),
            false => Action::Failed(FailReason::NotStored { peer: peer.clone() }),
        };
        self.finish(action);
    }

    pub(crate) fn handle_cancel(&mut self, _now: Instant) {
        if !matches!(self.state, State::Finished) {
            self.finish(Action::Failed(FailReason::Cancelled));
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::Finished => {}
            State::Confirming(confirming) => {
                if now >= confirming.deadline {
                    let peer = confirming.device.peer.clone();
                    self.finish(Action::Failed(FailReason::ConfirmTimeout { peer }));
                }
            }
            State::Storing(storing) => {
                if now >= storing.deadline {
                    let peer = storing.device.peer.clone();
                    self.finish(Action::Failed(FailReason::NotStored { peer }));
                }
            }
            State::Proving(proving) => {
                if now >= proving.deadline {
                    let peer = proving.device.peer.clone();
                    self.finish(Action::Failed(FailReason::NoAnswer { peer }));
                } else if now >= proving.resend_at {
                    // The verdict may have been lost; the initiator answers a repeated proof.
                    proving.resend_at = now + self.ctx.cfg.attempt_timeout;
                    let (peer, bytes) = (proving.device.peer.clone(), proving.prove.clone());
                    self.ctx.send(&peer, bytes);
                }
            }
            State::Searching(search) => {
                if now >= search.deadline {
                    self.finish(Action::Failed(FailReason::NoDeviceAnswered));
                    return;
                }
                search.on_timeout(&mut self.ctx, now);
            }
        }
    }

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.ctx.actions.pop_front()
    }

    /// The earliest timer and its instant; `None` once finished.
    pub(crate) fn next_timer(&self) -> Option<(Instant, Timer)> {
        match &self.state {
            State::Finished => None,
            State::Confirming(c) => Some((c.deadline, Timer::Confirmation)),
            State::Storing(s) => Some((s.deadline, Timer::Store)),
            State::Proving(p) => [
                (p.resend_at, Timer::ResendProof),
                (p.deadline, Timer::VerdictDue),
            ]
            .into_iter()
            .min_by_key(|(at, _)| *at),
            State::Searching(search) => search.next_timer(),
        }
    }

    /// The end of the current wait: the search's, or that for the verdict.
    fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Searching(search) => Some(search.deadline),
            State::Confirming(confirming) => Some(confirming.deadline),
            State::Proving(proving) => Some(proving.deadline),
            State::Storing(storing) => Some(storing.deadline),
            State::Finished => None,
        }
    }

    /// The nonce a verdict from `peer` must carry to count.
    #[cfg(test)]
    pub(crate) fn expected_nonce(&self, peer: &PeerId) -> Option<Nonce> {
        let search = match &self.state {
            State::Proving(p) if p.device.peer == *peer => return Some(p.nonce),
            State::Proving(p) => &p.search,
            State::Confirming(c) if c.device.peer == *peer => return Some(c.nonce),
            State::Confirming(c) => &c.search,
            State::Searching(search) => search,
            State::Storing(_) | State::Finished => return None,
        };
        let attempt = search.candidates.get(peer)?.attempt.as_ref()?;
        Some(attempt.join.nonce)
    }

    fn on_challenge(&mut self, peer: &PeerId, challenge: Challenge, now: Instant) {
        let State::Searching(search) = &mut self.state else {
            return;
        };
        let attempt = match search.candidates.get(peer) {
            Some(Candidate {
                attempt: Some(attempt),
                status,
                ..
            }) if *status != Status::Dead => attempt,
            _ => return, // unsolicited
        };
        let ctx = &mut self.ctx;
        let transcript = transcript(
            &attempt.join,
            &ctx.local.peer,
            ChallengeFields {
                nonce: &challenge.nonce,
                eph: &challenge.eph,
                info: &challenge.info,
                peer,
            },
        );
        let shared = match macs_equal(&ctx.keys.initiator_mac(&transcript).0, &challenge.mac.0) {
            true => attempt.eph.agree(&challenge.eph),
            false => None,
        };
        let Some(shared) = shared else {
            // Does not know the code, or relays someone who does under another identity.
            search.set_status(peer, Status::Dead);
            search.pump(ctx, now);
            return;
        };
        let nonce = attempt.join.nonce;
        let device = Box::new(PairedDevice {
            peer: peer.clone(),
            info: challenge.info.clone(),
            role: Role::Joiner,
            keys: ctx.keys.session_keys(&transcript, &shared),
        });
        let prove = Message::Prove(Prove {
            nonce,
            eph: attempt.join.eph,
            info: attempt.join.info.clone(),
            mac: ctx.keys.joiner_mac(&transcript),
        })
        .encode();
        let verification = Verification::of(&transcript);
        ctx.actions.push_back(Action::Progress(Progress::Verified {
            peer: peer.clone(),
            info: challenge.info.clone(),
        }));
        let ask = !ctx.cfg.auto_accept;
        if ask {
            ctx.actions.push_back(Action::Confirm {
                peer: peer.clone(),
                info: challenge.info.clone(),
                verification,
            });
        }
        let deadline = now + ctx.cfg.confirm_timeout;
        self.transition(|state| match state {
            // The search pauses as it is: a "no" ends everything, a "yes" proves.
            State::Searching(search) => State::Confirming(Confirming {
                device,
                nonce,
                prove,
                deadline,
                search,
            }),
            other => other,
        });
        if !ask {
            self.prove_pending(now);
        }
    }

    /// Sends the proof the user agreed to (or that auto-accept agreed to) and waits for
    /// the verdict.
    fn prove_pending(&mut self, now: Instant) {
        let cfg = &self.ctx.cfg;
        let (resend_at, deadline) = (
            now + cfg.attempt_timeout,
            // As long as the initiator's user may take, plus one attempt for the verdict
            // to travel.
            now + cfg.confirm_timeout + cfg.attempt_timeout,
        );
        let mut sent = None;
        self.transition(|state| match state {
            State::Confirming(c) => {
                sent = Some((c.device.clone(), c.prove.clone()));
                State::Proving(Proving {
                    device: c.device,
                    nonce: c.nonce,
                    prove: c.prove,
                    resend_at,
                    deadline,
                    search: c.search,
                })
            }
            other => other,
        });
        if let Some((device, prove)) = sent {
            self.ctx.send(&device.peer, prove);
            // The initiator stores its side before it answers: this side's store can be
            // readied meanwhile, so that after `Accepted` only its last step is left.
            self.ctx.actions.push_back(Action::PrepareStore(device));
        }
    }

    fn on_verdict(&mut self, done: Done, now: Instant) {
        let cfg = &self.ctx.cfg;
        let (join_timeout, retry_interval) = (cfg.join_timeout, cfg.retry_interval);
        let store_deadline = now + cfg.store_timeout;
        let mut ended = None;
        self.transition(|state| {
            let State::Proving(proving) = state else {
                return state;
            };
            let peer = proving.device.peer.clone();
            let reason = match done.outcome {
                Outcome::Accepted => {
                    ended = Some(Action::Store(proving.device.clone()));
                    return State::Storing(Storing {
                        device: proving.device,
                        deadline: store_deadline,
                    });
                }
                // Our attempt is gone on the other side (evicted or timed out): a fresh one.
                Outcome::Rejected(RejectReason::NoSession | RejectReason::Busy) => {
                    let mut search = proving.search;
                    search.deadline = now + join_timeout;
                    search.candidates.insert(
                        peer,
                        Candidate {
                            attempt: None,
                            status: Status::RetryAt(now + retry_interval),
                            unreached: 0,
                        },
                    );
                    return State::Searching(search);
                }
                Outcome::Rejected(RejectReason::Expired) => FailReason::CodeExpired,
                Outcome::Rejected(reason) => FailReason::Rejected { peer, reason },
            };
            ended = Some(Action::Failed(reason));
            State::Finished
        });
        self.ctx.actions.extend(ended);
    }

    /// Moves to the state `next` makes of the current one, which it takes by value so that
    /// the search can move into `Proving` and back. `Finished` stands in only while `next`
    /// runs, and `next` cannot fail.
    fn transition(&mut self, next: impl FnOnce(State) -> State) {
        let old = std::mem::replace(&mut self.state, State::Finished);
        self.state = next(old);
    }

    fn finish(&mut self, action: Action) {
        self.state = State::Finished;
        self.ctx.actions.push_back(action);
    }
}

impl Context {
    fn send(&mut self, peer: &PeerId, bytes: Vec<u8>) {
        self.actions.push_back(Action::Send {
            peer: peer.clone(),
            bytes,
        });
    }
}

impl Search {
    fn next_timer(&self) -> Option<(Instant, Timer)> {
        let candidates = self.candidates.values().filter_map(|c| match c.status {
            Status::InFlight { deadline } => Some((deadline, Timer::Attempt)),
            Status::RetryAt(at) => Some((at, Timer::Retry)),
            Status::Queued | Status::Dead => None,
        });
        [
            (self.deadline, Timer::SearchEnd),
            (self.next_lookup, Timer::Lookup),
        ]
        .into_iter()
        .chain(candidates)
        .min_by_key(|(at, _)| *at)
    }

    /// The search is not over yet: repeat the lookup and ask again the peers that are due.
    fn on_timeout(&mut self, ctx: &mut Context, now: Instant) {
        if now >= self.next_lookup {
            self.next_lookup = now + ctx.cfg.lookup_interval;
            self.first_lookup_after_peers = None;
            ctx.actions.push_back(Action::Lookup {
                key: ctx.keys.discovery_id,
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
        self.pump(ctx, now);
    }

    /// A rejection from a peer that has not proven the code: it ends that peer's attempt
    /// and nothing else, unless it is an "expired" with a valid proof of the code.
    fn on_rejected(&mut self, ctx: &mut Context, peer: &PeerId, done: Done, now: Instant) -> Heard {
        let Outcome::Rejected(reason) = done.outcome else {
            return Heard::Nothing; // an acceptance we never asked for
        };
        let Some(candidate) = self.candidates.get(peer) else {
            return Heard::Nothing;
        };
        let ours = candidate
            .attempt
            .as_ref()
            .is_some_and(|a| a.join.nonce == done.attempt_nonce);
        let unreadable = done.attempt_nonce == UNATTRIBUTED
            && matches!(
                reason,
                RejectReason::UnsupportedVersion | RejectReason::Malformed
            );
        if candidate.status == Status::Dead || !(ours || unreadable) {
            return Heard::Nothing; // about another (older) attempt
        }
        let proven_expired = reason == RejectReason::Expired
            && done.proof.is_some_and(|proof| {
                let expected = ctx
                    .keys
                    .expired_mac(&done.attempt_nonce, &ctx.local.peer, peer);
                macs_equal(&expected.0, &proof.0)
            });
        if proven_expired {
            return Heard::ProvenExpired;
        }
        if let Some(candidate) = self.candidates.get_mut(peer) {
            candidate.unreached = 0; // it answered: reachable
        }
        let next = match reason {
            // That attempt is over on the other side, or the claim is one anybody could
            // make: the next attempt gets a fresh nonce, so a late copy of this answer
            // cannot be mistaken for one about it.
            RejectReason::NoSession
            | RejectReason::Busy
            | RejectReason::RateLimited
            | RejectReason::Expired => {
                if let Some(candidate) = self.candidates.get_mut(peer) {
                    candidate.attempt = None;
                }
                Status::RetryAt(now + ctx.cfg.retry_interval)
            }
            _ => Status::Dead,
        };
        self.set_status(peer, next);
        self.pump(ctx, now);
        Heard::Nothing
    }

    /// How long to wait before sending again to a peer our last send could not reach:
    /// `redial_interval`, doubled for each such send in a row, at most `retry_interval`.
    /// A refused connection is often a full handshake queue on the other side (a
    /// connection flood) that has room a moment later, so the first redials come soon.
    fn redial_delay(&mut self, peer: &PeerId, cfg: &Config) -> std::time::Duration {
        let Some(candidate) = self.candidates.get_mut(peer) else {
            return cfg.retry_interval;
        };
        let wait = cfg.backoff(candidate.unreached, cfg.retry_interval);
        candidate.unreached = candidate.unreached.saturating_add(1);
        wait
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
            unreached: 0,
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
    fn pump(&mut self, ctx: &mut Context, now: Instant) {
        let mut in_flight = self
            .candidates
            .values()
            .filter(|c| matches!(c.status, Status::InFlight { .. }))
            .count();
        while in_flight < ctx.cfg.parallel_attempts {
            let Some(peer) = self.queue.pop_front() else {
                break;
            };
            if self.candidates.get(&peer).map(|c| c.status) != Some(Status::Queued) {
                continue;
            }
            self.contact(ctx, peer, now);
            in_flight += 1;
        }
    }

    /// Sends the peer's Join: the one it was sent before, if any, so that a Challenge
    /// still on its way stays valid.
    fn contact(&mut self, ctx: &mut Context, peer: PeerId, now: Instant) {
        let deadline = now + ctx.cfg.attempt_timeout;
        let candidate = self
            .candidates
            .get_mut(&peer)
            .expect("queued peers are candidates");
        candidate.status = Status::InFlight { deadline };
        let bytes = match &candidate.attempt {
            Some(attempt) => attempt.bytes.clone(),
            None => {
                let eph = Ephemeral::new(&mut ctx.rng);
                let join = Join {
                    discovery_id: ctx.keys.discovery_id,
                    nonce: Nonce(random32(&mut ctx.rng)),
                    eph: eph.public,
                    info: ctx.local.info.clone(),
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
        ctx.send(&peer, bytes);
        ctx.actions
            .push_back(Action::Progress(Progress::Contacting { peer }));
    }
}
