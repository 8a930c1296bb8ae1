//! Across NATs through a meeting point: the relay (`paircode relay`'s server) runs on the
//! internet; two hosts in two homes each run a minimal libp2p client (TCP with port reuse,
//! relay client, DCUtR, identify) that reserves a slot on the relay; one connects to the
//! other through `/p2p-circuit`, and DCUtR then tries to upgrade to a direct connection.
//! Behind two port-preserving NATs the connection goes relayed, then direct; with one
//! symmetric NAT it stays relayed. Each scenario logs its path and times.
//!
//! Also: the meeting point's AutoNAT tells a host on the internet it is public and one
//! behind a NAT it is private; and, on loopback, its DHT store refuses more provider
//! records from one peer than its per-peer cap.
//!
//! The NAT scenarios need root, iproute2 and nftables; they print "skipping: …" otherwise.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    autonat, dcutr, identify, identity, kad, noise, ping, relay, tcp, yamux, Multiaddr, PeerId,
};
use paircode_netbed::lab::{self, Host, Impairment, Lab, Nat};
use paircode_netbed::wire::enter_netns;
use paircode_tokio::meeting_point::{MeetingPointConfig, StoreLimits};
use paircode_tokio::protocol::KAD_PROTOCOL;

/// Runs `task` on a fresh single-threaded tokio runtime in a thread that first enters
/// `ns`: every socket it opens lives in that namespace.
fn in_namespace<F, Fut>(ns: &str, task: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter_netns(&ns).expect("enter namespace");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(task());
    })
}

/// The meeting point on `host`, until `stop` fires or is dropped; sends its first address.
fn meeting_point(host: &Host) -> (Multiaddr, oneshot::Sender<()>) {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let listen: Multiaddr = format!("/ip4/{}/tcp/0", host.addr).parse().unwrap();
    in_namespace(&host.ns, move || async move {
        let mut config =
            MeetingPointConfig::new(identity::Keypair::generate_ed25519(), vec![listen]);
        // The lab's addresses are private ranges.
        config.autonat_only_global_ips = false;
        let relay = paircode_tokio::start_meeting_point(config)
            .await
            .expect("meeting point starts");
        addr_tx.send(relay.addrs()[0].clone()).unwrap();
        let _ = stopped.await;
        relay.shutdown().await;
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("meeting point address");
    (addr, stop)
}

#[derive(NetworkBehaviour)]
struct PeerBehaviour {
    relay_client: relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// What a peer reports to the test.
#[derive(Debug)]
enum Report {
    Reserved(PeerId),
    Connected {
        relayed: bool,
        at: Instant,
    },
    Closed {
        relayed: bool,
    },
    Upgrade {
        result: Result<(), String>,
        at: Instant,
    },
}

/// A home peer: listens on a TCP port first (so that its dials leave from that port, which
/// is what the NAT maps and DCUtR needs), connects to the relay, waits until the relay's
/// identify told it its observed address, then either reserves a slot (`dial: None`) or
/// dials the other peer through the relay (`dial: Some(peer)`), and reports its connections
/// to the other peer and DCUtR's outcome.
fn peer(
    host: &Host,
    relay: Multiaddr,
    dial: Option<PeerId>,
) -> (mpsc::Receiver<Report>, oneshot::Sender<()>) {
    let (tx, rx) = mpsc::channel();
    let (stop, mut stopped) = oneshot::channel::<()>();
    in_namespace(&host.ns, move || async move {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp")
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .expect("relay client")
            .with_behaviour(|key, relay_client| PeerBehaviour {
                relay_client,
                dcutr: dcutr::Behaviour::new(key.public().to_peer_id()),
                identify: identify::Behaviour::new(identify::Config::new(
                    paircode_tokio::protocol::IDENTIFY_PROTOCOL.to_owned(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let relay_peer = match relay.iter().last() {
            Some(Protocol::P2p(peer)) => peer,
            _ => panic!("relay address without /p2p"),
        };

        swarm
            .listen_on("/ip4/0.0.0.0/tcp/0".parse().unwrap())
            .unwrap();
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                if !address
                    .iter()
                    .any(|p| p == Protocol::Ip4([127, 0, 0, 1].into()))
                {
                    break;
                }
            }
        }
        swarm.dial(relay.clone()).unwrap();
        let (mut sent, mut received) = (false, false);
        while !(sent && received) {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(PeerBehaviourEvent::Identify(identify::Event::Sent {
                    peer_id,
                    ..
                })) if peer_id == relay_peer => sent = true,
                SwarmEvent::Behaviour(PeerBehaviourEvent::Identify(
                    identify::Event::Received { peer_id, .. },
                )) if peer_id == relay_peer => received = true,
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    panic!("cannot reach the relay: {error}")
                }
                _ => {}
            }
        }
        match dial {
            None => {
                swarm
                    .listen_on(relay.clone().with(Protocol::P2pCircuit))
                    .unwrap();
            }
            Some(other) => {
                let through = relay
                    .clone()
                    .with(Protocol::P2pCircuit)
                    .with(Protocol::P2p(other));
                swarm.dial(through).unwrap();
            }
        }
        let me = *swarm.local_peer_id();
        loop {
            let event = futures::select! {
                event = swarm.select_next_some() => event,
                _ = stopped => return,
            };
            let report = match event {
                SwarmEvent::Behaviour(PeerBehaviourEvent::RelayClient(
                    relay::client::Event::ReservationReqAccepted { .. },
                )) => Report::Reserved(me),
                SwarmEvent::ConnectionEstablished {
                    peer_id, endpoint, ..
                } if peer_id != relay_peer => Report::Connected {
                    relayed: endpoint.is_relayed(),
                    at: Instant::now(),
                },
                SwarmEvent::ConnectionClosed {
                    peer_id, endpoint, ..
                } if peer_id != relay_peer => Report::Closed {
                    relayed: endpoint.is_relayed(),
                },
                SwarmEvent::Behaviour(PeerBehaviourEvent::Dcutr(event)) => Report::Upgrade {
                    result: event.result.map(|_| ()).map_err(|e| e.to_string()),
                    at: Instant::now(),
                },
                _ => continue,
            };
            if tx.send(report).is_err() {
                return;
            }
        }
    });
    (rx, stop)
}

/// How the connection between two homes went.
#[derive(Debug)]
struct Path {
    relayed_after: Duration,
    /// When DCUtR gave its verdict (success or failure), from the start.
    upgrade_after: Duration,
    upgrade: Result<(), String>,
    /// A direct connection was established, this long from the start.
    direct_after: Option<Duration>,
    /// The relayed connection closed before the end.
    relayed_closed: bool,
}

/// Two homes (`alice_nat`, `bob_nat`), each uplink delayed by `delay` one way, and a meeting
/// point on the internet; bob connects to alice through it.
fn across_two_homes(alice_nat: Nat, bob_nat: Nat, delay: Duration) -> Option<Path> {
    if let Some(reason) = lab::nat_skip_reason() {
        let _ = writeln!(std::io::stderr(), "skipping: {reason}");
        return None;
    }
    let mut lab = Lab::new();
    let internet = lab.internet().unwrap();
    let server = lab.host("relay", internet, false).unwrap();
    let home_a = lab.home("home-a", internet, alice_nat).unwrap();
    let home_b = lab.home("home-b", internet, bob_nat).unwrap();
    let alice_host = lab.host("alice", home_a.lan, false).unwrap();
    let bob_host = lab.host("bob", home_b.lan, false).unwrap();
    for uplink in [&home_a.uplink, &home_b.uplink] {
        let impairment = Impairment {
            delay,
            loss_percent: 0.0,
        };
        lab.impair(uplink, impairment).unwrap();
    }
    let (relay, _stop_relay) = meeting_point(&server);

    let (alice, _stop_alice) = peer(&alice_host, relay.clone(), None);
    let alice_id = match alice.recv_timeout(Duration::from_secs(20)) {
        Ok(Report::Reserved(id)) => id,
        other => panic!("alice did not reserve a relay slot: {other:?}"),
    };
    let started = Instant::now();
    let (bob, _stop_bob) = peer(&bob_host, relay, Some(alice_id));

    // Bob's view decides: his connections to alice and DCUtR's verdict (either side may
    // give it; alice's is read too).
    let mut relayed_after = None;
    let mut direct_after = None;
    let mut upgrade = None;
    let mut upgrade_after = Duration::ZERO;
    let mut relayed_closed = false;
    let deadline = started + Duration::from_secs(60);
    while upgrade.is_none() || (upgrade == Some(Ok(())) && direct_after.is_none()) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no verdict within 60 s");
        let report = bob
            .recv_timeout(Duration::from_millis(50))
            .or_else(|_| alice.recv_timeout(Duration::from_millis(1)));
        match report {
            Ok(Report::Connected { relayed: true, at }) => {
                relayed_after.get_or_insert(at - started);
            }
            Ok(Report::Connected { relayed: false, at }) => {
                direct_after.get_or_insert(at - started);
            }
            Ok(Report::Upgrade { result, at }) => {
                // Both sides give a verdict; a success on either side wins.
                if upgrade.is_none() || result.is_ok() {
                    upgrade = Some(result);
                    upgrade_after = at - started;
                }
            }
            Ok(Report::Closed { relayed }) => relayed_closed |= relayed,
            Ok(Report::Reserved(_)) | Err(_) => {}
        }
    }
    // Anything that still arrives (a late direct connection) counts.
    std::thread::sleep(Duration::from_millis(500));
    while let Ok(report) = bob.try_recv().or_else(|_| alice.try_recv()) {
        match report {
            Report::Connected { relayed: false, at } => {
                direct_after.get_or_insert(at - started);
            }
            Report::Closed { relayed } => relayed_closed |= relayed,
            _ => {}
        }
    }
    Some(Path {
        relayed_after: relayed_after.expect("a relayed connection came first"),
        upgrade_after,
        upgrade: upgrade.expect("a verdict"),
        direct_after,
        relayed_closed,
    })
}

/// One line per scenario with its path and times, on stderr so that the test harness
/// does not capture it.
fn log_path(scenario: &str, path: &Path) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let line = match path.direct_after {
        Some(direct) => format!(
            "{scenario}: path relayed -> direct; relayed after {:.1} ms, direct after {:.1} ms ({:.1} ms after relayed)",
            ms(path.relayed_after),
            ms(direct),
            ms(direct.saturating_sub(path.relayed_after)),
        ),
        None => format!(
            "{scenario}: path relayed (stays); relayed after {:.1} ms, DCUtR gave up after {:.1} ms: {:?}",
            ms(path.relayed_after),
            ms(path.upgrade_after),
            path.upgrade,
        ),
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn two_port_preserving_nats_go_relayed_then_direct() {
    let Some(path) = across_two_homes(Nat::PortPreserving, Nat::PortPreserving, Duration::ZERO)
    else {
        return;
    };
    log_path("two port-preserving NATs", &path);
    assert_eq!(path.upgrade, Ok(()), "DCUtR succeeds");
    let direct = path.direct_after.expect("a direct connection");
    assert!(direct >= path.relayed_after, "relayed first, then direct");
}

#[test]
fn two_port_preserving_nats_with_20ms_per_home_link_go_direct() {
    let delay = Duration::from_millis(20);
    let Some(path) = across_two_homes(Nat::PortPreserving, Nat::PortPreserving, delay) else {
        return;
    };
    log_path("two port-preserving NATs, 20 ms per home link", &path);
    assert_eq!(path.upgrade, Ok(()), "DCUtR succeeds");
    let direct = path.direct_after.expect("a direct connection");
    assert!(direct >= path.relayed_after, "relayed first, then direct");
}

#[test]
fn a_symmetric_nat_stays_relayed() {
    let Some(path) = across_two_homes(Nat::PortPreserving, Nat::Symmetric, Duration::ZERO) else {
        return;
    };
    log_path("one symmetric NAT", &path);
    assert!(path.upgrade.is_err(), "DCUtR fails: {:?}", path.upgrade);
    assert_eq!(path.direct_after, None, "no direct connection");
    assert!(!path.relayed_closed, "the relayed connection stays up");
}

#[derive(NetworkBehaviour)]
struct Prober {
    autonat: autonat::Behaviour,
    identify: identify::Behaviour,
}

/// What AutoNAT, asking the meeting point at `relay`, tells a peer on `host` about itself.
fn reachability(host: &Host, relay: Multiaddr) -> autonat::NatStatus {
    let (tx, rx) = mpsc::channel();
    in_namespace(&host.ns, move || async move {
        let relay_peer = match relay.iter().last() {
            Some(Protocol::P2p(peer)) => peer,
            _ => panic!("relay address without /p2p"),
        };
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|key| {
                let me = key.public().to_peer_id();
                let config = autonat::Config {
                    only_global_ips: false,
                    boot_delay: Duration::from_millis(100),
                    ..autonat::Config::default()
                };
                let mut autonat = autonat::Behaviour::new(me, config);
                autonat.add_server(relay_peer, Some(relay.clone()));
                Prober {
                    autonat,
                    identify: identify::Behaviour::new(identify::Config::new(
                        paircode_tokio::protocol::IDENTIFY_PROTOCOL.to_owned(),
                        key.public(),
                    )),
                }
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build();
        swarm
            .listen_on("/ip4/0.0.0.0/tcp/0".parse().unwrap())
            .unwrap();
        swarm.dial(relay.clone()).unwrap();
        loop {
            if let SwarmEvent::Behaviour(ProberEvent::Autonat(autonat::Event::StatusChanged {
                new,
                ..
            })) = swarm.select_next_some().await
            {
                let _ = tx.send(new);
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("AutoNAT gives a verdict")
}

#[test]
fn autonat_tells_a_home_it_is_private_and_a_server_it_is_public() {
    if let Some(reason) = lab::nat_skip_reason() {
        let _ = writeln!(std::io::stderr(), "skipping: {reason}");
        return;
    }
    let mut lab = Lab::new();
    let internet = lab.internet().unwrap();
    let server = lab.host("relay", internet, false).unwrap();
    let public = lab.host("public", internet, false).unwrap();
    let home = lab.home("home", internet, Nat::PortPreserving).unwrap();
    let laptop = lab.host("laptop", home.lan, false).unwrap();
    let (relay, _stop_relay) = meeting_point(&server);
    let started = Instant::now();
    let public_status = reachability(&public, relay.clone());
    let public_after = started.elapsed();
    let started = Instant::now();
    let home_status = reachability(&laptop, relay);
    let _ = writeln!(
        std::io::stderr(),
        "AutoNAT: internet host {public_status:?} after {public_after:?}, home host {home_status:?} after {:?}",
        started.elapsed()
    );
    match public_status {
        autonat::NatStatus::Public(addr) => {
            assert!(addr
                .to_string()
                .starts_with(&format!("/ip4/{}/tcp/", public.addr)))
        }
        other => panic!("a host on the internet is public, not {other:?}"),
    }
    assert_eq!(
        home_status,
        autonat::NatStatus::Private,
        "a host behind a NAT is private"
    );
}

/// A client that announces `keys` provider records to the meeting point at `relay`.
#[derive(NetworkBehaviour)]
struct Announcer {
    kad: kad::Behaviour<kad::store::MemoryStore>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meeting_point_caps_provider_records_per_peer() {
    const CAP: usize = 5;
    let mut config = MeetingPointConfig::new(
        identity::Keypair::generate_ed25519(),
        vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
    );
    config.store = StoreLimits {
        per_peer: CAP,
        ..StoreLimits::default()
    };
    let relay = paircode_tokio::start_meeting_point(config).await.unwrap();
    let relay_addr = relay.addrs()[0].clone();

    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let me = key.public().to_peer_id();
            let store = kad::store::MemoryStore::new(me);
            let mut kad = kad::Behaviour::with_config(me, store, kad::Config::new(KAD_PROTOCOL));
            // A device behind a NAT: it asks and announces, it does not serve.
            kad.set_mode(Some(kad::Mode::Client));
            Announcer { kad }
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build();
    let me = *swarm.local_peer_id();
    swarm
        .behaviour_mut()
        .kad
        .add_address(&relay.peer_id(), relay_addr);
    let announced = CAP + 3;
    for i in 0..announced {
        let key = kad::RecordKey::new(&format!("discovery id {i}"));
        swarm.behaviour_mut().kad.start_providing(key).unwrap();
    }
    let mut done = 0;
    while done < announced {
        let event = tokio::time::timeout(Duration::from_secs(20), swarm.select_next_some())
            .await
            .expect("announcements finish");
        if let SwarmEvent::Behaviour(AnnouncerEvent::Kad(kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::StartProviding(result),
            ..
        })) = event
        {
            result.expect("announced to the meeting point");
            done += 1;
        }
    }
    // The announcements were all sent; give the server a moment to have handled them, while
    // still driving the client's connection.
    let settle = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(settle);
    loop {
        tokio::select! {
            _ = &mut settle => break,
            _ = swarm.select_next_some() => {}
        }
    }
    assert_eq!(relay.provider_records_of(me).await.unwrap(), CAP);
    relay.shutdown().await;
}
