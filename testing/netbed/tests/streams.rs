//! Application streams between paired nodes on 127.0.0.1 (mDNS off): `Node::connect`,
//! `Node::accept` and `Node::export_key`, on both runtimes.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use paircode_core::{PairedDevice, PeerId};
use paircode_net::{
    DeviceStream, GenerateOptions, Incoming, Multiaddr, Node, NodeEvent, StreamError,
};
use paircode_netbed::{loopback_config, Rt};

const AUTO: GenerateOptions = GenerateOptions {
    auto_accept: true,
    ttl: None,
};
/// Generous bound on anything that should take milliseconds, so a broken test fails
/// instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);
const ECHO: &str = "/test/echo/1";
const REVERSE: &str = "/test/reverse/1";

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

/// Pairs the two nodes and registers each as the other's paired device, as an embedder
/// does with what it stored. Returns what each side keeps.
async fn pair(alice: &Node, bob: &Node) -> (PairedDevice, PairedDevice) {
    let (code, handle) = alice.generate(AUTO).await.expect("generate");
    let (a, b) = within("pairing", async {
        tokio::join!(handle.result(), bob.join(&code))
    })
    .await;
    let (on_alice, on_bob) = (a.expect("alice completes"), b.expect("bob completes"));
    alice.add_paired(on_alice.peer.clone()).unwrap();
    bob.add_paired(on_bob.peer.clone()).unwrap();
    (on_alice, on_bob)
}

/// Two nodes on the given runtimes, paired.
async fn paired(alice_rt: Rt, bob_rt: Rt) -> (Node, Node, PairedDevice, PairedDevice) {
    let alice = node(alice_rt, "alice", vec![]).await;
    let bob = node(bob_rt, "bob", alice.listen_addrs().await.unwrap()).await;
    let (on_alice, on_bob) = pair(&alice, &bob).await;
    (alice, bob, on_alice, on_bob)
}

/// Accepts on its own task, as an application does, and forwards what it admits.
fn serve(mut incoming: Incoming) -> tokio::sync::mpsc::UnboundedReceiver<(PeerId, DeviceStream)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = incoming.next().await {
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    rx
}

/// Echoes on `ECHO`, sends back the reversed input on `REVERSE`, for every stream.
fn echo_servers(node: &Node) {
    for protocol in [ECHO, REVERSE] {
        let mut incoming = node.accept(protocol).expect("accept");
        tokio::spawn(async move {
            while let Some((_, stream)) = incoming.next().await {
                tokio::spawn(async move {
                    let (mut reader, mut writer) = stream.split();
                    if protocol == ECHO {
                        futures::io::copy(reader, &mut writer).await.unwrap();
                    } else {
                        let mut data = Vec::new();
                        reader.read_to_end(&mut data).await.unwrap();
                        data.reverse();
                        writer.write_all(&data).await.unwrap();
                    }
                    writer.close().await.unwrap();
                });
            }
        });
    }
}

/// Writes `data` and reads the reply at the same time (the echo only keeps up if its
/// replies are read), then closes the sending half.
async fn exchange(stream: DeviceStream, data: &[u8]) -> Vec<u8> {
    let (mut reader, mut writer) = stream.split();
    let send = async {
        writer.write_all(data).await.unwrap();
        writer.close().await.unwrap();
    };
    let mut reply = Vec::new();
    let receive = reader.read_to_end(&mut reply);
    let ((), read) = futures::join!(send, receive);
    read.unwrap();
    reply
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Reads until the stream ends or fails; true if it ended without delivering a byte.
async fn ends_without_data(stream: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf).await {
        Ok(0) | Err(_) => true,
        Ok(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_both_ways_on_two_protocols_at_once_on_every_runtime() {
    for (alice_rt, bob_rt) in [
        (Rt::Tokio, Rt::Tokio),
        (Rt::AsyncStd, Rt::AsyncStd),
        (Rt::Tokio, Rt::AsyncStd),
    ] {
        let (alice, bob, _, _) = paired(alice_rt, bob_rt).await;
        echo_servers(&alice);
        echo_servers(&bob);
        // Bigger than a yamux window, so flow control takes part.
        let data = payload(1 << 20, alice_rt as u8);
        let reversed: Vec<u8> = data.iter().rev().copied().collect();
        within("four exchanges", async {
            let (to_alice_echo, to_alice_reverse, to_bob_echo, to_bob_reverse) = futures::join!(
                async { exchange(bob.connect(&alice.peer_id(), ECHO).await.unwrap(), &data).await },
                async {
                    let s = bob.connect(&alice.peer_id(), REVERSE).await.unwrap();
                    assert_eq!(s.protocol(), REVERSE);
                    assert_eq!(s.peer(), alice.peer_id());
                    exchange(s, &data).await
                },
                async { exchange(alice.connect(&bob.peer_id(), ECHO).await.unwrap(), &data).await },
                async {
                    exchange(alice.connect(&bob.peer_id(), REVERSE).await.unwrap(), &data).await
                },
            );
            assert!(
                to_alice_echo == data,
                "echo from alice intact ({alice_rt:?}/{bob_rt:?})"
            );
            assert!(to_bob_echo == data, "echo from bob intact");
            assert!(to_alice_reverse == reversed, "reverse from alice");
            assert!(to_bob_reverse == reversed, "reverse from bob");
        })
        .await;
        alice.shutdown().await;
        bob.shutdown().await;
    }
}

/// Alice (on a port of her own, to come back on) and Bob paired, then Alice stopped and
/// Bob told so: her port and configuration, Bob, and Alice as Bob keeps her.
async fn paired_then_alice_gone() -> (u16, paircode_net::NodeConfig, Node, PairedDevice) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut alice_config = loopback_config("alice");
    alice_config.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()];
    let alice = Rt::Tokio.start(alice_config.clone()).await.unwrap();
    let bob = node(Rt::AsyncStd, "bob", alice.listen_addrs().await.unwrap()).await;
    let (_, on_bob) = pair(&alice, &bob).await;
    let mut bob_events = bob.events();
    alice.shutdown().await;
    within("bob sees alice go", async {
        while let Some(event) = bob_events.next().await {
            if matches!(&event, NodeEvent::PairedOffline(p) if *p == on_bob.peer) {
                break;
            }
        }
    })
    .await;
    (port, alice_config, bob, on_bob)
}

/// A paired device that is offline is reported unreachable (not waited on for ever);
/// once it is back, `connect` dials it at the address the node knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reports_an_offline_device_and_dials_it_when_back() {
    let (_, alice_config, bob, on_bob) = paired_then_alice_gone().await;
    let offline = within(
        "connect to an offline device",
        bob.connect(&on_bob.peer, ECHO),
    )
    .await;
    assert!(
        matches!(offline, Err(StreamError::Unreachable { .. })),
        "{offline:?}"
    );

    let alice = Rt::Tokio.start(alice_config).await.unwrap();
    alice.set_paired([bob.peer_id()]).unwrap();
    echo_servers(&alice);
    let data = payload(100_000, 3);
    let echoed = within("connect after the restart", async {
        exchange(bob.connect(&on_bob.peer, ECHO).await.unwrap(), &data).await
    })
    .await;
    assert!(echoed == data);

    alice.shutdown().await;
    bob.shutdown().await;
}

/// A connect made while an earlier dial to the device is still under way waits for that
/// dial (libp2p dials a peer once at a time); when that dial began before the device came
/// back and fails, the connect dials again rather than report a device that is there as
/// unreachable. Found in CI (session 10): `connect_reports_an_offline_device_and_dials_it
/// _when_back` failed with "Connection refused" after Alice was back, a dial of Bob's
/// presence having been under way. Reproduced here with a dial held at a silent listener
/// on Alice's port until Alice is back and the connect has been made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_behind_a_stale_dial_dials_again() {
    let (port, alice_config, bob, on_bob) = paired_then_alice_gone().await;

    // A listener on Alice's port that accepts and says nothing: Bob's dial hangs in its
    // handshake.
    let silent = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let first = {
        let bob = bob.clone();
        let peer = on_bob.peer.clone();
        tokio::spawn(async move { bob.connect(&peer, ECHO).await.map(drop) })
    };
    let (held, _) = tokio::task::spawn_blocking(move || silent.accept())
        .await
        .unwrap()
        .unwrap();

    // Alice is back on her port; the connect is made while the held dial is under way.
    let alice = Rt::Tokio.start(alice_config).await.unwrap();
    alice.set_paired([bob.peer_id()]).unwrap();
    echo_servers(&alice);
    let second = {
        let bob = bob.clone();
        let peer = on_bob.peer.clone();
        tokio::spawn(async move { bob.connect(&peer, ECHO).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The held dial fails.
    drop(held);
    let data = payload(10_000, 5);
    let stream = within("the connect made behind the held dial", second)
        .await
        .unwrap()
        .expect("the connect dials again and reaches alice");
    assert!(exchange(stream, &data).await == data);
    let _ = within("the first connect", first).await;

    alice.shutdown().await;
    bob.shutdown().await;
}

/// Carol was never paired with Alice but believes she was: Alice resets her stream
/// before her application sees it, and keeps serving Bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaired_peer_is_refused_before_the_application_sees_a_byte() {
    let (alice, bob, _, _) = paired(Rt::Tokio, Rt::AsyncStd).await;
    let carol = node(Rt::Tokio, "carol", alice.listen_addrs().await.unwrap()).await;
    carol.add_paired(alice.peer_id()).unwrap();
    let mut admitted = serve(alice.accept(ECHO).unwrap());

    within("carol is refused", async {
        match carol.connect(&alice.peer_id(), ECHO).await {
            // Negotiation succeeded; the stream is reset once Alice's node looks at it.
            Ok(mut stream) => {
                // The write may already fail once the reset arrived.
                let _ = stream.write_all(b"let me in").await;
                let _ = stream.flush().await;
                assert!(ends_without_data(&mut stream).await);
            }
            Err(e) => panic!("carol's stream should open and then be reset: {e}"),
        }
    })
    .await;

    let mut from_bob = within("bob connects", bob.connect(&alice.peer_id(), ECHO))
        .await
        .unwrap();
    from_bob.write_all(b"hello").await.unwrap();
    let (peer, mut stream) = within("alice accepts", admitted.recv()).await.unwrap();
    assert_eq!(
        peer,
        bob.peer_id(),
        "the first stream alice's application sees"
    );
    let mut hello = [0u8; 5];
    stream.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello, b"hello");
    assert!(admitted.try_recv().is_err(), "nothing from carol");

    for n in [alice, bob, carol] {
        n.shutdown().await;
    }
}

/// Unpairing resets the device's streams on both ends and refuses new ones; a device
/// that unpaired us is no longer paired here either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpairing_closes_open_streams() {
    let (alice, bob, _, _) = paired(Rt::Tokio, Rt::Tokio).await;
    let mut admitted = serve(alice.accept(ECHO).unwrap());
    let mut on_bob = bob.connect(&alice.peer_id(), ECHO).await.unwrap();
    on_bob.write_all(b"x").await.unwrap();
    let (_, mut on_alice) = within("accept", admitted.recv()).await.unwrap();
    let mut byte = [0u8; 1];
    on_alice.read_exact(&mut byte).await.unwrap();

    alice.remove_paired(bob.peer_id()).unwrap();
    let err = on_alice.read(&mut byte).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(
        on_alice.write(b"y").await.unwrap_err().kind(),
        io::ErrorKind::ConnectionReset
    );
    assert!(within("bob's end", ends_without_data(&mut on_bob)).await);
    assert!(matches!(
        alice.connect(&bob.peer_id(), ECHO).await,
        Err(StreamError::NotPaired(_))
    ));

    // Paired again; then Alice unpairs and tells Bob, whose streams end and who stops
    // treating Alice as paired.
    alice.add_paired(bob.peer_id()).unwrap();
    let mut bob_events = bob.events();
    let mut on_bob = bob.connect(&alice.peer_id(), ECHO).await.unwrap();
    on_bob.write_all(b"x").await.unwrap();
    let (_, mut on_alice) = within("accept", admitted.recv()).await.unwrap();
    on_alice.read_exact(&mut byte).await.unwrap();
    alice.notify_unpaired(bob.peer_id()).unwrap();
    assert!(within("bob's end", ends_without_data(&mut on_bob)).await);
    within("unpair notice", async {
        while let Some(event) = bob_events.next().await {
            if matches!(&event, NodeEvent::UnpairedByPeer(p) if *p == alice.peer_id()) {
                break;
            }
        }
    })
    .await;
    // The notice reaches Bob's stream registry through the same event stream.
    within("bob forgets alice", async {
        loop {
            match bob.connect(&alice.peer_id(), ECHO).await {
                Err(StreamError::NotPaired(_)) => break,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;

    alice.shutdown().await;
    bob.shutdown().await;
}

/// Counts what a writer got rid of.
struct Counting<W> {
    inner: W,
    written: Arc<AtomicUsize>,
}

impl<W: AsyncWrite + Unpin> Counting<W> {
    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(16 * 1024) {
            self.inner.write_all(chunk).await?;
            self.written.fetch_add(chunk.len(), Ordering::SeqCst);
        }
        self.inner.close().await
    }
}

/// A reader that does not read holds the writer back at the yamux window; nothing in
/// between takes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_does_not_read_holds_the_writer_back() {
    const LEN: usize = 16 << 20;
    /// The yamux window is 256 KiB (the writer stalls at 240 KiB, counted in 16 KiB
    /// chunks); four windows is room to spare and still far below `LEN`.
    const BOUND: usize = 1 << 20;
    let (alice, bob, _, _) = paired(Rt::Tokio, Rt::AsyncStd).await;
    let mut admitted = serve(alice.accept(ECHO).unwrap());
    let stream = bob.connect(&alice.peer_id(), ECHO).await.unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let data = payload(LEN, 7);
    let mut writer = Counting {
        inner: stream,
        written: written.clone(),
    };
    let sent = data.clone();
    let writing = tokio::spawn(async move { writer.write_all(&sent).await });
    let (_, mut on_alice) = within("accept", admitted.recv()).await.unwrap();

    // Wait until the writer stops making progress.
    within("the writer stalls", async {
        let mut last = usize::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = written.load(Ordering::SeqCst);
            if now == last {
                break;
            }
            last = now;
        }
    })
    .await;
    let stalled_at = written.load(Ordering::SeqCst);
    assert!(!writing.is_finished(), "the writer is still pending");
    assert!(stalled_at > 0, "the window let something through");
    assert!(
        stalled_at <= BOUND,
        "{stalled_at} bytes left the writer while nobody read"
    );

    let mut received = Vec::with_capacity(LEN);
    within("reading everything", on_alice.read_to_end(&mut received))
        .await
        .unwrap();
    within("the writer finishes", writing)
        .await
        .unwrap()
        .unwrap();
    assert!(received == data, "all {LEN} bytes intact");

    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_key_agrees_across_devices_and_separates_labels_and_devices() {
    let (alice, bob, alice_has_bob, bob_has_alice) = paired(Rt::Tokio, Rt::AsyncStd).await;
    let carol = node(Rt::Tokio, "carol", alice.listen_addrs().await.unwrap()).await;
    let (alice_has_carol, carol_has_alice) = pair(&alice, &carol).await;

    let key = alice.export_key(&alice_has_bob, "myapp/sync");
    assert_eq!(key, bob.export_key(&bob_has_alice, "myapp/sync"));
    assert_ne!(key, alice.export_key(&alice_has_bob, "myapp/chat"));
    assert_eq!(
        alice.export_key(&alice_has_bob, "myapp/chat"),
        bob.export_key(&bob_has_alice, "myapp/chat")
    );
    let with_carol = alice.export_key(&alice_has_carol, "myapp/sync");
    assert_eq!(with_carol, carol.export_key(&carol_has_alice, "myapp/sync"));
    assert_ne!(key, with_carol);
    assert_ne!(&key, alice_has_bob.pairing_secret());

    for n in [alice, bob, carol] {
        n.shutdown().await;
    }
}

/// What is refused without a byte on the network: paircode's and libp2p's own protocols,
/// names that are not protocols, devices that are not paired, a protocol accepted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_protocols_and_unpaired_devices_are_refused_locally() {
    let (alice, bob, _, _) = paired(Rt::Tokio, Rt::Tokio).await;
    let carol = node(Rt::Tokio, "carol", vec![]).await;
    for reserved in [
        "/paircode/pair/1",
        "/paircode/device/1",
        "/paircode/kad/1.0.0",
        "/paircode/id/1.0.0",
        "/ipfs/ping/1.0.0",
        "/ipfs/id/push/1.0.0",
    ] {
        assert!(
            matches!(
                alice.accept(reserved),
                Err(StreamError::ReservedProtocol(_))
            ),
            "{reserved}"
        );
        assert!(
            matches!(
                alice.connect(&bob.peer_id(), reserved).await,
                Err(StreamError::ReservedProtocol(_))
            ),
            "{reserved}"
        );
    }
    assert!(matches!(
        alice.accept("no-slash"),
        Err(StreamError::InvalidProtocol(_))
    ));
    assert!(matches!(
        alice.connect(&carol.peer_id(), ECHO).await,
        Err(StreamError::NotPaired(_))
    ));

    let first = alice.accept(ECHO).unwrap();
    assert!(matches!(
        alice.accept(ECHO),
        Err(StreamError::AlreadyAccepting(_))
    ));
    drop(first);
    let mut again = serve(alice.accept(ECHO).expect("accepting again after a drop"));
    let mut stream = bob.connect(&alice.peer_id(), ECHO).await.unwrap();
    stream.write_all(b"!").await.unwrap();
    let (peer, _) = within("accept again", again.recv()).await.unwrap();
    assert_eq!(peer, bob.peer_id());

    // A device that does not accept the protocol says so.
    assert!(matches!(
        within(
            "unsupported",
            bob.connect(&alice.peer_id(), "/test/nobody/1")
        )
        .await,
        Err(StreamError::Unsupported { .. })
    ));

    // A stopped node ends its Incoming and opens nothing.
    let mut on_carol = carol.accept(ECHO).unwrap();
    carol.shutdown().await;
    assert!(within("incoming ends", on_carol.next()).await.is_none());
    assert!(matches!(
        carol.connect(&alice.peer_id(), ECHO).await,
        Err(StreamError::NodeStopped)
    ));
    alice.shutdown().await;
    bob.shutdown().await;
}
