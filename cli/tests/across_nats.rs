//! The real CLI across two NATs: `paircode relay` on the internet, `paircode start
//! --relay` in two homes behind port-preserving NATs. The code alone pairs them, `status`
//! shows the reservation, and `network devices` ends on a direct connection.
//!
//! Needs root, iproute2 and nftables; prints "skipping: …" and passes otherwise.

// Shared with other test binaries, which use more of them.
#[allow(dead_code)]
#[path = "support/hosts.rs"]
mod hosts;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Instant;

use hosts::{log, Site};
use paircode_netbed::lab::{self, Nat};

/// `paircode relay` in a namespace; stopped with SIGTERM on drop.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[test]
fn two_homes_pair_through_paircode_relay_and_end_direct() {
    let scenario = "across two NATs with paircode relay";
    if let Some(reason) = lab::nat_skip_reason() {
        log(&format!("skipping: {scenario}: {reason}"));
        return;
    }
    let Some(mut site) = Site::new(scenario) else {
        return;
    };
    let internet = site.lab.internet().unwrap();
    let server = site.lab.host("mp", internet, false).unwrap();
    let home_a = site
        .lab
        .home("home-a", internet, Nat::PortPreserving)
        .unwrap();
    let home_b = site
        .lab
        .home("home-b", internet, Nat::PortPreserving)
        .unwrap();
    let alice = site.lab.host("alice", home_a.lan, false).unwrap();
    let bob = site.lab.host("bob", home_b.lan, false).unwrap();

    let listen = format!("/ip4/{}/tcp/0", server.addr);
    let mut child = site
        .bed
        .cmd_in(Some(&server.ns), "mp")
        .args(["relay", "--listen", &listen, "--autonat-private-ips"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn paircode relay");
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut addr)
        .expect("the relay prints its address");
    let _relay = Relay(child);
    let addr = addr.trim().to_owned();
    assert!(addr.contains("/p2p/"), "{addr}");

    let started = Instant::now();
    for host in [&alice, &bob] {
        site.bed.init(&host.name);
        let listen = host.listen_addr();
        let args = [
            "--listen",
            &listen,
            "--name",
            &host.name,
            "--no-mdns",
            "--relay",
            &addr,
        ];
        site.bed.start_in(Some(&host.ns), &host.name, &args);
    }
    for host in [&alice, &bob] {
        site.bed.eventually("the reservation is active", || {
            let status = site.bed.json(&host.name, &["status"]);
            status["meeting_points"][0]["reservation"] == true
        });
    }
    let reserved = started.elapsed();

    let paired = site.pair(&alice, &bob);
    site.assert_paired(&alice, &bob);
    let paired_at = Instant::now();
    let alice_id = site.bed.peer_id(&alice.name);
    let mut path = None;
    site.bed.eventually("bob reaches alice directly", || {
        let devices = site.bed.devices(&bob.name);
        let on_bob = devices.iter().find(|d| d["peer_id"] == alice_id.as_str());
        path = on_bob.map(|d| d["connection"].clone());
        path.as_ref().is_some_and(|p| p == "direct")
    });
    log(&format!(
        "{scenario}: path direct; both reserved in {} ms; join took {} ms; direct {} ms after \
         pairing",
        reserved.as_millis(),
        paired.as_millis(),
        paired_at.elapsed().as_millis(),
    ));
}

/// The meeting point is down: the daemons still run, `status` says the meeting point is
/// unreachable and what to check, and a join from another home fails with "no device
/// answered" within its timeout and a hint naming the cause.
#[test]
fn with_the_meeting_point_down_a_join_across_networks_fails_with_a_hint() {
    let scenario = "meeting point down (CLI)";
    if let Some(reason) = lab::nat_skip_reason() {
        log(&format!("skipping: {scenario}: {reason}"));
        return;
    }
    let Some(mut site) = Site::new(scenario) else {
        return;
    };
    let internet = site.lab.internet().unwrap();
    let server = site.lab.host("mp", internet, false).unwrap();
    let home_a = site
        .lab
        .home("home-a", internet, Nat::PortPreserving)
        .unwrap();
    let home_b = site
        .lab
        .home("home-b", internet, Nat::PortPreserving)
        .unwrap();
    let alice = site.lab.host("alice", home_a.lan, false).unwrap();
    let bob = site.lab.host("bob", home_b.lan, false).unwrap();
    // Nothing listens there.
    let dead = format!(
        "/ip4/{}/tcp/4001/p2p/12D3KooWGYLbpTKKubHUBuq6a3CFFCDtr4Yk7aqCw3Q57qgSteLD",
        server.addr
    );
    for host in [&alice, &bob] {
        site.bed.init(&host.name);
        let listen = host.listen_addr();
        let args = [
            "--listen",
            &listen,
            "--name",
            &host.name,
            "--no-mdns",
            "--relay",
            &dead,
        ];
        site.bed.start_in(Some(&host.ns), &host.name, &args);
    }
    let mut error = String::new();
    site.bed
        .eventually("status says the meeting point is unreachable", || {
            let status = site.bed.json(&bob.name, &["status"]);
            let mp = &status["meeting_points"][0];
            error = mp["error"].as_str().unwrap_or_default().to_owned();
            mp["state"] == "unreachable" && mp["reservation"] == false
        });
    assert!(
        error.contains("Check that the meeting point runs"),
        "{error}"
    );

    let (generating, words) = site.bed.generate(&alice.name, &["--auto-accept"]);
    let started = Instant::now();
    let out = site
        .bed
        .cmd(&bob.name)
        .args(["network", "pair", "join", "--code", &words])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("join runs");
    let took = started.elapsed();
    drop(generating);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no device answered"), "{stderr}");
    assert!(
        stderr.contains("hint: no meeting point is reachable"),
        "{stderr}"
    );
    assert!(took.as_secs() < 35, "the join failed only after {took:?}");
    log(&format!(
        "{scenario}: cross-network join failed after {} ms (timeout 30 s); status: {error}",
        took.as_millis()
    ));
}
