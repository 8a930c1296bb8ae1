//! One test per initiator transition.

use std::time::Duration;

use crate::action::{Action, FailReason, Progress};
use crate::initiator::InitiatorState;
use crate::messages::{Done, Mac, Message, Nonce, Outcome, Prove, RejectReason};
use crate::test_support::{
    device, drain, join_bytes, only_bytes_to, peer, prove_for, sent_to, stored, verdicts, Fixture,
};
use crate::Pairing;

fn state(p: &Pairing) -> InitiatorState {
    match p {
        Pairing::Initiator(i) => i.state(),
        Pairing::Joiner(_) => panic!("not an initiator"),
    }
}

/// Every record the initiator holds about peers; answering Joins must not add any.
fn tracked(p: &Pairing) -> usize {
    match p {
        Pairing::Initiator(i) => i.tracked_peers(),
        Pairing::Joiner(_) => panic!("not an initiator"),
    }
}

/// Alice's initiator, past its Publish.
fn open(f: &mut Fixture) -> Pairing {
    let mut a = f.initiator();
    drain(&mut a);
    a
}

/// Runs the handshake up to Alice asking her user; returns Bob's proof.
fn confirming(f: &mut Fixture, a: &mut Pairing) -> Vec<u8> {
    let (_, prove) = up_to_prove(f, a);
    a.handle_message(&f.bob.peer, &prove, f.at(3));
    drain(a);
    prove
}

/// Runs Bob's Join → Alice's Challenge → Bob's Prove, leaving Bob's Prove undelivered.
fn up_to_prove(f: &mut Fixture, a: &mut Pairing) -> (Pairing, Vec<u8>) {
    let mut b = f.joiner();
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let challenge = only_bytes_to(&drain(a), &f.bob.peer);
    let prove = prove_for(&mut b, &f.alice.peer, &challenge, f.at(2));
    (b, prove)
}

#[test]
fn new_publishes_until_expiry() {
    let mut f = Fixture::new();
    let mut a = f.initiator();
    let expires = f.now + f.cfg.code_ttl;
    assert_eq!(
        drain(&mut a),
        vec![Action::Publish {
            key: f.code.keys().discovery_id,
            until: expires
        }]
    );
    assert_eq!(state(&a), InitiatorState::Open);
    assert_eq!(a.poll_timeout(), Some(expires));
}

#[test]
fn join_with_other_code_gets_no_session() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let eve = device(3, "eve");
    let mut e = f.wrong_joiner(eve.clone());
    let join = join_bytes(&mut e, &f.alice.peer, f.now);
    a.handle_message(&eve.peer, &join, f.at(1));
    assert_eq!(
        verdicts(&drain(&mut a), &eve.peer),
        vec![Outcome::Rejected(RejectReason::NoSession)]
    );
    assert_eq!(tracked(&a), 0);
    assert_eq!(state(&a), InitiatorState::Open);
}

#[test]
fn join_gets_challenge_and_a_repeat_gets_the_same_one() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let mut b = f.joiner();
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let first = drain(&mut a);
    let out = sent_to(&first, &f.bob.peer);
    assert!(matches!(out.as_slice(), [Message::Challenge(c)] if c.info.name == "alice"));
    assert_eq!(tracked(&a), 0, "a Challenge leaves nothing behind");
    // The joiner resends its Join when our Challenge is slow or lost: it must get the
    // very same Challenge, or a late copy of the first would no longer match.
    a.handle_message(&f.bob.peer, &join, f.at(2));
    assert_eq!(drain(&mut a), first);
    assert_eq!(tracked(&a), 0);
}

/// Issue 14 (a warm pairing's time): the Challenge goes out with a `PrepareStore` of the
/// very pairing a `Store` asks for once that Challenge is proven, so the embedder can
/// write it while the Challenge and the proof travel.
#[test]
fn the_challenge_comes_with_a_prepare_store_of_the_pairing_store_asks_for() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let mut b = f.joiner();
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let out = drain(&mut a);
    let [Action::Send { bytes, .. }, Action::PrepareStore(prepared)] = out.as_slice() else {
        panic!("the Challenge, then a PrepareStore, got {out:?}");
    };
    let prove = prove_for(&mut b, &f.alice.peer, bytes, f.at(2));
    a.handle_message(&f.bob.peer, &prove, f.at(3));
    drain(&mut a);
    a.handle_confirm(&f.bob.peer, true, f.at(4));
    let out = drain(&mut a);
    let [Action::Store(stored)] = out.as_slice() else {
        panic!("a Store after the user's yes, got {out:?}");
    };
    assert_eq!(stored, prepared);
}

/// Anyone who saw the discovery id can send Joins without the code, and each readied save
/// is a durable write on the initiator's disk: only the first two Joins of a session get
/// one, however many come; every Join still gets its Challenge.
#[test]
fn only_two_joins_a_session_get_a_prepare_store() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let mut prepared = 0;
    for n in 10..20 {
        let p = device(n, "j");
        let mut j = Pairing::joiner(f.cfg.clone(), p.clone(), &f.code, f.now, &mut f.rng);
        let join = join_bytes(&mut j, &f.alice.peer, f.now);
        a.handle_message(&p.peer, &join, f.at(1));
        let out = drain(&mut a);
        assert!(matches!(
            sent_to(&out, &p.peer).as_slice(),
            [Message::Challenge(_)]
        ));
        prepared += out
            .iter()
            .filter(|a| matches!(a, Action::PrepareStore(d) if d.peer == p.peer))
            .count();
    }
    assert_eq!(prepared, 2);
}

/// Issue 10, item 1: there is no table of pending attempts to fill. Joins from many
/// peers all get their Challenge, nobody is evicted, and the first joiner's proof still
/// verifies after all the others.
#[test]
fn many_joins_evict_nobody_and_leave_nothing_behind() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let mut b = f.joiner();
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let challenge = only_bytes_to(&drain(&mut a), &f.bob.peer);
    for n in 10..110 {
        let p = device(n, "j");
        let mut j = Pairing::joiner(f.cfg.clone(), p.clone(), &f.code, f.now, &mut f.rng);
        let join = join_bytes(&mut j, &f.alice.peer, f.now);
        a.handle_message(&p.peer, &join, f.at(2));
        assert!(matches!(
            sent_to(&drain(&mut a), &p.peer).as_slice(),
            [Message::Challenge(_)]
        ));
    }
    assert_eq!(tracked(&a), 0);
    let prove = prove_for(&mut b, &f.alice.peer, &challenge, f.at(3));
    a.handle_message(&f.bob.peer, &prove, f.at(4));
    assert_eq!(state(&a), InitiatorState::Confirming);
}

#[test]
fn valid_proof_with_auto_accept_completes() {
    let mut f = Fixture::new();
    f.cfg.auto_accept = true;
    let mut a = open(&mut f);
    let (_, prove) = up_to_prove(&mut f, &mut a);
    a.handle_message(&f.bob.peer, &prove, f.at(3));
    let out = drain(&mut a);
    assert_eq!(state(&a), InitiatorState::Storing);
    let out = stored(&mut a, &out, f.at(3));
    assert_eq!(verdicts(&out, &f.bob.peer), vec![Outcome::Accepted]);
    assert!(out.contains(&Action::Unpublish {
        key: f.code.keys().discovery_id
    }));
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Completed(d) if d.info.name == "bob")));
    assert_eq!(state(&a), InitiatorState::Completed);
    assert_eq!(a.poll_timeout(), None);
}

/// The verdict waits only for the store: a driver may hold bob's request open for it,
/// and not while the user decides.
#[test]
fn the_verdict_is_pending_only_while_storing() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let (_, prove) = up_to_prove(&mut f, &mut a);
    a.handle_message(&f.bob.peer, &prove, f.at(3));
    let _ = drain(&mut a);
    assert_eq!(state(&a), InitiatorState::Confirming);
    assert!(!a.verdict_pending(&f.bob.peer));
    a.handle_confirm(&f.bob.peer, true, f.at(4));
    let out = drain(&mut a);
    assert_eq!(state(&a), InitiatorState::Storing);
    assert!(a.verdict_pending(&f.bob.peer));
    assert!(!a.verdict_pending(&device(9, "eve").peer));
    let out = stored(&mut a, &out, f.at(4));
    assert_eq!(verdicts(&out, &f.bob.peer), vec![Outcome::Accepted]);
    assert!(!a.verdict_pending(&f.bob.peer));
}

#[test]
fn valid_proof_without_auto_accept_asks_the_user() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let (b, prove) = up_to_prove(&mut f, &mut a);
    a.handle_message(&f.bob.peer, &prove, f.at(3));
    let out = drain(&mut a);
    // Bob's screen showed the same words when he said yes.
    let Pairing::Joiner(j) = &b else {
        panic!("bob joins")
    };
    let verification = j.verification().expect("bob verified alice");
    assert_eq!(
        out,
        vec![
            Action::Progress(Progress::Verified {
                peer: f.bob.peer.clone(),
                info: f.bob.info.clone()
            }),
            Action::Confirm {
                peer: f.bob.peer.clone(),
                info: f.bob.info.clone(),
                verification,
            },
        ]
    );
    assert_eq!(state(&a), InitiatorState::Confirming);
}

#[test]
fn wrong_proof_fails_only_that_attempt_and_rate_limits() {
    let mut f = Fixture::new();
    f.cfg.max_failures_per_peer = 2;
    let mut a = open(&mut f);
    let eve = device(3, "eve");
    for round in 0..2u64 {
        // Eve read the public discovery id, but does not know the auth key.
        let mut e = Pairing::joiner(f.cfg.clone(), eve.clone(), &f.code, f.now, &mut f.rng);
        let join = join_bytes(&mut e, &f.alice.peer, f.now);
        a.handle_message(&eve.peer, &join, f.at(round * 10));
        let Ok(Message::Join(j)) = Message::decode(&join) else {
            panic!("a join")
        };
        let bad_prove = Message::Prove(Prove {
            nonce: j.nonce,
            eph: j.eph,
            info: j.info.clone(),
            mac: Mac([0; 32]),
        })
        .encode();
        assert!(matches!(
            sent_to(&drain(&mut a), &eve.peer).as_slice(),
            [Message::Challenge(_)]
        ));
        a.handle_message(&eve.peer, &bad_prove, f.at(round * 10 + 1));
        assert_eq!(
            verdicts(&drain(&mut a), &eve.peer),
            vec![Outcome::Rejected(RejectReason::BadProof)]
        );
        assert_eq!(state(&a), InitiatorState::Open);
    }
    let mut e = Pairing::joiner(f.cfg.clone(), eve.clone(), &f.code, f.now, &mut f.rng);
    let join = join_bytes(&mut e, &f.alice.peer, f.now);
    a.handle_message(&eve.peer, &join, f.at(30));
    assert_eq!(
        verdicts(&drain(&mut a), &eve.peer),
        vec![Outcome::Rejected(RejectReason::RateLimited)]
    );
    // Bob is unaffected.
    let (_, prove) = up_to_prove(&mut f, &mut a);
    a.handle_message(&f.bob.peer, &prove, f.at(31));
    assert_eq!(state(&a), InitiatorState::Confirming);
}

/// With no attempt table, a proof for a Join never sent re-derives a Challenge its
/// sender never saw: it cannot verify, and counts as a failed proof.
#[test]
fn prove_without_a_join_is_a_bad_proof() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    a.handle_message(
        &f.bob.peer,
        &Message::Prove(Prove {
            nonce: Nonce([1; 32]),
            eph: crate::messages::EphemeralKey([9; 32]),
            info: f.bob.info.clone(),
            mac: Mac([1; 32]),
        })
        .encode(),
        f.at(1),
    );
    assert_eq!(
        verdicts(&drain(&mut a), &f.bob.peer),
        vec![Outcome::Rejected(RejectReason::BadProof)]
    );
    assert_eq!(state(&a), InitiatorState::Open);
    assert_eq!(tracked(&a), 1, "the failure is counted");
}

#[test]
fn malformed_oversized_and_future_messages_are_answered_without_advancing() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let p = peer(7);
    a.handle_message(&p, b"\xff\xfe garbage", f.at(1));
    a.handle_message(&p, &vec![0u8; crate::MAX_MESSAGE_LEN + 1], f.at(2));
    let mut envelope = Vec::new();
    ciborium::into_writer(
        &std::collections::BTreeMap::from([
            ("m", ciborium::Value::Null),
            ("v", ciborium::Value::from(9)),
        ]),
        &mut envelope,
    )
    .unwrap();
    a.handle_message(&p, &envelope, f.at(3));
    assert_eq!(
        verdicts(&drain(&mut a), &p),
        vec![
            Outcome::Rejected(RejectReason::Malformed),
            Outcome::Rejected(RejectReason::Malformed),
            Outcome::Rejected(RejectReason::UnsupportedVersion),
        ]
    );
    assert_eq!(state(&a), InitiatorState::Open);
    assert_eq!(tracked(&a), 1, "the malformed ones count against the peer");
}

#[test]
fn confirming_answers_busy_to_others() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let prove = confirming(&mut f, &mut a);
    let carol = device(4, "carol");
    let mut c = Pairing::joiner(f.cfg.clone(), carol.clone(), &f.code, f.now, &mut f.rng);
    let join = join_bytes(&mut c, &f.alice.peer, f.now);
    a.handle_message(&carol.peer, &join, f.at(4));
    assert_eq!(
        verdicts(&drain(&mut a), &carol.peer),
        vec![Outcome::Rejected(RejectReason::Busy)]
    );
    // A duplicate of Bob's proof changes nothing while the user decides.
    a.handle_message(&f.bob.peer, &prove, f.at(5));
    assert!(drain(&mut a).is_empty());
    assert_eq!(state(&a), InitiatorState::Confirming);
}

#[test]
fn user_accepts() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    confirming(&mut f, &mut a);
    a.handle_confirm(&peer(9), true, f.at(4));
    assert!(
        drain(&mut a).is_empty(),
        "an answer about another peer is ignored"
    );
    a.handle_confirm(&f.bob.peer, true, f.at(4));
    let out = drain(&mut a);
    let out = stored(&mut a, &out, f.at(4));
    assert_eq!(verdicts(&out, &f.bob.peer), vec![Outcome::Accepted]);
    assert!(out.iter().any(|a| matches!(a, Action::Completed(_))));
    assert_eq!(state(&a), InitiatorState::Completed);
}

#[test]
fn user_declines() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    confirming(&mut f, &mut a);
    a.handle_confirm(&f.bob.peer, false, f.at(4));
    let out = drain(&mut a);
    assert_eq!(
        verdicts(&out, &f.bob.peer),
        vec![Outcome::Rejected(RejectReason::UserRejected)]
    );
    assert!(out.contains(&Action::Failed(FailReason::Declined {
        peer: f.bob.peer.clone()
    })));
    assert_eq!(state(&a), InitiatorState::Failed);
}

#[test]
fn expiry_while_confirming_tells_the_joiner() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    confirming(&mut f, &mut a);
    let late = f.now + f.cfg.code_ttl;
    // The user's "yes" arrives too late: nothing completes after expiry.
    a.handle_confirm(&f.bob.peer, true, late);
    let out = drain(&mut a);
    assert_eq!(
        verdicts(&out, &f.bob.peer),
        vec![Outcome::Rejected(RejectReason::Expired)]
    );
    assert!(out.contains(&Action::Failed(FailReason::CodeExpired)));
    assert!(!out.iter().any(|a| matches!(a, Action::Completed(_))));
}

#[test]
fn expiry_when_open_then_joins_hear_expired() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let late = f.now + f.cfg.code_ttl;
    a.handle_timeout(late);
    assert_eq!(
        drain(&mut a),
        vec![
            Action::Unpublish {
                key: f.code.keys().discovery_id
            },
            Action::Failed(FailReason::CodeExpired)
        ]
    );
    let mut b = f.joiner();
    let join = join_bytes(&mut b, &f.alice.peer, late);
    a.handle_message(&f.bob.peer, &join, late);
    let answers = sent_to(&drain(&mut a), &f.bob.peer);
    let [Message::Done(done)] = answers.as_slice() else {
        panic!("one verdict: {answers:?}")
    };
    assert_eq!(done.outcome, Outcome::Rejected(RejectReason::Expired));
    // With proof of the code, so that Bob can believe it (issue 10, item 2).
    let Ok(Message::Join(j)) = Message::decode(&join) else {
        panic!("a join")
    };
    let proof = f
        .code
        .keys()
        .expired_mac(&j.nonce, &f.bob.peer, &f.alice.peer);
    assert_eq!(done.proof, Some(proof));
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn completed_repeats_its_verdict_to_the_paired_peer_only() {
    let mut f = Fixture::new();
    f.cfg.auto_accept = true;
    let mut a = open(&mut f);
    let prove = confirming(&mut f, &mut a);
    a.handle_stored(&f.bob.peer, true, f.at(3));
    drain(&mut a);
    a.handle_message(&f.bob.peer, &prove, f.at(4));
    let Ok(Message::Prove(p)) = Message::decode(&prove) else {
        panic!("a proof")
    };
    assert_eq!(
        drain(&mut a),
        vec![Action::Send {
            peer: f.bob.peer.clone(),
            bytes: Message::Done(Done::accepted(p.nonce)).encode()
        }]
    );
    a.handle_message(&peer(5), &prove, f.at(5));
    assert_eq!(
        verdicts(&drain(&mut a), &peer(5)),
        vec![Outcome::Rejected(RejectReason::NoSession)]
    );
    // The code is single use: a fresh Join, even with the right code, finds no session.
    let mut again = f.joiner();
    let join = join_bytes(&mut again, &f.alice.peer, f.at(6));
    a.handle_message(&f.bob.peer, &join, f.at(6));
    assert_eq!(
        verdicts(&drain(&mut a), &f.bob.peer),
        vec![Outcome::Rejected(RejectReason::NoSession)]
    );
    assert_eq!(state(&a), InitiatorState::Completed);
}

#[test]
fn cancel_open_and_confirming() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    a.handle_cancel(f.at(1));
    assert!(drain(&mut a).contains(&Action::Failed(FailReason::Cancelled)));
    assert_eq!(state(&a), InitiatorState::Failed);

    let mut a = open(&mut f);
    confirming(&mut f, &mut a);
    a.handle_cancel(f.at(4));
    let out = drain(&mut a);
    assert_eq!(
        verdicts(&out, &f.bob.peer),
        vec![Outcome::Rejected(RejectReason::Cancelled)]
    );
    assert!(out.contains(&Action::Failed(FailReason::Cancelled)));
}

/// There is nothing to prune: the only timer of an open initiator is the code's expiry,
/// and a proof verifies however late it comes within the code's lifetime.
#[test]
fn a_late_proof_still_verifies() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let (_, prove) = up_to_prove(&mut f, &mut a);
    assert_eq!(tracked(&a), 0);
    assert_eq!(a.poll_timeout(), Some(f.now + f.cfg.code_ttl));
    let late = f.now + f.cfg.code_ttl - Duration::from_millis(1);
    a.handle_timeout(late);
    a.handle_message(&f.bob.peer, &prove, late);
    assert_eq!(state(&a), InitiatorState::Confirming);
}

#[test]
fn a_repeated_join_while_confirming_changes_nothing() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    let mut b = f.joiner();
    let join = join_bytes(&mut b, &f.alice.peer, f.now);
    a.handle_message(&f.bob.peer, &join, f.at(1));
    let challenge = only_bytes_to(&drain(&mut a), &f.bob.peer);
    let prove = prove_for(&mut b, &f.alice.peer, &challenge, f.at(2));
    a.handle_message(&f.bob.peer, &prove, f.at(3));
    drain(&mut a);
    // A duplicate of Bob's first Join must not be answered "busy": that would send Bob
    // back to searching while Alice goes on to pair with him.
    a.handle_message(&f.bob.peer, &join, f.at(4));
    assert!(drain(&mut a).is_empty());
    assert_eq!(state(&a), InitiatorState::Confirming);
}

#[test]
fn unanswered_confirmation_times_out_before_the_joiner_gives_up() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    confirming(&mut f, &mut a);
    let deadline = f.at(3) + f.cfg.confirm_timeout;
    assert_eq!(a.poll_timeout(), Some(deadline));
    a.handle_timeout(deadline);
    let out = drain(&mut a);
    assert_eq!(
        verdicts(&out, &f.bob.peer),
        vec![Outcome::Rejected(RejectReason::Timeout)]
    );
    assert!(out.contains(&Action::Failed(FailReason::ConfirmTimeout {
        peer: f.bob.peer.clone()
    })));
    // A "yes" after that is too late.
    a.handle_confirm(&f.bob.peer, true, deadline);
    assert!(drain(&mut a).is_empty());
}

#[test]
fn verdicts_name_the_attempt() {
    let mut f = Fixture::new();
    f.cfg.auto_accept = true;
    let mut a = open(&mut f);
    let (_, prove) = up_to_prove(&mut f, &mut a);
    let Ok(Message::Prove(p)) = Message::decode(&prove) else {
        panic!("a proof")
    };
    a.handle_message(&f.bob.peer, &prove, f.at(3));
    let out = drain(&mut a);
    let done = sent_to(&stored(&mut a, &out, f.at(3)), &f.bob.peer);
    assert_eq!(done, vec![Message::Done(Done::accepted(p.nonce))]);
}

/// Issue 10, item 4: a pairing is acknowledged only once it is stored here; a save that
/// fails reaches the joiner as a rejection it can show.
#[test]
fn a_failed_store_rejects_the_joiner_instead_of_accepting() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    confirming(&mut f, &mut a);
    a.handle_confirm(&f.bob.peer, true, f.at(4));
    let out = drain(&mut a);
    assert!(matches!(out.as_slice(), [Action::Store(d)] if d.peer == f.bob.peer));
    assert_eq!(state(&a), InitiatorState::Storing);
    // Another peer's store answer changes nothing.
    a.handle_stored(&peer(9), true, f.at(5));
    assert!(drain(&mut a).is_empty());
    a.handle_stored(&f.bob.peer, false, f.at(5));
    let out = drain(&mut a);
    assert_eq!(
        verdicts(&out, &f.bob.peer),
        vec![Outcome::Rejected(RejectReason::NotStored)]
    );
    assert!(out.contains(&Action::Failed(FailReason::NotStored {
        peer: f.bob.peer.clone()
    })));
    assert!(!out.iter().any(|a| matches!(a, Action::Completed(_))));
    assert_eq!(state(&a), InitiatorState::Failed);
    // A late "stored after all" is too late.
    a.handle_stored(&f.bob.peer, true, f.at(6));
    assert!(drain(&mut a).is_empty());
}

#[test]
fn an_unanswered_store_times_out_as_not_stored() {
    let mut f = Fixture::new();
    f.cfg.auto_accept = true;
    let mut a = open(&mut f);
    let prove = confirming(&mut f, &mut a);
    let deadline = f.at(3) + f.cfg.store_timeout;
    assert_eq!(a.next_timer(), Some((deadline, crate::Timer::Store)));
    // A copy of the proof while the store runs gets no answer yet.
    a.handle_message(&f.bob.peer, &prove, f.at(4));
    assert!(drain(&mut a).is_empty());
    a.handle_timeout(deadline);
    let out = drain(&mut a);
    assert_eq!(
        verdicts(&out, &f.bob.peer),
        vec![Outcome::Rejected(RejectReason::NotStored)]
    );
    assert!(out.contains(&Action::Failed(FailReason::NotStored {
        peer: f.bob.peer.clone()
    })));
    a.handle_stored(&f.bob.peer, true, deadline);
    assert!(
        drain(&mut a).is_empty(),
        "a store answer after the deadline is ignored"
    );
}

/// The joiner waits for the verdict only until the confirmation deadline: a store
/// started just before it may not answer after it.
#[test]
fn the_store_deadline_never_passes_the_confirmation_deadline() {
    let mut f = Fixture::new();
    let mut a = open(&mut f);
    confirming(&mut f, &mut a);
    let confirm_deadline = f.at(3) + f.cfg.confirm_timeout;
    let late = confirm_deadline - Duration::from_secs(1);
    a.handle_confirm(&f.bob.peer, true, late);
    drain(&mut a);
    assert_eq!(
        a.next_timer(),
        Some((confirm_deadline, crate::Timer::Store))
    );
}

#[test]
fn a_second_joiner_is_busy_while_the_store_runs() {
    let mut f = Fixture::new();
    f.cfg.auto_accept = true;
    let mut a = open(&mut f);
    confirming(&mut f, &mut a);
    let mut carol = f.joiner();
    let join = join_bytes(&mut carol, &f.alice.peer, f.now);
    a.handle_message(&peer(7), &join, f.at(4));
    assert_eq!(
        verdicts(&drain(&mut a), &peer(7)),
        vec![Outcome::Rejected(RejectReason::Busy)]
    );
}
