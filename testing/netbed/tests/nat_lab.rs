//! The NAT lab itself: a home host reaches the internet and is seen at its router's
//! address; nothing on the internet reaches a home unsolicited; a port-preserving NAT keeps
//! the source port and a symmetric one does not; a home uplink can be delayed.
//!
//! Needs root, iproute2 and nftables; prints "skipping: …" and returns otherwise.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use paircode_netbed::lab::{self, Host, Impairment, Lab, Nat};
use paircode_netbed::wire::enter_netns;

fn lab() -> Option<Lab> {
    if let Some(reason) = lab::nat_skip_reason() {
        println!("skipping: {reason}");
        return None;
    }
    Some(Lab::new())
}

/// A server on `host` that writes each client's address as it sees it, then closes.
fn observer(host: &Host) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let (ns, addr) = (host.ns.clone(), host.addr);
    std::thread::spawn(move || {
        enter_netns(&ns).expect("enter namespace");
        let listener = TcpListener::bind((addr, 0)).expect("bind");
        tx.send(listener.local_addr().unwrap()).unwrap();
        for mut stream in listener.incoming().map_while(Result::ok) {
            let seen = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let _ = stream.write_all(seen.as_bytes());
        }
    });
    rx.recv().expect("server address")
}

/// From `host` (from source port `port`, or any): connect to `to` and return the address
/// the server saw, or None if it cannot be reached within `patience`.
fn seen_from(host: &Host, port: u16, to: SocketAddr, patience: Duration) -> Option<SocketAddr> {
    let (ns, addr) = (host.ns.clone(), host.addr);
    std::thread::spawn(move || {
        enter_netns(&ns).expect("enter namespace");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            socket.bind(SocketAddr::from((addr, port))).ok()?;
            let stream = tokio::time::timeout(patience, socket.connect(to))
                .await
                .ok()?
                .ok()?;
            let mut stream = stream.into_std().ok()?;
            stream.set_nonblocking(false).ok()?;
            stream.set_read_timeout(Some(patience)).ok()?;
            let mut seen = String::new();
            stream.read_to_string(&mut seen).ok()?;
            seen.parse().ok()
        })
    })
    .join()
    .expect("client thread")
}

/// Distinct source ports above the ephemeral range's usual start, different per test run.
fn source_ports(count: u16) -> Vec<u16> {
    let base = 20_000 + (std::process::id() % 10_000) as u16;
    (0..count).map(|i| base + 7 * i).collect()
}

#[test]
fn a_home_reaches_the_internet_but_the_internet_cannot_reach_a_home() {
    let Some(mut lab) = lab() else { return };
    let internet = lab.internet().unwrap();
    let server = lab.host("server", internet, false).unwrap();
    let home = lab.home("home", internet, Nat::PortPreserving).unwrap();
    let laptop = lab.host("laptop", home.lan, false).unwrap();
    assert_eq!(server.addr.octets()[..3], lab::INTERNET_PREFIX);
    assert_eq!(home.uplink.addr.octets()[..3], lab::INTERNET_PREFIX);

    let on_server = observer(&server);
    let seen = seen_from(&laptop, 0, on_server, Duration::from_secs(5))
        .expect("the laptop reaches the server");
    assert_eq!(
        seen.ip(),
        home.uplink.addr,
        "the server sees the home's address"
    );

    let on_laptop = observer(&laptop);
    let patience = Duration::from_secs(1);
    assert_eq!(
        seen_from(&server, 0, on_laptop, patience),
        None,
        "the internet has no route to a home LAN"
    );
    let at_router = SocketAddr::from((home.uplink.addr, on_laptop.port()));
    assert_eq!(
        seen_from(&server, 0, at_router, patience),
        None,
        "unsolicited connections to the home's address go nowhere"
    );
}

#[test]
fn a_port_preserving_nat_keeps_the_source_port() {
    let Some(mut lab) = lab() else { return };
    let internet = lab.internet().unwrap();
    let server = lab.host("server", internet, false).unwrap();
    let home = lab.home("home", internet, Nat::PortPreserving).unwrap();
    let laptop = lab.host("laptop", home.lan, false).unwrap();
    let on_server = observer(&server);
    for port in source_ports(3) {
        let seen = seen_from(&laptop, port, on_server, Duration::from_secs(5)).expect("reach");
        assert_eq!(seen, SocketAddr::from((home.uplink.addr, port)));
    }
}

#[test]
fn a_symmetric_nat_picks_random_ports() {
    let Some(mut lab) = lab() else { return };
    let internet = lab.internet().unwrap();
    let server = lab.host("server", internet, false).unwrap();
    let home = lab.home("home", internet, Nat::Symmetric).unwrap();
    let laptop = lab.host("laptop", home.lan, false).unwrap();
    let on_server = observer(&server);
    let mut kept = 0;
    for port in source_ports(3) {
        let seen = seen_from(&laptop, port, on_server, Duration::from_secs(5)).expect("reach");
        assert_eq!(seen.ip(), home.uplink.addr);
        kept += usize::from(seen.port() == port);
    }
    // A random port equals the source port once in ~28 000; three times, never.
    assert!(kept < 3, "the symmetric NAT kept every source port");
}

#[test]
fn a_home_uplink_can_be_delayed() {
    let Some(mut lab) = lab() else { return };
    let internet = lab.internet().unwrap();
    let server = lab.host("server", internet, false).unwrap();
    let home = lab.home("home", internet, Nat::PortPreserving).unwrap();
    let laptop = lab.host("laptop", home.lan, false).unwrap();
    let on_server = observer(&server);
    let delay = Duration::from_millis(50);
    lab.impair(
        &home.uplink,
        Impairment {
            delay,
            loss_percent: 0.0,
        },
    )
    .unwrap();
    // Connect (one round trip) plus the server's answer (at least half of one more).
    let started = Instant::now();
    seen_from(&laptop, 0, on_server, Duration::from_secs(5)).expect("reach");
    let took = started.elapsed();
    assert!(took >= 3 * delay, "{took:?}");
}
