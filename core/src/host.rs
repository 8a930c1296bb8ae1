//! The pairing host: one device's router between incoming messages and its sessions.
//!
//! A device runs at most one pairing session at a time, but a message can arrive for a
//! session that has just ended: the initiator's final `Done` may have been lost, and the
//! joiner then repeats its `Prove` until it hears the verdict. So a finished initiator
//! lingers for [`LINGER`] to answer such repeats, and a device with no session still
//! answers a `Join` (see `docs/PROTOCOL.md`, "Devices without a session"). This is the
//! decision quinn-proto's `Endpoint::handle` makes for datagrams and str0m's
//! `Rtc::accepts` for inputs; it lives here, in the sans-IO core, so that the network
//! driver and the simulator route through the very same code.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;

use crate::action::Action;
use crate::code::Code;
use crate::config::Config;
use crate::device::Role;
use crate::identity::PeerId;
use crate::messages::reply_without_session;
use crate::pairing::{LocalDevice, Pairing};
use crate::timer::Timer;

/// How long a finished initiator keeps answering a repeated `Prove` after its session
/// ended: long enough for a joiner that lost the verdict to resend its proof a few times.
pub const LINGER: Duration = Duration::from_secs(30);

/// Names one session of a [`PairingHost`]; commands about another session are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// Why a session could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// A session is running: finish or cancel it first.
    #[error("a pairing session is already running")]
    Busy,
}

/// The running session.
struct Current {
    id: SessionId,
    pairing: Pairing,
}

/// A finished initiator, kept only to answer retransmissions; it never blocks a new session.
struct Lingering {
    pairing: Pairing,
    until: Instant,
}

/// Owns one device's pairing sessions and routes every input to the right one.
///
/// Inputs enter through `handle_*(…, now)`; after each, drain [`poll_action`] until it
/// returns `None`, and call [`handle_timeout`] once [`poll_timeout`] is due. Every action
/// other than [`Action::Send`] belongs to the current session; [`Action::Completed`] and
/// [`Action::Failed`] end it, after which a new one may start.
///
/// [`poll_action`]: PairingHost::poll_action
/// [`poll_timeout`]: PairingHost::poll_timeout
/// [`handle_timeout`]: PairingHost::handle_timeout
pub struct PairingHost {
    local: LocalDevice,
    current: Option<Current>,
    lingering: Option<Lingering>,
    next_id: u64,
    actions: VecDeque<Action>,
}

impl PairingHost {
    /// A host for the device `local`, with no session.
    pub fn new(local: LocalDevice) -> Self {
        PairingHost {
            local,
            current: None,
            lingering: None,
            next_id: 1,
            actions: VecDeque::new(),
        }
    }

    /// The device this host pairs.
    pub fn local(&self) -> &LocalDevice {
        &self.local
    }

    /// Starts a session in `role` with `code`: as the [`Role::Initiator`] that generated
    /// it, or as the [`Role::Joiner`] that was told it. Its first actions (publishing the
    /// session, or the first lookup) are ready in [`poll_action`](Self::poll_action), and
    /// `poll_timeout` now includes its timers; a joiner should then hear of the peers
    /// already known through [`handle_peer`](Self::handle_peer). Fails with
    /// [`HostError::Busy`] while a session runs.
    pub fn start(
        &mut self,
        role: Role,
        cfg: Config,
        code: &Code,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Result<SessionId, HostError> {
        if self.current.is_some() {
            return Err(HostError::Busy);
        }
        let local = self.local.clone();
        let pairing = match role {
            Role::Initiator => Pairing::initiator(cfg, local, code, now, rng),
            Role::Joiner => Pairing::joiner(cfg, local, code, now, rng),
        };
        let id = SessionId(self.next_id);
        self.next_id += 1;
        // The new session answers for this device from now on.
        self.lingering = None;
        self.current = Some(Current { id, pairing });
        self.collect(now);
        Ok(id)
    }

    /// The running session, if any.
    pub fn session(&self) -> Option<SessionId> {
        self.current.as_ref().map(|c| c.id)
    }

    /// The running session's state machine, for status displays and tests.
    pub fn pairing(&self) -> Option<&Pairing> {
        self.current.as_ref().map(|c| &c.pairing)
    }

    /// Whether the running session owes `peer` its verdict and gives it as soon as the
    /// embedder answers `Action::Store` (or at the store deadline): the initiator stores
    /// the pairing `peer` just proved. The `Done` then needs nobody's decision, so a
    /// driver that answers requests may keep the response to `peer`'s `Prove` open and
    /// send the `Done` in it, saving the stream a request of its own would open.
    pub fn verdict_pending(&self, peer: &PeerId) -> bool {
        self.current
            .as_ref()
            .is_some_and(|c| c.pairing.verdict_pending(peer))
    }

    /// The finished initiator still answering repeats, for status displays and tests.
    pub fn lingering(&self) -> Option<&Pairing> {
        self.lingering.as_ref().map(|l| &l.pairing)
    }

    /// Bytes from `peer`, as the transport authenticated it. Call for every message
    /// received on `/paircode/pair/1`, in order. The running session gets it; with none,
    /// a lingering initiator; with neither, the host answers a `Join` itself. May end the
    /// session, which changes `poll_timeout` (the lingering deadline replaces the
    /// session's timers).
    pub fn handle_message(&mut self, peer: &PeerId, bytes: &[u8], now: Instant) {
        if let Some(current) = &mut self.current {
            current.pairing.handle_message(peer, bytes, now);
            self.collect(now);
        } else if let Some(lingering) = self.lingering.as_mut().filter(|l| now < l.until) {
            lingering.pairing.handle_message(peer, bytes, now);
            // A finished session only answers; nothing else it says is news.
            while let Some(action) = lingering.pairing.poll_action() {
                if let Action::Send { .. } = action {
                    self.actions.push_back(action);
                }
            }
        } else if let Some(bytes) = reply_without_session(bytes) {
            self.actions.push_back(Action::Send {
                peer: peer.clone(),
                bytes,
            });
        }
    }

    /// A peer was discovered (mDNS, DHT) or connected. Call for every report, repeats
    /// included: a joiner asks a rediscovered peer first. Only a joiner acts on it, and it
    /// may arm a timer for the attempt it starts.
    pub fn handle_peer(&mut self, peer: &PeerId, now: Instant) {
        if let Some(current) = &mut self.current {
            current.pairing.handle_peer(peer, now);
            self.collect(now);
        }
    }

    /// A DHT lookup the session asked for ended without reaching any DHT peer: a
    /// searching joiner looks up again soon (see `Pairing::handle_lookup_failed`).
    pub fn handle_lookup_failed(&mut self, now: Instant) {
        if let Some(current) = &mut self.current {
            current.pairing.handle_lookup_failed(now);
            self.collect(now);
        }
    }

    /// The connection to `peer` closed, or a message to it could not be delivered. A
    /// joiner then stops waiting for that peer, which moves its timers.
    pub fn handle_unreachable(&mut self, peer: &PeerId, now: Instant) {
        if let Some(current) = &mut self.current {
            current.pairing.handle_unreachable(peer, now);
            self.collect(now);
        }
    }

    /// A message sent to `peer` while `session` ran (`None`: while none did) went
    /// unanswered though the connection stayed up. Only that session hears of it, as of an
    /// unreachable peer: the request of an earlier session timing out late (a link that
    /// came back after a cut) must not cut short the session that runs now.
    pub fn handle_undelivered(&mut self, session: Option<SessionId>, peer: &PeerId, now: Instant) {
        if let Some(current) = self.current.as_mut().filter(|c| Some(c.id) == session) {
            current.pairing.handle_unreachable(peer, now);
            self.collect(now);
        }
    }

    /// The local user's answer to the [`Action::Confirm`] of session `session`. Ignored if
    /// that session is no longer running. An initiator's session ends either way; a
    /// joiner's ends on "no" and proves the code on "yes".
    pub fn handle_confirm(
        &mut self,
        session: SessionId,
        peer: &PeerId,
        accept: bool,
        now: Instant,
    ) {
        if let Some(current) = self.current.as_mut().filter(|c| c.id == session) {
            current.pairing.handle_confirm(peer, accept, now);
            self.collect(now);
        }
    }

    /// The answer to the [`Action::Store`] of session `session`: whether the pairing with
    /// `peer` is now durably stored. Ignored if that session is no longer running. Ends
    /// the session either way ([`Action::Completed`] or [`Action::Failed`]).
    pub fn handle_stored(&mut self, session: SessionId, peer: &PeerId, stored: bool, now: Instant) {
        if let Some(current) = self.current.as_mut().filter(|c| c.id == session) {
            current.pairing.handle_stored(peer, stored, now);
            self.collect(now);
        }
    }

    /// The local user cancels session `session`; ignored if it is no longer running.
    /// Ends the session, so `poll_timeout` changes.
    pub fn handle_cancel(&mut self, session: SessionId, now: Instant) {
        if let Some(current) = self.current.as_mut().filter(|c| c.id == session) {
            current.pairing.handle_cancel(now);
            self.collect(now);
        }
    }

    /// Call once `poll_timeout` is due (calling it earlier is harmless). Drops a lingering
    /// initiator whose time is up and lets the running session act on its timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.lingering.as_ref().is_some_and(|l| l.until <= now) {
            self.lingering = None;
        }
        if let Some(current) = &mut self.current {
            current.pairing.handle_timeout(now);
            self.collect(now);
        }
    }

    /// The next thing to do. Call after every `handle_*` and start until it returns `None`.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: the earliest of the
    /// running session's timers and the end of the lingering. `None` while idle. Every
    /// `handle_*` and start may change it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// [`poll_timeout`](Self::poll_timeout) with the name of the timer it waits for, so
    /// that a timer that keeps firing can say which one it is.
    pub fn next_timer(&self) -> Option<(Instant, Timer)> {
        let session = self.current.as_ref().and_then(|c| c.pairing.next_timer());
        let linger = self.lingering.as_ref().map(|l| (l.until, Timer::Linger));
        session.into_iter().chain(linger).min_by_key(|(at, _)| *at)
    }

    /// Moves the running session's actions to the host's queue, and retires the session
    /// once it has said its last word.
    fn collect(&mut self, now: Instant) {
        let Some(current) = &mut self.current else {
            return;
        };
        let mut finished = false;
        while let Some(action) = current.pairing.poll_action() {
            match action {
                Action::Completed(_) | Action::Failed(_) => finished = true,
                // Nothing but replies may follow the end of a session.
                Action::Send { .. } => {}
                _ if finished => continue,
                _ => {}
            }
            self.actions.push_back(action);
        }
        if !finished {
            return;
        }
        let Some(Current { pairing, .. }) = self.current.take() else {
            return;
        };
        if pairing.is_initiator() {
            self.lingering = Some(Lingering {
                pairing,
                until: now + LINGER,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Done, Message, Outcome, RejectReason};
    use crate::test_support::Fixture;
    use crate::testing::Pair;

    fn drain(host: &mut PairingHost) -> Vec<Action> {
        std::iter::from_fn(|| host.poll_action()).collect()
    }

    fn done_to(actions: &[Action], to: &PeerId) -> Vec<Done> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { peer, bytes } if peer == to => match Message::decode(bytes) {
                    Ok(Message::Done(done)) => Some(done),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Alice (auto-accepting) has just completed; her verdict has not reached Bob yet, so
    /// his proof is the last message that crossed.
    fn alice_just_completed() -> Pair {
        let mut pair = Pair::new(Config {
            auto_accept: true,
            ..Config::default()
        });
        pair.joiner_discovers_initiator();
        pair.drive_until(|p| p.initiator_completed().is_some());
        pair
    }

    #[test]
    fn a_second_session_is_busy_until_the_first_ends() {
        let mut f = Fixture::new();
        let mut host = PairingHost::new(f.alice.clone());
        let id = host
            .start(Role::Initiator, f.cfg.clone(), &f.code, f.now, &mut f.rng)
            .unwrap();
        assert_eq!(host.session(), Some(id));
        assert_eq!(
            host.start(Role::Joiner, f.cfg.clone(), &f.code, f.now, &mut f.rng),
            Err(HostError::Busy)
        );
        host.handle_cancel(SessionId(id.0 + 1), f.now);
        assert_eq!(
            host.session(),
            Some(id),
            "another session's cancel is ignored"
        );
        host.handle_cancel(id, f.now);
        assert!(matches!(drain(&mut host).last(), Some(Action::Failed(_))));
        assert_eq!(host.session(), None);
        let next = host
            .start(Role::Joiner, f.cfg.clone(), &f.code, f.now, &mut f.rng)
            .unwrap();
        assert_ne!(next, id);
    }

    /// A request of an earlier session that times out late must not shorten the wait of
    /// the session running now (seen in the lab: a link back after a cut, then a new code).
    #[test]
    fn an_earlier_sessions_undelivered_request_leaves_the_running_one_alone() {
        let mut f = Fixture::new();
        let mut bob = PairingHost::new(f.bob.clone());
        let alice = crate::test_support::peer(1);
        let old = bob
            .start(Role::Joiner, f.cfg.clone(), &f.code, f.now, &mut f.rng)
            .unwrap();
        bob.handle_cancel(old, f.now);
        drain(&mut bob);
        let current = bob
            .start(Role::Joiner, f.cfg.clone(), &f.code, f.now, &mut f.rng)
            .unwrap();
        bob.handle_peer(&alice, f.now);
        drain(&mut bob);
        let waiting = bob.poll_timeout();
        bob.handle_undelivered(Some(old), &alice, f.now);
        bob.handle_undelivered(None, &alice, f.now);
        assert_eq!(
            bob.poll_timeout(),
            waiting,
            "an earlier session's failure is ignored"
        );
        bob.handle_undelivered(Some(current), &alice, f.now);
        assert_ne!(
            bob.poll_timeout(),
            waiting,
            "the running session's own failure moves its retry"
        );
    }

    #[test]
    fn without_a_session_a_join_is_told_there_is_none() {
        let mut f = Fixture::new();
        let mut host = PairingHost::new(f.alice.clone());
        let mut bob = PairingHost::new(f.bob.clone());
        bob.start(Role::Joiner, f.cfg.clone(), &f.code, f.now, &mut f.rng)
            .unwrap();
        drain(&mut bob);
        bob.handle_peer(&f.alice.peer, f.now);
        let join = drain(&mut bob)
            .into_iter()
            .find_map(|a| match a {
                Action::Send { bytes, .. } => Some(bytes),
                _ => None,
            })
            .unwrap();
        host.handle_message(&f.bob.peer, &join, f.now);
        let answers = done_to(&drain(&mut host), &f.bob.peer);
        assert_eq!(answers.len(), 1);
        assert_eq!(
            answers[0].outcome,
            Outcome::Rejected(RejectReason::NoSession)
        );
        assert_eq!(host.poll_timeout(), None);
    }

    #[test]
    fn a_finished_initiator_answers_a_repeated_prove_while_it_lingers() {
        let mut pair = alice_just_completed();
        let prove = pair
            .sent_by_joiner()
            .into_iter()
            .rev()
            .find(|b| matches!(Message::decode(b), Ok(Message::Prove(_))))
            .expect("bob proved the code");
        let bob = pair.joiner.local().peer.clone();
        assert_eq!(pair.initiator.session(), None, "the session ended");
        assert_eq!(pair.initiator.poll_timeout(), Some(pair.now + LINGER));

        let at = pair.now + LINGER - Duration::from_millis(1);
        pair.initiator.handle_message(&bob, &prove, at);
        let answers = done_to(&drain(&mut pair.initiator), &bob);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].outcome, Outcome::Accepted);

        let at = pair.now + LINGER;
        pair.initiator.handle_timeout(at);
        assert!(pair.initiator.lingering().is_none());
        assert_eq!(pair.initiator.poll_timeout(), None);
        pair.initiator.handle_message(&bob, &prove, at);
        assert!(
            drain(&mut pair.initiator).is_empty(),
            "a Prove gets no reply without a session"
        );
    }

    #[test]
    fn a_new_session_ends_the_lingering() {
        let mut pair = alice_just_completed();
        assert!(pair.initiator.lingering().is_some());
        let code = pair.code.clone();
        let now = pair.now;
        pair.initiator
            .start(
                Role::Initiator,
                Config::default(),
                &code,
                now,
                &mut pair.rng,
            )
            .unwrap();
        assert!(pair.initiator.lingering().is_none());
    }

    #[test]
    fn timers_name_themselves() {
        let cfg = Config {
            auto_accept: true,
            ..Config::default()
        };
        let mut pair = Pair::new(cfg.clone());
        let start = pair.now;
        assert_eq!(
            pair.initiator.next_timer(),
            Some((start + cfg.code_ttl, Timer::CodeExpiry))
        );
        // No peer at hand yet: the first lookup is due at once.
        assert_eq!(pair.joiner.next_timer(), Some((start, Timer::Lookup)));
        pair.joiner_discovers_initiator();
        pair.drive_until(|p| p.initiator_completed().is_some());
        assert_eq!(
            pair.initiator.next_timer(),
            Some((pair.now + LINGER, Timer::Linger))
        );
        assert_eq!(pair.initiator.poll_timeout(), Some(pair.now + LINGER));
    }
}
