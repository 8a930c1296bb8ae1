//! Invariant 5 on the state machines themselves, without the network in between: at every
//! point of a handshake, malformed, oversized, duplicated, out-of-order and replayed input
//! never panics and never changes the state; and when none of it came from the real peer,
//! the handshake still completes afterwards.

use std::collections::VecDeque;
use std::time::Instant;

use paircode_core::messages::{
    Challenge, Done, EphemeralKey, Join, Mac, Message, Nonce, Outcome, Prove, RejectReason,
};
use paircode_core::{
    Action, Code, Config, DeviceInfo, DiscoveryId, FailReason, LocalDevice, PairedDevice, Pairing,
    PeerId, Progress,
};
use paircode_sim::garbage::{self, Garbage};
use paircode_sim::ids::{synthetic_device, synthetic_peer_id};
use paircode_sim::node::SessionState;
use paircode_sim::random::{bytes32, index, stream_rng, Stream};
use paircode_sim::schedule::proptest_config;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Alice,
    Bob,
}

/// Alice and Bob wired back to back, one honest message at a time, all at one instant.
struct Duo {
    now: Instant,
    alice: Pairing,
    bob: Pairing,
    a: LocalDevice,
    b: LocalDevice,
    to_alice: VecDeque<Vec<u8>>,
    to_bob: VecDeque<Vec<u8>>,
    /// Everything each side has been handed, honest or not, for duplicates and replays.
    seen_by_alice: Vec<Vec<u8>>,
    seen_by_bob: Vec<Vec<u8>>,
    told_bob: bool,
    /// A question to a user: which side asks, about whom.
    confirm: Option<(Side, PeerId)>,
    /// A pairing waiting to be stored: which side, with whom (it saves when next stepped).
    store: Option<(Side, PeerId)>,
    /// Alice's user's answer; Bob's user always says yes.
    accept: bool,
    completed: [Option<PairedDevice>; 2],
    failed: [Option<FailReason>; 2],
}

impl Duo {
    fn new(seed: u64, accept: bool) -> Self {
        let mut rng = stream_rng(seed, Stream::Setup);
        let code = Code::generate(&mut rng);
        let (a, b) = (
            synthetic_device(&mut rng, "alice"),
            synthetic_device(&mut rng, "bob"),
        );
        let now = Instant::now();
        let cfg = Config::default();
        let mut alice_rng = ChaCha20Rng::from_seed(bytes32(&mut rng));
        let mut bob_rng = ChaCha20Rng::from_seed(bytes32(&mut rng));
        let mut duo = Duo {
            now,
            alice: Pairing::initiator(cfg.clone(), a.clone(), &code, now, &mut alice_rng),
            bob: Pairing::joiner(cfg, b.clone(), &code, now, &mut bob_rng),
            a,
            b,
            to_alice: VecDeque::new(),
            to_bob: VecDeque::new(),
            seen_by_alice: Vec::new(),
            seen_by_bob: Vec::new(),
            told_bob: false,
            confirm: None,
            store: None,
            accept,
            completed: [None, None],
            failed: [None, None],
        };
        duo.drain(Side::Alice);
        duo.drain(Side::Bob);
        duo
    }

    fn pairing(&mut self, side: Side) -> &mut Pairing {
        match side {
            Side::Alice => &mut self.alice,
            Side::Bob => &mut self.bob,
        }
    }

    /// Carries out queued actions: honest sends are queued for the other side, sends to
    /// anyone else vanish. Returns the actions.
    fn drain(&mut self, side: Side) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(action) = self.pairing(side).poll_action() {
            match &action {
                // Only what one side sends the other travels; anything else (an answer to a
                // stranger, or to a message that claimed to come from the target itself)
                // goes nowhere, as it would on a network.
                Action::Send { peer, bytes } if side == Side::Bob && *peer == self.a.peer => {
                    self.to_alice.push_back(bytes.clone())
                }
                Action::Send { peer, bytes } if side == Side::Alice && *peer == self.b.peer => {
                    self.to_bob.push_back(bytes.clone())
                }
                Action::Confirm { peer, .. } => self.confirm = Some((side, peer.clone())),
                Action::Store(d) => self.store = Some((side, d.peer.clone())),
                Action::Completed(d) => self.completed[side as usize] = Some((**d).clone()),
                Action::Failed(r) => self.failed[side as usize] = Some(r.clone()),
                _ => {}
            }
            actions.push(action);
        }
        actions
    }

    /// One honest step; false when the handshake has nothing left to do.
    fn step(&mut self) -> bool {
        let now = self.now;
        if !self.told_bob {
            self.told_bob = true;
            let alice = self.a.peer.clone();
            self.bob.handle_peer(&alice, now);
            self.drain(Side::Bob);
        } else if let Some(bytes) = self.to_alice.pop_front() {
            let bob = self.b.peer.clone();
            self.seen_by_alice.push(bytes.clone());
            self.alice.handle_message(&bob, &bytes, now);
            self.drain(Side::Alice);
        } else if let Some(bytes) = self.to_bob.pop_front() {
            let alice = self.a.peer.clone();
            self.seen_by_bob.push(bytes.clone());
            self.bob.handle_message(&alice, &bytes, now);
            self.drain(Side::Bob);
        } else if let Some((side, peer)) = self.confirm.take() {
            let accept = side == Side::Bob || self.accept;
            self.pairing(side).handle_confirm(&peer, accept, now);
            self.drain(side);
        } else if let Some((side, peer)) = self.store.take() {
            self.pairing(side).handle_stored(&peer, true, now);
            self.drain(side);
        } else {
            return false;
        }
        true
    }
}

fn phase_of(p: &Pairing) -> SessionState {
    SessionState::of(p)
}

/// What kind of unwelcome input to send.
#[derive(Debug, Clone, Copy)]
enum Junk {
    Garbage,
    /// Something the target was already handed, again, from the same sender.
    Duplicate,
    /// A valid message the target's role never accepts (Challenge/Done to Alice, Join/Prove
    /// to Bob), recorded or made up.
    WrongDirection,
    /// Any message of this handshake, replayed by a stranger.
    Replay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// The real other side of the handshake.
    Peer,
    Stranger(u8),
    /// The target's own PeerId, as a confused transport might report.
    Itself,
}

fn junk_strategy() -> impl Strategy<Value = (Junk, Sender, u64)> {
    let junk = prop_oneof![
        3 => Just(Junk::Garbage),
        2 => Just(Junk::Duplicate),
        2 => Just(Junk::WrongDirection),
        2 => Just(Junk::Replay),
    ];
    let sender = prop_oneof![
        Just(Sender::Peer),
        (0u8..3).prop_map(Sender::Stranger),
        Just(Sender::Itself),
    ];
    (junk, sender, any::<u64>())
}

fn made_up(kind: u8, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let info = DeviceInfo::new("made up").expect("valid");
    let message = match kind % 4 {
        0 => Message::Join(Join {
            discovery_id: DiscoveryId(bytes32(rng)),
            nonce: Nonce(bytes32(rng)),
            eph: EphemeralKey(bytes32(rng)),
            info,
        }),
        1 => Message::Challenge(Challenge {
            nonce: Nonce(bytes32(rng)),
            eph: EphemeralKey(bytes32(rng)),
            info,
            mac: Mac(bytes32(rng)),
        }),
        2 => Message::Prove(Prove {
            nonce: Nonce(bytes32(rng)),
            eph: EphemeralKey(bytes32(rng)),
            info,
            mac: Mac(bytes32(rng)),
        }),
        _ => Message::Done(match kind % 8 {
            3 => Done::accepted(Nonce(bytes32(rng))),
            _ => Done::rejected(Nonce(bytes32(rng)), RejectReason::NoSession),
        }),
    };
    message.encode()
}

fn is_kind(bytes: &[u8], kinds: &[&str]) -> bool {
    Message::decode(bytes).is_ok_and(|m| kinds.contains(&m.kind()))
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn hostile_input_never_moves_a_state_machine(
        seed in any::<u64>(),
        stage in 0usize..=6,
        target_alice in any::<bool>(),
        accept in any::<bool>(),
        strangers_only in any::<bool>(),
        junk in prop::collection::vec(junk_strategy(), 1..24),
    ) {
        let mut duo = Duo::new(seed, accept);
        for _ in 0..stage {
            duo.step();
        }
        let target = if target_alice { Side::Alice } else { Side::Bob };
        let strangers: Vec<PeerId> = {
            let mut rng = stream_rng(seed, Stream::Attackers);
            (0..3).map(|_| synthetic_peer_id(&mut rng)).collect()
        };
        let mut derailable = false;
        for (kind, sender, salt) in junk {
            let mut rng = ChaCha20Rng::seed_from_u64(salt);
            let (own, peer, seen) = match target {
                Side::Alice => (&duo.a.peer, &duo.b.peer, &duo.seen_by_alice),
                Side::Bob => (&duo.b.peer, &duo.a.peer, &duo.seen_by_bob),
            };
            let history: Vec<Vec<u8>> =
                duo.seen_by_alice.iter().chain(&duo.seen_by_bob).cloned().collect();
            // Half the cases keep the real peer out of it, so that the handshake is then
            // expected to complete in spite of everything.
            let (kind, mut sender) = match (strangers_only, kind, sender) {
                (true, Junk::Duplicate, _) => (Junk::Replay, Sender::Stranger(1)),
                (true, kind, Sender::Peer) => (kind, Sender::Stranger(2)),
                other => (other.1, other.2),
            };
            let bytes = match kind {
                Junk::Garbage => {
                    let sample = match history.len() {
                        0 => garbage::default_sample(),
                        n => history[index(&mut rng, n)].clone(),
                    };
                    garbage::make(Garbage::pick(&mut rng), &sample, &mut rng)
                }
                Junk::Duplicate if !seen.is_empty() => {
                    sender = Sender::Peer;
                    seen[index(&mut rng, seen.len())].clone()
                }
                Junk::Duplicate | Junk::WrongDirection => {
                    let wrong: &[&str] = match target {
                        Side::Alice => &["Challenge", "Done"],
                        Side::Bob => &["Join", "Prove"],
                    };
                    let recorded: Vec<&Vec<u8>> =
                        history.iter().filter(|b| is_kind(b, wrong)).collect();
                    match (recorded.len(), target) {
                        (0, Side::Alice) => made_up(1 + 2 * (salt as u8 % 4), &mut rng),
                        (0, Side::Bob) => made_up(2 * (salt as u8 % 2), &mut rng),
                        (n, _) => recorded[index(&mut rng, n)].clone(),
                    }
                }
                Junk::Replay => {
                    if sender == Sender::Peer {
                        sender = Sender::Stranger(0);
                    }
                    match history.len() {
                        0 => made_up(salt as u8, &mut rng),
                        n => history[index(&mut rng, n)].clone(),
                    }
                }
            };
            let from = match sender {
                Sender::Peer => peer.clone(),
                Sender::Stranger(i) => strangers[i as usize].clone(),
                Sender::Itself => own.clone(),
            };
            derailable |= sender == Sender::Peer;
            let malformed = Message::decode(&bytes).is_err();
            let wrong_direction = match target {
                Side::Alice => is_kind(&bytes, &["Challenge", "Done"]),
                Side::Bob => is_kind(&bytes, &["Join", "Prove"]),
            };

            let now = duo.now;
            let before = phase_of(duo.pairing(target));
            let timeout_before = duo.pairing(target).poll_timeout();
            duo.pairing(target).handle_message(&from, &bytes, now);
            let actions = duo.drain(target);
            let after = phase_of(duo.pairing(target));
            let timeout_after = duo.pairing(target).poll_timeout();

            prop_assert_eq!(before.phase(), after.phase(), "{:?} from {:?}", kind, sender);
            for action in &actions {
                let forbidden = matches!(
                    action,
                    Action::Completed(_)
                        | Action::Store(_)
                        | Action::Failed(_)
                        | Action::Confirm { .. }
                        | Action::Progress(Progress::Verified { .. })
                );
                prop_assert!(!forbidden, "{:?} from {:?} led to {:?}", kind, sender, action);
            }
            if malformed {
                prop_assert_eq!(before, after);
                if target == Side::Alice {
                    prop_assert_eq!(timeout_before, timeout_after);
                    for action in &actions {
                        let ok = matches!(action, Action::Send { bytes, .. }
                            if matches!(Message::decode(bytes), Ok(Message::Done(Done { outcome: Outcome::Rejected(
                                RejectReason::Malformed | RejectReason::UnsupportedVersion), .. }))));
                        prop_assert!(ok, "malformed input led to {:?}", action);
                    }
                }
            }
            if wrong_direction {
                prop_assert_eq!(before, after);
                prop_assert_eq!(timeout_before, timeout_after);
                // The one answer allowed: Bob tells a joiner at once he holds no session.
                let answered = is_kind(&bytes, &["Join"]) && target == Side::Bob;
                for action in &actions {
                    let ok = answered && matches!(action, Action::Send { bytes, .. }
                        if matches!(Message::decode(bytes), Ok(Message::Done(Done { outcome: Outcome::Rejected(
                            RejectReason::NoSession), .. }))));
                    prop_assert!(ok, "{:?} led to {:?}", kind, action);
                }
            }
            match target {
                Side::Alice => duo.seen_by_alice.push(bytes),
                Side::Bob => duo.seen_by_bob.push(bytes),
            }
        }

        if derailable {
            // The real peer misbehaved (garbage gets it rate-limited or dropped): completion
            // is not promised.
            prop_assert!(!strangers_only);
            return Ok(());
        }
        while duo.step() {}
        let [on_alice, on_bob] = duo.completed.clone();
        if accept {
            let (on_alice, on_bob) = (on_alice.expect("alice completed"), on_bob.expect("bob completed"));
            prop_assert_eq!(&on_alice.peer, &duo.b.peer);
            prop_assert_eq!(&on_bob.peer, &duo.a.peer);
            prop_assert_eq!(&on_alice.keys, &on_bob.keys);
        } else {
            prop_assert!(on_alice.is_none() && on_bob.is_none());
            let declined = matches!(&duo.failed[0], Some(FailReason::Declined { .. }));
            prop_assert!(declined, "{:?}", duo.failed);
            let rejected = matches!(&duo.failed[1],
                Some(FailReason::Rejected { reason: RejectReason::UserRejected, .. }));
            prop_assert!(rejected, "{:?}", duo.failed);
        }
    }
}

/// Every garbage family, against both roles at every stage, from the real peer and from a
/// stranger: deterministic coverage of what the property samples.
#[test]
fn every_garbage_family_is_refused_at_every_stage() {
    for stage in 0..=6 {
        for target in [Side::Alice, Side::Bob] {
            for kind in Garbage::ALL {
                let mut duo = Duo::new(stage as u64, true);
                for _ in 0..stage {
                    duo.step();
                }
                let mut rng = ChaCha20Rng::seed_from_u64(stage as u64);
                let sample = duo
                    .seen_by_alice
                    .first()
                    .cloned()
                    .unwrap_or_else(garbage::default_sample);
                let bytes = garbage::make(kind, &sample, &mut rng);
                let stranger = synthetic_peer_id(&mut rng);
                for from in [duo.a.peer.clone(), duo.b.peer.clone(), stranger] {
                    let before = phase_of(duo.pairing(target));
                    let now = duo.now;
                    duo.pairing(target).handle_message(&from, &bytes, now);
                    duo.drain(target);
                    let after = phase_of(duo.pairing(target));
                    if Message::decode(&bytes).is_err() {
                        assert_eq!(before, after, "{kind:?} at stage {stage} to {target:?}");
                    } else {
                        assert_eq!(before.phase(), after.phase(), "{kind:?} at stage {stage}");
                    }
                }
            }
        }
    }
}
