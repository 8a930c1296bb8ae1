//! One test per joiner transition.

use std::time::Duration;

use crate::action::{Action, FailReason, Progress};
use crate::joiner::JoinerState;
use crate::messages::{Challenge, Done, EphemeralKey, Mac, Message, Nonce, Outcome, RejectReason};
use crate::test_support::{
    device, drain, join_bytes, only_bytes_to, peer, sent_to, stored, Fixture,
};
use crate::Pairing;
use crate::PeerId;

fn state(p: &Pairing) -> JoinerState {
    match p {
        Pairing::Joiner(j) => j.state(),
        Pairing::Initiator(_) => panic!("not a joiner"),
    }
}

/// Bob's joiner, searching, its first lookup already made.
fn searching(f: &mut Fixture) -> Pairing {
    let mut b = f.joiner();
    b.handle_timeout(f.now + f.cfg.first_lookup_delay);
    drain(&mut b);
    b
}

/// `n` waits of a backoff from the default `redial_interval` (25 ms), doubling, at most
/// `cap_ms`.
fn doubling_from_25_ms(n: u32, cap_ms: u64) -> Vec<std::time::Duration> {
    (0..n)
        .map(|i| std::time::Duration::from_millis((25u64 << i).min(cap_ms)))
        .collect()
}

/// A verdict from `from` about the attempt `b` has with it.
fn verdict(b: &Pairing, from: &PeerId, outcome: Outcome) -> Vec<u8> {
    let Pairing::Joiner(j) = b else {
        panic!("not a joiner")
    };
    let attempt_nonce = j.expected_nonce(from).expect("an attempt with that peer");
    Message::Done(Done {
        attempt_nonce,
        outcome,
        proof: None,
    })
    .encode()
}

fn reject(b: &Pairing, from: &PeerId, reason: RejectReason) -> Vec<u8> {
    verdict(b, from, Outcome::Rejected(reason))
}

/// Bob contacts Alice and receives her Challenge; returns both machines with Bob asking
/// his user (his actions undrained).
fn confirming(f: &mut Fixture) -> (Pairing, Pairing) {
    let mut a = f.initiator();
    drain(&mut a);
    let mut b = searching(f);
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let challenge = only_bytes_to(&drain(&mut a), &f.bob.peer);
    b.handle_message(&f.alice.peer, &challenge, f.at(2));
    assert_eq!(state(&b), JoinerState::Confirming);
    (a, b)
}

/// As `confirming`, and Bob's user said yes at once: Bob is proving.
fn proving(f: &mut Fixture) -> (Pairing, Pairing) {
    let (a, mut b) = confirming(f);
    b.handle_confirm(&f.alice.peer, true, f.at(2));
    assert_eq!(state(&b), JoinerState::Proving);
    (a, b)
}

/// The peers at hand are asked first: with one reported at the start, the first lookup
/// comes `first_lookup_delay` after the start, then every `lookup_interval`.
#[test]
fn new_looks_up_the_discovery_id_after_asking_the_peers_at_hand() {
    let mut f = Fixture::new();
    let mut b = f.joiner();
    assert_eq!(drain(&mut b), vec![]);
    assert_eq!(state(&b), JoinerState::Searching);
    b.handle_peer(&f.alice.peer, f.now);
    assert!(matches!(
        sent_to(&drain(&mut b), &f.alice.peer).as_slice(),
        [Message::Join(_)]
    ));
    let first = f.now + f.cfg.first_lookup_delay;
    assert_eq!(b.poll_timeout(), Some(first));
    b.handle_timeout(first);
    assert_eq!(
        drain(&mut b),
        vec![Action::Lookup {
            key: f.code.keys().discovery_id
        }]
    );
    assert_eq!(b.poll_timeout(), Some(first + f.cfg.lookup_interval));
}

/// With no peer at hand (only meeting points, which the embedder does not report, or
/// nothing at all), nothing is worth waiting for: the lookup is due at once, and a peer
/// reported after it went out does not move the next.
#[test]
fn new_with_no_peer_at_hand_looks_up_at_once() {
    let mut f = Fixture::new();
    let mut b = f.joiner();
    assert_eq!(drain(&mut b), vec![]);
    assert_eq!(b.poll_timeout(), Some(f.now));
    b.handle_timeout(f.now);
    assert_eq!(
        drain(&mut b),
        vec![Action::Lookup {
            key: f.code.keys().discovery_id
        }]
    );
    // That lookup reached nobody: the next is due `redial_interval` later, before
    // `first_lookup_delay` would have ended, and a peer found meanwhile leaves it there.
    b.handle_lookup_failed(f.at(1));
    let next = f.at(1) + f.cfg.redial_interval;
    assert!(next < f.now + f.cfg.first_lookup_delay);
    b.handle_peer(&f.alice.peer, f.at(2));
    drain(&mut b);
    b.handle_timeout(next);
    assert!(drain(&mut b).contains(&Action::Lookup {
        key: f.code.keys().discovery_id
    }));
}

#[test]
fn discovered_peer_gets_a_join_but_self_does_not() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_peer(&f.bob.peer, f.now);
    assert!(drain(&mut b).is_empty());
    b.handle_peer(&f.alice.peer, f.now);
    let out = drain(&mut b);
    assert!(
        matches!(sent_to(&out, &f.alice.peer).as_slice(), [Message::Join(j)] if j.discovery_id == f.code.keys().discovery_id)
    );
    assert!(out.contains(&Action::Progress(Progress::Contacting {
        peer: f.alice.peer.clone()
    })));
    // Rediscovery while the attempt is in flight sends nothing new.
    b.handle_peer(&f.alice.peer, f.at(1));
    assert!(drain(&mut b).is_empty());
}

#[test]
fn parallel_attempts_are_bounded_and_queue_drains() {
    let mut f = Fixture::new();
    f.cfg.parallel_attempts = 2;
    let mut b = searching(&mut f);
    for n in 0..3 {
        b.handle_peer(&peer(n), f.now);
    }
    let out = drain(&mut b);
    assert_eq!(sent_to(&out, &peer(0)).len(), 1);
    assert_eq!(sent_to(&out, &peer(1)).len(), 1);
    assert!(sent_to(&out, &peer(2)).is_empty());
    b.handle_message(
        &peer(0),
        &reject(&b, &peer(0), RejectReason::NoSession),
        f.at(1),
    );
    assert!(matches!(
        sent_to(&drain(&mut b), &peer(2)).as_slice(),
        [Message::Join(_)]
    ));
}

#[test]
fn no_session_is_retried_after_the_interval() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_peer(&peer(1), f.now);
    drain(&mut b);
    b.handle_message(
        &peer(1),
        &reject(&b, &peer(1), RejectReason::NoSession),
        f.at(10),
    );
    assert!(drain(&mut b).is_empty());
    let retry = f.at(10) + f.cfg.retry_interval;
    assert_eq!(b.poll_timeout(), Some(retry));
    b.handle_timeout(retry);
    assert!(matches!(
        sent_to(&drain(&mut b), &peer(1)).as_slice(),
        [Message::Join(_)]
    ));
}

#[test]
fn unanswered_attempt_is_retried() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_peer(&peer(1), f.now);
    drain(&mut b);
    b.handle_timeout(f.now + f.cfg.attempt_timeout);
    let out = drain(&mut b);
    assert!(matches!(
        sent_to(&out, &peer(1)).as_slice(),
        [Message::Join(_)]
    ));
}

#[test]
fn lookup_repeats_while_searching() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_timeout(f.now + f.cfg.first_lookup_delay + f.cfg.lookup_interval);
    assert_eq!(
        drain(&mut b),
        vec![Action::Lookup {
            key: f.code.keys().discovery_id
        }]
    );
}

#[test]
fn bad_mac_kills_the_candidate_for_good() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    let eve = device(3, "eve");
    b.handle_peer(&eve.peer, f.now);
    drain(&mut b);
    let forged = Message::Challenge(Challenge {
        nonce: Nonce([1; 32]),
        eph: EphemeralKey([9; 32]),
        info: eve.info.clone(),
        mac: Mac([0; 32]),
    });
    b.handle_message(&eve.peer, &forged.encode(), f.at(1));
    assert!(drain(&mut b).is_empty());
    assert_eq!(state(&b), JoinerState::Searching);
    b.handle_peer(&eve.peer, f.at(5000));
    b.handle_timeout(f.at(5000));
    assert!(sent_to(&drain(&mut b), &eve.peer).is_empty());
}

#[test]
fn garbage_from_a_candidate_kills_it() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_peer(&peer(1), f.now);
    drain(&mut b);
    b.handle_message(&peer(1), b"not cbor at all", f.at(1));
    b.handle_timeout(f.at(5000));
    assert!(sent_to(&drain(&mut b), &peer(1)).is_empty());
    assert_eq!(state(&b), JoinerState::Searching);
}

#[test]
fn valid_challenge_sends_proof() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    let out = drain(&mut b);
    assert!(matches!(
        sent_to(&out, &f.alice.peer).as_slice(),
        [Message::Prove(_)]
    ));
    assert!(out.contains(&Action::Progress(Progress::Verified {
        peer: f.alice.peer.clone(),
        info: f.alice.info.clone()
    })));
}

/// Issue 10, item 3: Bob's user sees Alice's name and the verification string before Bob
/// proves anything.
#[test]
fn valid_challenge_asks_the_user_before_proving() {
    let mut f = Fixture::new();
    let (_, mut b) = confirming(&mut f);
    let out = drain(&mut b);
    let Pairing::Joiner(j) = &b else {
        panic!("a joiner")
    };
    assert_eq!(
        out,
        vec![
            Action::Progress(Progress::Verified {
                peer: f.alice.peer.clone(),
                info: f.alice.info.clone()
            }),
            Action::Confirm {
                peer: f.alice.peer.clone(),
                info: f.alice.info.clone(),
                verification: j.verification().expect("alice verified"),
            }
        ]
    );
    assert!(sent_to(&out, &f.alice.peer).is_empty(), "no proof yet");
    assert_eq!(b.poll_timeout(), Some(f.at(2) + f.cfg.confirm_timeout));
    b.handle_confirm(&peer(9), true, f.at(3));
    assert!(drain(&mut b).is_empty(), "an answer about another peer");
}

#[test]
fn declining_proves_nothing_and_fails() {
    let mut f = Fixture::new();
    let (_, mut b) = confirming(&mut f);
    drain(&mut b);
    b.handle_confirm(&f.alice.peer, false, f.at(3));
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::Declined {
            peer: f.alice.peer.clone()
        })]
    );
    assert_eq!(state(&b), JoinerState::Finished);
}

#[test]
fn an_unanswered_confirmation_times_out() {
    let mut f = Fixture::new();
    let (_, mut b) = confirming(&mut f);
    drain(&mut b);
    let deadline = f.at(2) + f.cfg.confirm_timeout;
    b.handle_timeout(deadline);
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::ConfirmTimeout {
            peer: f.alice.peer.clone()
        })]
    );
    // A "yes" after that is too late.
    b.handle_confirm(&f.alice.peer, true, deadline);
    assert!(drain(&mut b).is_empty());
}

#[test]
fn auto_accept_proves_at_once() {
    let mut f = Fixture::new();
    f.cfg.auto_accept = true;
    let mut a = f.initiator();
    drain(&mut a);
    let mut b = searching(&mut f);
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let challenge = only_bytes_to(&drain(&mut a), &f.bob.peer);
    b.handle_message(&f.alice.peer, &challenge, f.at(2));
    assert_eq!(state(&b), JoinerState::Proving);
    let out = drain(&mut b);
    assert!(!out.iter().any(|a| matches!(a, Action::Confirm { .. })));
    assert!(matches!(
        sent_to(&out, &f.alice.peer).as_slice(),
        [Message::Prove(_)]
    ));
}

#[test]
fn accepted_completes() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    // A verdict from anyone else is ignored.
    b.handle_message(
        &peer(4),
        &Message::Done(Done::accepted(Nonce([0; 32]))).encode(),
        f.at(3),
    );
    assert!(drain(&mut b).is_empty());
    b.handle_message(
        &f.alice.peer,
        &verdict(&b, &f.alice.peer, Outcome::Accepted),
        f.at(3),
    );
    let out = drain(&mut b);
    assert_eq!(state(&b), JoinerState::Storing);
    let out = stored(&mut b, &out, f.at(3));
    assert!(
        matches!(out.as_slice(), [Action::Completed(d)] if d.peer == f.alice.peer && d.info.name == "alice")
    );
    assert_eq!(state(&b), JoinerState::Finished);
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn user_rejection_fails_with_the_reason() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    b.handle_message(
        &f.alice.peer,
        &reject(&b, &f.alice.peer, RejectReason::UserRejected),
        f.at(3),
    );
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::Rejected {
            peer: f.alice.peer.clone(),
            reason: RejectReason::UserRejected
        })]
    );
}

#[test]
fn expired_verdict_fails_as_expired() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    b.handle_message(
        &f.alice.peer,
        &reject(&b, &f.alice.peer, RejectReason::Expired),
        f.at(3),
    );
    assert_eq!(drain(&mut b), vec![Action::Failed(FailReason::CodeExpired)]);
}

#[test]
fn busy_verdict_goes_back_to_searching() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    b.handle_message(
        &f.alice.peer,
        &reject(&b, &f.alice.peer, RejectReason::Busy),
        f.at(3),
    );
    assert_eq!(state(&b), JoinerState::Searching);
    b.handle_timeout(f.at(3) + f.cfg.retry_interval);
    assert!(matches!(
        sent_to(&drain(&mut b), &f.alice.peer).as_slice(),
        [Message::Join(_)]
    ));
}

#[test]
fn proof_is_resent_then_gives_up() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    let first = only_bytes_to(&drain(&mut b), &f.alice.peer);
    let resend = f.at(2) + f.cfg.attempt_timeout;
    assert_eq!(b.poll_timeout(), Some(resend));
    b.handle_timeout(resend);
    assert_eq!(only_bytes_to(&drain(&mut b), &f.alice.peer), first);
    b.handle_timeout(f.at(2) + f.cfg.confirm_timeout + f.cfg.attempt_timeout);
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::NoAnswer {
            peer: f.alice.peer.clone()
        })]
    );
}

#[test]
fn search_times_out_with_no_device_answered() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_peer(&peer(1), f.now);
    b.handle_message(
        &peer(1),
        &reject(&b, &peer(1), RejectReason::NoSession),
        f.at(1),
    );
    drain(&mut b);
    b.handle_timeout(f.now + f.cfg.join_timeout);
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::NoDeviceAnswered)]
    );
    assert_eq!(b.poll_timeout(), None);
}

/// Issue 10, item 2: "expired" from a peer that has not proven the code ends that
/// peer's attempt only; the search goes on to its full length.
#[test]
fn an_unproven_expired_claim_is_only_that_peers_answer() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_peer(&peer(1), f.now);
    drain(&mut b);
    b.handle_message(
        &peer(1),
        &reject(&b, &peer(1), RejectReason::Expired),
        f.at(1),
    );
    assert!(drain(&mut b).is_empty());
    assert_eq!(state(&b), JoinerState::Searching);
    // Asked again like any peer without a session.
    let retry = f.at(1) + f.cfg.retry_interval;
    assert_eq!(b.poll_timeout(), Some(retry));
    b.handle_timeout(retry);
    assert!(matches!(
        sent_to(&drain(&mut b), &peer(1)).as_slice(),
        [Message::Join(_)]
    ));
    b.handle_timeout(f.now + f.cfg.join_timeout);
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::NoDeviceAnswered)]
    );
}

/// An initiator whose code expired proves it with `Done.proof`: the joiner believes it
/// and stops at once.
#[test]
fn a_proven_expired_ends_the_search_at_once() {
    let mut f = Fixture::new();
    let mut a = f.initiator();
    drain(&mut a);
    let late = f.now + f.cfg.code_ttl;
    a.handle_timeout(late);
    drain(&mut a);
    let mut b = Pairing::joiner(f.cfg.clone(), f.bob.clone(), &f.code, late, &mut f.rng);
    drain(&mut b);
    let join = join_bytes(&mut b, &f.alice.peer, late);
    a.handle_message(&f.bob.peer, &join, late);
    let answer = only_bytes_to(&drain(&mut a), &f.bob.peer);
    // The same answer from anyone else proves nothing.
    let mallory = peer(6);
    b.handle_peer(&mallory, late);
    drain(&mut b);
    let Ok(Message::Done(stolen)) = Message::decode(&answer) else {
        panic!("a verdict")
    };
    let Pairing::Joiner(j) = &b else {
        panic!("a joiner")
    };
    let relayed = Message::Done(Done {
        attempt_nonce: j.expected_nonce(&mallory).expect("mallory was asked"),
        ..stolen
    })
    .encode();
    b.handle_message(&mallory, &relayed, late);
    assert!(drain(&mut b).is_empty());
    b.handle_message(&f.alice.peer, &answer, late);
    assert_eq!(drain(&mut b), vec![Action::Failed(FailReason::CodeExpired)]);
}

#[test]
fn cancel_finishes() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_cancel(f.at(1));
    assert_eq!(drain(&mut b), vec![Action::Failed(FailReason::Cancelled)]);
    b.handle_cancel(f.at(2));
    assert!(drain(&mut b).is_empty());
    b.handle_peer(&peer(1), f.at(3));
    assert!(drain(&mut b).is_empty());
}

#[test]
fn late_messages_after_the_deadline_do_not_complete() {
    let mut f = Fixture::new();
    f.cfg.join_timeout = Duration::from_secs(5);
    let mut a = f.initiator();
    drain(&mut a);
    let mut b = searching(&mut f);
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let challenge = only_bytes_to(&drain(&mut a), &f.bob.peer);
    b.handle_message(&f.alice.peer, &challenge, f.now + Duration::from_secs(5));
    let out = drain(&mut b);
    assert_eq!(out, vec![Action::Failed(FailReason::NoDeviceAnswered)]);
}

#[test]
fn a_verdict_about_another_attempt_is_ignored() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    // A late "no session" from before (or about someone else's nonce) must not undo the
    // attempt that is about to be accepted.
    let stale = Message::Done(Done::rejected(Nonce([9; 32]), RejectReason::NoSession)).encode();
    b.handle_message(&f.alice.peer, &stale, f.at(3));
    assert_eq!(state(&b), JoinerState::Proving);
    b.handle_message(
        &f.alice.peer,
        &verdict(&b, &f.alice.peer, Outcome::Accepted),
        f.at(4),
    );
    let out = drain(&mut b);
    assert!(matches!(
        stored(&mut b, &out, f.at(4)).as_slice(),
        [Action::Completed(_)]
    ));
}

#[test]
fn a_late_challenge_still_matches_after_the_join_was_resent() {
    let mut f = Fixture::new();
    let mut a = f.initiator();
    drain(&mut a);
    let mut b = searching(&mut f);
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let challenge = only_bytes_to(&drain(&mut a), &f.bob.peer);
    // The Challenge is slow: Bob's attempt times out and he sends his Join again, unchanged.
    b.handle_timeout(f.now + f.cfg.attempt_timeout);
    assert_eq!(only_bytes_to(&drain(&mut b), &f.alice.peer), join);
    b.handle_message(
        &f.alice.peer,
        &challenge,
        f.now + f.cfg.attempt_timeout + Duration::from_millis(5),
    );
    assert_eq!(state(&b), JoinerState::Confirming);
}

#[test]
fn another_joiners_join_is_answered_at_once() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    let carol = device(5, "carol");
    let mut c = Pairing::joiner(f.cfg.clone(), carol.clone(), &f.code, f.now, &mut f.rng);
    c.handle_timeout(f.now + f.cfg.first_lookup_delay);
    drain(&mut c);
    c.handle_peer(&f.bob.peer, f.now);
    let join = only_bytes_to(&drain(&mut c), &f.bob.peer);
    b.handle_message(&carol.peer, &join, f.at(1));
    let out = drain(&mut b);
    assert!(matches!(
        sent_to(&out, &carol.peer).as_slice(),
        [Message::Done(Done {
            outcome: Outcome::Rejected(RejectReason::NoSession),
            ..
        })]
    ));
    // ...and Carol takes that answer as one about her attempt.
    c.handle_message(&f.bob.peer, &only_bytes_to(&out, &carol.peer), f.at(2));
    assert_eq!(c.poll_timeout(), Some(f.at(2) + f.cfg.retry_interval));
}

/// A newly discovered peer is asked before those already waiting; one that is
/// re-announced keeps its place, so a peer re-announcing itself cannot jump the queue
/// again and again (issue 10, item 2).
#[test]
fn a_new_peer_jumps_the_queue_but_a_reannounced_one_does_not() {
    let mut f = Fixture::new();
    f.cfg.parallel_attempts = 1;
    let mut b = searching(&mut f);
    for n in 0..3 {
        b.handle_peer(&peer(n), f.now);
    }
    drain(&mut b);
    // Queue: peer(2), peer(1). peer(1) re-announcing changes nothing.
    b.handle_peer(&peer(1), f.at(1));
    b.handle_message(
        &peer(0),
        &reject(&b, &peer(0), RejectReason::NoSession),
        f.at(2),
    );
    let out = drain(&mut b);
    assert_eq!(sent_to(&out, &peer(2)).len(), 1);
    assert!(sent_to(&out, &peer(1)).is_empty());
    // A peer never seen before goes first.
    b.handle_peer(&peer(3), f.at(3));
    b.handle_message(
        &peer(2),
        &reject(&b, &peer(2), RejectReason::NoSession),
        f.at(4),
    );
    let out = drain(&mut b);
    assert_eq!(sent_to(&out, &peer(3)).len(), 1);
    assert!(sent_to(&out, &peer(1)).is_empty());
}

#[test]
fn losing_the_proven_peer_ends_the_wait_soon() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    b.handle_unreachable(&peer(9), f.at(3));
    assert_eq!(b.poll_timeout(), Some(f.at(2) + f.cfg.attempt_timeout));
    b.handle_unreachable(&f.alice.peer, f.at(3));
    let end = f.at(3) + f.cfg.attempt_timeout;
    b.handle_timeout(f.at(2) + f.cfg.attempt_timeout);
    assert!(matches!(
        sent_to(&drain(&mut b), &f.alice.peer).as_slice(),
        [Message::Prove(_)]
    ));
    b.handle_timeout(end);
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::NoAnswer {
            peer: f.alice.peer.clone()
        })]
    );
}

#[test]
fn an_unreachable_candidate_is_asked_again_soon_then_less_often() {
    let mut f = Fixture::new();
    f.cfg.lookup_interval = std::time::Duration::from_secs(60); // only retries are due
    let mut b = searching(&mut f);
    b.handle_peer(&peer(1), f.now);
    drain(&mut b);
    let mut now = f.at(1);
    let mut waits = Vec::new();
    for _ in 0..8 {
        b.handle_unreachable(&peer(1), now);
        let retry = b.poll_timeout().expect("a retry is due");
        waits.push(retry - now);
        b.handle_timeout(retry);
        assert!(matches!(
            sent_to(&drain(&mut b), &peer(1)).as_slice(),
            [Message::Join(_)]
        ));
        now = retry;
    }
    assert_eq!(waits, doubling_from_25_ms(8, 1000));
}

/// An answer shows the peer is reachable: the next unreachable send starts the doubling
/// from `redial_interval` again.
#[test]
fn an_answer_resets_the_redial_wait() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    b.handle_peer(&peer(1), f.now);
    drain(&mut b);
    for _ in 0..3 {
        b.handle_unreachable(&peer(1), f.now);
        let retry = b.poll_timeout().expect("a retry is due");
        b.handle_timeout(retry);
        drain(&mut b);
    }
    b.handle_message(
        &peer(1),
        &reject(&b, &peer(1), RejectReason::NoSession),
        f.at(1),
    );
    let retry = f.at(1) + f.cfg.retry_interval;
    assert_eq!(b.poll_timeout(), Some(retry));
    b.handle_timeout(retry);
    drain(&mut b);
    b.handle_unreachable(&peer(1), retry);
    assert_eq!(b.poll_timeout(), Some(retry + f.cfg.redial_interval));
}

/// Issue 14 (a warm pairing's time): the Prove goes out with a `PrepareStore` of the very
/// pairing a `Store` later asks for, so the embedder can write it while the initiator
/// stores its side. Nothing is prepared before the user said yes.
#[test]
fn the_proof_comes_with_a_prepare_store_of_the_pairing_store_asks_for() {
    let mut f = Fixture::new();
    let (_, mut b) = confirming(&mut f);
    let asked = drain(&mut b);
    assert!(!asked.iter().any(|a| matches!(a, Action::PrepareStore(_))));
    b.handle_confirm(&f.alice.peer, true, f.at(2));
    let out = drain(&mut b);
    let prove_at = out
        .iter()
        .position(|a| matches!(a, Action::Send { .. }))
        .expect("the proof");
    let [Action::PrepareStore(prepared)] = &out[prove_at + 1..] else {
        panic!("a PrepareStore right after the proof, got {out:?}");
    };
    b.handle_message(
        &f.alice.peer,
        &verdict(&b, &f.alice.peer, Outcome::Accepted),
        f.at(3),
    );
    let after = drain(&mut b);
    let [Action::Store(stored)] = after.as_slice() else {
        panic!("a Store after the acceptance, got {after:?}");
    };
    assert_eq!(stored, prepared);
}

/// Issue 10, item 4: the joiner completes only once its embedder stored the pairing.
#[test]
fn accepted_but_not_stored_fails_as_not_stored() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    b.handle_message(
        &f.alice.peer,
        &verdict(&b, &f.alice.peer, Outcome::Accepted),
        f.at(3),
    );
    let out = drain(&mut b);
    assert!(matches!(out.as_slice(), [Action::Store(d)] if d.peer == f.alice.peer));
    b.handle_stored(&peer(4), true, f.at(4));
    assert!(
        drain(&mut b).is_empty(),
        "a store answer about another peer"
    );
    b.handle_stored(&f.alice.peer, false, f.at(4));
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::NotStored {
            peer: f.alice.peer.clone()
        })]
    );
    assert_eq!(state(&b), JoinerState::Finished);
}

#[test]
fn an_unanswered_store_fails_at_its_deadline() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    b.handle_message(
        &f.alice.peer,
        &verdict(&b, &f.alice.peer, Outcome::Accepted),
        f.at(3),
    );
    drain(&mut b);
    let deadline = f.at(3) + f.cfg.store_timeout;
    assert_eq!(b.next_timer(), Some((deadline, crate::Timer::Store)));
    b.handle_timeout(deadline);
    assert_eq!(
        drain(&mut b),
        vec![Action::Failed(FailReason::NotStored {
            peer: f.alice.peer.clone()
        })]
    );
    b.handle_stored(&f.alice.peer, true, deadline);
    assert!(drain(&mut b).is_empty());
}

#[test]
fn the_initiators_failed_store_reaches_the_user() {
    let mut f = Fixture::new();
    let (_, mut b) = proving(&mut f);
    drain(&mut b);
    b.handle_message(
        &f.alice.peer,
        &verdict(
            &b,
            &f.alice.peer,
            Outcome::Rejected(RejectReason::NotStored),
        ),
        f.at(3),
    );
    let out = drain(&mut b);
    let [Action::Failed(reason)] = out.as_slice() else {
        panic!("the session fails: {out:?}")
    };
    assert_eq!(
        *reason,
        FailReason::Rejected {
            peer: f.alice.peer.clone(),
            reason: RejectReason::NotStored
        }
    );
    assert!(reason
        .to_string()
        .contains("the other device could not save the pairing"));
}

/// Issue 11, item 1: a lookup that reached no DHT peer is repeated after
/// `redial_interval`, doubling, and never more often than `lookup_interval` once doubled
/// that far (a node with no DHT peer at all must not look up in a tight loop).
#[test]
fn a_failed_lookup_is_repeated_soon_then_less_often() {
    let mut f = Fixture::new();
    let mut b = searching(&mut f);
    drain(&mut b);
    let mut now = f.now;
    let mut waits = Vec::new();
    for _ in 0..9 {
        b.handle_lookup_failed(now);
        let next = b.poll_timeout().expect("a lookup is due");
        waits.push(next - now);
        b.handle_timeout(next);
        assert!(drain(&mut b)
            .iter()
            .any(|a| matches!(a, Action::Lookup { .. })));
        now = next;
    }
    assert_eq!(waits, doubling_from_25_ms(9, 2000));
}
