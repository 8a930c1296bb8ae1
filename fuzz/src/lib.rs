//! Drives one state machine (the target) with fuzzer-chosen inputs, next to an honest
//! counterpart whose messages the fuzzer may deliver, drop, duplicate or corrupt, so that
//! deep states are reachable and not only the decoder's error paths. Both users are asked
//! (no auto-accept): the honest side says yes at once, the target's answers are the
//! fuzzer's.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use paircode_core::messages::Message;
use paircode_core::testing::device;
use paircode_core::{Action, Code, Config, Pairing, PeerId, Verification};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Initiator,
    Joiner,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    /// Deliver the honest side's oldest queued message to the target.
    Deliver,
    /// Deliver it with one byte changed.
    Corrupt {
        index: u16,
        byte: u8,
    },
    /// Drop it.
    Drop,
    /// Deliver it but keep it queued, so it arrives twice.
    Duplicate,
    /// Deliver the target's oldest message to the honest side.
    Answer,
    /// Bytes from some peer.
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
    /// Tell the target about a peer.
    Peer {
        who: u8,
    },
    /// Tell the target its connection to a peer failed (even `who`: the honest side).
    Unreachable {
        who: u8,
    },
    /// The target's user answers (even `who`: about the honest side).
    Confirm {
        who: u8,
        accept: bool,
    },
    Cancel,
    Advance {
        millis: u32,
    },
    /// The target's embedder answers a store request (even `who`: about the honest side).
    Stored {
        who: u8,
        saved: bool,
    },
}

fn stranger(n: u8) -> PeerId {
    PeerId::from_bytes(&[0xee, n]).expect("short id")
}

/// The honest side for even `who`, a stranger for odd.
fn pick(who: u8, other: &PeerId) -> PeerId {
    if who % 2 == 0 {
        other.clone()
    } else {
        stranger(who)
    }
}

pub fn run(side: Side, ops: &[Op]) {
    let start = Instant::now();
    let mut now = start;
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let code = Code::generate(&mut rng);
    let (alice, bob) = (device(1, "alice"), device(2, "bob"));
    let cfg = Config {
        code_ttl: Duration::from_secs(60),
        ..Config::default()
    };
    let initiator = Pairing::initiator(cfg.clone(), alice.clone(), &code, now, &mut rng);
    let joiner = Pairing::joiner(cfg.clone(), bob.clone(), &code, now, &mut rng);
    let (mut target, mut honest, me, other) = match side {
        Side::Initiator => (initiator, joiner, alice, bob),
        Side::Joiner => (joiner, initiator, bob, alice),
    };
    honest.handle_peer(&me.peer, now);
    target.handle_peer(&other.peer, now);
    let mut to_target: VecDeque<Vec<u8>> = VecDeque::new();
    let mut to_honest: VecDeque<Vec<u8>> = VecDeque::new();
    let mut completed: Vec<paircode_core::PairedDevice> = Vec::new();
    let mut honest_completed: Option<paircode_core::PairedDevice> = None;
    // Verification strings the joiner's and the initiator's user were shown, and whether
    // the target (as joiner) was told yes.
    let mut joiner_shown: Vec<Verification> = Vec::new();
    let mut initiator_shown: Vec<Verification> = Vec::new();
    let mut target_said_yes = false;
    // Whether the target's embedder said it stored the pairing with the honest side.
    let mut target_stored = false;

    for op in ops {
        match op {
            Op::Deliver | Op::Duplicate => {
                let bytes = match op {
                    Op::Deliver => to_target.pop_front(),
                    _ => to_target.front().cloned(),
                };
                if let Some(bytes) = bytes {
                    target.handle_message(&other.peer, &bytes, now);
                }
            }
            Op::Corrupt { index, byte } => {
                if let Some(mut bytes) = to_target.pop_front() {
                    if !bytes.is_empty() {
                        let i = usize::from(*index) % bytes.len();
                        bytes[i] ^= byte | 1;
                    }
                    target.handle_message(&other.peer, &bytes, now);
                }
            }
            Op::Drop => {
                to_target.pop_front();
            }
            Op::Answer => {
                if let Some(bytes) = to_honest.pop_front() {
                    honest.handle_message(&me.peer, &bytes, now);
                }
            }
            Op::Raw { from, bytes } => target.handle_message(&stranger(*from), bytes, now),
            Op::Peer { who } => target.handle_peer(&stranger(*who), now),
            Op::Unreachable { who } => target.handle_unreachable(&pick(*who, &other.peer), now),
            Op::Confirm { who, accept } => {
                let peer = pick(*who, &other.peer);
                target_said_yes |= *accept && peer == other.peer;
                target.handle_confirm(&peer, *accept, now);
            }
            Op::Cancel => target.handle_cancel(now),
            Op::Stored { who, saved } => {
                let peer = pick(*who, &other.peer);
                target_stored |= *saved && peer == other.peer;
                target.handle_stored(&peer, *saved, now);
            }
            Op::Advance { millis } => {
                now += Duration::from_millis(u64::from(*millis % 120_000));
                target.handle_timeout(now);
                honest.handle_timeout(now);
            }
        }
        if target.poll_timeout().is_some_and(|t| t < start) {
            panic!("timeout in the past");
        }
        while let Some(action) = honest.poll_action() {
            match action {
                Action::Send { peer, bytes } if peer == me.peer => to_target.push_back(bytes),
                Action::Confirm {
                    peer, verification, ..
                } => {
                    match side {
                        Side::Initiator => joiner_shown.push(verification),
                        Side::Joiner => initiator_shown.push(verification),
                    }
                    honest.handle_confirm(&peer, true, now);
                }
                Action::Store(d) => honest.handle_stored(&d.peer, true, now),
                Action::Completed(d) => honest_completed = Some(*d),
                _ => {}
            }
        }
        while let Some(action) = target.poll_action() {
            match action {
                Action::Send { peer, bytes } if peer == other.peer => {
                    // A joiner proves the code only after its user said yes.
                    if side == Side::Joiner
                        && matches!(Message::decode(&bytes), Ok(Message::Prove(_)))
                    {
                        assert!(target_said_yes, "proved the code before the user said yes");
                    }
                    // An initiator acknowledges only a pairing its embedder stored.
                    if side == Side::Initiator
                        && matches!(Message::decode(&bytes), Ok(Message::Done(d))
                            if d.outcome == paircode_core::messages::Outcome::Accepted)
                    {
                        assert!(target_stored, "accepted before the pairing was stored");
                    }
                    to_honest.push_back(bytes)
                }
                Action::Confirm { verification, .. } => match side {
                    Side::Initiator => initiator_shown.push(verification),
                    Side::Joiner => joiner_shown.push(verification),
                },
                Action::Completed(d) => {
                    assert!(target_stored, "completed before the pairing was stored");
                    if side == Side::Initiator {
                        assert!(
                            now < start + cfg.code_ttl,
                            "completed after the code expired"
                        );
                    }
                    completed.push(*d);
                }
                _ => {}
            }
        }
        // Whatever the initiator's user is shown, the joiner's user saw first: the joiner
        // confirms before it proves, and both derive the string from the same transcript.
        for v in &initiator_shown {
            assert!(joiner_shown.contains(v), "the two screens disagree");
        }
        // Only the honest counterpart knows the code, so only it can be the paired device,
        // at most once, and with the very keys it derived itself.
        assert!(completed.len() <= 1, "completed twice");
        if let Some(d) = completed.first() {
            assert_eq!(d.peer, other.peer);
            assert_eq!(d.info, other.info);
            if let Some(h) = &honest_completed {
                assert_eq!(h.keys, d.keys);
            }
        }
    }
}
