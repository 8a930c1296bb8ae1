//! Nodes in one process on 127.0.0.1 with mDNS off: they find each other through the DHT
//! (Kademlia provider records), seeded with bootstrap addresses.

use std::time::{Duration, Instant};

use futures::StreamExt;
use paircode_core::{Code, FailReason, PairedDevice, RejectReason};
use paircode_net::{
    Discovery, Error, GenerateOptions, JoinOptions, Multiaddr, Node, NodeEvent, PairingEvent,
};
use paircode_netbed::{loopback_config, Rt};

const AUTO: GenerateOptions = GenerateOptions {
    auto_accept: true,
    ttl: None,
};
/// Generous bound on anything that should take milliseconds, so a broken test fails
/// instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {PATIENCE:?}"))
}

async fn node(rt: Rt, name: &str, bootstrap: Vec<Multiaddr>) -> Node {
    let mut config = loopback_config(name);
    config.bootstrap = bootstrap;
    rt.start(config).await.expect("node starts")
}

fn assert_pair(on_alice: &PairedDevice, on_bob: &PairedDevice, alice: &Node, bob: &Node) {
    assert_eq!(on_alice.peer, bob.peer_id());
    assert_eq!(on_bob.peer, alice.peer_id());
    assert_eq!(on_alice.keys, on_bob.keys);
}

/// Alice generates, Bob joins with the code; both results.
async fn pair(alice: &Node, bob: &Node) -> (PairedDevice, PairedDevice) {
    let (code, handle) = alice.generate(AUTO).await.expect("generate");
    let (a, b) = within("pairing", async {
        tokio::join!(handle.result(), bob.join(&code))
    })
    .await;
    (a.expect("alice completes"), b.expect("bob completes"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_pairing_on_every_runtime_combination() {
    for (initiator_rt, joiner_rt) in [
        (Rt::Tokio, Rt::Tokio),
        (Rt::AsyncStd, Rt::AsyncStd),
        (Rt::Tokio, Rt::AsyncStd),
        (Rt::AsyncStd, Rt::Tokio),
    ] {
        let alice = node(initiator_rt, "alice", vec![]).await;
        let bob = node(joiner_rt, "bob", alice.listen_addrs().await.unwrap()).await;
        let (on_alice, on_bob) = pair(&alice, &bob).await;
        assert_pair(&on_alice, &on_bob, &alice, &bob);
        assert_eq!(on_alice.info.name, "bob");
        assert_eq!(on_bob.info.name, "alice");
        alice.shutdown().await;
        bob.shutdown().await;
    }
}

/// DHT only: Alice and Bob know nothing of each other, only a bootstrap node. Bob finds
/// Alice through her provider record under the code's discovery id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_only_three_nodes() {
    let hub = node(Rt::Tokio, "hub", vec![]).await;
    let hub_addrs = hub.listen_addrs().await.unwrap();
    let alice = node(Rt::AsyncStd, "alice", hub_addrs.clone()).await;
    let bob = node(Rt::Tokio, "bob", hub_addrs).await;
    let mut bob_events = bob.events();
    let (on_alice, on_bob) = pair(&alice, &bob).await;
    assert_pair(&on_alice, &on_bob, &alice, &bob);
    let mut found_alice_in_dht = false;
    while let Ok(event) = bob_events.try_recv() {
        if let NodeEvent::PeerDiscovered { peer, via } = event {
            assert_ne!(peer, hub.peer_id(), "the hub holds no record");
            found_alice_in_dht |= peer == alice.peer_id() && via == Discovery::Dht;
        }
    }
    assert!(found_alice_in_dht, "bob found alice through the DHT");
    for n in [alice, bob, hub] {
        n.shutdown().await;
    }
}

/// A valid code nobody holds: NoDeviceAnswered at the configured timeout; the initiator's
/// session carries on and the same node then pairs with the right code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_code_fails_with_no_device_answered() {
    let join_timeout = Duration::from_millis(1500);
    let alice = node(Rt::Tokio, "alice", vec![]).await;
    let mut config = loopback_config("bob");
    config.bootstrap = alice.listen_addrs().await.unwrap();
    config.pairing.join_timeout = join_timeout;
    let bob = Rt::AsyncStd.start(config).await.unwrap();
    let (code, mut handle) = alice.generate(AUTO).await.unwrap();

    let started = Instant::now();
    let wrong = Code::generate(&mut rand_core::OsRng);
    let result = within("wrong join", bob.join(&wrong)).await;
    assert!(
        matches!(result, Err(Error::Pairing(FailReason::NoDeviceAnswered))),
        "{result:?}"
    );
    assert!(started.elapsed() < join_timeout + Duration::from_secs(1));
    let untouched = tokio::time::timeout(Duration::from_millis(10), handle.next_event()).await;
    assert!(
        untouched.is_err(),
        "the initiator saw nothing: {untouched:?}"
    );

    let (a, b) = within("right join", async {
        tokio::join!(handle.result(), bob.join(&code))
    })
    .await;
    assert_pair(&a.unwrap(), &b.unwrap(), &alice, &bob);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_joiner_completes_while_a_third_node_hammers() {
    let alice = node(Rt::Tokio, "alice", vec![]).await;
    let alice_addr = alice.listen_addrs().await.unwrap()[0].clone();
    let bob = node(Rt::AsyncStd, "bob", vec![alice_addr.clone()]).await;
    let (code, handle) = alice.generate(AUTO).await.unwrap();
    // Mallory read the public discovery id: her Joins get Challenges, her proofs fail.
    let mallory = tokio::spawn(paircode_netbed::hammer::hammer(
        alice_addr,
        code.keys().discovery_id.0,
        400,
        8,
        Duration::from_secs(30),
    ));
    // Let the hammering get going before Bob joins.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a, b) = within("pairing", async {
        tokio::join!(handle.result(), bob.join(&code))
    })
    .await;
    assert_pair(&a.unwrap(), &b.unwrap(), &alice, &bob);
    let report = mallory
        .await
        .unwrap()
        .expect("mallory's joins were all answered");
    assert!(
        report.challenges >= 1,
        "mallory got challenges to answer: {report:?}"
    );
    assert!(report.rejections >= 5, "mallory kept knocking: {report:?}");
    alice.shutdown().await;
    bob.shutdown().await;
}

/// One session per node; cancelling ends it and frees the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_at_a_time_and_cancel() {
    let alice = node(Rt::AsyncStd, "alice", vec![]).await;
    let (_code, handle) = alice.generate(AUTO).await.unwrap();
    assert!(matches!(alice.generate(AUTO).await, Err(Error::Busy)));
    let other = Code::generate(&mut rand_core::OsRng);
    assert!(matches!(
        alice.start_join(&other, JoinOptions::default()).await,
        Err(Error::Busy)
    ));
    handle.cancel();
    assert!(matches!(
        handle.result().await,
        Err(Error::Pairing(FailReason::Cancelled))
    ));
    let (_code, handle) = alice.generate(AUTO).await.expect("free again");
    alice.shutdown().await;
    assert!(matches!(
        handle.result().await,
        Err(Error::Pairing(FailReason::Cancelled))
    ));
    assert!(matches!(
        alice.generate(AUTO).await,
        Err(Error::NodeStopped)
    ));
}

/// Without auto-accept the initiator's user is asked; declining reaches the joiner as a
/// rejection, accepting pairs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_prompt_decline_then_accept() {
    let alice = node(Rt::Tokio, "alice", vec![]).await;
    let bob = node(Rt::AsyncStd, "bob", alice.listen_addrs().await.unwrap()).await;
    for accept in [false, true] {
        let (code, mut handle) = alice.generate(GenerateOptions::default()).await.unwrap();
        let joining = bob.join(&code);
        let answering = async move {
            loop {
                match handle.next_event().await.expect("events until the end") {
                    PairingEvent::ConfirmRequested { peer, info, .. } => {
                        assert_eq!(info.name, "bob");
                        handle.confirm(&peer, accept);
                    }
                    // Bob hears "accepted" only after this answer.
                    PairingEvent::StoreRequested(device) => handle.stored(&device.peer, true),
                    PairingEvent::Completed(device) => return Ok(*device),
                    PairingEvent::Failed(e) => return Err(e),
                    _ => {}
                }
            }
        };
        let (on_alice, on_bob) =
            within("confirm", async { tokio::join!(answering, joining) }).await;
        if accept {
            assert_pair(&on_alice.unwrap(), &on_bob.unwrap(), &alice, &bob);
        } else {
            assert!(
                matches!(on_alice, Err(Error::Pairing(FailReason::Declined { .. }))),
                "{on_alice:?}"
            );
            assert!(
                matches!(
                    on_bob,
                    Err(Error::Pairing(FailReason::Rejected {
                        reason: RejectReason::UserRejected,
                        ..
                    }))
                ),
                "{on_bob:?}"
            );
        }
    }
    alice.shutdown().await;
    bob.shutdown().await;
}

/// A registered paired device is reported online while connected and offline once gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paired_device_online_and_offline() {
    let alice = node(Rt::AsyncStd, "alice", vec![]).await;
    let bob = node(Rt::Tokio, "bob", alice.listen_addrs().await.unwrap()).await;
    let (on_alice, _) = pair(&alice, &bob).await;
    let mut events = alice.events();
    alice.set_paired([on_alice.peer.clone()]).unwrap();
    assert_eq!(
        within("online", presence(&mut events)).await,
        (true, bob.peer_id())
    );
    bob.shutdown().await;
    assert_eq!(
        within("offline", presence(&mut events)).await,
        (false, bob.peer_id())
    );
    alice.shutdown().await;
}

async fn presence(events: &mut paircode_net::EventStream) -> (bool, paircode_core::PeerId) {
    loop {
        match events.next().await {
            Some(NodeEvent::PairedOnline(p)) => return (true, p),
            Some(NodeEvent::PairedOffline(p)) => return (false, p),
            Some(_) => {}
            None => panic!("event stream ended"),
        }
    }
}

/// The only DHT peer accepts TCP connections and never answers: the initiator's
/// publication times out, and its session says so (the CLI shows it), instead of DHT
/// discovery silently never working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswering_dht_tells_the_initiator_its_code_is_not_announced() {
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = black_hole.local_addr().unwrap().port();
    let nobody = paircode_core::DeviceIdentity::generate(&mut rand_core::OsRng).peer_id();
    let entry: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{nobody}")
        .parse()
        .unwrap();
    let alice = node(Rt::Tokio, "alice", vec![entry]).await;
    let (_code, mut handle) = alice.generate(AUTO).await.expect("generate");
    let reason = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match handle.next_event().await {
                Some(PairingEvent::NotAnnounced { reason }) => return reason,
                Some(_) => {}
                None => panic!("the session ended"),
            }
        }
    })
    .await
    .expect("told within the DHT's query timeout");
    // A timed-out query, or one that reached nobody, depending on which timer fires first.
    assert!(
        reason.contains("did not answer") || reason.contains("could be reached"),
        "{reason}"
    );
    handle.cancel();
    alice.shutdown().await;
}
