//! The lab itself: hosts on a LAN reach each other, a router joins subnets, a userspace
//! or netem link delays, and a pulled cable stops traffic until it is plugged back in.
//!
//! Needs root and iproute2; prints "skipping: …" and returns otherwise.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use paircode_netbed::lab::{self, Host, Impairment, Lab};
use paircode_netbed::wire::enter_netns;

fn lab() -> Option<Lab> {
    if let Some(reason) = lab::skip_reason() {
        println!("skipping: {reason}");
        return None;
    }
    Some(Lab::new())
}

/// A one-byte echo server on `host`, port picked by the system.
fn echo_server(host: &Host) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let (ns, addr) = (host.ns.clone(), host.addr);
    std::thread::spawn(move || {
        enter_netns(&ns).expect("enter namespace");
        let listener = TcpListener::bind((addr, 0)).expect("bind");
        tx.send(listener.local_addr().unwrap()).unwrap();
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut b = [0u8; 1];
            while stream.read_exact(&mut b).is_ok() && stream.write_all(&b).is_ok() {}
        }
    });
    rx.recv().expect("server address")
}

/// From `host`: connect to `to` and time one echo round trip (None if unreachable
/// within `patience`).
fn round_trip(host: &Host, to: SocketAddr, patience: Duration) -> Option<Duration> {
    let ns = host.ns.clone();
    std::thread::spawn(move || {
        enter_netns(&ns).expect("enter namespace");
        let mut stream = TcpStream::connect_timeout(&to, patience).ok()?;
        stream.set_read_timeout(Some(patience)).ok()?;
        let started = Instant::now();
        stream.write_all(b"x").ok()?;
        let mut b = [0u8; 1];
        stream.read_exact(&mut b).ok()?;
        Some(started.elapsed())
    })
    .join()
    .expect("client thread")
}

#[test]
fn impairable_link_delays_and_a_pulled_cable_cuts() {
    let Some(mut lab) = lab() else { return };
    let lan = lab.lan().unwrap();
    let a = lab.host("a", lan, false).unwrap();
    let b = lab.host("b", lan, true).unwrap();
    let server = echo_server(&a);
    let quick = round_trip(&b, server, Duration::from_secs(5)).expect("b reaches a");
    assert!(quick < Duration::from_millis(50), "{quick:?}");

    let delay = Duration::from_millis(100);
    lab.impair(
        &b,
        Impairment {
            delay,
            loss_percent: 0.0,
        },
    )
    .unwrap();
    let slow = round_trip(&b, server, Duration::from_secs(5)).expect("b reaches a");
    assert!(
        slow >= 2 * delay,
        "a round trip takes twice the delay: {slow:?}"
    );
    lab.impair(&b, Impairment::default()).unwrap();

    lab.set_link(&b, false).unwrap();
    assert_eq!(round_trip(&b, server, Duration::from_secs(1)), None);
    lab.set_link(&b, true).unwrap();
    round_trip(&b, server, Duration::from_secs(5)).expect("b reaches a again");
}

#[test]
fn router_joins_subnets() {
    let Some(mut lab) = lab() else { return };
    let (one, two) = (lab.lan().unwrap(), lab.lan().unwrap());
    lab.router("r", &[one, two]).unwrap();
    let a = lab.host("a", one, false).unwrap();
    let b = lab.host("b", two, true).unwrap();
    assert_ne!(a.addr.octets()[2], b.addr.octets()[2], "different subnets");
    let server = echo_server(&a);
    round_trip(&b, server, Duration::from_secs(5)).expect("b reaches a through the router");
}
