//! The real CLI across two NATs: `paircode relay` on the internet, `paircode start
//! --relay` in two homes behind port-preserving NATs. The code alone pairs them, `status`
//! shows the reservation, and `network devices` ends on a direct connection.
//!
//! Needs root, iproute2 and nftables; prints "skipping: …" and passes otherwise.

#[path = "support/hosts.rs"]
mod hosts;
mod support;

use std::time::Instant;

use hosts::{assert_paired, log, site};
use paircode_netbed::daemon::Site;
use paircode_netbed::lab::{self, Host, Nat, TwoHomes};
use support::TestResult;

/// Initialises `host`'s instance and starts its daemon there with `--relay relay`, mDNS
/// off, listening on the host's address.
fn start_with_relay(site: &Site, host: &Host, relay: &str) -> TestResult {
    site.daemons.init(&host.name)?;
    let listen = host.listen_addr();
    let args = [
        "--listen",
        &listen,
        "--name",
        &host.name,
        "--no-mdns",
        "--relay",
        relay,
    ];
    site.daemons.start_with(Some(host), &host.name, &args)
}

#[test]
fn two_homes_pair_through_paircode_relay_and_end_direct() -> TestResult {
    let scenario = "across two NATs with paircode relay";
    if let Some(reason) = lab::nat_skip_reason() {
        log(&format!("skipping: {scenario}: {reason}"));
        return Ok(());
    }
    let Some(mut site) = site(scenario)? else {
        return Ok(());
    };
    let TwoHomes {
        server, alice, bob, ..
    } = site
        .lab
        .two_homes(Nat::PortPreserving, Nat::PortPreserving)?;

    let listen = server.listen_addr();
    let relay = site.daemons.relay_on(
        Some(&server),
        "mp",
        &["--listen", &listen, "--autonat-private-ips"],
    )?;
    let addr = relay.addr.clone();
    assert!(addr.contains("/p2p/"), "{addr}");

    let started = Instant::now();
    for host in [&alice, &bob] {
        start_with_relay(&site, host, &addr)?;
    }
    for host in [&alice, &bob] {
        site.daemons.eventually("the reservation is active", || {
            let status = site.daemons.json(&host.name, &["status"])?;
            Ok(status["meeting_points"][0]["reservation"] == true)
        })?;
    }
    let reserved = started.elapsed();

    let paired = site.pair(&alice, &bob)?.join;
    assert_paired(&site, &alice, &bob)?;
    let paired_at = Instant::now();
    let alice_id = site.daemons.peer_id(&alice.name)?;
    let mut path = None;
    site.daemons.eventually("bob reaches alice directly", || {
        let devices = site.daemons.devices(&bob.name)?;
        let on_bob = devices.iter().find(|d| d["peer_id"] == alice_id.as_str());
        path = on_bob.map(|d| d["connection"].clone());
        Ok(path.as_ref().is_some_and(|p| p == "direct"))
    })?;
    log(&format!(
        "{scenario}: path direct; both reserved in {} ms; join took {} ms; direct {} ms after \
         pairing",
        reserved.as_millis(),
        paired.as_millis(),
        paired_at.elapsed().as_millis(),
    ));
    drop(relay);
    Ok(())
}

/// The meeting point is down: the daemons still run, `status` says the meeting point is
/// unreachable and what to check, and a join from another home fails with "no device
/// answered" within its timeout and a hint naming the cause.
#[test]
fn with_the_meeting_point_down_a_join_across_networks_fails_with_a_hint() -> TestResult {
    let scenario = "meeting point down (CLI)";
    if let Some(reason) = lab::nat_skip_reason() {
        log(&format!("skipping: {scenario}: {reason}"));
        return Ok(());
    }
    let Some(mut site) = site(scenario)? else {
        return Ok(());
    };
    let TwoHomes {
        server, alice, bob, ..
    } = site
        .lab
        .two_homes(Nat::PortPreserving, Nat::PortPreserving)?;
    // Nothing listens there.
    let dead = format!(
        "/ip4/{}/tcp/4001/p2p/12D3KooWGYLbpTKKubHUBuq6a3CFFCDtr4Yk7aqCw3Q57qgSteLD",
        server.addr
    );
    for host in [&alice, &bob] {
        start_with_relay(&site, host, &dead)?;
    }
    let mut error = String::new();
    site.daemons
        .eventually("status says the meeting point is unreachable", || {
            let status = site.daemons.json(&bob.name, &["status"])?;
            let mp = &status["meeting_points"][0];
            error = mp["error"].as_str().unwrap_or_default().to_owned();
            Ok(mp["state"] == "unreachable" && mp["reservation"] == false)
        })?;
    assert!(
        error.contains("Check that the meeting point runs"),
        "{error}"
    );

    let (mut generating, words) = site.daemons.generate(&alice.name, &["--auto-accept"])?;
    let started = Instant::now();
    let out = site
        .daemons
        .run(&bob.name, &["network", "pair", "join", "--code", &words])?;
    let took = started.elapsed();
    // The code would otherwise stay up until it expires.
    let _ = generating.child.kill();
    let _ = generating.finish();
    let stderr = support::stderr(&out);
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
    Ok(())
}
